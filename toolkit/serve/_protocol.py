"""uvicorn's httptools protocol with the limits a public server needs and uvicorn does not have.

uvicorn's httptools protocol reads a request head of any size and waits for it, and for a request
body, as long as the client keeps trickling bytes. ``GuardedHttpToolsProtocol`` adds, per
connection:

- **a head-size limit**: at most ``Limits.header_size`` bytes of request line and headers are fed
  to the parser; a head still incomplete past that is answered 431 and the connection closed, so a
  16 MB ``Cookie`` costs the server a 32 KiB read, not seconds of the event loop;
- **a head timeout**: the request line and headers must arrive within ``Limits.header_timeout``
  seconds of the connection opening or of the head's first byte (an idle keep-alive connection is
  uvicorn's ``timeout_keep_alive``); else 408 and close (a new connection that sent nothing is
  closed without a response);
- **a body rate**: while a body is being received, every ``Limits.body_timeout`` seconds must bring
  at least ``Limits.min_body_rate`` bytes per second; else 408 (or a bare close once a response has
  started). The clock stops while the app is not reading (uvicorn's flow control paused the socket)
  and while a ``100-continue`` client waits for the app's go-ahead.

A refused connection is closed "lingering": the response is written, the write side shut, and
whatever the client still sends is read and dropped for up to ``_LINGER_SECONDS`` (at most
``_LINGER_BYTES``), so the client reads the 431/408 instead of a connection reset.

Deadlines are checked by one sweep per event loop every ``_TICK`` seconds (at most a second late),
not by a timer per request: the hot path only stores a timestamp.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import os
import weakref
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

__all__ = ["LIMITS_ENV", "GuardedHttpToolsProtocol", "Limits"]

#: The environment variable through which ``toolkit run`` hands ``Limits`` to every worker process.
LIMITS_ENV = "TOOLKIT_SERVE_LIMITS"

_TICK = 0.5
_LINGER_SECONDS = 2.0
_LINGER_BYTES = 1 << 20

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


@dataclasses.dataclass(frozen=True)
class Limits:
    """What a client may send and how slowly (see the module docstring)."""

    header_size: int = 32 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    min_body_rate: int = 256

    def __post_init__(self) -> None:
        if self.header_size < 1024:
            raise ValueError(f"header_size must be at least 1024 bytes, got {self.header_size}")
        for name in ("header_timeout", "body_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {getattr(self, name)}")
        if self.min_body_rate < 0:
            raise ValueError(f"min_body_rate must be >= 0 bytes/s, got {self.min_body_rate}")

    def to_env(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @staticmethod
    @functools.lru_cache(maxsize=4)
    def from_env(text: str | None) -> Limits:
        """The limits ``to_env`` wrote (the defaults when there are none)."""
        return Limits(**json.loads(text)) if text else Limits()


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

    ``toolkit run`` serves with it; with uvicorn directly: ``uvicorn --http
    toolkit.serve:GuardedHttpToolsProtocol module:app``."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = Limits.from_env(os.environ.get(LIMITS_ENV))
        self._sweep = _Sweep.of(self.loop)
        self._in_head = True  # the next bytes belong to a request line or headers
        self._head_bytes = 0
        self._head_started: float | None = None
        self._in_body = False
        self._window_started = 0.0
        self._window_bytes = 0
        self._linger_until: float | None = None
        self._lingered_bytes = 0

    # Connection events

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_started = self.loop.time()  # a new connection owes a head from now on
        self._sweep.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._sweep.discard(self)
        super().connection_lost(exc)

    def handle_websocket_upgrade(self) -> None:
        self._sweep.discard(self)  # the websocket protocol owns the connection from here
        super().handle_websocket_upgrade()

    def data_received(self, data: bytes) -> None:
        if self._linger_until is not None:  # refused: drop what the client still sends
            self._lingered_bytes += len(data)
            if self._lingered_bytes > _LINGER_BYTES:
                self.transport.close()
            return
        if not self._in_head:
            super().data_received(data)
            return
        if self._head_started is None:
            self._head_started = self.loop.time()
        room = self.limits.header_size - self._head_bytes
        if len(data) <= room:
            self._head_bytes += len(data)
            super().data_received(data)
            return
        # Feed no more than the limit allows; if the head ends within it, the rest is body or the
        # next request, and is fed (and counted) as such.
        self._head_bytes += room
        if room > 0:
            super().data_received(data[:room])
        if self.transport.is_closing() or self.transport.get_protocol() is not self:
            return
        if self._in_head:
            self._refuse(431, "Request header fields too large")
            return
        self.data_received(data[room:])

    # Parser callbacks

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_started = None
        super().on_headers_complete()
        self._in_body = True
        self._window_started = self.loop.time()
        self._window_bytes = 0

    def on_body(self, body: bytes) -> None:
        self._window_bytes += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_head, self._head_bytes, self._in_body = True, 0, False
        super().on_message_complete()

    # Deadlines

    def check(self, now: float) -> None:
        """Called by the sweep: refuse a head or a body that is too slow."""
        if self.transport is None or self.transport.is_closing():
            return
        if self._linger_until is not None:
            if now >= self._linger_until:
                self.transport.close()
            return
        if self.flow.read_paused:  # waiting on the app (or a pipelined response), not the client
            self._head_started = None if self._head_started is None else now
            self._window_started, self._window_bytes = now, 0
            return
        limits = self.limits
        if self._in_head:
            if self._head_started is not None and now - self._head_started >= limits.header_timeout:
                if self._head_bytes == 0 and (self.cycle is None or self.cycle.response_complete):
                    self.transport.close()  # a connection that never sent a byte: no response owed
                else:
                    self._refuse(408, "Request header timeout")
            return
        if not self._in_body:
            return
        elapsed = now - self._window_started
        if self.cycle is not None and self.cycle.waiting_for_100_continue:
            self._window_started, self._window_bytes = now, 0
        elif elapsed >= limits.body_timeout:
            if self._window_bytes < limits.min_body_rate * elapsed or self._window_bytes == 0:
                self._refuse(408, "Request body timeout")
            else:
                self._window_started, self._window_bytes = now, 0

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` (unless a response already started), then close lingering."""
        cycle = self.cycle
        busy = cycle is not None and not cycle.response_complete
        if self._in_head and busy:  # a pipelined head is too slow while the previous response runs
            cycle.keep_alive = False
            return
        if not self._in_head and cycle is not None and cycle.response_started:
            self.transport.close()  # too late for a status: a response is already on the wire
            return
        if busy:
            cycle.disconnected = True  # the app's receive() now says so
            cycle.message_event.set()
        self.logger.warning("%s: %d %s", _client(self.client), status, message)
        body = message.encode("ascii")
        head = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status])]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head.append(b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n" % len(body))
        head.append(b"connection: close\r\n\r\n")
        self.transport.write(b"".join(head) + body)
        self._in_head = self._in_body = False
        self._linger_until = self.loop.time() + _LINGER_SECONDS
        if self.transport.can_write_eof():
            self.transport.write_eof()
        else:  # pragma: no cover - TLS transports cannot half-close
            self.transport.close()


def _client(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "client"
