"""Passwords and access tokens, on ``toolkit.security``.

Hashing is scrypt at OWASP's cost (~0.1-0.4 s of one core): the awaitable forms run it in a
worker thread, a few at a time, and a login for an unknown username still spends a hash's time
(``verify_async(password, None)``), so the answer takes as long either way.
"""

import datetime
from typing import Any

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
    return await hasher.hash_async(password)


async def authenticate(conn: Connection, username: str, password: str) -> dict[str, Any] | None:
    """The user with these credentials, or ``None``."""
    user = await repository.get_user_by_username(conn, username)
    await conn.commit()  # give the connection back during the slow password check
    hashed = None if user is None else str(user["password_hash"])
    # ``None`` (no such user) costs a hash all the same: no timing oracle for usernames.
    if not await hasher.verify_async(password, hashed):
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
