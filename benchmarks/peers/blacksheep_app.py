"""The BlackSheep peer: written the way BlackSheep's own docs teach it, and tuned as they advise.

- Routing with each app's own ``Router`` (several apps live in this module, and BlackSheep
  refuses to share its default router between applications), parameters bound by its binders
  (``FromRoute``, ``FromQuery``, ``FromJSON``), services by its DI container (rodi), sessions by
  ``app.use_sessions(secret)``, middleware as ``async def middleware(request, handler)``.
- Handlers are ``async def`` and return ``Response`` objects from ``json()``/``text()``,
  annotated ``-> Response``; one that binds nothing has BlackSheep's "normal" signature,
  ``(request: Request) -> Response``, which it calls as is, without wrappers (its docs on
  request handler normalization). No ``from __future__ import annotations`` in this module:
  BlackSheep reads the return annotation unevaluated, and a string is not ``Response``, so
  every handler would get an extra output-normalising wrapper.
- Validation: pydantic v2 models for bodies, which ``FromJSON`` binds with ``model_validate``
  (the docs recommend pydantic for validation). BlackSheep has no constraints on query
  parameters, so the handler checks ``q`` and ``limit`` by hand, as a BlackSheep user would.
- JSON: BlackSheep's settings page documents swapping its serializer globally with
  ``json_settings.use(loads=..., dumps=...)`` (its example is orjson). orjson is not in this
  project's lock; msgspec is (the toolkit and the Starlette floor use it), so the same hook is
  given msgspec's encoder and decoder: request bodies, sessions and ``json()`` all use it.
- Errors: BlackSheep answers bad input with 400 (a binder's ``BadRequest``, with pydantic's
  ``ValidationError`` as its cause for a body). The spec wants FastAPI's 422 with ``loc``s, so
  one exception handler for 400 translates them. It runs only on the error path (untimed).
"""

import os
import re
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import msgspec
from blacksheep import Application, Request, Response, json, text, unauthorized
from blacksheep.exceptions import BadRequest
from blacksheep.middlewares import MiddlewareCategory
from blacksheep.server.bindings import FromJSON, FromQuery, FromRoute, MissingParameterError
from blacksheep.server.routing import Router
from blacksheep.settings.json import json_settings
from pydantic import BaseModel, Field, ValidationError
from rodi import ActivationScope

from ..spec import SESSION_SECRET
from ._fakes import POOL, SETTINGS, Connection, Settings

LABEL = "BlackSheep"
PACKAGES = ("blacksheep", "rodi", "pydantic", "pydantic-core", "msgspec")


# --- JSON: msgspec through BlackSheep's documented serializer hook ------------------------------


def _encode_model(obj: Any) -> Any:
    if isinstance(obj, BaseModel):  # as BlackSheep's default encoder does for pydantic models
        return obj.model_dump()
    raise NotImplementedError(f"cannot encode {type(obj)!r}")


_encoder = msgspec.json.Encoder(enc_hook=_encode_model)


def _dumps(obj: Any) -> str:
    return _encoder.encode(obj).decode()


json_settings.use(loads=msgspec.json.decode, dumps=_dumps)


# --- models --------------------------------------------------------------------------------------


class Owner(BaseModel):
    id: int
    email: str


class Item(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=50)]
    price: Annotated[float, Field(gt=0)]
    tags: list[str] = []
    owner: Owner | None = None


# --- 400 -> 422: the spec's FastAPI-shaped validation errors, on the error path only -------------


class InvalidParameter(BadRequest):
    """A parameter the handler rejected (BlackSheep has no constraints on query parameters)."""

    def __init__(self, loc: tuple[str, str], kind: str, msg: str) -> None:
        super().__init__(msg)
        self.error = {"type": kind, "loc": list(loc), "msg": msg}


_PARAMETER = re.compile(r"parameter `(\w+)`")


def _errors(request: Request, exc: BadRequest) -> list[dict[str, Any]]:
    """The ``detail`` list FastAPI would give for what BlackSheep rejected with a 400."""
    if isinstance(exc, InvalidParameter):
        return [exc.error]
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, ValidationError):  # a FromJSON body: pydantic's errors, under "body"
        return [
            {"type": e["type"], "loc": ["body", *e["loc"]], "msg": e["msg"]}
            for e in cause.errors(include_url=False)
        ]
    match = _PARAMETER.search(str(exc))  # a binder's message names the parameter
    if match is None:  # the body is not JSON (msgspec's DecodeError, a ValueError, as the cause)
        return [{"type": "json_invalid", "loc": ["body"], "msg": str(cause or exc)}]
    name = match[1]
    if isinstance(exc, MissingParameterError):
        return [{"type": "missing", "loc": ["query", name], "msg": "Field required"}]
    source = "path" if name in (request.route_values or {}) else "query"
    return [{"type": "int_parsing", "loc": [source, name], "msg": "Input should be a valid integer"}]


