"""Live notifications of created items: server-sent events and a WebSocket."""

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from apps.common.events import Event
from toolkit import (
    Depends,
    EventSourceResponse,
    Query,
    Router,
    ServerSentEvent,
    WebSocket,
    WebSocketDisconnect,
)
from toolkit.responses import json_encoder

from ..deps import BroadcasterDep

router = Router(tags=["live"])


async def subscription(events: BroadcasterDep) -> AsyncIterator[MemoryObjectReceiveStream[Event]]:
    """Subscribed before the handler runs; kept open until the stream's last chunk is sent."""
    async with events.subscribe() as stream:
        yield stream


Subscription = Annotated[MemoryObjectReceiveStream[Event], Depends(subscription)]


# The toolkit would document the stream as application/json: say what it is.
STREAM_DOC = {
    200: {
        "description": "One `item.created` event per created item",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


@router.get("/items/events", responses=STREAM_DOC)
async def item_events(
    stream: Subscription, limit: Annotated[int | None, Query(ge=1, le=1000)] = None
) -> EventSourceResponse:
    """``event: item.created`` with the item as ``data``, per item created; ends after ``limit``."""

    async def events() -> AsyncIterator[ServerSentEvent]:
        sent = 0
        async for event in stream:
            yield ServerSentEvent(event=event["event"], data=event["item"])
            sent += 1
            if limit is not None and sent >= limit:
                return

    return EventSourceResponse(events())


# Registered by create_app (``/ws/items``), behind ``require_origin(*settings.allowed_origins)``:
# a browser opens a WebSocket to any site a page asks for, with no same-origin policy or CORS, so
# the handshake's Origin is what keeps another site's page from listening in.
async def item_socket(websocket: WebSocket, events: BroadcasterDep) -> None:
    """One JSON text message ``{"event": "item.created", "item": {...}}`` per created item."""
    async with events.subscribe() as stream:
        await websocket.accept()
        async with anyio.create_task_group() as group:

            async def forward() -> None:
                try:
                    async for event in stream:
                        await websocket.send_text(json_encoder.encode(event).decode())
                    await websocket.close()  # the service is shutting down
                except (WebSocketDisconnect, OSError, RuntimeError):
                    pass  # the client left while we were sending (or closing)
                group.cancel_scope.cancel()

            group.start_soon(forward)
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass  # the client has nothing to say; this loop notices when it leaves
            group.cancel_scope.cancel()
