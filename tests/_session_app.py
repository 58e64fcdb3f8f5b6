"""The app behind the session tests: in-process (``session_app``) and, for scale-out, in real uvicorn
processes sharing one Redis (``uvicorn --factory _session_app:create_app``, configured by
``REDIS_URL``, ``SESSION_PREFIX`` and ``SESSION_SECRET``); and the helpers that talk to it."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx

from toolkit import App, HTTPException, Middleware, Request
from toolkit.middleware.sessions import SessionMiddleware
from toolkit.sessions import RedisStore, Session, Store

if TYPE_CHECKING:
    from toolkit.testing import TestClient

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
    async def logout(session: Session, flash: str | None = None) -> dict[str, Any]:
        session.clear()
        if flash is not None:  # written after the logout: a new session
            session["flash"] = flash
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


# --- the client's side: one exact cookie per request, Set-Cookie headers parsed ---------------


@dataclasses.dataclass
class SetCookie:
    name: str
    value: str
    attrs: dict[str, str]

    @property
    def expired(self) -> bool:
        return self.attrs.get("max-age") == "0"


def set_cookies(response: httpx.Response) -> list[SetCookie]:
    cookies = []
    for header in response.headers.get_list("set-cookie"):
        first, *rest = header.split("; ")
        name, _, value = first.partition("=")
        attrs = {}
        for part in rest:
            key, _, attr = part.partition("=")
            attrs[key.lower()] = attr
        cookies.append(SetCookie(name, value, attrs))
    return cookies


def issued(response: httpx.Response, name: str = "session") -> str:
    """The value of the one live session cookie the response sets."""
    [cookie] = [c for c in set_cookies(response) if c.name == name]
    assert not cookie.expired, cookie
    return cookie.value


def call(
    client: TestClient, method: str, path: str, cookie: str | None = None, name: str = "session", **kw: Any
) -> httpx.Response:
    """One request carrying exactly ``cookie`` (the client's own jar is never used)."""
    client.cookies.clear()
    headers = {"cookie": f"{name}={cookie}"} if cookie is not None else {}
    return client.request(method, path, headers=headers, **kw)


def session_id(cookie: str) -> str:
    return cookie.rsplit(".", 2)[0]  # itsdangerous: value.timestamp.signature
