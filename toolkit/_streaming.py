"""Handlers that yield: their items sent as they come, as JSON Lines, events or raw chunks.

What a route's stream is is chosen once, at registration: ``stream_kind`` (what the response class
makes of the items), ``item_model`` (the type each item is checked against), and a
``StreamBuilder`` the route's ``Responder`` holds and hands each handler's generator to. A sync
generator runs in a worker thread, item by item; the generator is closed (its ``finally`` runs)
however the stream ends.
"""

from __future__ import annotations

import collections.abc
import contextlib
import functools
import operator
import types
import typing
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any

import anyio
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from starlette.background import BackgroundTasks
from starlette.responses import JSONResponse as StarletteJSONResponse
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from .responses import EventSourceResponse, JSONResponse, ServerSentEvent, json_encoder

__all__ = ["SSE_PING_INTERVAL", "StreamBuilder", "item_model", "stream_kind"]

#: Seconds an event stream from a handler that yields may stay silent before a ``: ping`` comment
#: is sent (as FastAPI does), so proxies keep it open and a gone client is noticed.
SSE_PING_INTERVAL = 15.0


# The origins of the return annotations that name the items of a handler that yields.
_STREAM_ORIGINS = frozenset(
    {
        collections.abc.AsyncIterable,
        collections.abc.AsyncIterator,
        collections.abc.AsyncGenerator,
        collections.abc.Iterable,
        collections.abc.Iterator,
        collections.abc.Generator,
    }
)


def stream_kind(response_class: type[Response]) -> str:
    """What a handler that yields sends under ``response_class``: ``"jsonl"``, ``"sse"``, ``"raw"``
    (its chunks as they are), or ``"custom"`` (the route's own ``StreamingResponse`` class)."""
    if issubclass(response_class, EventSourceResponse):
        return "sse"
    if issubclass(response_class, JSONResponse | StarletteJSONResponse):
        return "jsonl"
    if issubclass(response_class, StreamingResponse) and response_class is not StreamingResponse:
        return "custom"
    return "raw"


def item_model(model: Any) -> Any:
    """The type each item of a handler that yields is checked against: the item type of its
    return annotation, or the ``response_model=`` given (``None``: no check; ``ServerSentEvent``s
    are sent as they are)."""
    if model is None:
        return None
    if model in _STREAM_ORIGINS or typing.get_origin(model) in _STREAM_ORIGINS:
        args = typing.get_args(model)
        model = args[0] if args else Any
    if model is Any or model is ServerSentEvent:
        return None
    if typing.get_origin(model) in (typing.Union, types.UnionType):
        members = typing.get_args(model)
        kept = [member for member in members if member is not ServerSentEvent]
        if len(kept) < len(members):
            return functools.reduce(operator.or_, kept)
    return model


