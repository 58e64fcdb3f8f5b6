"""An ``Origin`` allow-list as a dependency, for websocket routes above all.

::

    @app.websocket("/ws", dependencies=[Depends(require_origin("https://shop.example"))])
    async def feed(websocket: WebSocket) -> None: ...

A browser opens a websocket to any site a page asks for, with that site's cookies, and neither
the same-origin policy nor CORS applies to it: unless the server checks ``Origin``, any page the
user visits can open the socket as the user (cross-site websocket hijacking) and read what it
sends. ``CSRFMiddleware`` and CORS leave websocket scopes alone, so this is the check.

- The handshake's ``Origin`` must equal one of the listed origins, compared as scheme + host +
  port, lower-cased, default ports dropped (``HTTPS://Shop.Example:443`` is
  ``https://shop.example``). No wildcards, no suffix matching: list every origin.
- Refused websockets are closed before ``accept`` with code 1008 (uvicorn answers the
  handshake with 403); refused HTTP requests are a 403 ``{"detail": "Origin not allowed"}``.
- A handshake without ``Origin`` is refused too: every browser sends one, so only non-browser
  clients omit it. ``allow_missing=True`` lets them through (they are not what the check is
  about: they can send any ``Origin`` they like). On HTTP routes browsers omit ``Origin`` on
  same-origin GET navigations, so guard unsafe methods or pass ``allow_missing=True``.
- ``"null"`` (sandboxed iframes, ``file:`` pages: anyone can produce it), a malformed value or
  several ``Origin`` headers are always refused.
- No origins at all (``require_origin(*settings.allowed_origins)`` with an empty setting) is
  valid and refuses every browser: the safe reading of "no origin is allowed".
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from starlette.exceptions import WebSocketException
from starlette.requests import HTTPConnection

from ..exceptions import HTTPException

__all__ = ["OriginChecker", "require_origin"]

ORIGIN_NOT_ALLOWED = "Origin not allowed"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST = re.compile(r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?")


def parse_origin(value: str) -> str | None:
    """``"HTTPS://Shop.Example:443"`` -> ``"https://shop.example"``; ``None`` unless the value is
    exactly an http(s) origin (no path, query, fragment or user info, as browsers send it)."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or parts.path or "@" in parts.netloc or any(c in value for c in "?# "):
        return None
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    elif not _HOST.fullmatch(host):  # "*.example.com", "" ...
        return None
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}:{port}"
    return f"{scheme}://{host}"


class OriginChecker:
    """A dependency refusing connections whose ``Origin`` is not listed (see the module docstring)."""

    def __init__(self, *origins: str, allow_missing: bool = False) -> None:
        allowed: set[str] = set()
        for origin in origins:
            if not isinstance(origin, str):
                kind = type(origin).__name__
                raise TypeError(f"origins are separate arguments: require_origin(*{origin!r}), not a {kind}")
            normalized = parse_origin(origin)
            if normalized is None:
                raise ValueError(
                    f"allowed origin {origin!r} is not an http(s) origin like 'https://shop.example' "
                    "(scheme://host[:port], no path, no trailing slash, no wildcard)"
                )
            allowed.add(normalized)
        self.origins = frozenset(allowed)
        self.allow_missing = allow_missing

    async def __call__(self, connection: HTTPConnection) -> None:
        values = connection.headers.getlist("origin")
        if not values and self.allow_missing:
            return
        if len(values) == 1 and parse_origin(values[0]) in self.origins:
            return
        if connection.scope["type"] == "websocket":
            # Raised before accept: the toolkit closes the handshake with 1008 (uvicorn sends 403).
            raise WebSocketException(code=1008, reason=ORIGIN_NOT_ALLOWED)
        raise HTTPException(403, ORIGIN_NOT_ALLOWED)

    def __repr__(self) -> str:
        origins = ", ".join(repr(origin) for origin in sorted(self.origins))
        return f"OriginChecker({origins}, allow_missing={self.allow_missing!r})"


def require_origin(*origins: str, allow_missing: bool = False) -> OriginChecker:
    """The dependency that lets through connections from ``origins``: ``Depends(require_origin(...))``."""
    return OriginChecker(*origins, allow_missing=allow_missing)
