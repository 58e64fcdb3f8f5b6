"""Passwords and access tokens, on ``toolkit.security``.

Hashing is scrypt at OWASP's cost (~0.1-0.4 s of one core), so it runs in a worker thread, and
a login for an unknown username checks a dummy hash: the answer takes as long either way.
"""

import datetime
import functools
from typing import Any

import anyio.to_thread

from apps.common import repository
from apps.common.db import Connection
from apps.common.settings import Settings
from toolkit import HTTPException
from toolkit.security import PasswordHasher
from toolkit.security.jwt import create_token, decode_token

__all__ = ["authenticate", "create_access_token", "hash_password", "hasher", "user_id_from_token"]

#: The hasher of new passwords (tests swap in a cheap one). Any scrypt or argon2 hash verifies.
hasher = PasswordHasher()


async def hash_password(password: str) -> str:
    return await anyio.to_thread.run_sync(hasher.hash, password)


@functools.lru_cache(maxsize=4)
def _dummy_hash(current: PasswordHasher) -> str:
    return current.hash("not the password of any user")


def _check(password: str, hashed: str | None) -> bool:
    current = hasher
    matches = current.verify(password, hashed if hashed is not None else _dummy_hash(current))
    return matches and hashed is not None


async def authenticate(conn: Connection, username: str, password: str) -> dict[str, Any] | None:
    """The user with these credentials, or ``None``."""
    user = await repository.get_user_by_username(conn, username)
    await conn.commit()  # give the connection back during the slow password check
    hashed = None if user is None else str(user["password_hash"])
    if not await anyio.to_thread.run_sync(_check, password, hashed):
        return None
    return user


def create_access_token(user_id: int, settings: Settings) -> str:
    """A JWT (HS256) with ``sub`` = the user id, expiring after ``settings.token_minutes``."""
    return create_token(
        {"sub": str(user_id)},
        settings.secret_key,
        expires_in=datetime.timedelta(minutes=settings.token_minutes),
    )


def user_id_from_token(token: str, secret_key: str) -> int | None:
    """The user id of a valid, unexpired token; ``None`` for any bad token."""
    try:
        claims = decode_token(token, secret_key, require=("exp", "sub"))
    except HTTPException:
        return None
    subject = claims.get("sub")
    return int(subject) if isinstance(subject, str) and subject.isdigit() else None
