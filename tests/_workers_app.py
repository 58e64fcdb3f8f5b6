"""The app behind ``tests/test_workers.py``: served by ``python -m toolkit run tests/_workers_app.py:app
--workers 2``, so both worker processes import it.

Configured by the environment of the server process (set per test run, so parallel runs never
share keys): ``WORKERS_STORE`` (``redis``, the default, or ``memory``), ``WORKERS_REDIS_URL`` and
``WORKERS_PREFIX`` (the Redis key prefix). ``PROMETHEUS_MULTIPROC_DIR``, when set, puts the metrics
in prometheus-client's multiprocess mode. Every response names the worker that answered it in
``X-Worker-Pid``; the cached route's body names the worker that computed it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from toolkit import App, Depends, Middleware
from toolkit.cache import Cache
from toolkit.metrics import Metrics
from toolkit.middleware.sessions import SessionMiddleware
from toolkit.ratelimit import RateLimiter
from toolkit.sessions import MemoryStore, RedisStore, Session

SECRET = "workers-test-secret"  # the same in every worker: a per-process secret breaks every cookie
PID = os.getpid()
PID_HEADER = (b"x-worker-pid", str(PID).encode())


class WorkerPidMiddleware:
    """``X-Worker-Pid`` on every HTTP response (a 429 and a cache hit included)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_pid(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), PID_HEADER]}
            await send(message)

        await self.app(scope, receive, send_with_pid)


def _stores() -> dict[str, Any]:
    kind = os.environ.get("WORKERS_STORE", "redis")
    names = ("session", "cache", "ratelimit", "counter")
    if kind == "memory":
        return {name: MemoryStore() for name in names}
    if kind != "redis":
        raise RuntimeError(f"WORKERS_STORE must be 'redis' or 'memory', not {kind!r}")
    url, prefix = os.environ["WORKERS_REDIS_URL"], os.environ["WORKERS_PREFIX"]
    return {name: RedisStore(url=url, prefix=f"{prefix}{name}:") for name in names}


stores = _stores()
cache = Cache(stores["cache"])
limiter = RateLimiter(stores["ratelimit"])
metrics = Metrics()


@contextlib.asynccontextmanager
async def lifespan(app: App) -> AsyncIterator[None]:
    yield
    for store in stores.values():
        close = getattr(store, "close", None)
        if close is not None:  # a Redis client belongs to this worker's event loop: close it here
            await close()


app = App(
    cache=cache,
    lifespan=lifespan,
    middleware=[
        Middleware(WorkerPidMiddleware),
        metrics.middleware(),
        Middleware(SessionMiddleware, secret_key=SECRET, store=stores["session"]),
    ],
)
app.add_api_route("/metrics", metrics.endpoint, include_in_schema=False)


@app.get("/health")
async def health() -> dict[str, int]:
    return {"pid": PID}


# --- sessions ----------------------------------------------------------------------------------


@app.post("/login")
async def login(session: Session, user: str) -> dict[str, Any]:
    session.regenerate()
    session["user"] = user
    return {"user": user, "pid": PID}


@app.get("/whoami")
async def whoami(session: Session) -> dict[str, Any]:
    return {"user": session.get("user"), "pid": PID}


@app.post("/logout")
async def logout(session: Session) -> dict[str, Any]:
    session.clear()
    return {"pid": PID}


# --- the response cache --------------------------------------------------------------------------


@app.get("/cached", cache=300)
async def cached_route() -> dict[str, int]:
    """Which worker computed this response, and the how-manieth computation (counted in the store)."""
    computation = await stores["counter"].incr("computations", 1, 3600)
    return {"computed_by": PID, "computation": computation}


@app.post("/invalidate")
async def invalidate() -> dict[str, int]:
    await cache.invalidate(cached_route)
    return {"pid": PID}


# --- rate limits (an hour's window: see test_workers.outside_window_boundary) -----------------


@app.get("/limited", dependencies=[Depends(limiter.limit("5/hour"))])
async def limited() -> dict[str, int]:
    return {"pid": PID}


@app.get("/burst", dependencies=[Depends(limiter.limit("5/hour"))])
async def burst() -> dict[str, int]:
    return {"pid": PID}


# --- metrics -----------------------------------------------------------------------------------


@app.get("/counted")
async def counted() -> dict[str, int]:
    return {"pid": PID}
