"""Passwords (scrypt, the toolkit's hash format) and access tokens (PyJWT, HS256).

Hashing runs in worker threads, at most ``HASHING_CONCURRENCY`` at once per event loop, on a
``CapacityLimiter`` of its own: a burst of logins queues for it instead of taking every thread of
the default pool (40), which the database calls of every other request need.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from datetime import UTC, datetime, timedelta
from functools import cache

import anyio
import anyio.to_thread
import jwt
from anyio.lowlevel import RunVar

ALGORITHM = "HS256"
#: scrypt's (n, r, p) for new hashes: OWASP's setting, as the toolkit app uses (tests lower it).
SCRYPT_COST = (2**14, 8, 5)
#: KDFs at once per event loop: the CPUs (at most 8), as the toolkit's hasher does.
HASHING_CONCURRENCY = min(os.cpu_count() or 1, 8)
_hashing_slots: RunVar[anyio.CapacityLimiter] = RunVar("shop_fastapi.hashing_slots")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    maxmem = 128 * r * (n + 2 + p) + 1024
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=32)


def hash_password(password: str) -> str:
    """``$scrypt$ln=14,r=8,p=5$<salt>$<key>``: the same format as the toolkit app's hashes."""
    n, r, p = SCRYPT_COST
    salt = os.urandom(16)
    key = _scrypt(password, salt, n, r, p)
    return f"$scrypt$ln={n.bit_length() - 1},r={r},p={p}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, hashed: str) -> bool:
    try:
        _, _, params, salt, key = hashed.split("$")
        values = dict(item.split("=", 1) for item in params.split(","))
        n, r, p = 1 << int(values["ln"]), int(values["r"]), int(values["p"])
        expected = _unb64(key)
        return hmac.compare_digest(_scrypt(password, _unb64(salt), n, r, p), expected)
    except (ValueError, KeyError):
        return False


@cache
def _dummy_hash(cost: tuple[int, int, int]) -> str:  # one per cost, made at the first use
    return hash_password("not the password of any user")


def check_password(password: str, hashed: str | None) -> bool:
    """Whether ``password`` matches; for an unknown user (``None``) a dummy hash is checked, so
    the answer takes as long whether or not the username exists. Slow: call it in a thread."""
    matches = verify_password(password, hashed if hashed is not None else _dummy_hash(SCRYPT_COST))
    return matches and hashed is not None


def _slots() -> anyio.CapacityLimiter:
    """This event loop's limiter (anyio's belong to one loop), made at its first use."""
    try:
        return _hashing_slots.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(HASHING_CONCURRENCY)
        _hashing_slots.set(limiter)
        return limiter


async def hash_password_async(password: str) -> str:
    return await anyio.to_thread.run_sync(hash_password, password, limiter=_slots())


async def check_password_async(password: str, hashed: str | None) -> bool:
    return await anyio.to_thread.run_sync(check_password, password, hashed, limiter=_slots())


def create_access_token(user_id: int, secret_key: str, minutes: int) -> str:
    now = datetime.now(UTC)
    claims = {"sub": str(user_id), "iat": now, "exp": now + timedelta(minutes=minutes)}
    return jwt.encode(claims, secret_key, algorithm=ALGORITHM)


def decode_access_token(token: str, secret_key: str) -> int | None:
    """The user id in a valid token, or None (bad signature, expired, malformed)."""
    try:
        claims = jwt.decode(token, secret_key, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]})
        return int(claims["sub"])
    except (jwt.InvalidTokenError, ValueError, TypeError):
        return None
