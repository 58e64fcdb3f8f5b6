"""FastAPI's ``@app.middleware("http")`` functions, as a pure ASGI middleware with streaming kept.

::

    async def add_header(request: Request, call_next: CallNext) -> Response:
        response = await call_next(request)
        response.headers["X-Frame-Options"] = "DENY"
        return response

    app.add_middleware(HTTPFunctionMiddleware, dispatch=add_header)

What holds (Starlette's own ``call_next`` middleware class is not used, nor are its pitfalls kept):

- **Streaming.** ``call_next`` returns as soon as the downstream sends ``http.response.start``;
  nothing of the body is buffered. Sending the returned response sends that start (as the dispatch
  left it), then the downstream's ``send`` calls go straight to the client's ``send``: chunk by
  chunk at the handler's pace, what the server raises (the ``OSError`` of a gone client) reaching
  the downstream as it would without this middleware.
- **Status and headers** the dispatch sets on that response (``status_code``, ``headers``,
  ``set_cookie``, ``raw_headers``) are what the client sees; repeated headers (``Set-Cookie``) stay.
- **Request body.** What the dispatch reads before ``call_next`` (``body()``, ``json()``, ``form()``,
  part of ``stream()``, ``is_disconnected()``) is replayed to the downstream, then the rest follows
  unbuffered. After ``call_next`` the body belongs to the downstream: reading it from the dispatch
  raises ``RuntimeError`` (a body already read stays cached on the dispatch's request).
  ``max_body_size`` holds what the dispatch reads to a limit (a 413 past it).
- **Disconnects.** The downstream reads the client's own ``receive``: ``http.disconnect`` reaches it.
- **Errors.** An exception the downstream raises before its response starts is raised by
  ``call_next`` (the dispatch may catch it and answer); uncaught, it leaves the middleware bare (never
  in an ``ExceptionGroup``). One raised after the start is raised when the response is sent.
- **Another response.** The dispatch may answer without ``call_next``, or answer another response
  than ``call_next``'s (which may stream ``response.body_iterator``). Once that answer is sent, the
  downstream sees a gone client: its ``send`` raises ``ResponseDiscarded`` (an ``OSError``, as a
  server's send to a gone client does, so Starlette's streaming responses stop), its ``receive``
  returns ``http.disconnect``; the middleware waits for it to return and drops the disconnect
  errors that caused. Given up before its response started (``call_next`` inside
  ``anyio.move_on_after``: a timeout), the downstream is cancelled at once instead.
- **Background tasks** of the downstream's response run (after its last body message, as always);
  so do ones the dispatch sets on a response. Reading ``body_iterator`` and answering a new
  response keeps the downstream's background tasks too.
- **Context variables.** The downstream runs in a task of the middleware's own (the response body is
  still being produced after the dispatch returned), started with a copy of the dispatch's context
  when ``call_next`` is called: what the dispatch set before is seen by the handler, its
  dependencies and its streaming body, even after the dispatch reset it. What the downstream sets
  is not seen by the dispatch (nor by middleware outside): pass values on ``request.state``.
- Websocket and lifespan scopes pass straight through; the dispatch is not called.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._body import limited_receive

__all__ = [
    "CallNext",
    "DownstreamResponse",
    "HTTPDispatch",
    "HTTPFunctionMiddleware",
    "ResponseDiscarded",
]

logger = logging.getLogger("toolkit.middleware")

#: ``call_next``: runs the downstream app, returns its response once it starts.
CallNext = Callable[[Request], Awaitable["DownstreamResponse"]]
#: The middleware function: ``async def dispatch(request, call_next) -> Response``.
HTTPDispatch = Callable[[Request, CallNext], Awaitable[Response]]


class ResponseDiscarded(OSError):
    """Raised by the downstream's ``send`` once its response will not be sent: the dispatch answered
    another one. An ``OSError``, as the ``send`` of a server whose client went away."""

    def __init__(self) -> None:
        super().__init__("the response was discarded by an http middleware function")


class HTTPFunctionMiddleware:
    """Run ``dispatch(request, call_next)`` around the app, for each HTTP request.

    ``call_next(request)`` runs the app (on ``request.scope``) and returns a ``DownstreamResponse``
    as soon as the app starts its response; the body streams when the dispatch returns that
    response. See the module's documentation for what holds.
    """

    def __init__(self, app: ASGIApp, dispatch: HTTPDispatch, *, max_body_size: int | None = None) -> None:
        self.app = app
        self.dispatch = dispatch
        self.max_body_size = max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        error: Exception | None = None
        async with anyio.create_task_group() as task_group:
            exchange = _Exchange(self.app, scope, receive, send, task_group, self.max_body_size)
            try:
                response: Response | None = await self.dispatch(exchange.request, exchange.call_next)
                if response is None:
                    raise RuntimeError(f"The http middleware {self.dispatch!r} returned None, not a response")
                exchange.stop_if_abandoned()
                await response(scope, exchange.inbox.receive, send)
            except Exception as exc:
                # Raised after the task group: bare, not in an ExceptionGroup.
                error = exc
            finally:
                exchange.detach()
        leftover = exchange.leftover_error()
        if error is not None:
            if leftover is not None:
                logger.error(
                    "error in the app under an http middleware whose own error wins: %s %r",
                    scope.get("method"),
                    scope.get("path"),
                    exc_info=leftover,
                )
            raise error
        if leftover is not None:
            raise leftover


class DownstreamResponse(Response):
    """What ``call_next`` returns: the downstream's status and headers, its body still to come.

    Change ``status_code``, ``headers`` / ``raw_headers``, cookies, ``background``: sending the
    response uses them, then the downstream sends its body straight to the client. ``body_iterator``
    reads the body as bytes instead (to answer another response with it, say); assign another
    async iterable of bytes to ``body_iterator`` to send that body with this status and headers.
    """

    def __init__(self, exchange: _Exchange, start: Message) -> None:
        # No Response.__init__: there is no content to render, the downstream sends the body.
        self.status_code = start["status"]
        self.raw_headers = [(key, value) for key, value in start.get("headers", ())]
        self.background: BackgroundTask | None = None
        self.body_iterator: AsyncIterable[bytes] = _BodyIterator(exchange)
        self._exchange = exchange
        self._start = start
        self._sent = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._sent:
            raise RuntimeError("A response returned by call_next() can only be sent once")
        self._sent = True
        start = {**self._start, "status": self.status_code, "headers": self.raw_headers}
        body = self.body_iterator
        if isinstance(body, _BodyIterator) and body.exchange is self._exchange and not body.started:
            await self._exchange.relay(start, send)
        else:
            await send(start)
            async for chunk in body:
                data = chunk.encode(self.charset) if isinstance(chunk, str) else chunk
                await send({"type": "http.response.body", "body": data, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        if self.background is not None:
            await self.background()


# --- one request's exchange between the dispatch and the downstream ---------------------------------------


class _Delivery:
    """One message of the downstream's, its ``send`` waiting until it was passed on (or refused)."""

    __slots__ = ("done", "error", "message")

    def __init__(self, message: Message) -> None:
        self.message = message
        self.done = anyio.Event()
        self.error: BaseException | None = None

    def settle(self, error: BaseException | None = None) -> None:
        if not self.done.is_set():
            self.error = error
            self.done.set()


