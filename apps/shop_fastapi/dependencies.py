"""Dependencies: the per-request transaction, the settings and the current user."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request, WebSocket, WebSocketException, status
from fastapi.security import OAuth2PasswordBearer
from starlette.requests import HTTPConnection

from apps.common import repository
from apps.common.db import Connection, Database
from apps.common.events import Broadcaster
from apps.common.settings import Settings

from .security import decode_access_token

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


def get_settings(connection: HTTPConnection) -> Settings:
    return connection.app.state.settings


def get_database(connection: HTTPConnection) -> Database:
    return connection.app.state.db


def get_broadcaster(connection: HTTPConnection) -> Broadcaster:  # HTTP and WebSocket routes
    return connection.app.state.broadcaster


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
BroadcasterDep = Annotated[Broadcaster, Depends(get_broadcaster)]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_conn(request: Request, db: DatabaseDep) -> AsyncIterator[Connection]:
    """One transaction per request: committed when the handler returns, rolled back if it raises.

    Unsafe methods take SQLite's write lock at the first statement (``BEGIN IMMEDIATE``).
    """
    async with db.transaction(write=request.method not in SAFE_METHODS) as conn:
        yield conn


# scope="function": commit before the response is sent, so a client that saw 201 finds the row.
Conn = Annotated[Connection, Depends(get_conn, scope="function")]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


async def get_current_user(
    request: Request,
    conn: Conn,
    settings: SettingsDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> dict[str, Any]:
    """The user of the bearer token if one is sent (a bad token is a 401), else of the session."""
    if token is not None:
        user_id = decode_access_token(token, settings.secret_key)
        user = await repository.get_user(conn, user_id) if user_id is not None else None
        if user is None:
            raise _unauthorized("Could not validate credentials")
        return user
    user_id = request.session.get("user_id")
    if isinstance(user_id, int):
        user = await repository.get_user(conn, user_id)
        if user is not None:
            return user
    raise _unauthorized("Not authenticated")


CurrentUser = Annotated[dict[str, Any], Depends(get_current_user)]


async def require_admin(user: CurrentUser) -> dict[str, Any]:
    if "admin" not in user["roles"]:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Not enough permissions")
    return user


AdminUser = Annotated[dict[str, Any], Depends(require_admin)]


def normalise_origin(value: str) -> str | None:
    """``"HTTPS://Shop.Example:443"`` -> ``"https://shop.example"``; ``None`` unless ``value`` is
    exactly an http(s) origin (``"null"``, a path, user info, a wildcard: ``None``)."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host or "*" in host or "@" in parts.netloc:
        return None
    if parts.path or parts.query or parts.fragment or any(c in value for c in "?# "):
        return None
    host = f"[{host}]" if ":" in host else host
    default_port = 80 if scheme == "http" else 443
    return f"{scheme}://{host}" if port in (None, default_port) else f"{scheme}://{host}:{port}"


def allowed_origins(settings: Settings) -> frozenset[str]:
    """``settings.allowed_origins``, normalised; a value that is not an origin is a start-up error."""
    origins = set()
    for origin in settings.allowed_origins:
        normalised = normalise_origin(origin)
        if normalised is None:
            raise ValueError(
                f"allowed origin {origin!r} is not an http(s) origin like 'https://shop.example'"
            )
        origins.add(normalised)
    return frozenset(origins)


async def check_origin(websocket: WebSocket) -> None:
    """Refuse the handshake (close 1008 before accept) unless it has exactly one listed ``Origin``:
    a browser opens a WebSocket to any site with that site's cookies, and CORS does not apply."""
    values = websocket.headers.getlist("origin")
    if len(values) != 1 or normalise_origin(values[0]) not in websocket.app.state.allowed_origins:
        raise WebSocketException(code=status.WS_1008_POLICY_VIOLATION, reason="Origin not allowed")
