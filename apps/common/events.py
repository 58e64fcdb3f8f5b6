"""In-process publish/subscribe of event dicts on anyio memory streams.

::

    broadcaster = Broadcaster()

    async with broadcaster.subscribe() as events:  # SSE or WebSocket handler
        async for event in events:
            ...

    broadcaster.publish({"event": "item.created", "item": item})  # never blocks

Each subscriber has a bounded buffer; when it is full (a slow client), events for that
subscriber are dropped, counted in ``dropped`` and logged, and the publisher never waits. Events
reach the subscribers of this process only: several workers need a shared bus (Redis pub/sub...).
"""

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

__all__ = ["Broadcaster", "Event"]

logger = logging.getLogger("apps.events")

Event = dict[str, Any]


class Broadcaster:
    def __init__(self, buffer_size: int = 100) -> None:
        if buffer_size < 1:
            raise ValueError("buffer_size must be at least 1")
        self.buffer_size = buffer_size
        self.dropped = 0
        self._subscribers: set[MemoryObjectSendStream[Event]] = set()

    @property
    def subscribers(self) -> int:
        """How many subscriptions are open."""
        return len(self._subscribers)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[MemoryObjectReceiveStream[Event]]:
        """Receive every event published while the block is open (iteration ends at ``close()``)."""
        send, receive = anyio.create_memory_object_stream[Event](self.buffer_size)
        self._subscribers.add(send)
        try:
            with receive:
                yield receive
        finally:
            self._subscribers.discard(send)
            send.close()

    def publish(self, event: Event) -> None:
        """Hand ``event`` to every subscriber without waiting; a full buffer drops it for that one."""
        for send in list(self._subscribers):
            try:
                send.send_nowait(event)
            except anyio.WouldBlock:
                self.dropped += 1
                logger.warning("a slow subscriber missed an event (%d dropped so far)", self.dropped)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._subscribers.discard(send)

    def close(self) -> None:
        """End every subscription: their iterations stop after the events already buffered."""
        for send in list(self._subscribers):
            send.close()
        self._subscribers.clear()
