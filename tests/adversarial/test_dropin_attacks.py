"""Attacks on the FastAPI drop-in features: ``@app.middleware("http")``, ``Security`` scopes,
parameter models, lax JSON bodies, handlers that yield, the test clients' re-raise, per-loop Redis
pools and ``Depends(scope="function")``.

The first part holds the defects found (each test says what must hold); the second the attacks
that held, kept as guards. Everything runs in-process but one test, which needs a real server.
"""

import asyncio
import contextlib
import logging
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Annotated

import anyio
import msgspec
import pytest
import uvicorn
from adv_support import call, free_port, read_response, scope_for
from starlette.types import Message

from toolkit import (
    App,
    Depends,
    Form,
    HTTPException,
    PlainTextResponse,
    Query,
    Request,
    Response,
    RouteConfigError,
    Security,
    SecurityScopes,
    StreamingResponse,
)
from toolkit.middleware.http import CallNext
from toolkit.security.scopes import require_scopes
from toolkit.sessions import RedisStore
from toolkit.stores import StoreError
from toolkit.testing import TestClient

DEADLINE = 10.0  # a guard against hanging; nothing asserts on how long anything took


class Item(msgspec.Struct):
    name: str
    price: float


# === defects ==========================================================================================


# --- lax JSON bodies (and lax parameters): "NaN" is a float, its echo a 500 ---------------------------


def _echo_app() -> App:
    app = App()

    @app.post("/items")
    async def create(item: Item) -> Item:
        return item

    @app.get("/price")
    async def price(value: float) -> dict[str, float]:
        return {"value": value}

    return app


@pytest.mark.parametrize("text", ["NaN", "nan", "inf", "-Infinity"])
def test_a_non_finite_float_in_a_lax_body_is_not_a_500(text: str) -> None:
    """Lax bodies (the new default) read ``"NaN"``/``"inf"`` strings as floats. JSON has no such
    numbers, so the response check of any route that echoes the value reads ``null`` for a float
    and fails: a client-made 500, each with a logged traceback. FastAPI answers 200 ``null`` here;
    a 422 (refusing non-finite floats from strings, as strict mode does) is the safer answer."""
    client = TestClient(_echo_app(), raise_server_exceptions=False)
    response = client.post("/items", json={"name": "x", "price": text})
    assert response.status_code != 500, response.text
    assert response.status_code in (200, 422)
    if response.status_code == 422:
        assert response.json()["detail"][0]["loc"] == ["body", "price"]


@pytest.mark.parametrize("text", ["nan", "inf"])
def test_a_non_finite_float_parameter_is_not_a_500(text: str) -> None:
    """Same root cause through a query parameter: ``?value=nan`` echoed under ``-> dict[str, float]``."""
    client = TestClient(_echo_app(), raise_server_exceptions=False)
    response = client.get("/price", params={"value": text})
    assert response.status_code != 500, response.text
    assert response.status_code in (200, 422)


# --- Depends(scope="function") ----------------------------------------------------------------------


def test_a_request_scoped_generator_cannot_depend_on_a_function_scoped_one() -> None:
    """The function-scoped child is closed when the handler returns, the request-scoped parent only
    after the response: the parent's cleanup (commit a transaction, return a pooled object) runs
    on a closed resource. FastAPI refuses this at registration (``DependencyScopeError``)."""
    events: list[str] = []

    async def connection() -> AsyncIterator[str]:
        events.append("connection open")
        yield "conn"
        events.append("connection closed")

    async def transaction(conn: Annotated[str, Depends(connection, scope="function")]) -> AsyncIterator[str]:
        yield "tx"
        events.append("commit on " + ("a closed" if "connection closed" in events else "an open") + " conn")

    app = App()
    with pytest.raises(RouteConfigError) as refused:

        @app.get("/tx")
        async def handler(tx: Annotated[str, Depends(transaction)]) -> str:
            return tx

    # Today the route is accepted and a request logs "commit on a closed conn".
    assert "transaction" in str(refused.value)  # names the request-scoped dependency


# --- @app.middleware("http"): a body read by the dispatch -------------------------------------------


def test_a_form_read_by_the_dispatch_holds_the_urlencoded_limit() -> None:
    """Typed urlencoded forms are held to 256 KiB because python-multipart parses them byte by byte
    in Python (10 MB of "&" is seconds of CPU on the event loop). A dispatch reading
    ``request.form()`` (a CSRF check, say) is held to the app's 10 MB only: the whole body is
    parsed, then the route refuses it with a 413. The dispatch's read must stop at the same
    urlencoded limit (a 413 before parsing)."""
    parsed: list[int] = []
    app = App()

    @app.post("/login")
    async def login(username: Annotated[str, Form()] = "") -> dict[str, str]:
        return {"username": username}

    @app.middleware("http")
    async def csrf(request: Request, call_next: CallNext) -> Response:
        form = await request.form()
        parsed.append(len(form))
        return await call_next(request)

    body = b"&" * (512 * 1024)
    headers = [
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"content-length", str(len(body)).encode()),
    ]
    reply = anyio.run(call, app, scope_for("/login", method="POST", headers=headers), body)
    assert reply.status == 413
    assert parsed == [], "the dispatch parsed a 512 KiB urlencoded body the route would refuse unread"


