"""Service configuration, read from the environment (see apps/SPEC.md, "Configuration").

The defaults are the production ones: the session cookie is ``__Host-session``, ``Secure``,
``HttpOnly``, ``SameSite=Lax`` (a browser sends it back over HTTPS only), logins and sign-ups are
rate-limited, and a WebSocket is accepted only from the origins listed. ``SHOP_DEVELOPMENT=1``
is the explicit switch for plain ``http://localhost``: a ``session`` cookie without ``Secure``,
and the local origins allowed.

Admins are never made by registering: ``python -m apps.shop.admin`` (see apps/README.md).
"""

import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "DEFAULT_DATABASE_URL",
    "DEVELOPMENT_ORIGINS",
    "DEVELOPMENT_SESSION_COOKIE",
    "MIN_SECRET_KEY_BYTES",
    "SESSION_COOKIE",
    "Settings",
    "load_settings",
]

logger = logging.getLogger("apps.settings")

DEFAULT_DATABASE_URL = "sqlite:///./shop.db"
#: HS256 needs a key at least as long as its hash (RFC 7518 §3.2).
MIN_SECRET_KEY_BYTES = 32
#: The origins a browser shows for ``make serve`` (``SHOP_DEVELOPMENT=1``, no ``SHOP_ALLOWED_ORIGINS``).
DEVELOPMENT_ORIGINS = ("http://localhost:8000", "http://127.0.0.1:8000")

#: ``__Host-``: a browser takes the cookie only if it is ``Secure``, ``Path=/`` and has no ``Domain``,
#: so neither a sibling subdomain nor a plain-HTTP page can plant or overwrite it.
SESSION_COOKIE = "__Host-session"
#: Development (plain ``http://localhost``): no prefix, no ``Secure``.
DEVELOPMENT_SESSION_COOKIE = "session"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str | None
    secret_key: str
    token_minutes: int = 30
    #: Plain-HTTP development: the session cookie is ``session`` without ``Secure``. Off (the
    #: default), it is ``__Host-session`` with ``Secure``: browsers keep it for HTTPS only.
    development: bool = False
    #: ``Origin`` values a WebSocket (``/ws/items``) is accepted from.
    allowed_origins: tuple[str, ...] = ()
    #: Throttling of the password endpoints (``"<n>/<second|minute|hour|day>"``, or
    #: ``"<n> per <k> minutes"``, sliding windows): an attempt over a limit is a 429 with
    #: ``Retry-After``, answered before any password is hashed.
    #: ``POST /auth/token`` and ``POST /auth/login`` share their counts: per client address ...
    login_rate_per_address: str = "20/minute"
    #: ... and per account (the username sent, case-insensitive), whichever address tries it.
    login_rate_per_account: str = "5/minute"
    #: ``POST /users`` per client address.
    signup_rate_per_address: str = "5/minute"
    #: False turns the three limits off (benchmarks that log in thousands of times a second).
    rate_limits: bool = True

    @property
    def session_cookie(self) -> str:
        """``__Host-session`` (production) or ``session`` (development)."""
        return DEVELOPMENT_SESSION_COOKIE if self.development else SESSION_COOKIE

    @property
    def secure_cookies(self) -> bool:
        """Whether cookies carry ``Secure`` (production): a browser sends them over HTTPS only."""
        return not self.development


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name} must be 1 or 0 (true/false, yes/no, on/off), not {raw!r}")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """``Settings`` from ``environ`` (default: ``os.environ``).

    ``SECRET_KEY`` unset: a random key for this process (sessions and tokens do not survive a
    restart or work across processes), with a warning. A key shorter than 32 bytes is refused.
    ``SHOP_ALLOWED_ORIGINS`` (comma-separated) unset: none in production, the local ones of
    ``make serve`` with ``SHOP_DEVELOPMENT=1``.
    """
    env = os.environ if environ is None else environ
    secret_key = env.get("SECRET_KEY", "")
    if not secret_key:
        logger.warning("SECRET_KEY is not set: using a random key, valid for this process only")
        secret_key = secrets.token_urlsafe(48)
    elif len(secret_key.encode("utf-8")) < MIN_SECRET_KEY_BYTES:
        raise ValueError(f"SECRET_KEY must be at least {MIN_SECRET_KEY_BYTES} bytes long")
    if env.get("ADMIN_USERNAMES", "").strip():
        # It made whoever registered a listed name first an admin: refused, not silently honoured.
        logger.warning(
            "ADMIN_USERNAMES is ignored: registering never makes an admin; "
            "use `python -m apps.shop.admin promote <username>` (or create-admin)"
        )
    development = _flag(env, "SHOP_DEVELOPMENT", False)
    origins_text = env.get("SHOP_ALLOWED_ORIGINS")
    origins: tuple[str, ...]
    if origins_text is None:
        origins = DEVELOPMENT_ORIGINS if development else ()
    else:
        origins = tuple(origin.strip() for origin in origins_text.split(",") if origin.strip())
    defaults = Settings(database_url="", redis_url=None, secret_key="")
    return Settings(
        database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
        redis_url=env.get("REDIS_URL") or None,
        secret_key=secret_key,
        development=development,
        allowed_origins=origins,
        login_rate_per_address=env.get("SHOP_LOGIN_RATE_PER_ADDRESS") or defaults.login_rate_per_address,
        login_rate_per_account=env.get("SHOP_LOGIN_RATE_PER_ACCOUNT") or defaults.login_rate_per_account,
        signup_rate_per_address=env.get("SHOP_SIGNUP_RATE_PER_ADDRESS") or defaults.signup_rate_per_address,
        rate_limits=_flag(env, "SHOP_RATE_LIMITS", True),
    )
