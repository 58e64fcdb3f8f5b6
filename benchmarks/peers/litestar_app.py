"""The Litestar peer: msgspec Structs, ``Parameter`` constraints and ``Provide``, as its docs teach them.

Run the way Litestar's best users run it: ``debug=False`` (the default), no OpenAPI routes
(``openapi_config=None``, so the route tables match the other peers'), ``async def`` handlers and
dependencies, msgspec Structs for bodies (Litestar's fast path, no DTO), Litestar's own DI, session
middleware and response cache.

Litestar answers a request it cannot validate with 400 and ``{"status_code", "detail", "extra"}``
where the spec (FastAPI's convention, the toolkit's too) wants 422 and ``{"detail": [{"loc": ...}]}``;
and it answers a path parameter that does not parse as its declared type (``/items/abc`` for
``{item_id:int}``) with 404, as no route matches. The exception handlers below (``client_error``,
``not_found``) translate these answers, and ``http_error`` the other HTTP exceptions to FastAPI's
``{"detail": ...}``: they run on the error path only, never on a timed request.
"""

from __future__ import annotations

import binascii
import re
from base64 import b64decode, b64encode
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from itsdangerous import BadSignature, TimestampSigner
from litestar import Litestar, MediaType, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.exceptions import (
    ClientException,
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    SerializationException,
    ValidationException,
)
from litestar.middleware.session.base import ONE_DAY_IN_SECONDS, BaseBackendConfig, BaseSessionBackend
from litestar.params import Parameter
from litestar.types import Message, Scopes, ScopeSession
from litestar.types.empty import Empty

from ..spec import SESSION_SECRET
from ._common import RequestIdTimingMiddleware
from ._fakes import POOL, SETTINGS, Connection, Settings
from ._structs import Item

LABEL = "Litestar"
PACKAGES = ("litestar", "msgspec")


@get("/plaintext", media_type=MediaType.TEXT)
async def plaintext() -> str:
    return "Hello, World!"


@get("/json")
async def json() -> dict[str, str]:
    return {"message": "Hello, World!"}


@get("/items/{item_id:int}")
async def read_item(
    item_id: int,
    q: Annotated[str | None, Parameter(max_length=50)] = None,
    limit: Annotated[int, Parameter(ge=1, le=100)] = 10,
) -> dict[str, Any]:
    return {"item_id": item_id, "q": q, "limit": limit}


@post("/items")  # a POST answers 201 by default
async def create_item(data: Item) -> Item:
    return data


# --- deps: a chain of three dependencies, the middle one a generator with cleanup -------------


# ``async def``, as in the other peers (nothing here blocks). Litestar would run a plain ``def`` on
# the event loop too, but warns unless each ``Provide`` says ``sync_to_thread=False``.
async def get_settings() -> Settings:
    return SETTINGS


async def get_db(settings: Settings) -> AsyncIterator[Connection]:
    db = POOL.connect(settings.database_url)
    try:
        yield db
    finally:
        db.close()


async def get_user(db: Connection, token: str | None = None) -> dict[str, Any] | None:
    return db.fetch_user(token) if token else None


# The 401 is raised by the handler, not by ``get_user`` as in the toolkit and FastAPI peers: when a
# dependency raises while Litestar (2.25) is still resolving the others, the generators it already
# started (``get_db``) are dropped without their cleanup, which then runs only when the garbage
# collector finds them (``GET /deps/pool`` would count an open connection). Raised in the handler,
# the exception is thrown into ``get_db`` and its ``finally`` runs before the 401 is sent. The
# timed request (a valid token) does the same work either way.
@get(
    "/deps",
    dependencies={"settings": Provide(get_settings), "db": Provide(get_db), "user": Provide(get_user)},
)
async def read_deps(user: dict[str, Any] | None, db: Connection) -> dict[str, Any]:
    if user is None:
        raise NotAuthorizedException("Not authenticated", headers={"WWW-Authenticate": "Bearer"})
    return {"user": user, "db_open": db.is_open}


# --- untimed routes: registered last, so they add nothing to the timed requests' routing ------


