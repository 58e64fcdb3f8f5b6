"""uvicorn's httptools protocol with the limits a public server needs and uvicorn does not have.

uvicorn's httptools protocol reads a request head of any size and waits for it, and for a request
body, as long as the client keeps trickling bytes. ``GuardedHttpToolsProtocol`` adds, per
connection:

- **a head-size limit**: at most ``Limits.header_size`` bytes of request line and headers are fed
  to the parser; a head still incomplete past that is answered 431 and the connection closed, so a
  16 MB ``Cookie`` costs the server a 32 KiB read, not seconds of the event loop. (A head that
  starts in the same read as the previous request's end is counted from the next read, and reads
  are fed at most ``header_size`` bytes at a time, so its bound is twice the limit: the parser
  does not say where in a read a message ended.) A chunk's size line and the trailers after a
  chunked body count against the same limit (431 past it: httptools would grow a trailer field
  without end), and trailers are refused with 400: uvicorn would add them to the request's headers;
- **a head timeout**: the request line and headers must arrive within ``Limits.header_timeout``
  seconds of the connection opening or of the head's first byte (an idle keep-alive connection is
  uvicorn's ``timeout_keep_alive``); else 408 and close (a new connection that sent nothing is
  closed without a response);
- **a body rate**: while a body is being received, every ``Limits.body_timeout`` seconds must bring
  at least ``Limits.min_body_rate`` bytes of body per second (chunk framing does not count); else
  408 (or a bare close once a response has started). The clock stops while the app is not reading
  (uvicorn's flow control paused the socket) and while a ``100-continue`` client waits for the
  app's go-ahead;
- **a send timeout**: a client that reads nothing of a response for ``Limits.send_timeout``
  seconds while the server's write buffer is full (uvicorn then holds the app's ``send``, with no
  deadline) has its connection aborted, so slow readers cannot pin requests and their buffers
  (a closing connection too: its transport would wait for the buffer forever);
- **bounded pipelining**: at most ``_MAX_PIPELINE`` requests wait behind the one running; past
  that, the queued ones are answered and the connection closed (uvicorn queued every request of
  every read: gigabytes from one connection);
- **no desync after an unsupported ``Upgrade``**: uvicorn drops the rest of that read and parses
  the next one afresh; here the request is answered and the connection closed. A websocket
  upgrade pipelined behind a pending response is treated the same (switching protocols then would
  hand that response's flow control to the websocket);
- **concurrency counted in requests**: ``limit_concurrency`` counts requests in progress (websocket
  sessions included), not open connections, so idle sockets (closed by the head and keep-alive
  timeouts) cannot make a worker answer everyone 503; a websocket handshake over it gets 503 too.

A refused connection is closed "lingering": the response is written, the write side shut, and
whatever the client still sends is read and dropped for up to ``_LINGER_SECONDS`` (at most
``_LINGER_BYTES``), so the client reads the 431/408 instead of a connection reset.

Deadlines are checked by one sweep per event loop every ``_TICK`` seconds (at most a second late),
not by a timer per request: the hot path only stores a timestamp.
"""

from __future__ import annotations

import asyncio
import os
import sys
import weakref
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from ._limits import LIMITS_ENV, Limits

__all__ = ["GuardedHttpToolsProtocol"]

# A bad $TOOLKIT_SERVE_LIMITS fails here, when the server loads this class, not on each connection.
Limits.from_env(os.environ.get(LIMITS_ENV))

_TICK = 0.5
_LINGER_SECONDS = 2.0
_LINGER_BYTES = 1 << 20
_OPEN = 1 << 62  # "no head limit": the count while a body (or an upgraded stream) is read
_MAX_PIPELINE = 32

_REASONS = {
    400: b"Bad Request",
    408: b"Request Timeout",
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
}


