"""The app ``test_serve.py`` serves with ``toolkit run`` / ``toolkit dev`` in a real process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from toolkit import App, Request, Response, StreamingResponse, WebSocket


@contextlib.asynccontextmanager
async def lifespan(app: App) -> AsyncIterator[None]:
    print("lifespan startup", flush=True)
    yield
    print("lifespan shutdown", flush=True)


app = App(lifespan=lifespan)


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/echo")
async def echo(request: Request) -> dict[str, int]:
    return {"size": len(await request.body())}


@app.post("/late-read")
async def late_read(request: Request, seconds: float) -> dict[str, int]:
    """Reads the body only after ``seconds``: the client is not the slow one."""
    await asyncio.sleep(seconds)
    return {"size": len(await request.body())}


@app.get("/slow")
async def slow(seconds: float) -> dict[str, float]:
    print(f"slow request started for {seconds}", flush=True)
    await asyncio.sleep(seconds)
    print(f"slow request finished after {seconds}", flush=True)
    return {"slept": seconds}


@app.get("/big")
async def big(megabytes: int) -> StreamingResponse:
    """A streamed response of ``megabytes`` MiB; says in the log when its task is done."""

    async def chunks() -> AsyncIterator[bytes]:
        chunk = b"b" * 65536
        try:
            for _ in range(megabytes * 16):
                yield chunk
        finally:
            print("big response ended", flush=True)

    return StreamingResponse(chunks(), media_type="application/octet-stream")


@app.get("/big-plain")
async def big_plain(megabytes: int) -> Response:
    """A response of ``megabytes`` MiB sent in one piece."""
    return Response(b"p" * (megabytes << 20), media_type="application/octet-stream")


@app.get("/client")
async def client(request: Request) -> dict[str, str]:
    host = request.client.host if request.client else ""
    return {"host": host, "scheme": request.url.scheme}


@app.get("/boom")
async def boom() -> None:
    raise RuntimeError("boom: the handler failed")


async def echo_socket(websocket: WebSocket) -> None:
    await websocket.accept()
    text = await websocket.receive_text()
    await websocket.send_text(f"echo: {text}")
    await websocket.close()


app.add_websocket_route("/ws", echo_socket)
