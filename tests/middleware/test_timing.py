"""TimingMiddleware: Server-Timing per toolkit stage, X-Process-Time, and an injection-safe access log."""

from __future__ import annotations

import ast
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import PlainTextResponse as StarlettePlainText
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from toolkit import App, BackgroundTasks, Depends, Middleware, StreamingResponse
from toolkit.middleware.timing import TIMING_SCOPE_KEY, TimingMiddleware
from toolkit.testing import TestClient

AccessLog = Callable[[], list[logging.LogRecord]]
STAGES = ["route", "deps", "handler", "encode", "total"]
ACCESS_LINE = re.compile(
    r'(?P<method>[A-Z]+) "(?P<path>(?:[^"\\]|\\.)*)" (?P<status>\d{3}|-) (?P<duration>\d+\.\d{3})ms'
    r" \(first byte (?P<first>\d+\.\d{3})ms\) request_id=(?P<request_id>\S+)"
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def access_log(caplog: pytest.LogCaptureFixture) -> AccessLog:
    """The records of ``toolkit.access`` so far (call it again after each request)."""
    caplog.set_level(logging.INFO, logger="toolkit.access")
    return lambda: [r for r in caplog.records if r.name == "toolkit.access"]


def server_timing(value: str) -> dict[str, float]:
    """Parse ``name;dur=1.234, ...``; every duration is a non-negative float."""
    entries: dict[str, float] = {}
    for entry in value.split(", "):
        name, _, duration = entry.partition(";dur=")
        assert re.fullmatch(r"[a-z]+", name), entry
        entries[name] = float(duration)
        assert entries[name] >= 0
    return entries


def parse_line(record: logging.LogRecord) -> dict[str, str]:
    match = ACCESS_LINE.fullmatch(record.getMessage())
    assert match is not None, record.getMessage()
    return match.groupdict()


def timed_app(*, access_log: bool = False, **options: Any) -> App:
    app = App(
        middleware=[Middleware(TimingMiddleware, access_log=access_log, **options)],
        request_id_header="X-Request-ID",
    )

    def settings() -> dict[str, int]:
        return {"factor": 2}

    @app.get("/items/{item_id}")
    async def read_item(item_id: int, config: dict[str, int] = Depends(settings)) -> dict[str, int]:
        return {"item_id": item_id * config["factor"]}

    @app.get("/sync/{item_id}")
    def read_sync(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    @app.get("/background")
    async def background(tasks: BackgroundTasks) -> dict[str, bool]:
        tasks.add_task(slow_task)
        return {"ok": True}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for chunk in (b"a", b"b", b"c"):
                yield chunk
                if chunk != b"c":
                    await anyio.sleep(0.05)

        return StreamingResponse(chunks(), media_type="text/plain")

    return app


BACKGROUND_DONE: list[float] = []


async def slow_task() -> None:
    await anyio.sleep(0.3)
    BACKGROUND_DONE.append(time.perf_counter())


async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"raw"})


# --- Server-Timing and X-Process-Time -----------------------------------------------------------


@pytest.mark.parametrize("path", ["/items/21", "/sync/21"])
def test_server_timing_has_every_stage_for_a_toolkit_route(path: str) -> None:
    response = TestClient(timed_app()).get(path)
    assert response.status_code == 200
    timing = server_timing(response.headers["server-timing"])
    assert list(timing) == STAGES
    # The stages follow one another inside the total (each value is rounded to a microsecond).
    assert sum(timing[stage] for stage in STAGES[:-1]) <= timing["total"] + 0.01
    process_time = float(response.headers["x-process-time"])
    assert process_time >= 0
    assert abs(process_time * 1000 - timing["total"]) < 0.002


def test_a_404_has_the_route_stage_and_the_total_only() -> None:
    response = TestClient(timed_app()).get("/nowhere")
    assert response.status_code == 404
    assert list(server_timing(response.headers["server-timing"])) == ["route", "total"]
    assert float(response.headers["x-process-time"]) >= 0


def test_process_time_header_is_configurable_and_can_be_disabled() -> None:
    renamed = TestClient(timed_app(process_time_header="X-Elapsed")).get("/items/1")
    assert float(renamed.headers["x-elapsed"]) >= 0
    assert "x-process-time" not in renamed.headers
    disabled = TestClient(timed_app(process_time_header=None)).get("/items/1")
    assert "x-process-time" not in disabled.headers
    assert "total" in server_timing(disabled.headers["server-timing"])


def test_server_timing_can_be_turned_off() -> None:
    response = TestClient(timed_app(server_timing=False)).get("/items/1")
    assert "server-timing" not in response.headers
    assert float(response.headers["x-process-time"]) >= 0


