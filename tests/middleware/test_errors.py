"""ErrorMiddleware: the outermost guard (500s, request ids, body limit) on toolkit and plain ASGI apps."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request as StarletteRequest
from starlette.responses import PlainTextResponse as StarlettePlainText
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from toolkit import App, BackgroundTasks, Middleware, Request, Response, StreamingResponse
from toolkit.middleware.errors import ErrorMiddleware, get_request_id, request_id_var
from toolkit.testing import TestClient

WELL_FORMED = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
Headers = Iterable[tuple[bytes, bytes]]
BASE_SCOPE = {"type": "http", "http_version": "1.1", "scheme": "http", "root_path": "", "query_string": b""}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- a raw ASGI driver: every message the app sends, and what it raised -----------------------


def http_scope(path: str = "/", method: str = "GET", headers: Headers = (), spec: str = "2.4") -> Scope:
    scope = {**BASE_SCOPE, "asgi": {"version": "3.0", "spec_version": spec}, "method": method}
    scope |= {"path": path, "raw_path": path.encode(), "headers": [(b"host", b"testserver"), *headers]}
    return scope | {"server": ("testserver", 80), "client": ("127.0.0.1", 50000)}


async def drive(app: ASGIApp, scope: Scope, chunks: Iterable[bytes] = (b"",)) -> tuple[list[Message], Any]:
    """Run one request; return the messages sent and the exception raised (or None)."""
    pending, sent, done = list(chunks), [], anyio.Event()

    async def receive() -> Message:
        if pending:
            body = pending.pop(0)
            return {"type": "http.request", "body": body, "more_body": bool(pending)}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            done.set()

    try:
        await app(scope, receive, send)
    except Exception as exc:
        return sent, exc
    finally:
        done.set()
    return sent, None


def the_start(messages: list[Message]) -> Message:
    (start,) = [m for m in messages if m["type"] == "http.response.start"]  # never a second one
    return start


def header(message: Message, name: bytes) -> list[bytes]:
    return [value for key, value in message["headers"] if key == name]


def body_of(messages: list[Message]) -> bytes:
    return b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "toolkit.errors"]


def chunked(*parts: bytes) -> Iterable[bytes]:
    yield from parts  # a generator: httpx sends it with Transfer-Encoding: chunked, no Content-Length


def ids_client(**options: Any) -> TestClient:
    """A client for the toolkit app below, request ids on, server errors answered (not raised)."""
    options.setdefault("request_id_header", "X-Request-ID")
    return TestClient(toolkit_app(**options), raise_server_exceptions=False)


# --- apps under test ---------------------------------------------------------------------------


def toolkit_app(**options: Any) -> App:
    app = App(**options)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom: secret detail")

    @app.get("/items")
    async def items(q: int) -> dict[str, int]:
        return {"q": q}

    @app.get("/rid")
    async def rid(request: Request) -> dict[str, Any]:
        logging.getLogger("tests.handler").warning("inside the handler")
        return {"var": get_request_id(), "scope": request.scope.get("request_id")}

    @app.get("/rid-sync")
    def rid_sync(request: Request) -> dict[str, Any]:
        return {"var": get_request_id(), "scope": request.scope.get("request_id")}

    @app.get("/rid-background")
    async def rid_background(tasks: BackgroundTasks) -> None:
        tasks.add_task(lambda: logging.getLogger("tests.handler").warning("in the background task"))

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> Any:
            yield b"first chunk"
            raise RuntimeError("failed mid-stream")

        return StreamingResponse(chunks(), media_type="text/plain")

    return app


async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
    """A bare ASGI app: /boom raises, /echo reads the whole body, /big is 2000 bytes, else "ok"."""
    if scope["path"] == "/boom":
        raise RuntimeError("kaboom: secret detail")
    body = b"a" * 2000 if scope["path"] == "/big" else b""
    more = scope["path"] == "/echo"
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body or b"ok")).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body or b"ok"})


def starlette_app() -> Starlette:
    async def ok(request: StarletteRequest) -> StarlettePlainText:
        return StarlettePlainText(request.scope.get("request_id", "none"))

    async def echo(request: StarletteRequest) -> StarlettePlainText:
        return StarlettePlainText((await request.body()).decode())

    async def boom(request: StarletteRequest) -> StarlettePlainText:
        raise RuntimeError("kaboom: secret detail")

    return Starlette(routes=[Route("/ok", ok), Route("/echo", echo, methods=["POST"]), Route("/boom", boom)])


# --- uncaught errors before the response started ------------------------------------------------


def test_uncaught_error_is_a_json_500_with_the_request_id() -> None:
    response = ids_client().get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "detail": "Internal Server Error",
        "request_id": response.headers["x-request-id"],
    }
    assert "kaboom" not in response.text
    assert "Traceback" not in response.text


@pytest.mark.anyio
async def test_problem_json_follows_rfc_9457() -> None:
    messages, exc = await drive(ErrorMiddleware(raw_app, problem_json=True), http_scope("/boom"))
    assert exc is None
    start = the_start(messages)
    assert start["status"] == 500
    assert header(start, b"content-type") == [b"application/problem+json"]
    assert json.loads(body_of(messages)) == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "Internal Server Error",
        "request_id": header(start, b"x-request-id")[0].decode(),
    }


@pytest.mark.parametrize("where", ["toolkit", "raw"])
def test_error_is_logged_exactly_once_with_its_traceback(
    where: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = (
        ids_client()
        if where == "toolkit"
        else TestClient(ErrorMiddleware(raw_app), raise_server_exceptions=False)
    )
    with caplog.at_level(logging.DEBUG):
        response = client.get("/boom")
    assert response.status_code == 500
    with_traceback = [r for r in caplog.records if r.exc_info]
    assert with_traceback == error_records(caplog)
    (record,) = with_traceback
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)
    assert "/boom" in record.getMessage()
    assert response.headers["x-request-id"] in record.getMessage()
    assert "kaboom: secret detail" in caplog.text  # the traceback reaches the log, not the client


def test_debug_mode_shows_the_traceback() -> None:
    response = ids_client(debug=True).get("/boom")
    assert response.status_code == 500
    body = response.json()
    assert body["request_id"] == response.headers["x-request-id"]
    assert "RuntimeError: kaboom: secret detail" in body["exception"]
    assert "Traceback" in "".join(body["traceback"])


def test_around_a_starlette_app(caplog: pytest.LogCaptureFixture) -> None:
    # Starlette's ServerErrorMiddleware answers its own 500 and re-raises: the response has started.
    client = TestClient(ErrorMiddleware(starlette_app()), raise_server_exceptions=False)
    response = client.get("/boom")
    assert response.status_code == 500
    assert WELL_FORMED.fullmatch(response.headers["x-request-id"])
    assert len(error_records(caplog)) == 1
    ok = client.get("/ok", headers={"X-Request-ID": "from-client"})
    assert (ok.text, ok.headers["x-request-id"]) == ("from-client", "from-client")
    assert client.get("/missing").headers["x-request-id"]
    client = TestClient(ErrorMiddleware(starlette_app(), max_body_size=10))  # its own 413s too
    assert client.post("/echo", content=b"x" * 10).text == "x" * 10
    assert client.post("/echo", content=b"x" * 11).status_code == 413
    response = client.post("/echo", content=chunked(b"x" * 6, b"x" * 6))
    assert (response.status_code, response.text) == (413, "Request body is larger than 10 bytes")
    assert response.headers["x-request-id"]


# --- uncaught errors after the response started -------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("spec", ["2.0", "2.4"])  # StreamingResponse runs a task group before 2.4
async def test_error_mid_stream_is_logged_and_reraised(spec: str, caplog: pytest.LogCaptureFixture) -> None:
    app = toolkit_app(request_id_header="X-Request-ID")
    messages, exc = await drive(app, http_scope("/stream", spec=spec))
    assert isinstance(exc, RuntimeError)
    assert str(exc) == "failed mid-stream"
    start = the_start(messages)
    assert (messages[0], start["status"]) == (start, 200)
    assert b"first chunk" in body_of(messages)
    (record,) = error_records(caplog)
    # One line here; the traceback is the server's to log when it aborts the connection.
    assert record.exc_info is None
    assert "RuntimeError: failed mid-stream" in record.getMessage()
    assert header(start, b"x-request-id")[0].decode() in record.getMessage()


@pytest.mark.anyio
async def test_raw_app_failing_after_start_is_reraised(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ValueError("broken pipe of thought")

    messages, exc = await drive(ErrorMiddleware(app), http_scope("/"))
    assert isinstance(exc, ValueError)
    assert [m["type"] for m in messages] == ["http.response.start", "http.response.body"]
    assert len(error_records(caplog)) == 1


# --- request ids --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "incoming", ["abc-123", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "a.b:c_d", "x" * 128]
)
@pytest.mark.parametrize("path", ["/rid", "/rid-sync"])
def test_well_formed_incoming_id_is_echoed_and_seen_by_handlers(path: str, incoming: str) -> None:
    response = ids_client().get(path, headers={"X-Request-ID": incoming})
    assert response.headers["x-request-id"] == incoming
    assert response.json() == {"var": incoming, "scope": incoming}


@pytest.mark.anyio
@pytest.mark.parametrize(
    "incoming", [b"x" * 129, b"ab\r\nSet-Cookie: a=b", b"a\nb", b"a b", "ünï".encode(), b"", b"a/b", b'"q"']
)
async def test_malformed_incoming_id_is_replaced(incoming: bytes) -> None:
    messages, exc = await drive(ErrorMiddleware(raw_app), http_scope(headers=[(b"x-request-id", incoming)]))
    assert exc is None
    (echoed,) = header(the_start(messages), b"x-request-id")
    assert echoed != incoming
    assert WELL_FORMED.fullmatch(echoed.decode("latin-1"))


def test_an_id_is_generated_when_absent_and_differs_per_request() -> None:
    client = ids_client()
    responses = [client.get("/rid") for _ in range(5)]
    assert len({r.headers["x-request-id"] for r in responses}) == 5
    for response in responses:
        assert WELL_FORMED.fullmatch(response.headers["x-request-id"])
        assert response.json()["var"] == response.headers["x-request-id"]


@pytest.mark.parametrize(
    ("path", "status"), [("/rid", 200), ("/no", 404), ("/items?q=x", 422), ("/boom", 500)]
)
def test_id_is_echoed_on_every_response(path: str, status: int) -> None:
    response = ids_client().get(path, headers={"X-Request-ID": "req-42"})
    assert response.status_code == status
    assert response.headers.get_list("x-request-id") == ["req-42"]


@pytest.mark.parametrize("path", ["/rid", "/rid-background"])
def test_log_records_made_while_handling_carry_the_id(path: str, caplog: pytest.LogCaptureFixture) -> None:
    class RequestIdFilter(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.request_id = get_request_id()
            return True

    caplog.handler.addFilter(RequestIdFilter())
    response = ids_client().get(path)
    (record,) = [r for r in caplog.records if r.name == "tests.handler"]
    assert record.request_id == response.headers["x-request-id"]


@pytest.mark.anyio
async def test_contextvar_is_reset_after_the_request() -> None:
    seen: list[str | None] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(get_request_id())
        await raw_app(scope, receive, send)

    assert get_request_id() is None
    await drive(ErrorMiddleware(app), http_scope(headers=[(b"x-request-id", b"first")]))
    assert get_request_id() is None
    token = request_id_var.set("outer")
    try:
        await drive(ErrorMiddleware(app), http_scope("/boom", headers=[(b"x-request-id", b"second")]))
        assert get_request_id() == "outer"
        # A guard without request ids (an inner App mounted in one with them) leaves the
        # outer id in place: the inner app's log records still carry the request's id.
        await drive(ErrorMiddleware(app, request_id_header=None), http_scope())
        assert get_request_id() == "outer"
    finally:
        request_id_var.reset(token)
    assert seen == ["first", "second", "outer"]
    assert get_request_id() is None


@pytest.mark.anyio
async def test_concurrent_requests_keep_their_own_ids() -> None:
    both_inside, inside, results = anyio.Event(), [], {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        inside.append(scope["path"])
        if len(inside) == 2:
            both_inside.set()
        await both_inside.wait()
        results[scope["path"]] = get_request_id()
        await raw_app(scope, receive, send)

    async with anyio.create_task_group() as tg:
        for name in ("a", "b"):
            scope = http_scope(f"/{name}", headers=[(b"x-request-id", name.encode())])
            tg.start_soon(drive, ErrorMiddleware(app), scope)
    assert results == {"/a": "a", "/b": "b"}


def test_header_name_is_configurable() -> None:
    client = ids_client(request_id_header="X-Correlation-ID")
    response = client.get("/rid", headers={"X-Correlation-ID": "corr-1", "X-Request-ID": "other"})
    assert response.headers["x-correlation-id"] == "corr-1"
    assert "x-request-id" not in response.headers
    assert response.json()["var"] == "corr-1"
    generated = client.get("/rid", headers={"X-Request-ID": "ignored"})
    assert generated.headers["x-correlation-id"] != "ignored"


@pytest.mark.anyio
async def test_request_id_header_none_turns_ids_off() -> None:
    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(("request_id" in scope, get_request_id()))
        raise RuntimeError("boom")

    middleware = ErrorMiddleware(app, request_id_header=None)
    messages, exc = await drive(middleware, http_scope(headers=[(b"x-request-id", b"abc")]))
    assert exc is None
    assert seen == [(False, None)]
    assert header(the_start(messages), b"x-request-id") == []
    assert json.loads(body_of(messages)) == {"detail": "Internal Server Error"}
    app_response = ids_client(request_id_header=None).get("/boom")  # the App's default
    assert app_response.json() == {"detail": "Internal Server Error"}
    assert "x-request-id" not in app_response.headers


# --- body limit ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_oversized_content_length_is_refused_before_the_app_runs() -> None:
    calls: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope["path"])
        await raw_app(scope, receive, send)

    headers = [(b"content-length", b"11"), (b"x-request-id", b"big-1")]
    messages, exc = await drive(ErrorMiddleware(app, max_body_size=10), http_scope("/echo", "POST", headers))
    assert exc is None
    assert calls == []
    start = the_start(messages)
    assert start["status"] == 413
    assert header(start, b"x-request-id") == [b"big-1"]
    body = json.loads(body_of(messages))
    assert body["request_id"] == "big-1"
    assert "10 bytes" in body["detail"]


@pytest.mark.anyio
@pytest.mark.parametrize("declared", [[], [(b"content-length", b"5")]], ids=["chunked", "lying-length"])
async def test_streamed_body_over_the_limit_is_refused(declared: Headers, caplog: Any) -> None:
    app = ErrorMiddleware(raw_app, max_body_size=10)
    messages, exc = await drive(app, http_scope("/echo", "POST", declared), [b"123456", b"789012"])
    assert exc is None
    assert the_start(messages)["status"] == 413
    assert b"789012" not in body_of(messages)
    assert error_records(caplog) == []  # a client error, not a server failure
    app = ErrorMiddleware(raw_app, max_body_size=10, problem_json=True)
    messages, _ = await drive(app, http_scope("/echo", "POST", declared), [b"123456", b"789012"])
    problem = json.loads(body_of(messages))
    assert (problem["status"], problem["title"]) == (413, "Payload Too Large")
    assert header(the_start(messages), b"content-type") == [b"application/problem+json"]


@pytest.mark.anyio
@pytest.mark.parametrize("chunks", [[b"1234567890"], [b"12345", b"67890"], [b""], [b"abc", b"", b"d"]])
async def test_bodies_within_the_limit_pass(chunks: list[bytes]) -> None:
    headers = [(b"content-length", str(sum(map(len, chunks))).encode())]
    messages, exc = await drive(
        ErrorMiddleware(raw_app, max_body_size=10), http_scope("/echo", "POST", headers), chunks
    )
    assert exc is None
    assert the_start(messages)["status"] == 200
    assert body_of(messages) == (b"".join(chunks) or b"ok")


def test_body_limit_inside_a_toolkit_app() -> None:
    app = App(middleware=[Middleware(ErrorMiddleware, max_body_size=10)])

    @app.post("/echo")
    async def echo(payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    client = TestClient(app)
    assert client.post("/echo", json={"a": 1}).json() == {"a": 1}
    content = chunked(b'{"a": "', b'xxxxxxxx"}')
    response = client.post("/echo", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json() == {"detail": "Request body is larger than 10 bytes"}


# --- composition with Starlette's middleware ------------------------------------------------------


def test_composes_inside_an_app_with_cors_gzip_and_trusted_host() -> None:
    client = ids_client(
        middleware=[
            Middleware(CORSMiddleware, allow_origins=["https://ui.example"], allow_methods=["GET"]),
            Middleware(GZipMiddleware, minimum_size=10),
            Middleware(TrustedHostMiddleware, allowed_hosts=["testserver"]),
        ],
    )
    ok = client.get("/rid", headers={"Origin": "https://ui.example", "Accept-Encoding": "gzip"})
    assert ok.headers["access-control-allow-origin"] == "https://ui.example"
    assert ok.headers["content-encoding"] == "gzip"
    assert ok.json()["var"] == ok.headers["x-request-id"]
    preflight = client.options(
        "/rid", headers={"Origin": "https://ui.example", "Access-Control-Request-Method": "GET"}
    )
    assert preflight.status_code == 200
    assert preflight.headers["x-request-id"]
    bad_host = client.get("/rid", headers={"Host": "evil.example"})
    assert bad_host.status_code == 400
    assert bad_host.headers["x-request-id"]
    boom = client.get("/boom", headers={"Accept-Encoding": "gzip"})
    assert boom.status_code == 500
    assert boom.json()["request_id"] == boom.headers["x-request-id"]


def test_composes_with_starlette_middleware_outside() -> None:
    app = CORSMiddleware(
        GZipMiddleware(TrustedHostMiddleware(ErrorMiddleware(raw_app), allowed_hosts=["testserver"])),
        allow_origins=["*"],
    )
    client = TestClient(app, raise_server_exceptions=False)
    big = client.get("/big", headers={"Origin": "https://x.example", "Accept-Encoding": "gzip"})
    assert big.headers["content-encoding"] == "gzip"
    assert big.content == b"a" * 2000
    assert big.headers["x-request-id"]
    boom = client.get("/boom", headers={"Origin": "https://x.example"})
    assert boom.status_code == 500
    assert boom.headers["access-control-allow-origin"] == "*"  # CORS outside sees the 500
    assert boom.json()["request_id"] == boom.headers["x-request-id"]
    assert "x-request-id" not in client.get("/big", headers={"Host": "evil.example"}).headers


# --- other scope types ------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["websocket", "lifespan"])
async def test_websocket_and_lifespan_scopes_pass_through_untouched(kind: str) -> None:
    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((dict(scope), receive, send))
        raise LookupError("not an http error")

    receive, send = object(), object()  # passed along as they are, never called
    original = {"type": kind, "asgi": {"version": "3.0"}, "path": "/", "headers": [(b"x-request-id", b"a")]}
    scope = dict(original)
    with pytest.raises(LookupError):  # not turned into an HTTP 500
        await ErrorMiddleware(app, max_body_size=1)(scope, receive, send)
    ((seen_scope, seen_receive, seen_send),) = seen
    assert seen_scope == scope == original
    assert (seen_receive, seen_send) == (receive, send)


def test_an_id_the_app_sets_itself_is_not_doubled() -> None:
    app = App(request_id_header="X-Request-ID")

    @app.get("/own")
    async def own(response: Response) -> str:
        response.headers["X-Request-ID"] = "set-by-the-app"
        return "ok"

    response = TestClient(app).get("/own")
    assert response.headers.get_list("x-request-id") == ["set-by-the-app"]


def test_app_problem_details_option() -> None:
    app = App(problem_details=True)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    response = TestClient(app, raise_server_exceptions=False).get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 500
