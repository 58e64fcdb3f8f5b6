"""HTTPFunctionMiddleware: FastAPI's ``@app.middleware("http")`` as a pure ASGI middleware.

``async def mw(request, call_next)``: ``call_next`` returns the downstream's response as soon as it
starts, its body still streaming from the handler. Run on a toolkit ``App`` and on a bare Starlette
app (``add_middleware``), and through a raw ASGI driver where timing matters (streaming, disconnects).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextvars import ContextVar
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.background import BackgroundTasks as StarletteBackgroundTasks
from starlette.requests import ClientDisconnect
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse as StarletteJSON
from starlette.responses import PlainTextResponse as StarlettePlainText
from starlette.responses import Response as StarletteResponse
from starlette.responses import StreamingResponse as StarletteStreaming
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket as StarletteWebSocket

from toolkit import (
    App,
    BackgroundTasks,
    JSONResponse,
    PlainTextResponse,
    Request,
    Response,
    StreamingResponse,
    WebSocket,
)
from toolkit.middleware import HTTPFunctionMiddleware
from toolkit.middleware.http import CallNext, ResponseDiscarded
from toolkit.testing import TestClient

KINDS = ["toolkit", "starlette"]
Events = list[str]
Dispatch = Callable[[Request, CallNext], Any]

current_user: ContextVar[str] = ContextVar("current_user", default="nobody")
set_by_handler: ContextVar[str] = ContextVar("set_by_handler", default="unset")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- the apps under test: the same endpoints on a toolkit App and on a bare Starlette app ---------------


def toolkit_app(events: Events) -> App:
    app = App()

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        events.append("handler")
        return {"hello": "world"}

    @app.get("/state")
    async def state(request: Request) -> dict[str, Any]:
        return {"user": request.state.user}

    @app.post("/echo")
    async def echo(payload: dict[str, Any], request: Request) -> dict[str, Any]:
        return {"payload": payload, "seen_by_middleware": getattr(request.state, "seen", None)}

    @app.get("/boom")
    async def boom() -> None:
        raise LookupError("the handler failed")

    @app.get("/cookies")
    async def cookies() -> Response:
        response = PlainTextResponse("cookies")
        response.set_cookie("a", "1")
        response.set_cookie("b", "2")
        return response

    @app.get("/background")
    async def background(tasks: BackgroundTasks) -> dict[str, str]:
        tasks.add_task(events.append, "background")
        return {"ok": "yes"}

    @app.get("/context")
    async def context() -> StreamingResponse:
        set_by_handler.set("handler")

        async def chunks() -> AsyncIterator[bytes]:
            yield current_user.get().encode()
            await anyio.sleep(0)
            yield b" " + current_user.get().encode()

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("echo: " + await websocket.receive_text())
        await websocket.close()

    return app


def starlette_app(events: Events) -> Starlette:
    async def hello(request: StarletteRequest) -> StarletteResponse:
        events.append("handler")
        return StarletteJSON({"hello": "world"})

    async def state(request: StarletteRequest) -> StarletteResponse:
        return StarletteJSON({"user": request.state.user})

    async def echo(request: StarletteRequest) -> StarletteResponse:
        payload = await request.json()
        return StarletteJSON({"payload": payload, "seen_by_middleware": getattr(request.state, "seen", None)})

    async def boom(request: StarletteRequest) -> StarletteResponse:
        raise LookupError("the handler failed")

    async def cookies(request: StarletteRequest) -> StarletteResponse:
        response = StarlettePlainText("cookies")
        response.set_cookie("a", "1")
        response.set_cookie("b", "2")
        return response

    async def background(request: StarletteRequest) -> StarletteResponse:
        tasks = StarletteBackgroundTasks()
        tasks.add_task(events.append, "background")
        return StarletteJSON({"ok": "yes"}, background=tasks)

    async def context(request: StarletteRequest) -> StarletteResponse:
        set_by_handler.set("handler")

        async def chunks() -> AsyncIterator[bytes]:
            yield current_user.get().encode()
            await anyio.sleep(0)
            yield b" " + current_user.get().encode()

        return StarletteStreaming(chunks(), media_type="text/plain")

    async def ws(websocket: StarletteWebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("echo: " + await websocket.receive_text())
        await websocket.close()

    routes = [
        Route("/hello", hello),
        Route("/state", state),
        Route("/echo", echo, methods=["POST"]),
        Route("/boom", boom),
        Route("/cookies", cookies),
        Route("/background", background),
        Route("/context", context),
        WebSocketRoute("/ws", ws),
    ]
    return Starlette(routes=routes)


def build(kind: str, *dispatches: Dispatch, events: Events | None = None) -> Any:
    """The ``kind`` app with ``dispatches`` added in order (so the last one is the outermost)."""
    events = events if events is not None else []
    app = toolkit_app(events) if kind == "toolkit" else starlette_app(events)
    for dispatch in dispatches:
        app.add_middleware(HTTPFunctionMiddleware, dispatch=dispatch)
    return app


async def add_header(request: Request, call_next: CallNext) -> Response:
    response = await call_next(request)
    response.headers["X-Middleware"] = "1"
    return response


# --- a raw ASGI server for one request: feeds the body, records what is sent, can disconnect ------------


def http_scope(path: str = "/", method: str = "GET", headers: Iterable[tuple[bytes, bytes]] = ()) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *headers],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 50000),
    }


class Peer:
    """The server side of one request. ``spec="2.4"``: a send after the client left raises OSError."""

    def __init__(self, chunks: Iterable[bytes] = (b"",), *, spec: str = "2.4") -> None:
        self.pending = list(chunks)
        self.spec = spec
        self.sent: list[Message] = []
        self.received: list[bytes] = []  # body chunks, as the client got them
        self.log: list[str] = []
        self.complete = anyio.Event()
        self.gone = anyio.Event()
        self.chunk_arrived = anyio.Event()

    def scope(self, path: str, method: str = "GET", headers: Iterable[tuple[bytes, bytes]] = ()) -> Scope:
        scope = http_scope(path, method, headers)
        scope["asgi"]["spec_version"] = self.spec
        return scope

    async def receive(self) -> Message:
        if self.pending:
            body = self.pending.pop(0)
            return {"type": "http.request", "body": body, "more_body": bool(self.pending)}
        if not (self.complete.is_set() or self.gone.is_set()):
            async with anyio.create_task_group() as tg:

                async def wait(event: anyio.Event) -> None:
                    await event.wait()
                    tg.cancel_scope.cancel()

                tg.start_soon(wait, self.complete)
                tg.start_soon(wait, self.gone)
        self.log.append("receive: http.disconnect")
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if self.gone.is_set():
            if self.spec >= "2.4":
                raise OSError("the client went away")
            return
        self.sent.append(message)
        if message["type"] == "http.response.body":
            if message.get("body"):
                self.received.append(message["body"])
                self.log.append(f"client got {message['body']!r}")
                self.chunk_arrived.set()
            if not message.get("more_body", False):
                self.log.append("response complete")
                self.complete.set()

    def disconnect(self) -> None:
        self.log.append("client disconnects")
        self.gone.set()

    async def run(self, app: ASGIApp, scope: Scope, *, timeout: float = 5) -> BaseException | None:
        """Run the request to its end (failing the test after ``timeout``): what it raised, or None."""
        try:
            with anyio.fail_after(timeout):
                await app(scope, self.receive, self.send)
        except Exception as exc:
            return exc
        return None

    @property
    def start(self) -> Message:
        (start,) = [m for m in self.sent if m["type"] == "http.response.start"]
        return start

    def header(self, name: bytes) -> list[bytes]:
        return [value for key, value in self.start["headers"] if key == name]

    @property
    def body(self) -> bytes:
        return b"".join(self.received)


# --- call_next: the downstream response, changed on its way out -----------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_header_added_to_the_downstream_response(kind: str) -> None:
    events: Events = []
    client = TestClient(build(kind, add_header, events=events))
    response = client.get("/hello")
    assert response.status_code == 200
    assert response.json() == {"hello": "world"}
    assert response.headers["x-middleware"] == "1"
    assert response.headers["content-type"] == "application/json"
    assert events == ["handler"]


@pytest.mark.parametrize("kind", KINDS)
def test_status_set_by_the_dispatch_is_what_the_client_sees(kind: str) -> None:
    async def accepted(request: Request, call_next: CallNext) -> Response:
        response = await call_next(request)
        response.status_code = 202
        del response.headers["content-type"]
        return response

    response = TestClient(build(kind, accepted)).get("/hello")
    assert response.status_code == 202
    assert "content-type" not in response.headers
    assert response.json() == {"hello": "world"}


@pytest.mark.parametrize("kind", KINDS)
def test_request_state_set_in_the_middleware_is_read_by_the_handler(kind: str) -> None:
    async def authenticate(request: Request, call_next: CallNext) -> Response:
        request.state.user = "alice"
        return await call_next(request)

    assert TestClient(build(kind, authenticate)).get("/state").json() == {"user": "alice"}


@pytest.mark.parametrize("kind", KINDS)
def test_multiple_set_cookie_headers_are_kept_when_headers_change(kind: str) -> None:
    async def more_cookies(request: Request, call_next: CallNext) -> Response:
        response = await call_next(request)
        response.headers["X-Middleware"] = "1"
        response.headers.append("Set-Cookie", "c=3; Path=/")
        response.set_cookie("d", "4")
        return response

    response = TestClient(build(kind, more_cookies)).get("/cookies")
    cookies = response.headers.get_list("set-cookie")
    assert [cookie.split(";")[0] for cookie in cookies] == ["a=1", "b=2", "c=3", "d=4"]
    assert response.headers["x-middleware"] == "1"
    assert response.text == "cookies"


# --- short-circuits and errors --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_short_circuit_401_without_calling_the_handler(kind: str) -> None:
    events: Events = []

    async def require_token(request: Request, call_next: CallNext) -> Response:
        if request.headers.get("authorization") != "Bearer good":
            return JSONResponse({"detail": "Not authenticated"}, status_code=401)
        return await call_next(request)

    client = TestClient(build(kind, require_token, events=events))
    refused = client.get("/hello")
    assert refused.status_code == 401
    assert refused.json() == {"detail": "Not authenticated"}
    assert events == []
    assert client.get("/hello", headers={"Authorization": "Bearer good"}).json() == {"hello": "world"}
    assert events == ["handler"]


@pytest.mark.parametrize("kind", KINDS)
def test_exception_in_the_handler_is_caught_by_the_middleware(kind: str) -> None:
    async def translate(request: Request, call_next: CallNext) -> Response:
        try:
            return await call_next(request)
        except LookupError as exc:
            return JSONResponse({"caught": str(exc)}, status_code=409)

    response = TestClient(build(kind, translate)).get("/boom")
    assert response.status_code == 409
    assert response.json() == {"caught": "the handler failed"}


def test_uncaught_exception_is_a_500_from_the_app_error_guard() -> None:
    seen: list[type[BaseException]] = []

    async def watch(request: Request, call_next: CallNext) -> Response:
        try:
            return await call_next(request)
        except Exception as exc:
            seen.append(type(exc))
            raise

    client = TestClient(build("toolkit", watch), raise_server_exceptions=False)
    response = client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal Server Error"}
    assert seen == [LookupError]


def test_uncaught_exception_on_starlette_reaches_its_server_error_middleware() -> None:
    client = TestClient(build("starlette", add_header), raise_server_exceptions=False)
    response = client.get("/boom")
    assert response.status_code == 500
    assert "x-middleware" not in response.headers
    with pytest.raises(LookupError, match="the handler failed"):
        TestClient(build("starlette", add_header)).get("/boom")


@pytest.mark.anyio
async def test_uncaught_exception_leaves_the_middleware_bare_not_in_an_exception_group() -> None:
    async def downstream(scope: Scope, receive: Receive, send: Send) -> None:
        raise LookupError("no such thing")

    peer = Peer()
    raised = await peer.run(HTTPFunctionMiddleware(downstream, add_header), peer.scope("/"))
    assert type(raised) is LookupError
    assert peer.sent == []


@pytest.mark.anyio
async def test_an_exception_in_the_dispatch_itself_propagates_bare() -> None:
    async def broken(request: Request, call_next: CallNext) -> Response:
        await call_next(request)
        raise KeyError("dispatch bug")

    peer = Peer()
    raised = await peer.run(HTTPFunctionMiddleware(toolkit_app([]), broken), peer.scope("/hello"))
    assert type(raised) is KeyError
    assert peer.sent == []


@pytest.mark.parametrize("spec", ["2.0", "2.4"])
@pytest.mark.anyio
async def test_error_after_the_response_started_propagates(spec: str) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"first"
        raise RuntimeError("failed mid-stream")

    async def downstream(scope: Scope, receive: Receive, send: Send) -> None:
        await StarletteStreaming(chunks())(scope, receive, send)

    peer = Peer(spec=spec)
    raised = await peer.run(HTTPFunctionMiddleware(downstream, add_header), peer.scope("/"))
    assert isinstance(raised, RuntimeError)
    assert str(raised) == "failed mid-stream"
    assert peer.header(b"x-middleware") == [b"1"]
    assert peer.received == [b"first"]
    assert not peer.complete.is_set()


# --- streaming ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.anyio
async def test_streaming_first_chunk_reaches_the_client_before_the_second_is_produced(kind: str) -> None:
    peer = Peer()

    async def chunks() -> AsyncIterator[bytes]:
        yield b"one"
        # Deadlock (a TimeoutError) if the middleware held the body back until the handler finished.
        with anyio.fail_after(2):
            await peer.chunk_arrived.wait()
        peer.log.append("producing two")
        yield b"two"

    async def stream(*_: Any) -> StarletteResponse:
        return StreamingResponse(chunks(), media_type="text/plain")

    app: Any
    if kind == "toolkit":
        app = App()
        app.get("/stream")(stream)
    else:
        app = Starlette(routes=[Route("/stream", stream)])
    app.add_middleware(HTTPFunctionMiddleware, dispatch=add_header)

    assert await peer.run(app, peer.scope("/stream")) is None
    assert peer.log == ["client got b'one'", "producing two", "client got b'two'", "response complete"]
    assert peer.header(b"x-middleware") == [b"1"]


@pytest.mark.anyio
async def test_messages_are_relayed_one_for_one_in_step_with_the_client() -> None:
    """The downstream's ``send`` returns once the client's ``send`` did: no message is queued."""
    peer = Peer()
    returned: list[str] = []

    async def downstream(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-own", b"a")]})
        returned.append(f"start returned after {len(peer.sent)} sent")
        for index, chunk in enumerate([b"a", b"", b"b"]):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            returned.append(f"body {index} returned after {len(peer.sent)} sent")
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    assert await peer.run(HTTPFunctionMiddleware(downstream, add_header), peer.scope("/")) is None
    assert returned == [
        "start returned after 1 sent",
        "body 0 returned after 2 sent",
        "body 1 returned after 3 sent",
        "body 2 returned after 4 sent",
    ]
    assert [m.get("more_body", False) for m in peer.sent[1:]] == [True, True, True, False]
    assert peer.start["headers"] == [(b"x-own", b"a"), (b"x-middleware", b"1")]


# --- the request body -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_json_body_is_readable_in_the_middleware_and_in_the_handler(kind: str) -> None:
    async def peek(request: Request, call_next: CallNext) -> Response:
        request.state.seen = await request.json()
        assert await request.body() == b'{"name":"widget","price":3}'  # read twice: cached
        return await call_next(request)

    response = TestClient(build(kind, peek)).post("/echo", json={"name": "widget", "price": 3})
    expected = {"name": "widget", "price": 3}
    assert response.json() == {"payload": expected, "seen_by_middleware": expected}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("read", ["body", "part of the stream", "is_disconnected", "nothing"])
@pytest.mark.anyio
async def test_a_body_in_several_messages_reaches_the_handler_whole(kind: str, read: str) -> None:
    parts = [b'{"name":', b' "widget", ', b'"price": 3}']

    async def reader(request: Request, call_next: CallNext) -> Response:
        if read == "body":
            request.state.seen = (await request.body()).decode()
        elif read == "part of the stream":
            async with contextlib.aclosing(request.stream()) as stream:
                request.state.seen = (await stream.__anext__()).decode()
        elif read == "is_disconnected":  # a read in a cancelled scope: the chunk it got is not lost
            request.state.seen = await request.is_disconnected()
        return await call_next(request)

    peer = Peer(parts)
    headers = [(b"content-type", b"application/json")]
    app = build(kind, reader)
    assert await peer.run(app, peer.scope("/echo", "POST", headers)) is None
    seen = {"body": b"".join(parts).decode(), "part of the stream": '{"name":', "is_disconnected": False}.get(
        read
    )
    assert json.loads(peer.body) == {"payload": {"name": "widget", "price": 3}, "seen_by_middleware": seen}


@pytest.mark.anyio
async def test_reading_the_body_after_call_next_is_a_clear_error() -> None:
    async def late_reader(request: Request, call_next: CallNext) -> Response:
        response = await call_next(request)
        with pytest.raises(RuntimeError, match="before calling call_next"):
            await request.body()
        return response

    peer = Peer([b"abc"])
    app = HTTPFunctionMiddleware(starlette_app([]), late_reader)
    assert await peer.run(app, peer.scope("/hello", "POST")) is None
    assert peer.start["status"] == 405


def test_body_read_by_the_middleware_is_held_to_max_body_size() -> None:
    async def reads_body(request: Request, call_next: CallNext) -> Response:
        await request.body()
        return await call_next(request)

    app = toolkit_app([])
    app.add_middleware(HTTPFunctionMiddleware, dispatch=reads_body, max_body_size=32)
    client = TestClient(app)
    assert client.post("/echo", json={"a": 1}).json() == {"payload": {"a": 1}, "seen_by_middleware": None}
    too_large = client.post("/echo", json={"a": "x" * 100})
    assert too_large.status_code == 413


# --- client disconnects ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_client_disconnect_while_streaming_reaches_the_handler_as_http_disconnect() -> None:
    peer = Peer()

    async def ticker(request: Request) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            while not await request.is_disconnected():
                yield b"tick"
            peer.log.append("handler saw the disconnect")

        return StreamingResponse(chunks(), media_type="text/plain")

    async def send(message: Message) -> None:
        await original_send(message)
        if len(peer.received) == 2:
            peer.disconnect()  # before the second tick's send returns

    original_send, peer.send = peer.send, send  # type: ignore[method-assign]
    app = App()
    app.get("/ticks")(ticker)
    app.add_middleware(HTTPFunctionMiddleware, dispatch=add_header)
    assert await peer.run(app, peer.scope("/ticks")) is None
    assert peer.log == [
        "client got b'tick'",
        "client got b'tick'",
        "client disconnects",
        "receive: http.disconnect",
        "handler saw the disconnect",
    ]


@pytest.mark.parametrize(
    ("spec", "ending"),
    [
        ("2.0", "downstream returned"),  # StreamingResponse saw http.disconnect and stopped the stream
        ("2.4", "downstream raised ClientDisconnect"),  # its send raised the server's OSError
    ],
)
@pytest.mark.anyio
async def test_client_disconnect_stops_an_endless_stream(spec: str, ending: str) -> None:
    peer = Peer(spec=spec)
    events: Events = []
    produced = 0

    async def endless() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            nonlocal produced
            while True:
                produced += 1
                yield b"tick"
                if len(peer.received) == 2:
                    peer.disconnect()
                await anyio.sleep(0.001)

        return StreamingResponse(chunks(), media_type="text/plain")

    app = App()
    app.get("/endless")(endless)
    app.add_middleware(Tracker, events=events)
    app.add_middleware(HTTPFunctionMiddleware, dispatch=add_header)
    assert await peer.run(app, peer.scope("/endless")) is None  # the App's guard drops ClientDisconnect
    assert events == [ending]
    assert peer.received == [b"tick", b"tick"]
    stopped_at = produced
    await anyio.sleep(0.02)
    assert produced == stopped_at


@pytest.mark.anyio
async def test_a_send_error_reaches_the_downstream_send_call() -> None:
    peer = Peer()
    raised: list[BaseException] = []

    async def downstream(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        peer.disconnect()
        try:
            await send({"type": "http.response.body", "body": b"lost", "more_body": True})
        except OSError as exc:
            raised.append(exc)
            raise ClientDisconnect() from exc

    result = await peer.run(HTTPFunctionMiddleware(downstream, add_header), peer.scope("/"))
    assert [str(exc) for exc in raised] == ["the client went away"]
    assert isinstance(result, ClientDisconnect)  # what the downstream raised, as without the middleware


# --- a response other than the downstream's: the downstream is cleaned up -------------------------------


class Tracker:
    """Pure ASGI: records how the app inside it ended."""

    def __init__(self, app: ASGIApp, events: Events) -> None:
        self.app = app
        self.events = events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        except BaseException as exc:
            self.events.append(f"downstream raised {type(exc).__name__}")
            raise
        self.events.append("downstream returned")


@pytest.mark.parametrize("spec", ["2.0", "2.4"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.anyio
async def test_replacing_an_endless_stream_ends_the_downstream(kind: str, spec: str) -> None:
    events: Events = []

    async def replace(request: Request, call_next: CallNext) -> Response:
        original = await call_next(request)
        events.append(f"downstream answered {original.status_code}")
        return PlainTextResponse("replaced", status_code=203)

    async def endless(*_: Any) -> StarletteResponse:
        async def chunks() -> AsyncIterator[bytes]:
            while True:
                yield b"tick"
                await anyio.sleep(0.001)

        return StreamingResponse(chunks(), media_type="text/plain")

    app: Any
    if kind == "toolkit":
        app = App()
        app.get("/endless")(endless)
    else:
        app = Starlette(routes=[Route("/endless", endless)])
    app.add_middleware(Tracker, events=events)
    app.add_middleware(HTTPFunctionMiddleware, dispatch=replace)

    peer = Peer(spec=spec)
    assert await peer.run(app, peer.scope("/endless")) is None
    assert peer.start["status"] == 203
    assert peer.body == b"replaced"
    assert events[0] == "downstream answered 200"
    # Its send raised ResponseDiscarded (an OSError): Starlette's 2.4 stream turns it into ClientDisconnect.
    assert (
        events[1]
        == {"2.0": "downstream raised ResponseDiscarded", "2.4": "downstream raised ClientDisconnect"}[spec]
    )


@pytest.mark.anyio
async def test_the_downstream_of_a_replaced_response_sees_a_gone_client() -> None:
    seen: list[str] = []

    async def downstream(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        except OSError as exc:
            seen.append(f"send raised {type(exc).__name__}")
        seen.append((await receive())["type"])
        with pytest.raises(ResponseDiscarded):
            await send({"type": "http.response.body", "body": b"unwanted"})

    async def replace(request: Request, call_next: CallNext) -> Response:
        await call_next(request)
        return PlainTextResponse("replaced")

    peer = Peer([b"body"])
    assert await peer.run(HTTPFunctionMiddleware(downstream, replace), peer.scope("/", "POST")) is None
    assert seen == ["send raised ResponseDiscarded", "http.disconnect"]
    assert peer.body == b"replaced"


@pytest.mark.anyio
async def test_reading_part_of_an_endless_stream_then_answering_another_response() -> None:
    events: Events = []

    async def sample(request: Request, call_next: CallNext) -> Response:
        response = await call_next(request)
        first = await anext(aiter(response.body_iterator))
        return PlainTextResponse(f"first chunk: {first.decode()}")

    async def endless() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            while True:
                yield b"tick"
                await anyio.sleep(0.001)

        return StreamingResponse(chunks(), media_type="text/plain")

    app = App()
    app.get("/endless")(endless)
    app.add_middleware(Tracker, events=events)
    app.add_middleware(HTTPFunctionMiddleware, dispatch=sample)
    peer = Peer()
    assert await peer.run(app, peer.scope("/endless")) is None
    assert peer.body == b"first chunk: tick"
    assert events == ["downstream raised ClientDisconnect"]  # its next send raised ResponseDiscarded


def test_a_timeout_around_call_next_cancels_the_slow_handler() -> None:
    events: Events = []

    async def timeout(request: Request, call_next: CallNext) -> Response:
        with anyio.move_on_after(0.05):
            return await call_next(request)
        return PlainTextResponse("too slow", status_code=504)

    app = App()

    @app.get("/slow")
    async def slow() -> dict[str, str]:
        try:
            await anyio.sleep(30)
        except anyio.get_cancelled_exc_class():
            events.append("handler cancelled")
            raise
        return {"late": "yes"}

    app.add_middleware(HTTPFunctionMiddleware, dispatch=timeout)
    started = time.monotonic()
    response = TestClient(app).get("/slow")
    assert response.status_code == 504
    assert time.monotonic() - started < 5
    assert events == ["handler cancelled"]


@pytest.mark.parametrize("kind", KINDS)
def test_reading_the_response_body_and_answering_a_new_response(kind: str) -> None:
    """The FastAPI idiom: drain ``body_iterator``, answer a new response; background tasks still run."""
    events: Events = []

    async def wrap(request: Request, call_next: CallNext) -> Response:
        response = await call_next(request)
        body = b"".join([chunk async for chunk in response.body_iterator])
        return PlainTextResponse(f"wrapped {body.decode()}", headers={"x-status": str(response.status_code)})

    client = TestClient(build(kind, wrap, events=events))
    response = client.get("/background")
    assert response.text == 'wrapped {"ok":"yes"}'
    assert response.headers["x-status"] == "200"
    assert events == ["background"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.anyio
async def test_a_new_streaming_response_over_the_body_iterator_still_streams(kind: str) -> None:
    """The FastAPI idiom: ``StreamingResponse(response.body_iterator, ...)`` to watch the chunks go by."""
    peer = Peer()

    async def watch(request: Request, call_next: CallNext) -> Response:
        response = await call_next(request)

        async def watched() -> AsyncIterator[bytes]:
            async for chunk in response.body_iterator:
                peer.log.append(f"middleware saw {chunk!r}")
                yield chunk

        headers = {**response.headers, "x-watched": "yes"}
        return StreamingResponse(watched(), status_code=response.status_code, headers=headers)

    async def chunks() -> AsyncIterator[bytes]:
        yield b"one"
        with anyio.fail_after(2):
            await peer.chunk_arrived.wait()
        peer.log.append("producing two")
        yield b"two"

    async def stream(*_: Any) -> StarletteResponse:
        tasks = StarletteBackgroundTasks()
        tasks.add_task(peer.log.append, "background task")
        return StreamingResponse(chunks(), media_type="text/plain", background=tasks)

    app: Any
    if kind == "toolkit":
        app = App()
        app.get("/stream")(stream)
    else:
        app = Starlette(routes=[Route("/stream", stream)])
    app.add_middleware(HTTPFunctionMiddleware, dispatch=watch)

    assert await peer.run(app, peer.scope("/stream")) is None
    assert peer.log == [
        "middleware saw b'one'",
        "client got b'one'",
        "producing two",
        "middleware saw b'two'",
        "client got b'two'",
        "response complete",
        "background task",
    ]
    assert peer.header(b"x-watched") == [b"yes"]
    assert peer.header(b"content-type") == [b"text/plain; charset=utf-8"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_replaced_body_iterator_is_sent_with_the_downstream_status_and_headers(kind: str) -> None:
    async def upper(request: Request, call_next: CallNext) -> Response:
        response = await call_next(request)
        chunks = [chunk async for chunk in response.body_iterator]

        async def shouted() -> AsyncIterator[bytes]:
            for chunk in chunks:
                yield chunk.upper()

        response.body_iterator = shouted()
        response.headers["x-shouted"] = "yes"
        return response

    response = TestClient(build(kind, upper)).get("/hello")
    assert response.text == '{"HELLO":"WORLD"}'
    assert response.headers["x-shouted"] == "yes"
    assert response.headers["content-type"] == "application/json"


# --- background tasks, contextvars, ordering ------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_background_task_of_the_downstream_response_runs(kind: str) -> None:
    events: Events = []
    response = TestClient(build(kind, add_header, events=events)).get("/background")
    assert response.json() == {"ok": "yes"}
    assert response.headers["x-middleware"] == "1"
    assert events == ["background"]


@pytest.mark.anyio
async def test_background_task_runs_after_the_response_is_complete() -> None:
    peer = Peer()

    async def downstream(scope: Scope, receive: Receive, send: Send) -> None:
        tasks = StarletteBackgroundTasks()
        tasks.add_task(lambda: peer.log.append("background task"))
        await StarlettePlainText("done", background=tasks)(scope, receive, send)

    async def own_background(request: Request, call_next: CallNext) -> Response:
        response = await call_next(request)
        tasks = StarletteBackgroundTasks()
        tasks.add_task(lambda: peer.log.append("the middleware's background task"))
        response.background = tasks
        return response

    assert await peer.run(HTTPFunctionMiddleware(downstream, own_background), peer.scope("/")) is None
    assert peer.log == [
        "client got b'done'",
        "response complete",
        "background task",
        "the middleware's background task",
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_contextvar_set_in_the_middleware_is_seen_by_the_handler_and_its_stream(kind: str) -> None:
    after_call_next: list[str] = []

    async def login(request: Request, call_next: CallNext) -> Response:
        token = current_user.set("alice")
        try:
            response = await call_next(request)
        finally:
            current_user.reset(token)  # the stream, produced later, still sees "alice"
        after_call_next.append(set_by_handler.get())
        return response

    response = TestClient(build(kind, login)).get("/context")
    assert response.text == "alice alice"
    # The downstream runs in a task with a copy of the dispatch's context: its own sets stay there.
    assert after_call_next == ["unset"]
    assert current_user.get() == "nobody"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.anyio
async def test_concurrent_requests_keep_their_own_context_and_state(kind: str) -> None:
    async def login(request: Request, call_next: CallNext) -> Response:
        current_user.set(request.headers["x-user"])
        request.state.user = request.headers["x-user"]
        await anyio.sleep(0.001)  # let the other requests interleave
        return await call_next(request)

    app = build(kind, login)
    bodies: dict[str, bytes] = {}

    async def one(user: str) -> None:
        for path in ("/context", "/state"):
            peer = Peer()
            assert await peer.run(app, peer.scope(path, headers=[(b"x-user", user.encode())])) is None
            bodies[f"{user} {path}"] = peer.body

    async with anyio.create_task_group() as tg:
        for number in range(20):
            tg.start_soon(one, f"user{number}")
    for number in range(20):
        user = f"user{number}"
        assert bodies[f"{user} /context"] == f"{user} {user}".encode()
        assert json.loads(bodies[f"{user} /state"]) == {"user": user}


@pytest.mark.parametrize("kind", KINDS)
def test_two_middlewares_the_last_added_is_the_outermost(kind: str) -> None:
    events: Events = []

    def named(name: str) -> Dispatch:
        async def dispatch(request: Request, call_next: CallNext) -> Response:
            events.append(f"{name} before")
            response = await call_next(request)
            events.append(f"{name} after")
            response.headers.append("x-order", name)
            return response

        return dispatch

    response = TestClient(build(kind, named("inner"), named("outer"), events=events)).get("/hello")
    assert events == ["outer before", "inner before", "handler", "inner after", "outer after"]
    assert response.headers.get_list("x-order") == ["inner", "outer"]


# --- other scopes and misuse ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_websocket_passes_straight_through(kind: str) -> None:
    calls: list[str] = []

    async def http_only(request: Request, call_next: CallNext) -> Response:
        calls.append(request.url.path)
        return await call_next(request)

    client = TestClient(build(kind, http_only))
    with client.websocket_connect("/ws") as websocket:
        websocket.send_text("hi")
        assert websocket.receive_text() == "echo: hi"
    assert calls == []
    client.get("/hello")
    assert calls == ["/hello"]


def test_lifespan_passes_straight_through() -> None:
    events: Events = []

    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    async def record(request: Request, call_next: CallNext) -> Response:
        events.append(request.url.path)
        return await call_next(request)

    app = App(lifespan=lifespan)
    app.get("/hello")(lambda: {"hello": "world"})
    app.add_middleware(HTTPFunctionMiddleware, dispatch=record)
    with TestClient(app) as client:
        client.get("/hello")
    assert events == ["startup", "/hello", "shutdown"]


@pytest.mark.anyio
async def test_call_next_twice_is_an_error() -> None:
    async def twice(request: Request, call_next: CallNext) -> Response:
        response = await call_next(request)
        with pytest.raises(RuntimeError, match="once"):
            await call_next(request)
        return response

    peer = Peer()
    assert await peer.run(HTTPFunctionMiddleware(starlette_app([]), twice), peer.scope("/hello")) is None
    assert peer.body == b'{"hello":"world"}'


@pytest.mark.anyio
async def test_a_dispatch_returning_none_is_a_clear_error() -> None:
    async def forgot_return(request: Request, call_next: CallNext) -> Any:
        await call_next(request)

    peer = Peer()
    raised = await peer.run(HTTPFunctionMiddleware(starlette_app([]), forgot_return), peer.scope("/hello"))
    assert isinstance(raised, RuntimeError)
    assert "returned None" in str(raised)
    assert peer.sent == []


@pytest.mark.anyio
async def test_a_downstream_that_sends_no_response_is_an_error_from_call_next() -> None:
    async def silent(scope: Scope, receive: Receive, send: Send) -> None:
        return

    errors: list[str] = []

    async def catch(request: Request, call_next: CallNext) -> Response:
        try:
            return await call_next(request)
        except RuntimeError as exc:
            errors.append(str(exc))
            return PlainTextResponse("no response", status_code=502)

    peer = Peer()
    assert await peer.run(HTTPFunctionMiddleware(silent, catch), peer.scope("/")) is None
    assert errors == ["No response returned."]
    assert peer.start["status"] == 502


# needs App.middleware
class TestDecoratorForm:
    """``@app.middleware("http")``: the lead wires it in toolkit/app.py (these fail until then)."""

    def test_decorator_adds_a_header(self) -> None:
        app = toolkit_app([])

        @app.middleware("http")
        async def stamp(request: Request, call_next: CallNext) -> Response:
            response = await call_next(request)
            response.headers["X-Decorated"] = "1"
            return response

        response = TestClient(app).get("/hello")
        assert response.json() == {"hello": "world"}
        assert response.headers["x-decorated"] == "1"

    def test_decorator_returns_the_function(self) -> None:
        app = App()

        async def stamp(request: Request, call_next: CallNext) -> Response:
            return await call_next(request)

        assert app.middleware("http")(stamp) is stamp

    def test_decorated_middlewares_the_last_is_the_outermost(self) -> None:
        events: Events = []
        app = toolkit_app(events)

        @app.middleware("http")
        async def inner(request: Request, call_next: CallNext) -> Response:
            events.append("inner")
            return await call_next(request)

        @app.middleware("http")
        async def outer(request: Request, call_next: CallNext) -> Response:
            events.append("outer")
            return await call_next(request)

        TestClient(app).get("/hello")
        assert events == ["outer", "inner", "handler"]

    def test_decorator_short_circuit_and_body(self) -> None:
        app = toolkit_app([])

        @app.middleware("http")
        async def guard(request: Request, call_next: CallNext) -> Response:
            if request.method == "POST":
                request.state.seen = await request.json()
            if request.headers.get("x-block"):
                return PlainTextResponse("blocked", status_code=401)
            return await call_next(request)

        client = TestClient(app)
        assert client.get("/hello", headers={"x-block": "1"}).status_code == 401
        assert client.post("/echo", json={"a": 1}).json() == {
            "payload": {"a": 1},
            "seen_by_middleware": {"a": 1},
        }
