"""Service configuration, read from the environment (see apps/SPEC.md, "Configuration")."""

import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["DEFAULT_DATABASE_URL", "MIN_SECRET_KEY_BYTES", "Settings", "load_settings"]

logger = logging.getLogger("apps.settings")

DEFAULT_DATABASE_URL = "sqlite:///./shop.db"
#: HS256 needs a key at least as long as its hash (RFC 7518 §3.2).
MIN_SECRET_KEY_BYTES = 32


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str | None
    secret_key: str
    admin_usernames: frozenset[str]
    token_minutes: int = 30


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """``Settings`` from ``environ`` (default: ``os.environ``).

    ``SECRET_KEY`` unset: a random key for this process (sessions and tokens do not survive a
    restart or work across processes), with a warning. A key shorter than 32 bytes is refused.
    """
    env = os.environ if environ is None else environ
    secret_key = env.get("SECRET_KEY", "")
    if not secret_key:
        logger.warning("SECRET_KEY is not set: using a random key, valid for this process only")
        secret_key = secrets.token_urlsafe(48)
    elif len(secret_key.encode("utf-8")) < MIN_SECRET_KEY_BYTES:
        raise ValueError(f"SECRET_KEY must be at least {MIN_SECRET_KEY_BYTES} bytes long")
    admins = frozenset(name.strip() for name in env.get("ADMIN_USERNAMES", "").split(",") if name.strip())
    return Settings(
        database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
        redis_url=env.get("REDIS_URL") or None,
        secret_key=secret_key,
        admin_usernames=admins,
    )