# --- parameter models ---------------------------------------------------------------------------------


class Filters(msgspec.Struct, forbid_unknown_fields=True):
    limit: int = 10


def test_an_empty_unknown_query_key_is_reported_like_any_other() -> None:
    """``?=1`` on a model that forbids unknown fields: every other unknown key is an
    ``extra_forbidden`` entry at ``["query", key]``; the empty one is a ``value_error`` at
    ``["query"]`` echoing the whole model (``_UNKNOWN_FIELD`` needs one character: ``(.+)``)."""
    app = App()

    @app.get("/items")
    async def items(filters: Annotated[Filters, Query()]) -> dict[str, int]:
        return {"limit": filters.limit}

    reply = anyio.run(call, app, scope_for("/items", query=b"=1"))
    assert reply.status == 422
    (entry,) = reply.json()["detail"]
    assert entry["type"] == "extra_forbidden"
    assert entry["loc"] == ["query", ""]


# --- require_scopes -------------------------------------------------------------------------------------


def test_the_insufficient_scope_challenge_carries_no_control_characters() -> None:
    """Required scopes built from request data (``f"project:{project_id}:read"`` with a decoded path
    parameter) reach the ``WWW-Authenticate`` value; ``_quoted`` drops quotes and backslashes
    only. A CR/LF makes uvicorn refuse the header (a 500 instead of the 403). Keep scope-token
    characters only (RFC 6750 §3: %x21 / %x23-5B / %x5D-7E, separated by spaces)."""
    with pytest.raises(HTTPException) as caught:
        require_scopes(SecurityScopes(["project:1\r\nSet-Cookie: admin=1:read"]), "project:2:read")
    assert caught.value.status_code == 403
    challenge = (caught.value.headers or {})["WWW-Authenticate"]
    assert not any(ord(char) < 0x20 or ord(char) == 0x7F for char in challenge), repr(challenge)


@pytest.mark.parametrize("separator", ["\x1f", "\x1c", "\u00a0", "\u2028", "\x85"])
def test_granted_scopes_are_split_on_spaces_only(separator: str) -> None:
    """A ``scope`` claim is space-delimited (RFC 6749 §3.3, RFC 9068). ``str.split()`` also splits
    on Unicode separators, so one odd scope ``read<U+001F>admin`` grants ``admin``."""
    with pytest.raises(HTTPException) as caught:
        require_scopes(SecurityScopes(["admin"]), f"read{separator}admin")
    assert caught.value.status_code == 403


# === attacks that held (guards) ==========================================================================


# --- Security scopes: each scope set its own value ------------------------------------------------------


def test_one_dependency_under_different_scope_sets_is_not_shared() -> None:
    seen: list[list[str]] = []

    async def current_user(scopes: SecurityScopes) -> str:
        seen.append(list(scopes.scopes))
        require_scopes(scopes, "items:read")
        return scopes.scope_str

    app = App()

    @app.get("/mixed")
    async def mixed(
        reader: Annotated[str, Security(current_user, scopes=["items:read"])],
        plain: Annotated[str, Depends(current_user)],
        admin: Annotated[str, Security(current_user, scopes=["admin"])],
    ) -> list[str]:
        return [reader, plain, admin]  # pragma: no cover - admin is refused

    response = TestClient(app).get("/mixed")
    assert response.status_code == 403
    assert "admin" in response.headers["www-authenticate"]
    assert sorted(map(tuple, seen)) == [(), ("admin",), ("items:read",)]


# --- handlers that yield ------------------------------------------------------------------------------


def test_an_item_that_fails_the_model_is_never_sent_and_the_generator_is_closed() -> None:
    events: list[str] = []
    app = App()

    @app.get("/items")
    async def items() -> AsyncIterator[Item]:
        try:
            yield Item("ok", 1.0)
            yield {"name": "leak", "price": "not a number", "secret": "S3CRET"}  # type: ignore[misc]
            yield Item("never", 2.0)  # pragma: no cover
        finally:
            events.append("closed")

    response = TestClient(app, raise_server_exceptions=False).get("/items")
    assert response.text == '{"name":"ok","price":1.0}\n'
    assert "S3CRET" not in response.text
    assert events == ["closed"]


# --- @app.middleware("http"): many requests, every variant, each finishes, no task is left ----------------


