"""Password hashing on a memory-hard KDF: ``hashlib.scrypt`` (stdlib) or Argon2id (argon2-cffi).

Never a plain or fast hash. A hash is a self-describing string, so parameters can be raised later
and old hashes still verify (``needs_rehash`` tells when to re-hash at the next login):

- scrypt: ``$scrypt$ln=14,r=8,p=5$<salt>$<key>`` (base64 without padding; ``n = 2**ln``).
  The default, N=2^14 r=8 p=5, is one of OWASP's recommended settings: 16 MiB of memory and
  roughly 0.1-0.4 s of one core per hash or check. Lower it only in tests.
- argon2: argon2-cffi's own PHC string (``$argon2id$v=19$m=...,t=...,p=...$...``), with its
  defaults (RFC 9106's low-memory profile: 64 MiB, t=3, p=4) unless given.

``verify`` recognises either format by its prefix, whatever ``scheme`` the hasher creates. Both
KDFs release the GIL: in an ``async def`` handler, call them through
``anyio.to_thread.run_sync`` (or from a sync dependency) so the event loop is not blocked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from typing import Any, Literal

__all__ = ["PasswordHasher", "hash_password", "needs_rehash", "verify_password"]

Scheme = Literal["scrypt", "argon2"]

_SCRYPT_PREFIX = "$scrypt$"
_ARGON2_PREFIX = "$argon2"
_SALT_SIZE = 16
_KEY_SIZE = 32
_MAX_SCRYPT_MEMORY = 1 << 30  # refuse stored parameters that would need more than 1 GiB


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _scrypt_memory(n: int, r: int, p: int) -> int:
    # What OpenSSL checks against ``maxmem``: 128 * r * (N + 2 + p) bytes, plus a little slack.
    return 128 * r * (n + 2 + p) + 1024


def _import_argon2() -> Any:
    try:
        import argon2
    except ImportError as exc:
        raise RuntimeError("argon2 password hashes need argon2-cffi: pip install 'toolkit[argon2]'") from exc
    return argon2


class PasswordHasher:
    """Hash and verify passwords with one configured ``scheme`` ("scrypt" or "argon2").

    scrypt: ``n`` (a power of two, CPU/memory cost), ``r`` (block size), ``p`` (parallelism).
    argon2: ``time_cost``, ``memory_cost`` (KiB), ``parallelism``; ``None`` keeps argon2-cffi's
    defaults.
    """

    def __init__(
        self,
        scheme: Scheme = "scrypt",
        *,
        n: int = 2**14,
        r: int = 8,
        p: int = 5,
        time_cost: int | None = None,
        memory_cost: int | None = None,
        parallelism: int | None = None,
    ) -> None:
        if scheme not in ("scrypt", "argon2"):
            raise ValueError(f"unknown password hashing scheme {scheme!r}; use 'scrypt' or 'argon2'")
        if n < 2 or n & (n - 1):
            raise ValueError(f"scrypt n must be a power of two greater than 1, not {n}")
        if r < 1 or p < 1:
            raise ValueError("scrypt r and p must be positive")
        if _scrypt_memory(n, r, p) > _MAX_SCRYPT_MEMORY:
            raise ValueError(f"scrypt n={n}, r={r}, p={p} needs more than 1 GiB of memory")
        self.scheme = scheme
        self.n, self.r, self.p = n, r, p
        self._argon2: Any = None
        if scheme == "argon2":
            argon2 = _import_argon2()
            options = {"time_cost": time_cost, "memory_cost": memory_cost, "parallelism": parallelism}
            self._argon2 = argon2.PasswordHasher(**{k: v for k, v in options.items() if v is not None})

    def __repr__(self) -> str:
        if self.scheme == "scrypt":
            return f"PasswordHasher('scrypt', n={self.n}, r={self.r}, p={self.p})"
        return "PasswordHasher('argon2')"

    # --- public API ----------------------------------------------------------------------------

    def hash(self, password: str) -> str:
        """A new salted hash of ``password`` in the configured scheme."""
        if self.scheme == "argon2":
            return str(self._argon2.hash(password))
        salt = os.urandom(_SALT_SIZE)
        key = _scrypt(password, salt, self.n, self.r, self.p, _KEY_SIZE)
        ln = self.n.bit_length() - 1
        return f"{_SCRYPT_PREFIX}ln={ln},r={self.r},p={self.p}${_b64encode(salt)}${_b64encode(key)}"

    def verify(self, password: str, hashed: str) -> bool:
        """Whether ``password`` matches ``hashed`` (either scheme), compared in constant time.

        A string that is not a hash this module knows raises ``ValueError`` (a data bug, not a
        wrong password); an argon2 hash without argon2-cffi installed raises ``RuntimeError``.
        """
        if hashed.startswith(_SCRYPT_PREFIX):
            n, r, p, salt, expected = _parse_scrypt(hashed)
            key = _scrypt(password, salt, n, r, p, len(expected))
            return hmac.compare_digest(key, expected)
        if hashed.startswith(_ARGON2_PREFIX):
            argon2 = _import_argon2()
            hasher = self._argon2 if self._argon2 is not None else argon2.PasswordHasher()
            try:
                return bool(hasher.verify(hashed, password))
            except argon2.exceptions.VerifyMismatchError:
                return False
            except (argon2.exceptions.InvalidHashError, argon2.exceptions.VerificationError) as exc:
                raise ValueError("malformed argon2 password hash") from exc
        raise ValueError("not a password hash this module knows (expected $scrypt$ or $argon2...$)")

    def needs_rehash(self, hashed: str) -> bool:
        """Whether ``hashed`` was made with another scheme or other parameters than this hasher's."""
        if self.scheme == "scrypt":
            if not hashed.startswith(_SCRYPT_PREFIX):
                return True
            n, r, p, salt, key = _parse_scrypt(hashed)
            return (n, r, p, len(salt), len(key)) != (self.n, self.r, self.p, _SALT_SIZE, _KEY_SIZE)
        if not hashed.startswith(_ARGON2_PREFIX):
            return True
        return bool(self._argon2.check_needs_rehash(hashed))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, size: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_scrypt_memory(n, r, p), dklen=size
    )


def _parse_scrypt(hashed: str) -> tuple[int, int, int, bytes, bytes]:
    try:
        _, _, params, salt_text, key_text = hashed.split("$")
        values = dict(item.split("=", 1) for item in params.split(","))
        ln, r, p = int(values["ln"]), int(values["r"]), int(values["p"])
        salt, key = _b64decode(salt_text), _b64decode(key_text)
    except (ValueError, KeyError, binascii.Error) as exc:
        raise ValueError("malformed scrypt password hash") from exc
    if not (1 <= ln < 32 and r >= 1 and p >= 1 and salt and len(key) >= 16):
        raise ValueError("malformed scrypt password hash")
    if _scrypt_memory(1 << ln, r, p) > _MAX_SCRYPT_MEMORY:
        raise ValueError("scrypt password hash parameters need more than 1 GiB of memory")
    return 1 << ln, r, p, salt, key


_default_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """Hash ``password`` with scrypt at the default cost (see the module docstring)."""
    return _default_hasher.hash(password)


def verify_password(password: str, hashed: str) -> bool:
    """Check ``password`` against a hash made by ``hash_password`` or any ``PasswordHasher``."""
    return _default_hasher.verify(password, hashed)


def needs_rehash(hashed: str) -> bool:
    """Whether ``hashed`` differs from what ``hash_password`` would make now (re-hash on login)."""
    return _default_hasher.needs_rehash(hashed)
