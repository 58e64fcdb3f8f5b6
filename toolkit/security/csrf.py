"""CSRF protection for apps that a browser authenticates on its own (cookies, HTTP Basic...).

Pure ASGI. Safe methods (GET, HEAD, OPTIONS, TRACE) always pass. Any other method must pass
the enabled checks when it carries cookies *or* comes from a foreign origin: its ``Origin``
(or, without one, ``Referer``) is neither the request's own origin nor in ``trusted_origins``
(an unparsable value and ``"null"`` are foreign). Cookies are not the only credential a browser
attaches by itself: cached HTTP Basic/Digest/NTLM credentials, TLS client certificates and the
network position of an intranet client ride on a cross-site form POST too, and most of them
never show in the request, so the origin decides, whatever the credential. Browsers send
``Origin`` on every cross-origin POST (``null`` under ``no-referrer``). What still passes
unchecked is a request with no cookies that names no foreign origin: a non-browser client
(curl, a server-to-server call with a bearer token) sending neither header, or a same-origin
page. A cross-origin browser app calling with a bearer token must be listed in
``trusted_origins`` (as it is in the CORS allow-list); a cookie-less request from a foreign
origin has no token cookie, so it is refused in every mode.

- Origin check (``check_origin=True``): the ``Origin`` header, or the origin of ``Referer``
  when there is none, must be the request's own origin (scheme + ``Host``) or one of
  ``trusted_origins``. Behind a TLS-terminating proxy, let the server see the real scheme
  (``uvicorn --proxy-headers``) or list the public origin in ``trusted_origins``. When neither
  header is sent, the request is refused unless the token check is on to decide.
- Double-submit token (``double_submit=True``): a random token is set in the cookie
  ``cookie_name`` on a safe request that has none; the client's JavaScript echoes it in the
  header ``header_name``, and the two must be equal (compared in constant time). A cross-site
  page can neither read the cookie nor send a custom header without CORS allowing it. The
  current token is in ``scope["csrf_token"]`` for rendering into pages. Classic HTML forms
  cannot send the header: use ``double_submit=False`` (Origin check only) for those.

A refused request is a 403 JSON ``{"detail": "CSRF check failed: ..."}`` and the app is not
called. ``exempt_paths`` lists paths that skip the checks (``"/webhooks/*"`` is a prefix).
WebSocket and lifespan scopes pass through untouched.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from typing import Literal
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..responses import JSONResponse
from ._schemes import compare_secret

__all__ = ["CSRFMiddleware"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(value: str) -> str | None:
    """``"HTTPS://Example.com:443/path"`` -> ``"https://example.com"``; ``None`` if not an http(s) URL."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}:{port}"
    return f"{scheme}://{host}"


def _claimed_origin(headers: Headers) -> str | None:
    """The ``Origin`` header, or ``Referer`` when there is none (an empty ``Referer`` is none)."""
    origin = headers.get("origin")
    if origin is None:
        return headers.get("referer") or None
    return origin


class CSRFMiddleware:
    """Refuse cross-site unsafe requests (see the module docstring for which are checked)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        check_origin: bool = True,
        double_submit: bool = True,
        trusted_origins: Collection[str] = (),
        exempt_paths: Collection[str] = (),
        cookie_name: str = "csrftoken",
        header_name: str = "X-CSRF-Token",
        cookie_path: str = "/",
        cookie_domain: str | None = None,
        cookie_secure: bool | None = None,
        cookie_samesite: Literal["lax", "strict", "none"] = "lax",
    ) -> None:
        if not (check_origin or double_submit):
            raise ValueError("CSRFMiddleware needs check_origin, double_submit or both")
        self.app = app
        self.check_origin = check_origin
        self.double_submit = double_submit
        self.trusted_origins: set[str] = set()
        for origin in trusted_origins:
            normalized = normalize_origin(origin)
            if normalized is None:
                raise ValueError(
                    f"trusted origin {origin!r} is not an http(s) origin like 'https://example.com'"
                )
            self.trusted_origins.add(normalized)
        self.exempt_exact = {path for path in exempt_paths if not path.endswith("*")}
        self.exempt_prefixes = tuple(path[:-1] for path in exempt_paths if path.endswith("*"))
        self.cookie_name = cookie_name
        self.header_name = header_name.lower()
        # Browsers drop a SameSite=None cookie that is not Secure.
        self.cookie_secure = True if cookie_samesite == "none" else cookie_secure
        attributes = [f"Path={cookie_path}", f"SameSite={cookie_samesite.capitalize()}"]
        if cookie_domain:
            attributes.append(f"Domain={cookie_domain}")
        self._cookie_attributes = "; ".join(attributes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        cookies = cookie_parser(headers.get("cookie", ""))
        token = cookies.get(self.cookie_name) or None
        if scope["method"] in SAFE_METHODS:
            if not self.double_submit:
                await self.app(scope, receive, send)
                return
            new_token = None if token else secrets.token_urlsafe(32)
            scope["csrf_token"] = token or new_token
            await self.app(scope, receive, self._setting_cookie(scope, send, new_token))
            return
        if (cookies or self._is_foreign(scope, headers)) and not self._is_exempt(scope["path"]):
            failure = self._failure(scope, headers, token)
            if failure is not None:
                response = JSONResponse({"detail": f"CSRF check failed: {failure}"}, status_code=403)
                await response(scope, receive, send)
                return
        scope["csrf_token"] = token
        await self.app(scope, receive, send)

    def _is_exempt(self, path: str) -> bool:
        return path in self.exempt_exact or (
            bool(self.exempt_prefixes) and path.startswith(self.exempt_prefixes)
        )

    def _is_foreign(self, scope: Scope, headers: Headers) -> bool:
        """Whether the request names an origin other than ours or a trusted one (whatever the mode)."""
        raw = _claimed_origin(headers)
        if raw is None:
            return False
        origin = normalize_origin(raw)
        return origin is None or not self._is_trusted(origin, scope, headers)

    def _failure(self, scope: Scope, headers: Headers, token: str | None) -> str | None:
        """Why the request is refused, or ``None`` when it passes."""
        if self.check_origin:
            raw = _claimed_origin(headers)
            if raw is not None:
                origin = normalize_origin(raw)
                if origin is None or not self._is_trusted(origin, scope, headers):
                    return "origin not trusted"
            elif not self.double_submit:
                return "no Origin or Referer header"
        if self.double_submit:
            sent = headers.get(self.header_name)
            if not token or not sent:
                return "token missing"
            if not compare_secret(sent, token):
                return "token mismatch"
        return None

    def _is_trusted(self, origin: str, scope: Scope, headers: Headers) -> bool:
        if origin in self.trusted_origins:
            return True
        # A forged request comes from the victim's browser, which sets Host to our own name.
        host = headers.get("host")
        return host is not None and origin == normalize_origin(f"{scope.get('scheme', 'http')}://{host}")

    def _setting_cookie(self, scope: Scope, send: Send, token: str | None) -> Send:
        if token is None:
            return send
        secure = self.cookie_secure if self.cookie_secure is not None else scope.get("scheme") == "https"
        # Readable by JavaScript on purpose (no HttpOnly): the page must copy it into the header.
        cookie = f"{self.cookie_name}={token}; {self._cookie_attributes}{'; Secure' if secure else ''}"

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (b"set-cookie", cookie.encode("latin-1"))]
            await send(message)

        return send_with_cookie