@get("/deps/pool")
async def pool_stats() -> dict[str, int]:
    return POOL.stats()


@get("/greet")
async def greet(name: str) -> dict[str, str]:
    return {"message": f"Hello, {name}!"}


# --- errors: Litestar's 400s (and a path parameter's 404) as FastAPI-shaped 422s, untimed -------

_MISSING_FIELD = re.compile(r"Object missing required field `([^`]+)`")
_MISSING_PARAMETER = re.compile(r"Missing required (\w+) parameter '([^']+)'")


def _entry(kind: str, loc: list[str | int], msg: str) -> dict[str, Any]:
    return {"type": kind, "loc": loc, "msg": msg}


def _unprocessable(errors: list[dict[str, Any]]) -> Response[Any]:
    return Response({"detail": errors}, status_code=422)


def client_error(request: Request[Any, Any, Any], exc: ClientException) -> Response[Any]:
    """A 400 of Litestar's: a ``ValidationException`` (its ``extra`` lists the errors), a missing
    parameter (a ``ValidationException`` that says so in its ``detail``) or a body that is not JSON."""
    if exc.status_code != 400:
        return http_error(request, exc)
    if not isinstance(exc, ValidationException):
        return _unprocessable([_entry("json_invalid", ["body"], exc.detail)])
    if not isinstance(exc.extra, list):
        match = _MISSING_PARAMETER.search(exc.detail)
        loc: list[str | int] = [match[1], match[2]] if match else []
        return _unprocessable([_entry("missing", loc, exc.detail)])
    errors = []
    for error in exc.extra:
        message = error.get("message", "")
        loc = [error.get("source", "body")]
        key = error.get("key", "")
        if key and key != "data":  # "data": the body as a whole
            loc += [int(part) if part.isdigit() else part for part in re.findall(r"\w+", key)]
        if match := _MISSING_FIELD.match(message):
            loc.append(match[1])
        errors.append(_entry("value_error", loc, message))
    return _unprocessable(errors)


