"""The app the adversarial tests attack, in-process and behind a real uvicorn process.

It has what an attacker aims at: an authorization check made on the path by a middleware (as a
proxy or a hand-written guard would), a catch-all under ``/public``, forms and uploads, echoes
of every parameter source, a trailing-slash redirect, ``url_for``, streams and dependencies whose
cleanups are recorded (``GET /events/{key}`` reports them), and a response that fails after it
started.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator
from typing import Annotated, Any

from starlette.types import ASGIApp, Receive, Scope, Send

from toolkit import (
    App,
    Cookie,
    Depends,
    File,
    Form,
    Header,
    HTTPException,
    Middleware,
    Request,
    StreamingResponse,
    UploadFile,
)
from toolkit.responses import JSONResponse

ADMIN_TOKEN = "letmein"
SECRET = {"secret": "the crown jewels"}
LOG_MARK = "TOOLKIT-LOG"

if os.environ.get("ADV_SERVER") == "1":  # under uvicorn only: in-process, pytest's caplog must see them
    # The toolkit's own log lines go to stderr with a mark, so a test can count them in the server log.
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter(f"{LOG_MARK} %(name)s %(levelname)s %(message)s"))
    logging.getLogger("toolkit").addHandler(_handler)
    logging.getLogger("toolkit").propagate = False

events: dict[str, list[str]] = {}


def record(key: str, event: str) -> None:
    events.setdefault(key, []).append(event)


class AdminGuard:
    """Authorization by path, from ``scope["path"]``: the same decoded path the router matches."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path == "/admin" or path.startswith("/admin/"):
                token = dict(scope["headers"]).get(b"x-admin-token")
                if token != ADMIN_TOKEN.encode():
                    await JSONResponse({"detail": "admin only"}, status_code=401)(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def require_admin(x_admin_token: Annotated[str | None, Header()] = None) -> None:
    if x_admin_token != ADMIN_TOKEN:
        raise HTTPException(401, "admin only")


app = App(middleware=[Middleware(AdminGuard)], request_id_header="X-Request-ID")


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/admin/secret")
async def admin_secret() -> dict[str, str]:
    return SECRET


@app.get("/guarded/secret", dependencies=[Depends(require_admin)])
async def guarded_secret() -> dict[str, str]:
    return SECRET


@app.get("/public/{rest:path}")
async def public(rest: str) -> dict[str, str]:
    return {"rest": rest}


@app.get("/files/{name}")
async def file(name: str) -> dict[str, str]:
    return {"name": name}


@app.get("/items")
async def items() -> list[str]:
    return ["items"]


@app.get("/echo")
async def echo(
    request: Request,
    q: str | None = None,
    n: int | None = None,
    many: list[int] = [],  # noqa: B006 - msgspec copies defaults
    x_probe: Annotated[str | None, Header()] = None,
    probe: Annotated[str | None, Cookie()] = None,
) -> dict[str, Any]:
    return {"path": request.scope["path"], "q": q, "n": n, "many": many, "header": x_probe, "cookie": probe}


@app.get("/where", name="where")
async def where(request: Request) -> dict[str, str]:
    return {"url_for": str(request.url_for("where")), "url_path_for": str(app.url_path_for("where"))}


@app.post("/form")
async def form(title: Annotated[str, Form(max_length=100)] = "") -> dict[str, str]:
    return {"title": title}


@app.post("/upload")
async def upload(file: Annotated[UploadFile, File()]) -> dict[str, int]:
    return {"size": len(await file.read())}


@app.get("/events/{key}")
async def recorded(key: str) -> list[str]:
    return events.get(key, [])


# --- dependencies whose cleanups are recorded ----------------------------------------------------


async def first(key: str) -> AsyncIterator[None]:
    record(key, "first:start")
    try:
        yield
    finally:
        record(key, "first:cleanup")


async def slow(key: str, _: Annotated[None, Depends(first)]) -> AsyncIterator[None]:
    record(key, "slow:start")
    try:
        yield
    finally:
        await asyncio.sleep(0.3)  # the client goes away while this cleanup runs
        record(key, "slow:cleanup")


async def last(key: str, _: Annotated[None, Depends(slow)]) -> AsyncIterator[None]:
    record(key, "last:start")
    try:
        yield
    finally:
        record(key, "last:cleanup")


@app.get("/stream/{key}", dependencies=[Depends(last)])
async def stream(key: str) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        try:
            n = 0
            while True:  # endless: only the client going away ends it
                yield f"chunk {n}\n".encode()
                n += 1
                await asyncio.sleep(0.01)
        finally:
            record(key, "stream:closed")

    return StreamingResponse(chunks(), media_type="text/plain")


@app.get("/cleanup/{key}", dependencies=[Depends(last)])
async def cleanup(key: str) -> dict[str, str]:
    return {"key": key}


# --- failing after the response started -----------------------------------------------------------


@app.get("/boom/stream")
async def boom_stream() -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"first chunk\n"
        await asyncio.sleep(0.05)
        raise RuntimeError("boom after start (stream)")

    return StreamingResponse(chunks(), media_type="text/plain")


async def _declared_then_boom(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]})
    await send({"type": "http.response.body", "body": b"only ten b", "more_body": True})
    raise RuntimeError("boom after start (content-length)")


app.mount("/boom/raw", _declared_then_boom)