class _Inbox:
    """The request's ``receive``, shared by the dispatch's request, the downstream and the answer.

    What the dispatch reads (before ``call_next``) is kept, then replayed in order to the next reader.
    """

    __slots__ = ("_receive", "_replay", "disconnected", "handed_over")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._replay: deque[Message] = deque()
        self.handed_over = False  # call_next was called: the body is the downstream's
        self.disconnected = False

    async def dispatch_receive(self) -> Message:
        if self.handed_over:
            if self.disconnected:
                return {"type": "http.disconnect"}
            await anyio.lowlevel.checkpoint()  # request.is_disconnected() (a cancelled read) says False
            raise RuntimeError(
                "The request body goes to the downstream app once call_next() is called: read it"
                " (request.body(), .json(), .form(), .stream()) before calling call_next()"
            )
        message = await self._receive()
        self._replay.append(message)
        if message["type"] == "http.disconnect":
            self.disconnected = True
        return message

    def replayed(self) -> Message | None:
        return self._replay.popleft() if self._replay else None

    async def receive(self) -> Message:
        if self._replay:
            return self._replay.popleft()
        message = await self._receive()
        if message["type"] == "http.disconnect":
            self.disconnected = True
        return message


class _Exchange:
    """The downstream task of one request, and its messages on their way to the client."""

    def __init__(
        self,
        app: ASGIApp,
        scope: Scope,
        receive: Receive,
        send: Send,
        task_group: TaskGroup,
        max_body_size: int | None,
    ) -> None:
        self.app = app
        self.send = send
        self.task_group = task_group
        self.inbox = _Inbox(receive)
        dispatch_receive: Receive = self.inbox.dispatch_receive
        if max_body_size is not None:
            # A urlencoded body the dispatch parses is held to the small limit typed forms have.
            dispatch_receive = limited_receive(dispatch_receive, max_body_size, scope, forms=True)
        self.request = Request(scope, dispatch_receive, send)
        self.response: DownstreamResponse | None = None
        self.called = False
        self.start: _Delivery | None = None  # the downstream's http.response.start, until sent
        self.current: _Delivery | None = None  # the message being passed on
        self.direct: Send | None = None  # once the start is sent: the downstream sends to the client
        self.queue: deque[_Delivery] = deque()
        self.wakeup = anyio.Event()
        self.debug: Message | None = None  # the test client's http.response.debug, sent before the start
        self.finished = False
        self.detached = False
        self.cancel_scope: anyio.CancelScope | None = None
        self.receive_scopes: set[anyio.CancelScope] = set()
        self.error: Exception | None = None
        self.error_after_detach = False
        self.error_raised = False

    # --- the dispatch's side ------------------------------------------------------------------

    async def call_next(self, request: Request) -> DownstreamResponse:
        if self.called:
            raise RuntimeError("call_next() can only be called once per request")
        self.called = True
        self.inbox.handed_over = True
        # start_soon copies this task's context: the dispatch's context variables reach the app.
        self.task_group.start_soon(self._run, request.scope)
        while True:
            delivery = await self.next_delivery()
            if delivery is None:
                error = self.take_error()
                if error is not None:
                    raise error
                raise RuntimeError("No response returned.")
            message = delivery.message
            if message["type"] == "http.response.start":
                self.start = delivery  # settled once this start is sent (or the response is not)
                self.response = DownstreamResponse(self, message)
                return self.response
            if message["type"] == "http.response.debug":
                self.debug = message
                delivery.settle()
            else:  # early hints and the like: passed on now
                await self.forward(delivery, message, self.send)

    async def next_delivery(self) -> _Delivery | None:
        """The downstream's next message; ``None`` once it returned (or was detached)."""
        while not self.queue:
            if self.finished or self.detached:
                return None
            self.wakeup = anyio.Event()
            await self.wakeup.wait()
        self.current = self.queue.popleft()
        return self.current

    async def forward(self, delivery: _Delivery, message: Message, send: Send) -> None:
        try:
            await send(message)
        except Exception as exc:
            delivery.settle(exc)  # the downstream gets what the server raised, as without us
        else:
            delivery.settle()

    async def relay(self, start: Message, send: Send) -> None:
        """Send ``start``, then let the downstream send straight to the client until it returns."""
        assert self.start is not None
        if self.debug is not None:
            await send(self.debug)
        self.direct = send
        await self.forward(self.start, start, send)
        while (delivery := await self.next_delivery()) is not None:
            await self.forward(delivery, delivery.message, send)
        error = self.take_error()
        if error is not None:
            raise error

    def stop_if_abandoned(self) -> None:
        """Cancel the downstream if ``call_next`` was given up before its response started (a
        timeout around it): nothing can read that response. One that started waits, its body
        maybe read by the dispatch's answer (``StreamingResponse(response.body_iterator)``)."""
        if self.called and self.response is None:
            self.detach()

    def take_error(self) -> Exception | None:
        """What the downstream raised, once (``None`` if nothing, or if already raised)."""
        if self.error is None or self.error_raised:
            return None
        self.error_raised = True
        return self.error

    def leftover_error(self) -> Exception | None:
        """What the downstream raised and nobody raised yet, but for the disconnect errors that
        ``detach`` caused."""
        error = self.take_error()
        if error is not None and self.error_after_detach and _caused_by_disconnect(error):
            return None
        return error

    def detach(self) -> None:
        """The downstream's response will not be sent: it sees a gone client from now on.

        Abandoned before its response started (a timeout around ``call_next``), it is cancelled.
        """
        if self.detached:
            return
        self.detached = True
        self.direct = None
        if self.called and self.response is None and not self.finished and self.cancel_scope is not None:
            self.cancel_scope.cancel()
        for delivery in (self.start, self.current, *self.queue):
            if delivery is not None:
                delivery.settle(ResponseDiscarded())
        self.queue.clear()
        for scope in self.receive_scopes:
            scope.cancel()
        self.wakeup.set()

    # --- the downstream's side ------------------------------------------------------------------

    async def _run(self, scope: Scope) -> None:
        with anyio.CancelScope() as cancel_scope:
            self.cancel_scope = cancel_scope
            if self.detached and self.response is None:
                cancel_scope.cancel()  # abandoned before it even started
            try:
                await self.app(scope, self._receive, self._send)
            except Exception as exc:  # raised by call_next or by the response: never in the task group
                self.error = exc
                self.error_after_detach = self.detached
            finally:
                self.finished = True
                self.wakeup.set()

    async def _send(self, message: Message) -> None:
        direct = self.direct
        if direct is not None:  # the body of a relayed response: no hand-over, the client's own send
            await direct(message)
            return
        if self.detached:
            await anyio.lowlevel.checkpoint()  # a downstream retrying its sends cannot starve the loop
            raise ResponseDiscarded()
        delivery = _Delivery(message)
        self.queue.append(delivery)
        self.wakeup.set()
        try:
            await delivery.done.wait()
        finally:
            if not delivery.done.is_set() and delivery in self.queue:
                self.queue.remove(delivery)  # this send was cancelled: the message is taken back
        if delivery.error is not None:
            raise delivery.error

    async def _receive(self) -> Message:
        if self.detached:
            return {"type": "http.disconnect"}
        message = self.inbox.replayed()
        if message is not None:
            return message
        with anyio.CancelScope() as scope:  # detach() cancels a read in progress
            self.receive_scopes.add(scope)
            try:
                return await self.inbox.receive()
            finally:
                self.receive_scopes.discard(scope)
        return {"type": "http.disconnect"}