class StreamBuilder:
    """The responses of one route whose handler yields (made once, held by its ``Responder``).

    A handler's generator is sent as FastAPI sends it:

    - a JSON response class (the default): JSON Lines, ``application/jsonl``, each item
      checked against the item type (``AsyncIterator[Item]``, ``Iterator[Item]``,
      ``AsyncGenerator[Item, None]``, ``Generator[Item, None, None]``, ``AsyncIterable[Item]``,
      ``Iterable[Item]``), or the ``response_model=`` (FastAPI checks nothing then), and
      shaped by the ``response_model_*`` options;
    - ``EventSourceResponse``: each item checked likewise and sent as an event's ``data:``
      (JSON, a str too); a ``ServerSentEvent`` is sent as it is; a ``: ping`` comment after
      ``SSE_PING_INTERVAL`` seconds of silence;
    - a ``StreamingResponse`` subclass of the route's: built around the chunks;
    - any other class (``StreamingResponse``, ``PlainTextResponse``...): the str/bytes chunks
      as they are, under the class's media type (FastAPI fails for a non-streaming class).

    An item that does not fit ends the stream (the headers are gone: the error is raised, the
    error middleware logs it and the server cuts the connection) and nothing of it is sent. A
    sync generator runs in a worker thread. The route's status (or the one an injected
    ``Response`` set), the injected ``Response``'s headers and the background tasks hold.
    The generator is closed (its ``finally`` runs) when the stream ends, fails, or the client
    goes away; cancelled while it awaits, it is closed by that cancellation (as in Starlette).
    """

    def __init__(
        self,
        kind: str,
        response_class: type[Response],
        check: Callable[[Any], bytes] | None,
        trusted_type: Any,
    ) -> None:
        self.kind = kind  # see stream_kind
        self.response_class = response_class
        # An item as the JSON of its model, checked and shaped (the Responder's); None: unchecked.
        self.check = check
        self.trusted_type = trusted_type  # an item of this very type needs no check
        self.encode_item: Callable[[Any], bytes] | None = None  # None: a raw chunk, sent as it is
        if kind == "jsonl":
            self.encode_item = self._json_line
        elif kind == "sse":
            self.encode_item = self._event

    def build(
        self,
        result: Any,
        status: int,
        headers: list[tuple[bytes, bytes]],
        background: BackgroundTasks | None,
    ) -> Response:
        """The response sending ``result`` (the handler's generator), with the route's ``status``
        and the extra ``headers`` (the injected ``Response``'s)."""
        stream = _Stream(result, self.encode_item)
        kind = self.kind
        if kind == "custom":
            inner = self.response_class(content=stream.chunks(), status_code=status, background=background)
            inner.raw_headers.extend(headers)
            return _Closing(inner, stream)
        if kind == "jsonl":
            media_type: str | None = "application/jsonl"
        elif kind == "sse":
            media_type = "text/event-stream"
            headers = [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no"), *headers]
        else:
            media_type = self.response_class.media_type
        ping = SSE_PING_INTERVAL if kind == "sse" else None
        response = _StreamResponse(stream, status, media_type, background, ping)
        response.raw_headers.extend(headers)
        return response

    def _item_json(self, item: Any) -> bytes:
        if self.check is None or type(item) is self.trusted_type:
            return json_encoder.encode(item)
        return self.check(item)

    def _json_line(self, item: Any) -> bytes:
        return self._item_json(item) + b"\n"  # msgspec's JSON holds no line break

    def _event(self, item: Any) -> bytes:
        if isinstance(item, ServerSentEvent):
            return item.encode()
        return b"data: " + self._item_json(item) + b"\n\n"


_DONE: Any = object()


class _Stream:
    """A handler's generator as an async iterator of chunks: its items, encoded by ``encode`` (or
    as they are); a sync generator runs in a worker thread, item by item."""

    def __init__(self, items: Any, encode: Callable[[Any], bytes] | None) -> None:
        self.items = items
        self.encode = encode
        self.is_async = isinstance(items, collections.abc.AsyncIterator)
        self.finished = False
        self._chunks: AsyncGenerator[Any, None] | None = None
        self._sync: Generator[Any, None, None] | None = None

    def chunks(self) -> AsyncGenerator[Any, None]:
        if self._chunks is None:
            self._chunks = self._async_chunks() if self.is_async else self._thread_chunks()
        return self._chunks

    async def _async_chunks(self) -> AsyncGenerator[Any, None]:
        encode = self.encode
        async for item in self.items:
            yield item if encode is None else encode(item)
            # A checkpoint per item: a cancellation (the client gone) is delivered even when
            # neither the handler nor the send suspends (as FastAPI does).
            await anyio.sleep(0)
        self.finished = True

    async def _thread_chunks(self) -> AsyncGenerator[Any, None]:
        self._sync = chunks = self._encoded()
        while True:
            chunk = await anyio.to_thread.run_sync(next, chunks, _DONE)
            if chunk is _DONE:
                self.finished = True
                return
            yield chunk

    def _encoded(self) -> Generator[Any, None, None]:
        encode = self.encode
        for item in self.items:
            yield item if encode is None else encode(item)

    async def close(self) -> None:
        """Close the handler's generator (its ``finally`` runs), shielded from a cancellation in
        flight: after the stream ended, failed, or was abandoned (the client gone)."""
        if self.finished:
            return
        with anyio.CancelScope(shield=True):
            if self._chunks is not None:
                await self._chunks.aclose()
            if self.is_async:
                await self.items.aclose()
            else:
                await anyio.to_thread.run_sync(self._close_sync)

    def _close_sync(self) -> None:
        if self._sync is not None:
            self._sync.close()
        self.items.close()


class _Failed:
    """An exception of the producer, handed to the response's task to raise there."""

    __slots__ = ("exc",)

    def __init__(self, exc: Exception) -> None:
        self.exc = exc


_PING = b": ping\n\n"


class _StreamResponse(StreamingResponse):
    """The response of a handler that yields; its generator is closed once it is sent.

    With ``ping``, a producer task pulls the chunks, so that a ``: ping`` comment can be sent
    after ``ping`` seconds without one (as FastAPI does for events).
    """

    def __init__(
        self,
        stream: _Stream,
        status_code: int,
        media_type: str | None,
        background: BackgroundTasks | None,
        ping: float | None,
    ) -> None:
        super().__init__(
            stream.chunks(), status_code=status_code, media_type=media_type, background=background
        )
        self.stream = stream
        self.ping = ping

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            if self.ping is None:
                await super().__call__(scope, receive, send)
            else:
                await self._call_with_pings(scope, receive, send)
        finally:
            await self.stream.close()

    async def _call_with_pings(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.ping is not None
        outbox, inbox = anyio.create_memory_object_stream[bytes | _Failed](1)
        relay = self._relay(inbox, self.ping)
        self.body_iterator = relay
        failure: Exception | None = None
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(self._produce, outbox)
            try:
                await super().__call__(scope, receive, send)
            except Exception as exc:  # raised below, bare rather than in an ExceptionGroup
                failure = exc
            finally:
                task_group.cancel_scope.cancel()
                inbox.close()
                with anyio.CancelScope(shield=True):
                    await relay.aclose()
        if failure is not None:
            raise failure

    async def _produce(self, outbox: MemoryObjectSendStream[bytes | _Failed]) -> None:
        async with outbox:
            try:
                async for chunk in self.stream.chunks():
                    await outbox.send(chunk)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                return  # the response is over
            except Exception as exc:
                with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                    await outbox.send(_Failed(exc))

    @staticmethod
    async def _relay(
        inbox: MemoryObjectReceiveStream[bytes | _Failed], ping: float
    ) -> AsyncGenerator[bytes, None]:
        while True:
            chunk: bytes | _Failed | None = None
            with anyio.move_on_after(ping):
                try:
                    chunk = await inbox.receive()
                except anyio.EndOfStream:
                    return
            if chunk is None:
                yield _PING
            elif isinstance(chunk, _Failed):
                raise chunk.exc
            else:
                yield chunk


class _Closing(Response):
    """A response of the route's own streaming class, around a handler's stream; the handler's
    generator is closed once it is sent."""

    def __init__(self, inner: Response, stream: _Stream) -> None:
        self.inner = inner
        self.stream = stream
        self.status_code = inner.status_code
        self.background = None
        self.raw_headers = inner.raw_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.inner(scope, receive, send)
        finally:
            await self.stream.close()