@pytest.mark.anyio
async def test_concurrent_requests_through_a_dispatch_all_finish_without_leftover_tasks() -> None:
    closed: list[str] = []
    app = App()

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            try:
                for _ in range(1000):
                    yield b"x"
                    await anyio.sleep(0.001)
            finally:
                closed.append("stream")

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.get("/slow")
    async def slow() -> dict[str, int]:
        await anyio.sleep(0.02)
        return {"slow": 1}

    @app.get("/boom")
    async def boom() -> None:
        raise LookupError("handler failed")

    @app.middleware("http")
    async def dispatch(request: Request, call_next: CallNext) -> Response:
        mode = request.query_params["mode"]
        if mode == "timeout":
            with anyio.move_on_after(0.005):
                return await call_next(request)
            return PlainTextResponse("timeout", status_code=504)
        response = await call_next(request)
        if mode == "replace":
            return PlainTextResponse("replaced")
        if mode == "partial":
            await response.body_iterator.__aiter__().__anext__()
            return PlainTextResponse("partial")
        if mode == "raise":
            raise ValueError("dispatch failed")
        return response

    before = len(asyncio.all_tasks())
    outcomes: list[tuple[str, str, int | None]] = []

    async def one(path: str, mode: str, disconnect: bool) -> None:
        sent: list[Message] = []
        done = anyio.Event()

        async def receive() -> Message:
            with anyio.move_on_after(0.01 if disconnect else DEADLINE):
                await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if disconnect and any(m["type"] == "http.response.body" for m in sent):
                raise OSError("client gone")
            sent.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                done.set()

        scope = scope_for(path, query=f"mode={mode}".encode())
        with contextlib.suppress(Exception):
            await app(scope, receive, send)
        status = next((m["status"] for m in sent if m["type"] == "http.response.start"), None)
        outcomes.append((path, mode, status))

    with anyio.fail_after(DEADLINE):
        async with anyio.create_task_group() as tg:
            for index in range(150):
                path = ["/stream", "/slow", "/boom"][index % 3]
                mode = ["pass", "timeout", "replace", "partial", "raise"][index // 3 % 5]
                tg.start_soon(one, path, mode, path == "/stream" and mode == "pass")
    await anyio.sleep(0.05)
    assert len(outcomes) == 150
    assert len(asyncio.all_tasks()) == before
    assert all(status is not None for _, _, status in outcomes)


# --- the test clients' re-raise: a real client cannot reach it --------------------------------------------


@contextlib.contextmanager
def serve(app: App) -> Iterator[int]:
    """``app`` under a real uvicorn (in a thread of this process), on a free port."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_config=None,
        http="h11",
        ws="none",
        loop="asyncio",
    )  # loop="asyncio": older uvicorn installs uvloop's policy for the whole process otherwise
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + DEADLINE
        while not server.started:
            assert thread.is_alive(), "uvicorn exited"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        yield port
    finally:
        server.should_exit = True
        thread.join(DEADLINE)


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_a_real_client_gets_a_clean_500_and_no_re_raise() -> None:
    app = App()

    @app.get("/boom")
    async def boom() -> None:
        raise LookupError("secret internals /etc/passwd")

    @app.get("/ok")
    async def ok() -> dict[str, bool]:
        return {"ok": True}

    @app.middleware("http")
    async def passthrough(request: Request, call_next: CallNext) -> Response:
        return await call_next(request)

    records = Records()
    server_log = logging.getLogger("uvicorn.error")
    server_log.addHandler(records)
    try:
        with serve(app) as port, socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as sock:
            # Headers naming the test client's extension change nothing: extensions are the server's.
            sock.sendall(
                b"GET /boom HTTP/1.1\r\nHost: x\r\nhttp.response.debug: 1\r\nExtensions: debug\r\n\r\n"
            )
            failed = read_response(sock)
            sock.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
            after = read_response(sock)  # the same kept-alive connection still serves
    finally:
        server_log.removeHandler(records)
    assert failed.status == 500
    assert failed.body == b'{"detail":"Internal Server Error"}'
    assert after.status == 200
    assert not [m for m in records.messages if "Exception in ASGI application" in m]


# --- RedisStore: many loops, cancelled commands, aclose() in use: no reply reaches another key -------------


def test_redis_replies_never_cross_between_keys_loops_or_cancelled_commands(redis_url: str) -> None:
    store = RedisStore(url=redis_url, prefix=f"toolkit-test:{uuid.uuid4().hex}:", timeout=0.5)
    crossed: list[tuple[str, bytes]] = []

    async def user(index: int) -> None:
        key, value = f"user{index}", f"session-of-{index}".encode()
        for round_ in range(8):
            with contextlib.suppress(StoreError):
                with anyio.move_on_after((0.0005, 0.002, 1.0)[round_ % 3]):
                    await store.set(key, value, 60)
                with anyio.move_on_after((0.002, 0.0005, 1.0)[round_ % 3]):
                    got = await store.get(key)
                    if got is not None and got != value:
                        crossed.append((key, got))
            if index % 17 == round_:
                await store.aclose()  # on this loop, while others use its pool

    async def many() -> None:
        async with anyio.create_task_group() as tg:
            for index in range(40):
                tg.start_soon(user, index)

    def loops() -> None:
        for _ in range(2):
            asyncio.run(many())

    threads = [threading.Thread(target=loops) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE * 3)
    assert crossed == []
    assert store._pools == {}  # every loop ended, its pool closed with it
