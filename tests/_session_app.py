"""The app behind the session tests: in-process (``session_app``) and, for scale-out, in real uvicorn
processes sharing one Redis (``uvicorn --factory _session_app:create_app``, configured by
``REDIS_URL``, ``SESSION_PREFIX`` and ``SESSION_SECRET``)."""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import AsyncIterator
from typing import Any

from toolkit import App, HTTPException, Middleware, Request
from toolkit.middleware.sessions import SessionMiddleware
from toolkit.sessions import RedisStore, Session, Store

SECRET = "test-secret"


def session_app(store: Store | None, secret_key: Any = SECRET, **options: Any) -> App:
    """Every session operation the tests need, behind ``SessionMiddleware(store=store, ...)``."""

    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        yield
        close = getattr(store, "close", None)
        if close is not None:  # a Redis client belongs to this event loop: close it here
            await close()

    middleware = [Middleware(SessionMiddleware, secret_key=secret_key, store=store, **options)]
    app = App(lifespan=lifespan, middleware=middleware)

    @app.get("/get")
    async def read(session: Session) -> dict[str, Any]:
        return dict(session)

    @app.post("/set")
    async def write(session: Session, data: dict[str, Any]) -> dict[str, Any]:
        session.update(data)
        return dict(session)

    @app.post("/login")
    async def login(session: Session, user: str) -> dict[str, Any]:
        session.regenerate()
        session["user"] = user
        return dict(session)

    @app.post("/logout")
    async def logout(session: Session) -> dict[str, Any]:
        session.clear()
        return {}

    @app.get("/untouched")
    async def untouched() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/fail")
    async def fail(session: Session) -> None:
        session["x"] = "half-made"
        raise RuntimeError("boom after changing the session")

    @app.post("/fail-http")
    async def fail_http(session: Session) -> None:
        session["x"] = "half-made"
        raise HTTPException(503, "upstream down")

    @app.post("/store-object")
    async def store_object(session: Session) -> dict[str, Any]:
        session["when"] = datetime.datetime(2024, 5, 6, 7, 8, 9)
        session["pair"] = (1, "two")
        return {}

    @app.post("/store-unencodable")
    async def store_unencodable(session: Session) -> dict[str, Any]:
        session["obj"] = object()
        return {}

    @app.post("/big")
    async def big(session: Session, size: int) -> dict[str, Any]:
        session["blob"] = "x" * size
        return {}

    @app.post("/dict")
    async def as_dict(request: Request) -> dict[str, Any]:
        s = request.session
        before = dict(s)
        s["a"] = 1
        s.update({"b": 2}, c=3)
        s.setdefault("d", [4])
        popped = s.pop("c")
        del s["b"]
        return {
            "before": before,
            "is_dict": isinstance(s, dict),
            "len": len(s),
            "keys": sorted(s),
            "contains": "a" in s and "b" not in s,
            "get": [s.get("a"), s.get("missing", "default")],
            "items": sorted(s.items()),
            "popped": popped,
            "equal": s == {"a": 1, "d": [4]},
        }

    @app.get("/lazy")
    async def lazy(request: Request) -> dict[str, Any]:
        await request.session.load()
        return {"user": request.session.get("user")}

    return app


def create_app() -> App:
    store = RedisStore(url=os.environ["REDIS_URL"], prefix=os.environ["SESSION_PREFIX"])
    app = session_app(store, secret_key=os.environ["SESSION_SECRET"])

    @app.get("/health")
    async def health() -> dict[str, int]:
        return {"pid": os.getpid()}

    @app.get("/pid")
    async def pid(session: Session) -> dict[str, Any]:
        return {"pid": os.getpid(), "user": session.get("user")}

    return app
