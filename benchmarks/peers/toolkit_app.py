"""The toolkit peer: handlers written as a toolkit user would write them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from toolkit import App, Depends, HTTPException, Middleware, PlainTextResponse, Query
from toolkit.middleware.sessions import SessionMiddleware
from toolkit.middleware.timing import TimingMiddleware
from toolkit.sessions import Session

from ..spec import SESSION_SECRET
from ._fakes import POOL, SETTINGS, Connection, Settings
from ._structs import Item

LABEL = "toolkit"
PACKAGES = ("toolkit", "starlette", "msgspec")


app = App()


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


# ``async def`` on purpose, here and in the FastAPI peer: both run a plain ``def`` dependency in a
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


# --- session: a counter in the signed-cookie session (no store) --------------------------------

session_app = App(middleware=[Middleware(SessionMiddleware, secret_key=SESSION_SECRET)])


@session_app.get("/session")
async def count_visits(session: Session):
    count = session.get("count", 0) + 1
    session["count"] = count
    return {"count": count}


# --- stack: the middleware a production app runs, around a JSON endpoint -----------------------

# The error guard is always there; ``request_id_header`` makes it issue (or echo) request ids.
stack_app = App(
    request_id_header="X-Request-ID",
    middleware=[
        # X-Process-Time, as the peers send it; Server-Timing's per-stage timings (its default)
        # would cost the toolkit ~3.5 µs more per request, work no peer does.
        Middleware(TimingMiddleware, server_timing=False),
        Middleware(SessionMiddleware, secret_key=SESSION_SECRET),
    ],
)


@stack_app.get("/stack")
async def stack():
    return {"message": "Hello, World!"}


# --- the store and shop apps: built on first access, so that nothing else pays for them ---------


def __getattr__(name: str) -> Any:
    """``store_app`` (its own module), the shop apps (``peers/shop.py``) and ``notes_app``
    (``peers/notes.py``), made when first asked for."""
    if name == "store_app":
        from .toolkit_stores import app
    elif name in ("shop_app", "shop_write_app"):
        from .shop import build

        app = build("toolkit", name)
    elif name == "notes_app":
        from .notes import build as build_notes

        app = build_notes("toolkit", name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = app
    return app