class _BodyIterator(AsyncIterator[bytes]):
    """``DownstreamResponse.body_iterator``: the downstream's body, read by the dispatch."""

    def __init__(self, exchange: _Exchange) -> None:
        self.exchange = exchange
        self.started = False
        self._done = False

    async def __anext__(self) -> bytes:
        exchange = self.exchange
        if not self.started:
            self.started = True
            if exchange.start is not None:
                exchange.start.settle()
        while not self._done:
            delivery = await exchange.next_delivery()
            if delivery is None:
                self._done = True
                error = exchange.take_error()
                if error is not None:
                    raise error
                break
            message = delivery.message
            if message["type"] != "http.response.body":
                self._done = True
                exchange.detach()
                raise RuntimeError(
                    f"The downstream sent {message['type']!r}: its body cannot be read as bytes"
                )
            delivery.settle()
            if not message.get("more_body", False):
                self._done = True
            body: bytes = message.get("body", b"")
            if body:
                return body
        raise StopAsyncIteration


def _caused_by_disconnect(error: BaseException) -> bool:
    """Whether ``error`` is (or came from) a gone client: ``ResponseDiscarded`` or ``ClientDisconnect``."""
    if isinstance(error, BaseExceptionGroup):
        return all(_caused_by_disconnect(inner) for inner in error.exceptions)
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ResponseDiscarded | ClientDisconnect):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
