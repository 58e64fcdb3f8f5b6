"""Live notifications of created items: server-sent events and a WebSocket."""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Query, WebSocket, WebSocketDisconnect
from fastapi.sse import EventSourceResponse, ServerSentEvent

from ..dependencies import BroadcasterDep, check_origin

router = APIRouter(tags=["live"])


@router.get("/items/events", response_class=EventSourceResponse)
async def item_events(
    broadcaster: BroadcasterDep, limit: Annotated[int | None, Query(ge=1, le=1000)] = None
) -> AsyncIterable[ServerSentEvent]:
    sent = 0
    async with broadcaster.subscribe() as events:
        async for event in events:
            yield ServerSentEvent(event=event["event"], data=event["item"])
            sent += 1
            if limit is not None and sent >= limit:
                return


@router.websocket("/ws/items", dependencies=[Depends(check_origin)])  # settings.allowed_origins
async def item_socket(websocket: WebSocket, broadcaster: BroadcasterDep) -> None:
    async with broadcaster.subscribe() as events:
        await websocket.accept()
        async with anyio.create_task_group() as tg:

            async def forward() -> None:
                try:
                    async for event in events:
                        await websocket.send_json(event)
                    await websocket.close()  # the service is shutting down
                except (WebSocketDisconnect, OSError):
                    pass  # the client left while we were sending
                tg.cancel_scope.cancel()

            tg.start_soon(forward)
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass  # the client has nothing to say; this loop notices when it leaves
            tg.cancel_scope.cancel()