async def validation_error(app: Application, request: Request, exc: BadRequest) -> Response:
    return json({"detail": _errors(request, exc)}, 422)


def new_app() -> Application:
    """An application with its own router and the 400 -> 422 translation."""
    application = Application(router=Router())
    application.exceptions_handlers[400] = validation_error
    return application


# --- the plain app -------------------------------------------------------------------------------

app = new_app()
get, post = app.router.get, app.router.post


@get("/plaintext")
async def plaintext(request: Request) -> Response:
    return text("Hello, World!")


@get("/json")
async def json_hello(request: Request) -> Response:
    return json({"message": "Hello, World!"})


@get("/items/{item_id}")
async def read_item(
    item_id: FromRoute[int],
    q: FromQuery[str] | None = None,
    limit: FromQuery[int] = FromQuery(10),  # BlackSheep's way to give a bound value a default
) -> Response:
    query = q.value if q is not None else None
    if query is not None and len(query) > 50:
        raise InvalidParameter(("query", "q"), "string_too_long", "String should have at most 50 characters")
    if not 1 <= limit.value <= 100:
        raise InvalidParameter(("query", "limit"), "value_error", "Input should be between 1 and 100")
    return json({"item_id": item_id.value, "q": query, "limit": limit.value})


@post("/items")
async def create_item(item: FromJSON[Item]) -> Response:
    return json(item.value, 201)


# --- deps: settings and a per-request connection from rodi, then the user ----------------------

app.services.add_instance(SETTINGS)


def open_connection(scope: ActivationScope) -> Connection:
    """A scoped service (one per request), made from the ``Settings`` singleton."""
    return POOL.connect(scope.get(Settings).database_url)


app.services.add_scoped_by_factory(open_connection, Connection)


async def get_user(db: Connection, token: str | None) -> dict[str, Any] | None:
    return db.fetch_user(token) if token else None


def not_authenticated() -> Response:
    response = unauthorized({"detail": "Not authenticated"})  # JSON content, through json_settings
    response.add_header(b"WWW-Authenticate", b"Bearer")
    return response


@get("/deps")
async def read_deps(db: Connection, token: FromQuery[str] | None = None) -> Response:
    # rodi has no teardown for scoped services: what the request opened, the handler closes.
    try:
        user = await get_user(db, token.value if token is not None else None)
        if user is None:
            return not_authenticated()
        return json({"user": user, "db_open": db.is_open})
    finally:
        db.close()


# --- untimed routes: registered last, so they add nothing to the timed requests' routing ------


@get("/deps/pool")
async def pool_stats(request: Request) -> Response:
    return json(POOL.stats())


@get("/greet")
async def greet(name: FromQuery[str]) -> Response:
    return json({"message": f"Hello, {name.value}!"})


# --- session: a counter in BlackSheep's signed-cookie session ----------------------------------

session_app = new_app()
session_app.use_sessions(SESSION_SECRET)  # itsdangerous URLSafeTimedSerializer, JSON payload


@session_app.router.get("/session")
async def count_visits(request: Request) -> Response:
    session = request.session
    count = session.get("count", 0) + 1
    session["count"] = count
    response = json({"count": count})
    response.add_header(b"Vary", b"Cookie")  # the response depends on the cookie
    return response


# --- stack: request id and timing in one middleware, around sessions ---------------------------

# BlackSheep's own error guard is always there: the application catches what handlers and
# middleware raise, and answers with its exception handlers.
stack_app = new_app()
stack_app.use_sessions(SESSION_SECRET)
_WELL_FORMED_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")


async def request_id_and_process_time(
    request: Request, handler: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Echo a well-formed ``X-Request-ID`` or make one; stamp ``X-Process-Time``."""
    start = time.perf_counter()
    request_id = request.get_first_header(b"x-request-id")
    if request_id is None or not _WELL_FORMED_ID.fullmatch(request_id):
        request_id = os.urandom(16).hex().encode()
    response = await handler(request)
    response.add_header(b"X-Process-Time", b"%.6f" % (time.perf_counter() - start))
    response.add_header(b"X-Request-ID", request_id)
    return response


# INIT: outermost, around the sessions (BlackSheep orders middleware by category).
stack_app.middlewares.append(request_id_and_process_time, MiddlewareCategory.INIT)


@stack_app.router.get("/stack")
async def stack(request: Request) -> Response:
    return json({"message": "Hello, World!"})


# --- the store app: built on first access, so that nothing else pays for it; no shop here ------


def __getattr__(name: str) -> Any:
    """``store_app`` (its own module), imported when first asked for."""
    if name != "store_app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from .blacksheep_stores import app

    globals()[name] = app
    return app
