"""The FastAPI peer: pydantic v2 models and FastAPI's defaults, as its docs teach them."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field
from starlette.middleware.sessions import SessionMiddleware

from ..spec import SESSION_SECRET
from ._fakes import POOL, SETTINGS, Connection, Settings

LABEL = "FastAPI (as deployed)"
PACKAGES = ("fastapi", "starlette", "pydantic", "pydantic-core")


class Owner(BaseModel):
    id: int
    email: str


class Item(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=50)]
    price: Annotated[float, Field(gt=0)]
    tags: list[str] = []
    owner: Owner | None = None


class Entry(BaseModel):
    """One item of the ``cached`` scenario's catalog (both FastAPI peers' store apps)."""

    id: int
    name: str
    price: float
    tags: list[str]


class Catalog(BaseModel):
    items: list[Entry]


# No OpenAPI routes: they are never requested, but keep the route tables the same size.
app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/plaintext", response_class=PlainTextResponse)
async def plaintext():
    return "Hello, World!"


@app.get("/json")
async def json():
    return {"message": "Hello, World!"}


@app.get("/items/{item_id}")
async def read_item(
    item_id: int,
    q: Annotated[str | None, Query(max_length=50)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
):
    return {"item_id": item_id, "q": q, "limit": limit}


@app.post("/items", status_code=201)
async def create_item(item: Item) -> Item:
    return item


# --- deps: a chain of three dependencies, the middle one a generator with cleanup -------------


# ``async def`` on purpose, here and in the toolkit peer: both run a plain ``def`` dependency in a
# worker thread by default, and a thread hop (tens of µs, mostly the loop and the pool) would
# swamp the dependency resolution this scenario times. Nothing here blocks, so async is right.
async def get_settings() -> Settings:
    return SETTINGS


async def get_db(settings: Annotated[Settings, Depends(get_settings)]) -> AsyncIterator[Connection]:
    db = POOL.connect(settings.database_url)
    try:
        yield db
    finally:
        db.close()


async def get_user(db: Annotated[Connection, Depends(get_db)], token: str | None = None) -> dict[str, Any]:
    user = db.fetch_user(token) if token else None
    if user is None:
        raise HTTPException(401, "Not authenticated", headers={"WWW-Authenticate": "Bearer"})
    return user


@app.get("/deps")
async def read_deps(
    user: Annotated[dict[str, Any], Depends(get_user)],
    db: Annotated[Connection, Depends(get_db)],  # cached: the same connection get_user used
):
    return {"user": user, "db_open": db.is_open}


# --- untimed routes: registered last, so they add nothing to the timed requests' routing ------


@app.get("/deps/pool")
async def pool_stats():
    return POOL.stats()


@app.get("/greet")
async def greet(name: str):
    return {"message": f"Hello, {name}!"}


# --- session: a counter in Starlette's signed-cookie session, as FastAPI's docs use it ---------

session_app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
session_app.add_middleware(SessionMiddleware, secret_key=SESSION_SECRET)


@session_app.get("/session")
async def count_visits(request: Request):
    count = request.session.get("count", 0) + 1
    request.session["count"] = count
    return {"count": count}


# --- stack: sessions, plus request id and timing in one function middleware (FastAPI's docs) ---

stack_app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
stack_app.add_middleware(SessionMiddleware, secret_key=SESSION_SECRET)
_WELL_FORMED_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


@stack_app.middleware("http")  # added last: outermost, around the sessions
async def request_id_and_process_time(request: Request, call_next):
    start = time.perf_counter()
    request_id = request.headers.get("x-request-id")
    if request_id is None or not _WELL_FORMED_ID.fullmatch(request_id):
        request_id = uuid.uuid4().hex
    response = await call_next(request)
    response.headers["X-Process-Time"] = f"{time.perf_counter() - start:.6f}"
    response.headers["X-Request-ID"] = request_id
    return response


@stack_app.get("/stack")
async def stack():
    return {"message": "Hello, World!"}


# --- the store and shop apps: built on first access, so that nothing else pays for them ---------


def __getattr__(name: str) -> Any:
    """``store_app`` (its own module) and the shop apps (``peers/shop.py``), made when first asked for."""
    if name == "store_app":
        from .fastapi_stores import app
    elif name in ("shop_app", "shop_write_app"):
        from .shop import build

        app = build("fastapi", name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = app
    return app