def not_found(request: Request[Any, Any, Any], exc: NotFoundException) -> Response[Any]:
    """Litestar's router answers 404 when a path parameter does not parse (``/items/abc`` for
    ``{item_id:int}``): find the route the path was meant for, and say which parameter failed."""
    if isinstance(exc.__cause__, ValueError):
        segments = [segment for segment in request.scope["path"].split("/") if segment]
        for route in request.app.routes:
            components = route.path_components
            if len(components) != len(segments):
                continue
            failed = []
            for component, segment in zip(components, segments, strict=True):
                if isinstance(component, str):
                    if component != segment:
                        break
                elif component.parser is not None:
                    try:
                        component.parser(segment)
                    except ValueError:
                        failed.append(component.name)
            else:
                if failed:
                    message = f"Input should be a valid {route.path_parameters[failed[0]].type.__name__}"
                    return _unprocessable([_entry("value_error", ["path", name], message) for name in failed])
    return http_error(request, exc)


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Any other ``HTTPException``: FastAPI's ``{"detail": ...}``, with the exception's headers."""
    return Response({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


# Looked up by the exception's class (most derived first), only when a handler raises.
EXCEPTION_HANDLERS: dict[Any, Any] = {
    ClientException: client_error,
    NotFoundException: not_found,
    HTTPException: http_error,
}

app = Litestar(
    route_handlers=[plaintext, json, read_item, create_item, read_deps, pool_stats, greet],
    exception_handlers=EXCEPTION_HANDLERS,
    openapi_config=None,
)


# --- session: a counter in a signed cookie (no store), through Litestar's SessionMiddleware ------

# Litestar's own client-side backend, ``CookieBackendConfig``, encrypts the cookie with AES-GCM and
# needs the ``cryptography`` package (``litestar[cryptography]``), which the bench extra does not
# install. So this peer plugs a backend of its own into Litestar's ``SessionMiddleware``, the way
# Litestar's docs show for custom backends (a ``BaseBackendConfig`` and a ``BaseSessionBackend``),
# signing as Starlette's ``SessionMiddleware`` does: base64 JSON (Litestar's msgspec encoder),
# itsdangerous' ``TimestampSigner``, the same key as the other peers; ``Vary: Cookie`` with every
# ``Set-Cookie``. The handler uses the session as Litestar users do, ``request.session``.


class SignedCookieBackend(BaseSessionBackend["SignedCookieConfig"]):
    """The whole session in one signed (not encrypted) cookie: nothing is stored server-side."""

    __slots__ = ("_clear_params", "_set_params", "signer")

    def __init__(self, config: SignedCookieConfig) -> None:
        super().__init__(config)
        self.signer = TimestampSigner(config.secret)
        self._set_params = {
            "path": config.path,
            "max_age": config.max_age,
            "domain": config.domain,
            "secure": config.secure,
            "httponly": config.httponly,
            "samesite": config.samesite,
        }
        self._clear_params = {**self._set_params, "max_age": None, "expires": 0}

    async def load_from_connection(self, connection: ASGIConnection[Any, Any, Any, Any]) -> dict[str, Any]:
        cookie = connection.cookies.get(self.config.key)
        if cookie:
            try:
                return self.deserialize_data(
                    b64decode(self.signer.unsign(cookie, max_age=self.config.max_age))
                )
            except (BadSignature, binascii.Error, SerializationException):
                pass  # a forged, expired or garbled cookie: a new, empty session
        return {}

    async def store_in_message(
        self, scope_session: ScopeSession, message: Message, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> None:
        if scope_session and scope_session is not Empty:
            value = self.signer.sign(b64encode(self.serialize_data(scope_session, connection.scope)))
            cookie = Cookie(key=self.config.key, value=value.decode("latin-1"), **self._set_params)
        elif self.config.key in connection.cookies:  # the session was emptied: clear the cookie
            cookie = Cookie(key=self.config.key, value="null", **self._clear_params)
        else:
            return
        headers = MutableScopeHeaders.from_message(message)
        headers.add("Set-Cookie", cookie.to_header(header=""))
        headers.add("Vary", "Cookie")

    def get_session_id(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
        return None


@dataclass
class SignedCookieConfig(BaseBackendConfig[SignedCookieBackend]):
    """``CookieBackendConfig``'s fields, with an itsdangerous key instead of an AES one."""

    _backend_class = SignedCookieBackend

    secret: str
    key: str = "session"
    max_age: int = ONE_DAY_IN_SECONDS * 14
    scopes: Scopes = field(default_factory=lambda: {ScopeType.HTTP, ScopeType.WEBSOCKET})
    path: str = "/"
    domain: str | None = None
    secure: bool = False
    httponly: bool = True
    samesite: Literal["lax", "strict", "none"] = "lax"
    exclude: str | list[str] | None = None
    exclude_opt_key: str = "skip_session"


session_config = SignedCookieConfig(secret=SESSION_SECRET)


@get("/session")
async def count_visits(request: Request[Any, Any, Any]) -> dict[str, int]:
    count = request.session.get("count", 0) + 1
    request.session["count"] = count
    return {"count": count}


session_app = Litestar(
    route_handlers=[count_visits],
    middleware=[session_config.middleware],
    exception_handlers=EXCEPTION_HANDLERS,
    openapi_config=None,
)


# --- stack: request id and timing in a pure-ASGI middleware, then sessions ----------------------


@get("/stack")
async def stack() -> dict[str, str]:
    return {"message": "Hello, World!"}


# Litestar's exception handling middleware is always there, outermost: the error guard. App-level
# middleware runs in the order listed: request id and timing around the sessions.
stack_app = Litestar(
    route_handlers=[stack],
    middleware=[RequestIdTimingMiddleware, session_config.middleware],
    exception_handlers=EXCEPTION_HANDLERS,
    openapi_config=None,
)


# --- the store app: built on first access, so that nothing else pays for it; no shop here ------


def __getattr__(name: str) -> Any:
    """``store_app`` (its own module), imported when first asked for."""
    if name != "store_app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from .litestar_stores import app

    globals()[name] = app
    return app
