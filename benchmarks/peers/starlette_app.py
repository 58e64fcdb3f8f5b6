"""The floor: bare Starlette doing the same work by hand, the best a Starlette-based toolkit can do.

JSON is decoded, validated and encoded with msgspec, not the stdlib ``json`` module: the toolkit
uses msgspec too, so toolkit/floor compares framework overhead alone, not two JSON codecs.
Parameters are read and checked by hand with ``Request.query_params`` and ``int()``, returning
422 with a FastAPI-shaped (but minimal) error body on bad input. Dependencies are plain function
calls, made in the order the frameworks resolve them, with the cleanup in a ``finally``.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ..spec import SESSION_SECRET
from ._common import RequestIdTimingMiddleware
from ._fakes import POOL, SETTINGS, Connection, Settings
from ._structs import Item

LABEL = "Starlette"
PACKAGES = ("starlette", "msgspec")

encoder = msgspec.json.Encoder()


class JSONResponse(Response):
    """Starlette's documented way to swap the JSON encoder: override ``render``."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return encoder.encode(content)


item_decoder = msgspec.json.Decoder(Item)
_AT = re.compile(r"^(.*) - at `\$(.*)`$")


def error(kind: str, loc: list[str | int], msg: str) -> dict[str, Any]:
    return {"type": kind, "loc": loc, "msg": msg}


def invalid(errors: list[dict[str, Any]]) -> Response:
    return JSONResponse({"detail": errors}, status_code=422)


async def plaintext(request: Request) -> Response:
    return PlainTextResponse("Hello, World!")


async def json(request: Request) -> Response:
    return JSONResponse({"message": "Hello, World!"})


async def read_item(request: Request) -> Response:
    errors = []
    item_id = 0
    try:
        item_id = int(request.path_params["item_id"])
    except ValueError:
        errors.append(error("int_parsing", ["path", "item_id"], "Input should be a valid integer"))
    query = request.query_params
    q = query.get("q")
    if q is not None and len(q) > 50:
        errors.append(error("string_too_long", ["query", "q"], "String should have at most 50 characters"))
    limit = 10
    raw_limit = query.get("limit")
    if raw_limit is not None:
        try:
            limit = int(raw_limit)
        except ValueError:
            errors.append(error("int_parsing", ["query", "limit"], "Input should be a valid integer"))
        else:
            if not 1 <= limit <= 100:
                errors.append(error("value_error", ["query", "limit"], "Input should be between 1 and 100"))
    if errors:
        return invalid(errors)
    return JSONResponse({"item_id": item_id, "q": q, "limit": limit})


async def create_item(request: Request) -> Response:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("application/json"):
        return JSONResponse({"detail": "Unsupported Media Type"}, status_code=415)
    try:
        item = item_decoder.decode(await request.body())
    except msgspec.ValidationError as exc:
        match = _AT.match(str(exc))
        message, where = (match[1], match[2]) if match else (str(exc), "")
        loc: list[str | int] = ["body"]
        loc += [int(p) if p.isdigit() else p for p in re.findall(r"\w+", where)]
        if message.startswith("Object missing required field"):
            loc.append(message.split("`")[1])
        return invalid([error("value_error", loc, message)])
    except msgspec.DecodeError as exc:
        return invalid([error("json_invalid", ["body"], str(exc))])
    return JSONResponse(item, status_code=201)


# --- deps: the same three steps as the frameworks' dependencies, called by hand ---------------


async def get_settings() -> Settings:
    return SETTINGS


async def get_db(settings: Settings) -> Connection:
    return POOL.connect(settings.database_url)


async def get_user(db: Connection, token: str | None) -> dict[str, Any] | None:
    return db.fetch_user(token) if token else None


async def read_deps(request: Request) -> Response:
    settings = await get_settings()
    db = await get_db(settings)
    try:
        user = await get_user(db, request.query_params.get("token"))
        if user is None:
            return JSONResponse(
                {"detail": "Not authenticated"}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        return JSONResponse({"user": user, "db_open": db.is_open})
    finally:
        db.close()


# --- untimed routes: registered last, so they add nothing to the timed requests' routing ------


async def pool_stats(request: Request) -> Response:
    return JSONResponse(POOL.stats())


async def greet(request: Request) -> Response:
    name = request.query_params.get("name")
    if name is None:
        return invalid([error("missing", ["query", "name"], "Field required")])
    return JSONResponse({"message": f"Hello, {name}!"})


app = Starlette(
    routes=[
        Route("/plaintext", plaintext),
        Route("/json", json),
        Route("/items/{item_id}", read_item),
        Route("/items", create_item, methods=["POST"]),
        Route("/deps", read_deps),
        Route("/deps/pool", pool_stats),
        Route("/greet", greet),
    ]
)


# --- session: a counter in Starlette's signed-cookie session ------------------------------------


async def count_visits(request: Request) -> Response:
    count = request.session.get("count", 0) + 1
    request.session["count"] = count
    return JSONResponse({"count": count})


session_app = Starlette(
    routes=[Route("/session", count_visits)],
    middleware=[Middleware(SessionMiddleware, secret_key=SESSION_SECRET)],
)


# --- stack: sessions, plus request id and timing in a pure-ASGI middleware written by hand -----


async def stack(request: Request) -> Response:
    return JSONResponse({"message": "Hello, World!"})


# Starlette's ServerErrorMiddleware is always outermost: the error guard.
stack_app = Starlette(
    routes=[Route("/stack", stack)],
    middleware=[
        Middleware(RequestIdTimingMiddleware),
        Middleware(SessionMiddleware, secret_key=SESSION_SECRET),
    ],
)


# --- the store app: built on first access, so that nothing else pays for it; no shop here ------


def __getattr__(name: str) -> Any:
    """``store_app`` (its own module), imported when first asked for."""
    if name != "store_app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from .starlette_stores import app

    globals()[name] = app
    return app
