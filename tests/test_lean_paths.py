"""The request path's shortcuts answer exactly as the general path does.

A handler taking nothing is called directly, a plain JSON or text result is sent without a
``Response`` object, and an ``App`` without request ids or a body limit guards errors with a
smaller wrapper. Each route below exists twice, once taking nothing (the shortcut) and once taking
a query parameter it ignores (the general path); both must give the same status, headers and body.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import anyio
import msgspec
import pytest
from starlette.types import Message, Receive, Scope, Send

from toolkit import (
    App,
    BackgroundTasks,
    HTMLResponse,
    HTTPException,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from toolkit.middleware.errors import ErrorMiddleware
from toolkit.sessions import MemoryStore
from toolkit.testing import TestClient


class Item(msgspec.Struct):
    name: str
    price: float


class Public(msgspec.Struct):
    name: str


class Custom(JSONResponse):
    media_type = "application/vnd.custom+json"


def _twins(app: App, path: str, result: Any, **options: Any) -> None:
    """``path`` served by a handler taking nothing and ``path + "/arg"`` by one taking ``x``."""

    async def bare():  # type: ignore[no-untyped-def]
        return result() if callable(result) else result

    async def with_arg(x: int = 0):  # type: ignore[no-untyped-def]
        return result() if callable(result) else result

    app.add_api_route(path, bare, name=path + "-bare", **options)
    app.add_api_route(path + "/arg", with_arg, name=path + "-arg", **options)


def _raise(exc: Exception) -> Any:
    def fail() -> Any:
        raise exc

    return fail


CASES: dict[str, tuple[Any, dict[str, Any]]] = {
    "/dict": ({"message": "Hello"}, {}),
    "/none": (None, {}),
    "/list": ([1, 2, 3], {}),
    "/text": ("Hello, World!", {"response_class": PlainTextResponse}),
    "/html": ("<p>hi</p>", {"response_class": HTMLResponse}),
    "/text-not-str": (42, {"response_class": PlainTextResponse}),
    "/created": ({"id": 1}, {"status_code": 201}),
    "/no-content": (None, {"status_code": 204}),
    "/custom-class": ({"a": 1}, {"response_class": Custom}),
    "/redirect": ("/elsewhere", {"response_class": RedirectResponse}),
    "/model": (Item("widget", 9.5), {"response_model": Public}),
    "/model-dict": ({"name": "w", "price": 1.0, "password": "x"}, {"response_model": Public}),
    "/model-invalid": ({"price": 1.0}, {"response_model": Public}),
    "/literal-text": ("c", {"response_class": PlainTextResponse, "response_model": Literal["a", "b"]}),
    "/str-model-text": ("fine", {"response_class": PlainTextResponse, "response_model": str}),
    "/response": (lambda: Response(b"raw", status_code=202, media_type="text/x-raw"), {}),
    "/http-exception": (_raise(HTTPException(418, "teapot", headers={"X-Why": "tea"})), {}),
    "/crash": (_raise(RuntimeError("secret detail")), {}),
}


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = App()
    for path, (result, options) in CASES.items():
        _twins(app, path, result, **options)
    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize("path", list(CASES))
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_handler_taking_nothing_answers_as_one_taking_a_parameter(
    client: TestClient, path: str, method: str
) -> None:
    bare = client.request(method, path, follow_redirects=False)
    general = client.request(method, path + "/arg?x=1", follow_redirects=False)
    assert (bare.status_code, bare.content) == (general.status_code, general.content)
    assert bare.headers.multi_items() == general.headers.multi_items()
    # A number for a text class fails in Starlette's render, as in FastAPI: a 500 both ways.
    assert bare.status_code < 500 or path in ("/crash", "/model-invalid", "/literal-text", "/text-not-str")


def test_the_shortcut_still_checks_the_response_model(client: TestClient) -> None:
    assert client.get("/model-dict").json() == {"name": "w"}  # the undeclared field is dropped
    assert client.get("/model-invalid").status_code == 500
    assert client.get("/literal-text").status_code == 500
    assert "secret" not in client.get("/crash").text


def test_background_tasks_and_an_injected_response_take_the_general_path() -> None:
    app = App()
    ran: list[str] = []

    @app.get("/bg")
    async def bg(tasks: BackgroundTasks) -> dict[str, str]:
        tasks.add_task(ran.append, "done")
        return {"ok": "yes"}

    @app.get("/headers")
    async def headers(response: Response) -> dict[str, str]:
        response.headers["X-Extra"] = "1"
        response.status_code = 202
        return {"ok": "yes"}

    client = TestClient(app)
    assert client.get("/bg").json() == {"ok": "yes"}
    assert ran == ["done"]
    answer = client.get("/headers")
    assert (answer.status_code, answer.headers["x-extra"], answer.json()) == (202, "1", {"ok": "yes"})


def test_an_error_in_a_handler_taking_nothing_reaches_the_test_client() -> None:
    app = App()

    @app.get("/crash")
    async def crash() -> str:
        raise RuntimeError("visible to the test")

    with pytest.raises(RuntimeError, match="visible to the test"):
        TestClient(app).get("/crash")


# --- the error guard without request ids ------------------------------------------------------


async def _drive(app: Any, scope: Scope) -> tuple[list[Message], BaseException | None]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    try:
        await app(scope, receive, send)
    except Exception as exc:
        return sent, exc
    return sent, None


def _scope(path: str) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 50000),
    }


@pytest.mark.anyio
@pytest.mark.parametrize("request_id_header", [None, "X-Request-ID"])
async def test_an_error_after_the_start_is_reraised_not_answered_twice(
    request_id_header: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ValueError("mid-body")

    sent, exc = await _drive(ErrorMiddleware(app, request_id_header=request_id_header), _scope("/"))
    assert isinstance(exc, ValueError)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    (record,) = [r for r in caplog.records if r.name == "toolkit.errors"]
    assert "mid-body" in record.getMessage()


@pytest.mark.anyio
@pytest.mark.parametrize("request_id_header", [None, "X-Request-ID"])
async def test_an_error_before_the_start_is_one_json_500(
    request_id_header: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    app = App(request_id_header=request_id_header)

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> Any:
            yield b"first"
            raise RuntimeError("mid-stream")

        return StreamingResponse(chunks())

    @app.get("/crash")
    async def crash() -> dict[str, str]:
        raise RuntimeError("secret detail")

    caplog.set_level(logging.ERROR)
    sent, exc = await _drive(app, _scope("/crash"))
    assert exc is None
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert [m["status"] for m in starts] == [500]
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert b"secret" not in body
    assert msgspec.json.decode(body)["detail"] == "Internal Server Error"

    sent, exc = await _drive(app, _scope("/stream"))
    assert isinstance(exc, RuntimeError)
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [200]


# --- the rate limiter counts an in-process store without awaiting ------------------------------


class AwaitedMemoryStore(MemoryStore):
    """The same store reached through its async methods only (the path every other store takes)."""


def _limited_app(store: MemoryStore) -> App:
    from toolkit import Depends
    from toolkit.ratelimit import RateLimiter

    app = App()
    limiter = RateLimiter(store)

    def user(request: Any) -> str:
        return str(request.headers["x-user"])

    @app.get("/limited", dependencies=[Depends(limiter.limit("3/minute", key=user))])
    async def limited() -> dict[str, str]:
        return {"ok": "yes"}

    return app


def test_the_in_process_counter_answers_as_the_awaited_one() -> None:
    answers = []
    for store in (MemoryStore(), AwaitedMemoryStore()):
        client = TestClient(_limited_app(store))
        seen = []
        for user in ("10.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.1", "10.0.0.1", "10.0.0.2"):
            response = client.get("/limited", headers={"x-user": user})
            seen.append((response.status_code, response.headers.get("ratelimit-remaining")))
        answers.append(seen)
    assert answers[0] == answers[1]
    assert [status for status, _ in answers[0]] == [200, 200, 200, 200, 429, 200]  # 3 a minute each


def test_count_now_reads_counters_and_numeric_values() -> None:
    store = MemoryStore()
    assert store.count_now("absent") == 0
    assert store.incr_now("hits", 2, 60) == 2
    assert store.count_now("hits") == 2
    assert store.incr_now("hits", -5, 60) == -3
    assert store.count_now("hits") == 0  # a count below zero reads as none
    anyio.run(store.set, "number", b"7", 60)
    assert store.count_now("number") == 7
    anyio.run(store.set, "text", b"seven", 60)
    assert store.count_now("text") == 0
    anyio.run(store.set, "gone", b"7", 0.0)
    assert store.count_now("gone") == 0


# --- the response cache reads an in-process store without awaiting ----------------------------


def _cached_app(store: MemoryStore) -> tuple[App, list[int]]:
    from toolkit.cache import Cache

    app = App(cache=Cache(store))
    version = [1]

    @app.get("/catalog", cache=60)
    async def catalog() -> dict[str, int]:
        return {"version": version[0]}

    return app, version


def test_the_in_process_cache_answers_as_the_awaited_one() -> None:
    answers = []
    for store in (MemoryStore(), AwaitedMemoryStore()):
        app, version = _cached_app(store)
        client = TestClient(app)
        seen = [client.get("/catalog").json(), client.get("/catalog").json()]
        version[0] = 2
        seen.append(client.get("/catalog").json())  # still the cached answer
        anyio.run(app.cache.invalidate, "catalog")  # type: ignore[union-attr]
        seen += [client.get("/catalog").json(), client.get("/catalog").json()]
        etag = client.get("/catalog").headers["etag"]
        seen.append(client.get("/catalog", headers={"if-none-match": etag}).status_code)
        answers.append(seen)
    assert answers[0] == answers[1]
    assert answers[0] == [{"version": 1}, {"version": 1}, {"version": 1}, {"version": 2}, {"version": 2}, 304]


def test_a_store_handing_back_a_reused_buffer_is_never_served_stale() -> None:
    """A store may return one mutable buffer per key (a zero-copy client): the cache must read
    what is in it now, not what an identical object held before."""
    import time

    from toolkit.cache import Cache

    class BufferStore(MemoryStore):
        def __init__(self) -> None:
            super().__init__()
            self.buffers: dict[str, bytearray] = {}

        async def get(self, key: str) -> bytes | None:
            raw = await super().get(key)
            if raw is None:
                return None
            buffer = self.buffers.setdefault(key, bytearray())
            buffer[:] = raw
            return buffer  # type: ignore[return-value]

    app = App(cache=Cache(BufferStore()))
    state = {"v": 1}

    @app.get("/a", cache=1)
    async def a() -> dict[str, int]:
        return {"v": state["v"]}

    client = TestClient(app)
    assert [client.get("/a").json(), client.get("/a").json()] == [{"v": 1}, {"v": 1}]
    time.sleep(1.1)
    state["v"] = 2
    assert [client.get("/a").json(), client.get("/a").json()] == [{"v": 2}, {"v": 2}]


@pytest.mark.anyio
async def test_a_refused_oversized_body_resets_the_request_id_even_if_sending_fails() -> None:
    from toolkit.middleware.errors import request_id_var

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("never reached: the declared length is over the limit")

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def broken_send(message: Message) -> None:
        raise OSError("connection reset")

    scope = _scope("/")
    scope["headers"] = [(b"content-length", b"100")]
    guard = ErrorMiddleware(app, request_id_header="X-Request-ID", max_body_size=10)
    with pytest.raises(OSError, match="connection reset"):
        await guard(scope, receive, broken_send)
    assert request_id_var.get() is None