class _Stop(Exception):
    """Raised in a parser callback to stop parsing this connection, with the status to answer
    (0: none). httptools raises ``HttpParserCallbackError`` with it as ``__context__``, and uvicorn
    calls ``send_400_response`` while handling that."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, message)
        self.status, self.message = status, message


class _NoTrailers:
    """What ``self.headers`` becomes once a head is complete: uvicorn's ``on_header`` appends a
    request's trailers to it, which would add them to the request's headers."""

    __slots__ = ()

    def append(self, field: tuple[bytes, bytes]) -> None:
        raise _Stop(400, "Request trailers are not accepted")


_NO_TRAILERS = _NoTrailers()


class _Sweep:
    """One periodic check of every guarded connection of an event loop, running while any exists."""

    _by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Sweep] = weakref.WeakKeyDictionary()

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.connections: set[GuardedHttpToolsProtocol] = set()
        self.handle: asyncio.TimerHandle | None = None

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> _Sweep:
        sweep = cls._by_loop.get(loop)
        if sweep is None:
            sweep = cls._by_loop[loop] = cls(loop)
        return sweep

    def add(self, connection: GuardedHttpToolsProtocol) -> None:
        self.connections.add(connection)
        if self.handle is None:
            self.handle = self.loop.call_later(_TICK, self.tick)

    def discard(self, connection: GuardedHttpToolsProtocol) -> None:
        self.connections.discard(connection)

    def tick(self) -> None:
        self.handle = None
        now = self.loop.time()
        for connection in list(self.connections):
            connection.check(now)
        if self.connections:
            self.handle = self.loop.call_later(_TICK, self.tick)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` with the ``Limits`` in ``$TOOLKIT_SERVE_LIMITS`` (the defaults without it).

    ``toolkit run`` serves with it; with uvicorn directly: ``uvicorn.run(app,
    http=GuardedHttpToolsProtocol)``, or ``uvicorn --http toolkit.serve:GuardedHttpToolsProtocol
    module:app`` (uvicorn 0.36 and newer)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = Limits.from_env(os.environ.get(LIMITS_ENV))
        self._head_limit = self.limits.header_size
        # uvicorn counts open connections against limit_concurrency; this protocol counts requests
        # in progress (``on_headers_complete``), so uvicorn's own check is switched off.
        self._task_limit, self.limit_concurrency = self.limit_concurrency, None
        self._sweep = _Sweep.of(self.loop)
        # PERF: the per-request path only counts and flips these; the sweep reads the clock.
        self._left = self._head_limit  # head bytes still allowed (_OPEN past the head, -1 once done)
        self._body = False  # between the end of the head and the end of the message
        self._clock = 0.0  # when the current head or body window started (0: not running)
        self._received = 0  # body bytes received on this connection
        self._mark = 0  # ``_received`` when the body window started
        self._stopped = False  # parsing has stopped: what the client still sends is dropped
        self._linger_until = 0.0
        self._lingered = 0
        self._blocked_since = 0.0  # when the transport's write buffer filled up (0: it is not full)

    # Connection events

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._clock = self.loop.time()  # a new connection owes a head from now on
        self._sweep.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._sweep.discard(self)
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        self._blocked_since = self.loop.time()
        super().pause_writing()

    def resume_writing(self) -> None:
        self._blocked_since = 0.0
        super().resume_writing()

    def handle_websocket_upgrade(self) -> None:
        if (self.cycle is not None and not self.cycle.response_complete) or self.pipeline:
            # A response is still owed on this connection: switching protocols now would hand its
            # flow control (and the send timeout) to the websocket. Answer it, then close.
            self.logger.warning("%s: websocket upgrade behind a pending response", _client(self.client))
            self._stop_parsing()
            if self.cycle is not None:
                self.cycle.keep_alive = False
            return
        if self._task_limit is not None and len(self.tasks) >= self._task_limit:
            self.logger.warning("%s: 503 websocket over the concurrency limit", _client(self.client))
            self._answer(503, "Service unavailable")
            return
        self._sweep.discard(self)  # the websocket protocol owns the connection from here
        super().handle_websocket_upgrade()

    def _unsupported_upgrade_warning(self) -> None:
        super()._unsupported_upgrade_warning()
        # The parser stopped at the upgrade and uvicorn drops the rest of the read: parsing the
        # next read afresh could take a body for a request. Answer this one, then close.
        self._stop_parsing()
        if self.cycle is not None:
            self.cycle.keep_alive = False

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a parser error; after ``_Stop``, the answer ``_Stop`` chose."""
        error = sys.exc_info()[1]
        stop = error.__context__ if error is not None else None
        if not isinstance(stop, _Stop):
            super().send_400_response(msg)
            return
        self._stop_parsing()
        if stop.status:
            self._refuse(stop.status, stop.message)

    def data_received(self, data: bytes) -> None:
        size = len(data)
        if size <= self._left and size <= self._head_limit:  # the usual read
            self._left -= size
            _feed(self, data)  # PERF: the base method itself, without super()'s lookup
            return
        if self._stopped or self._linger_until:  # done: drop what the client still sends
            self._lingered += size
            if self._linger_until and self._lingered > _LINGER_BYTES:
                self.transport.close()
            return
        # Feed at most what the head limit allows, or a body ``header_size`` bytes at a time: where
        # a message ends within a read is not known, and the next head is counted from there on.
        # (Slices of a memoryview: no copy, so a small limit costs calls, not copying.)
        view = data if isinstance(data, memoryview) else memoryview(data)
        step, start = self._head_limit, 0
        while start < size:
            head = not self._body
            room = self._left if head else step
            piece = view[start : start + room]
            start += len(piece)
            self._left -= len(piece)
            if piece:
                _feed(self, piece)  # type: ignore[arg-type]  # httptools reads any buffer
            if self.transport.is_closing() or self.transport.get_protocol() is not self or self._stopped:
                return
            if self._left <= 0 and (head or self._body):  # the same head, or trailers, past the limit
                what = "header fields" if head else "trailers"
                self._refuse(431, f"Request {what} too large")
                return

    # Parser callbacks

    def on_headers_complete(self) -> None:
        self._left, self._body, self._clock, self._mark = _OPEN, True, 0.0, self._received
        limit = self._task_limit
        if limit is not None and len(self.tasks) >= limit:
            self.limit_concurrency = 0  # uvicorn's own check then answers this request 503
        _headers_complete(self)
        self.limit_concurrency = None
        if not self.parser.should_upgrade():
            self.headers = _NO_TRAILERS  # type: ignore[assignment]
        if len(self.pipeline) > _MAX_PIPELINE:
            self.logger.warning("%s: more than %d pipelined requests", _client(self.client), _MAX_PIPELINE)
            self._stop_parsing()
            self.cycle.keep_alive = False  # the queued requests are answered, then it closes
            raise _Stop(0, "pipeline too deep")

    def on_chunk_header(self) -> None:
        # From a chunk's size line until its data (or, after the last, through the trailers), bytes
        # count against the head limit: httptools would otherwise grow a trailer field without end.
        self._left = self._head_limit

    def on_body(self, body: bytes) -> None:
        self._received += len(body)
        self._left = _OPEN
        _body(self, body)

    def on_message_complete(self) -> None:
        self._left, self._body, self._clock = self._head_limit, False, 0.0
        _message_complete(self)

    # Deadlines

    def check(self, now: float) -> None:
        """Called by the sweep: refuse a head or a body that is too slow."""
        if self.transport is None:
            return
        limits = self.limits
        if self._blocked_since and now - self._blocked_since >= limits.send_timeout:
            # Also when closing: a closing transport waits for its full buffer to drain, forever.
            self.logger.warning("%s: send timeout, the client reads nothing", _client(self.client))
            self.transport.abort()  # its buffer is dropped; the app's send() returns (disconnected)
            return
        if self.transport.is_closing():
            return
        if self._linger_until:
            if now >= self._linger_until:
                self.transport.close()
            return
        if self._stopped:
            return
        if not self._body:
            seen = self._left < limits.header_size
            if not self._clock:
                self._clock = now if seen else 0.0  # a keep-alive connection's next head began
            elif self.flow.read_paused:  # a pipelined response runs: the socket is not read
                self._clock = now
            elif now - self._clock >= limits.header_timeout:
                if not seen and (self.cycle is None or self.cycle.response_complete):
                    self.transport.close()  # a connection that never sent a byte: no response owed
                else:
                    self._refuse(408, "Request header timeout")
            return
        waiting = self.flow.read_paused or (self.cycle is not None and self.cycle.waiting_for_100_continue)
        if waiting:  # the app is the one not reading
            self._clock, self._mark = now, self._received
        elif not self._clock:  # the window starts; bytes since the head ended count in it
            self._clock = now
        elif now - self._clock >= limits.body_timeout:
            received, elapsed = self._received - self._mark, now - self._clock
            if received == 0 or received < limits.min_body_rate * elapsed:
                self._refuse(408, "Request body timeout")
            else:
                self._clock, self._mark = now, self._received

    def _stop_parsing(self) -> None:
        self._stopped, self._left = True, -1  # every further byte takes the dropping branch

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` (unless a response already started), then close lingering."""
        cycle = self.cycle
        busy = cycle is not None and not cycle.response_complete
        in_head = not self._body
        if in_head and busy:  # a pipelined head is refused while the previous response runs
            if cycle.keep_alive:
                self.logger.warning(
                    "%s: %d %s (closing after the response)", _client(self.client), status, message
                )
            cycle.keep_alive = False
            self.flow.pause_reading()  # nothing more is read; it closes after the response
            return
        if not in_head and cycle is not None and cycle.response_started:
            self.transport.close()  # too late for a status: a response is already on the wire
            return
        if busy:
            cycle.disconnected = True  # the app's receive() now says so
            cycle.message_event.set()
        self.logger.warning("%s: %d %s", _client(self.client), status, message)
        self._answer(status, message)

    def _answer(self, status: int, message: str) -> None:
        """Write a plain-text ``status`` response and close lingering."""
        body = message.encode("ascii")
        head = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status])]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head.append(b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n" % len(body))
        head.append(b"connection: close\r\n\r\n")
        self.transport.write(b"".join(head) + body)
        self._left, self._body = -1, False  # every further byte takes the dropping branch
        self._linger_until = self.loop.time() + _LINGER_SECONDS
        if self.transport.can_write_eof():
            self.transport.write_eof()
        else:  # pragma: no cover - TLS transports cannot half-close
            self.transport.close()


_feed = HttpToolsProtocol.data_received
_body = HttpToolsProtocol.on_body
_headers_complete = HttpToolsProtocol.on_headers_complete
_message_complete = HttpToolsProtocol.on_message_complete


def _client(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "client"
