"""FastAPI as its best users write it: the same work as the as-deployed peer, minus what they turn off.

What differs from ``fastapi_app.py`` (FastAPI as commonly deployed), each a documented choice:

- Telemetry off, with the switch FastAPI documents (``telemetry={...}``, "Choose what to record"):
  no traces, metrics or logs. FastAPI 0.16x checks for OpenTelemetry providers on every request
  by default, even with none configured.
- A return annotation on every JSON route, so FastAPI serializes with pydantic-core straight to
  JSON bytes (its fast path; FastAPI deprecates ``ORJSONResponse`` for it) instead of
  ``jsonable_encoder`` + ``json.dumps``. Plain ``dict[str, ...]`` annotations: as fast as a model
  or faster here (no model to build or validate).
- ``plaintext`` returns its ``PlainTextResponse`` (``response_class`` still documents it), as
  FastAPI's docs show for overriding the response: nothing to serialize.
- ``stack``: a pure-ASGI middleware for the request id and the process time (the Starlette peer's,
  ``os.urandom`` ids, headers appended raw to the response start), not ``@app.middleware("http")``.
- ``store_app`` (``fastapi_tuned_stores.py``): a dict-of-bytes response cache and the Starlette
  peer's sliding-window counter as a dependency, not fastapi-cache2 and slowapi.

The models and the ``deps`` dependencies are the as-deployed peer's (imported). No shop apps: the
shop is the toolkit's and its FastAPI twin's (``spec.SHOP_PEERS``). ``notes_app`` is
``apps/notes_fastapi`` (FastAPI + SQLAlchemy, written as its best users write it) with telemetry
off (``spec.NOTES_PEERS``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import PlainTextResponse
from fastapi.telemetry import TelemetryConfig
from starlette.middleware.sessions import SessionMiddleware

from ..spec import SESSION_SECRET
from ._fakes import POOL, Connection
from .fastapi_app import Item, get_db, get_user

LABEL = "FastAPI (tuned)"
PACKAGES = ("fastapi", "starlette", "pydantic", "pydantic-core")

# FastAPI's documented switches: no request spans, no request metrics, no error/validation logs.
# With all three off, FastAPI skips its telemetry wrapper (and the provider lookups) per request.
TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def new_app(**options: Any) -> FastAPI:
    """A FastAPI app without telemetry and (as the other peer) without its docs routes."""
    return FastAPI(telemetry=TELEMETRY_OFF, openapi_url=None, docs_url=None, redoc_url=None, **options)


app = new_app()


@app.get("/plaintext", response_class=PlainTextResponse)  # documents the media type
async def plaintext() -> PlainTextResponse:
    return PlainTextResponse("Hello, World!")


@app.get("/json")
async def json() -> dict[str, str]:
    return {"message": "Hello, World!"}


@app.get("/items/{item_id}")
async def read_item(
    item_id: int,
    q: Annotated[str | None, Query(max_length=50)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> dict[str, Any]:
    return {"item_id": item_id, "q": q, "limit": limit}


@app.post("/items", status_code=201)
async def create_item(item: Item) -> Item:
    return item


# --- deps: the as-deployed peer's three dependencies (settings -> generator db -> user) ---------


@app.get("/deps")
async def read_deps(
    user: Annotated[dict[str, Any], Depends(get_user)],
    db: Annotated[Connection, Depends(get_db)],  # cached: the same connection get_user used
) -> dict[str, Any]:
    return {"user": user, "db_open": db.is_open}


# --- untimed routes: registered last, so they add nothing to the timed requests' routing ------


@app.get("/deps/pool")
async def pool_stats() -> dict[str, int]:
    return POOL.stats()


@app.get("/greet")
async def greet(name: str) -> dict[str, str]:
    return {"message": f"Hello, {name}!"}


# --- session: a counter in Starlette's signed-cookie session ------------------------------------

session_app = new_app()
session_app.add_middleware(SessionMiddleware, secret_key=SESSION_SECRET)


@session_app.get("/session")
async def count_visits(request: Request) -> dict[str, int]:
    count = request.session.get("count", 0) + 1
    request.session["count"] = count
    return {"count": count}


# --- stack, store: built on first access ----------------------------------------------------------


def _stack_app() -> FastAPI:
    """Sessions, and outside them a pure-ASGI middleware for the request id and the process time.

    The middleware is the Starlette peer's (``starlette_app.RequestIdTimingMiddleware``): what a
    FastAPI user writes by hand for this, as FastAPI's docs point to Starlette's for pure-ASGI
    middleware. It is imported here, when the stack app is built, so that the other apps'
    process (the memory measurement) does not load the Starlette peer and msgspec.
    """
    from starlette.middleware import Middleware

    from ._common import RequestIdTimingMiddleware

    stack_app = new_app(
        middleware=[
            Middleware(RequestIdTimingMiddleware),  # outermost of the user middleware
            Middleware(SessionMiddleware, secret_key=SESSION_SECRET),
        ]
    )

    @stack_app.get("/stack")
    async def stack() -> dict[str, str]:
        return {"message": "Hello, World!"}

    return stack_app


def __getattr__(name: str) -> Any:
    """``stack_app``, ``store_app`` (``fastapi_tuned_stores.py``) and ``notes_app`` (``peers/notes.py``:
    ``apps/notes_fastapi``), made when first asked for."""
    if name == "stack_app":
        built = _stack_app()
    elif name == "store_app":
        from .fastapi_tuned_stores import app as built
    elif name == "notes_app":
        from .notes import build

        built = build("fastapi_tuned", name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = built
    return built