def starlette_app() -> Starlette:
    async def hello(request: Any) -> StarlettePlainText:
        return StarlettePlainText("hello")

    return Starlette(routes=[Route("/hello", hello)])


@pytest.mark.parametrize("inner", [raw_app, starlette_app()], ids=["raw", "starlette"])
def test_a_non_toolkit_app_gets_the_total_only(inner: ASGIApp) -> None:
    response = TestClient(TimingMiddleware(inner)).get("/hello")
    assert response.status_code == 200
    assert list(server_timing(response.headers["server-timing"])) == ["total"]
    assert float(response.headers["x-process-time"]) >= 0


def test_timing_headers_survive_gzip() -> None:
    app = App(middleware=[Middleware(TimingMiddleware), Middleware(GZipMiddleware, minimum_size=1)])

    @app.get("/big")
    async def big() -> dict[str, str]:
        return {"data": "x" * 1000}

    response = TestClient(app).get("/big", headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert list(server_timing(response.headers["server-timing"])) == STAGES


# --- background tasks are not counted -----------------------------------------------------------


def test_background_task_is_not_counted(access_log: AccessLog) -> None:
    client = TestClient(timed_app(access_log=True))
    BACKGROUND_DONE.clear()
    started = time.perf_counter()
    response = client.get("/background")
    wall_ms = (time.perf_counter() - started) * 1000
    # The premise: the client returned only after the 0.3 s task had run.
    assert len(BACKGROUND_DONE) == 1
    assert wall_ms >= 300
    # Had the task been counted, each duration would be at least wall_ms - (client overhead),
    # not at least 290 ms below it.
    total = server_timing(response.headers["server-timing"])["total"]
    assert total <= wall_ms - 290
    assert float(response.headers["x-process-time"]) * 1000 <= wall_ms - 290
    (record,) = access_log()
    line = parse_line(record)
    assert line["status"] == "200"
    assert float(line["duration"]) <= wall_ms - 290


# --- the access log -----------------------------------------------------------------------------


def test_access_log_has_one_line_per_request_with_every_field(access_log: AccessLog) -> None:
    client = TestClient(timed_app(access_log=True))
    responses = [
        client.get("/items/3", headers={"X-Request-ID": "req-1"}),
        client.post("/items/3"),
        client.get("/nowhere"),
    ]
    assert [r.status_code for r in responses] == [200, 405, 404]
    assert len(access_log()) == 3
    lines = [parse_line(record) for record in access_log()]
    expected = [("GET", "/items/3", "200"), ("POST", "/items/3", "405"), ("GET", "/nowhere", "404")]
    assert [(line["method"], line["path"], line["status"]) for line in lines] == expected
    assert [line["request_id"] for line in lines] == [r.headers["x-request-id"] for r in responses]
    assert lines[0]["request_id"] == "req-1"
    for line in lines:
        assert float(line["first"]) <= float(line["duration"])
    assert all(record.levelno == logging.INFO for record in access_log())


def test_access_log_without_request_ids(access_log: AccessLog) -> None:
    TestClient(TimingMiddleware(raw_app, access_log=True)).get("/plain")
    (record,) = access_log()
    line = parse_line(record)
    assert (line["path"], line["status"], line["request_id"]) == ("/plain", "200", "-")


def test_access_log_is_off_by_default(access_log: AccessLog) -> None:
    TestClient(timed_app()).get("/items/1")
    assert len(access_log()) == 0


@pytest.mark.parametrize(
    "url",
    [
        "/a%0d%0aGET%20/admin%20200%201.000ms",
        "/a%0aINFO:toolkit.access:forged",
        "/a%0d",
        '/a"%20200%200.001ms%20(first%20byte%200.001ms)%20request_id=forged%20"',
        "/a%5C%22b",
        "/a%5C",
        "/caf%C3%A9/%E2%80%AE%00%1b[31m",
        "/tab%09and%7F",
    ],
)
def test_path_cannot_forge_log_lines_or_break_the_quoting(url: str, access_log: AccessLog) -> None:
    scope_state: dict[str, Any] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope_state["path"] = scope["path"]
        await raw_app(scope, receive, send)

    TestClient(TimingMiddleware(app, access_log=True)).get(url)
    (record,) = access_log()
    message = record.getMessage()
    assert "\r" not in message
    assert "\n" not in message
    assert message.isascii()
    assert message.isprintable()
    line = parse_line(record)  # the quoting holds: the path ends at the first unescaped quote
    assert (line["status"], line["request_id"]) == ("200", "-")
    assert ast.literal_eval(f'"{line["path"]}"') == scope_state["path"]  # and nothing was lost


@pytest.mark.anyio
async def test_streaming_response_is_logged_once_at_the_last_body_byte(
    access_log: AccessLog,
) -> None:
    app = TimingMiddleware(timed_app(), access_log=True)
    sent: list[tuple[str, bool, int]] = []  # (type, more_body, access lines written so far)

    async def receive() -> Message:
        await anyio.sleep_forever()
        raise AssertionError  # pragma: no cover

    async def send(message: Message) -> None:
        sent.append((message["type"], message.get("more_body", False), len(access_log())))

    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1"}
    scope |= {"method": "GET", "scheme": "http", "path": "/stream", "raw_path": b"/stream", "root_path": ""}
    scope |= {"query_string": b"", "headers": [], "server": ("testserver", 80), "client": ("127.0.0.1", 1)}
    await app(scope, receive, send)
    assert sent[0][0] == "http.response.start"
    final = [i for i, (kind, more, _) in enumerate(sent) if kind == "http.response.body" and not more]
    assert final == [len(sent) - 1]
    assert [count for _, _, count in sent] == [0] * (len(sent) - 1) + [1]
    (record,) = access_log()
    line = parse_line(record)
    # Two 50 ms pauses between the chunks: the log runs to the last byte, the first byte is earlier.
    assert float(line["duration"]) >= 99  # (a hair under 100: clock resolution)
    assert float(line["first"]) <= float(line["duration"])


def test_an_error_is_logged_once(access_log: AccessLog) -> None:
    response = TestClient(timed_app(access_log=True), raise_server_exceptions=False).get("/boom")
    assert response.status_code == 500
    (record,) = access_log()
    assert record.getMessage().startswith('GET "/boom" ')
    assert f"request_id={response.headers['x-request-id']}" in record.getMessage()


# --- other scope types ---------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["websocket", "lifespan"])
async def test_websocket_and_lifespan_scopes_pass_through_untouched(kind: str, access_log: AccessLog) -> None:
    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((dict(scope), receive, send))

    receive, send = object(), object()  # passed along as they are, never called
    original = {"type": kind, "asgi": {"version": "3.0"}, "path": "/", "headers": []}
    scope = dict(original)
    await TimingMiddleware(app, access_log=True)(scope, receive, send)
    ((seen_scope, seen_receive, seen_send),) = seen
    assert seen_scope == scope == original
    assert TIMING_SCOPE_KEY not in seen_scope
    assert (seen_receive, seen_send) == (receive, send)
    assert len(access_log()) == 0


def test_an_error_before_the_response_is_logged_as_a_500(access_log: AccessLog) -> None:
    app = App(middleware=[Middleware(TimingMiddleware, access_log=True)])

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    response = TestClient(app, raise_server_exceptions=False).get("/boom")
    assert response.status_code == 500
    (record,) = access_log()
    assert record.getMessage().startswith('GET "/boom" 500 ')


def test_stage_names_are_escaped_in_the_header() -> None:
    inner = App()

    @inner.get("/x")
    async def x() -> str:
        return "ok"

    async def odd_stage(scope: Scope, receive: Receive, send: Send) -> None:
        scope[TIMING_SCOPE_KEY]["50%\u00e9"] = 0.001  # an app recording a stage of its own
        await inner(scope, receive, send)

    header = TestClient(TimingMiddleware(odd_stage)).get("/x").headers["server-timing"]
    assert header.startswith("50%_;dur=1.000, route;dur=")
    assert "total;dur=" in header


def test_without_server_timing_no_stages_are_recorded() -> None:
    seen: list[bool] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(TIMING_SCOPE_KEY in scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    response = TestClient(TimingMiddleware(app, server_timing=False)).get("/")
    assert seen == [False]
    assert "server-timing" not in response.headers
    assert float(response.headers["x-process-time"]) >= 0


@pytest.mark.parametrize(
    ("stage", "shown"),
    [
        ("a, total;dur=0", "a__total_dur_0"),
        ("x\r\ny", "x__y"),
        (1, "1"),
        (None, "None"),
        (("t", 2), "_'t'__2_"),
    ],
)
def test_a_stage_name_cannot_forge_entries_or_fail(stage: Any, shown: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope[TIMING_SCOPE_KEY][stage] = 0.002
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    header = TestClient(TimingMiddleware(app)).get("/").headers["server-timing"]
    entries = [entry.split(";")[0] for entry in header.split(", ")]
    assert entries == [shown, "total"]
