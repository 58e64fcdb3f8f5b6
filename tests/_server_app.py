"""A small app that ``test_server.py`` serves with a real uvicorn process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from toolkit import App, EventSourceResponse, Request, ServerSentEvent, WebSocket


class Item(msgspec.Struct):
    name: str
    price: float


@contextlib.asynccontextmanager
async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
    print("lifespan startup", flush=True)
    app.state.started = True
    yield {"greeting": "hello from lifespan"}
    print("lifespan shutdown", flush=True)


app = App(lifespan=lifespan)
gates: dict[str, asyncio.Event] = {}


@app.get("/health")
async def health() -> dict[str, bool]:
    return {"ok": True}


@app.get("/json")
async def json_route() -> dict[str, Any]:
    return {"hello": "wörld", "items": [1, 2, 3]}


@app.get("/items/{item_id:int}")
async def read_item(item_id: int, limit: int = 10) -> dict[str, int]:
    return {"item_id": item_id, "limit": limit}


@app.post("/items", status_code=201)
async def create_item(item: Item) -> Item:
    return item


@app.delete("/items/{item_id:int}", status_code=204)
async def delete_item(item_id: int) -> dict[str, int]:
    return {"deleted": item_id}


@app.get("/state")
async def state(request: Request) -> dict[str, Any]:
    return {"greeting": request.state.greeting, "started": request.app.state.started}


def _gate(key: str) -> asyncio.Event:
    return gates.setdefault(key, asyncio.Event())


@app.get("/sse/{key}")
async def sse(key: str) -> EventSourceResponse:
    gate = _gate(key)

    async def events() -> AsyncIterator[ServerSentEvent]:
        yield ServerSentEvent(data="first", id="1")
        await gate.wait()  # the rest only once the client saw the first event and asked for more
        yield ServerSentEvent(data={"n": 2}, event="second", id="2")
        yield ServerSentEvent(raw_data="multi\nline")

    return EventSourceResponse(events())


@app.post("/release/{key}")
async def release(key: str) -> dict[str, bool]:
    _gate(key).set()
    return {"released": True}


@app.websocket("/ws")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    text = await websocket.receive_text()
    await websocket.send_text(f"echo: {text}")
    await websocket.close()


# Bodies read by hand are held to the limit too (1 MB on these routes, to keep the test small).
@app.post("/raw-body", max_body_size=1_000_000)
async def raw_body(request: Request) -> dict[str, int]:
    return {"size": len(await request.body())}


@app.post("/stream-body", max_body_size=1_000_000)
async def stream_body(request: Request) -> dict[str, int]:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return {"size": size}
