"""Response classes: Starlette's, plus msgspec-encoded JSON and server-sent events."""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, Iterable, Mapping
from typing import Any

import msgspec
from starlette.background import BackgroundTask
from starlette.concurrency import iterate_in_threadpool
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)

__all__ = [
    "EventSourceResponse",
    "FileResponse",
    "HTMLResponse",
    "JSONResponse",
    "PlainTextResponse",
    "RedirectResponse",
    "Response",
    "ServerSentEvent",
    "StreamingResponse",
]

# One encoder for the process: msgspec encoders are thread-safe and reusable.
json_encoder = msgspec.json.Encoder()

JSON_CONTENT_TYPE = (b"content-type", b"application/json")
# The only line breaks of text/event-stream (str.splitlines also splits on U+2028, U+0085...).
_SSE_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class JSONResponse(Response):
    """JSON encoded with msgspec: Structs, dataclasses, dicts, lists, UUIDs, datetimes, enums..."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json_encoder.encode(content)


def raw_response(
    cls: type[Response],
    body: bytes,
    status_code: int,
    content_type: tuple[bytes, bytes],
    extra_headers: list[tuple[bytes, bytes]] | None,
    background: BackgroundTask | None,
) -> Response:
    """A ``cls`` instance around already-encoded bytes, skipping ``__init__``'s header logic."""
    # PERF: this runs for every JSON/text response; header building is one list literal.
    response = cls.__new__(cls)
    response.status_code = status_code
    response.background = background
    if status_code < 200 or status_code in (204, 304):
        response.body = b""
        response.raw_headers = []
    else:
        response.body = body
        response.raw_headers = [(b"content-length", b"%d" % len(body)), content_type]
    if extra_headers:
        response.raw_headers.extend(extra_headers)
    return response


def json_response(
    body: bytes,
    status_code: int,
    extra_headers: list[tuple[bytes, bytes]] | None,
    background: BackgroundTask | None,
) -> Response:
    """A ``JSONResponse`` around already-encoded JSON."""
    return raw_response(JSONResponse, body, status_code, JSON_CONTENT_TYPE, extra_headers, background)


class ServerSentEvent(msgspec.Struct, omit_defaults=True):
    """One event of a ``text/event-stream``, as FastAPI's (``fastapi.sse``) writes it.

    ``data`` is always JSON-encoded (a str arrives quoted: ``data: "hello"``, so a client's
    ``JSON.parse(event.data)`` works for every event); ``raw_data`` is sent as it is (HTML, CSV
    lines...). ``event`` and ``id`` are single lines, ``retry`` is milliseconds, ``comment`` lines
    are ignored by ``EventSource`` clients (keep-alives).
    """

    data: Any = None
    raw_data: str | None = None
    event: str | None = None
    id: str | None = None
    retry: int | None = None
    comment: str | None = None

    def __post_init__(self) -> None:
        # Refuse a bad event when it is built, not mid-stream after the response started.
        if self.data is not None and self.raw_data is not None:
            raise ValueError("SSE: pass data= (sent as JSON) or raw_data= (sent as is), not both")
        for field, value in (("event", self.event), ("id", self.id)):
            if value is not None and ("\n" in value or "\r" in value):
                raise ValueError(f"SSE {field} must not contain line breaks")
        if self.id is not None and "\0" in self.id:
            raise ValueError("SSE id must not contain null characters")
        if self.retry is not None and (isinstance(self.retry, bool) or self.retry < 0):
            raise ValueError("SSE retry must be a non-negative number of milliseconds")

    def encode(self) -> bytes:
        lines: list[str] = []
        if self.comment is not None:
            lines.extend(f": {line}" for line in _SSE_LINE_BREAK.split(self.comment))
        if self.event is not None:
            lines.append(f"event: {self.event}")
        data = self.raw_data if self.raw_data is not None else None
        if data is None and self.data is not None:
            data = json_encoder.encode(self.data).decode()
        if data is not None:
            lines.extend(f"data: {line}" for line in _SSE_LINE_BREAK.split(data))
        if self.id is not None:
            lines.append(f"id: {self.id}")
        if self.retry is not None:
            lines.append(f"retry: {int(self.retry)}")
        return ("\n".join(lines) + "\n\n").encode()


class EventSourceResponse(StreamingResponse):
    """Server-sent events from an (async) iterable of ``ServerSentEvent``, str or JSON-able items.

    Sets the headers proxies need to stream (``Cache-Control: no-cache``, ``X-Accel-Buffering: no``).
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        content: AsyncIterable[Any] | Iterable[Any],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        merged = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})}
        super().__init__(
            self._encode(content),
            status_code=status_code,
            headers=merged,
            media_type="text/event-stream",
            background=background,
        )

    @staticmethod
    async def _encode(content: AsyncIterable[Any] | Iterable[Any]) -> AsyncIterable[bytes]:
        if isinstance(content, AsyncIterable):
            async for item in content:
                yield _event_bytes(item)
        else:
            async for item in iterate_in_threadpool(content):
                yield _event_bytes(item)


def _event_bytes(item: Any) -> bytes:
    event = item if isinstance(item, ServerSentEvent) else ServerSentEvent(data=item)
    return event.encode()
