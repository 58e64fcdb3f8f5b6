"""ProfilingMiddleware: pyinstrument's profile of one request on demand, in development only."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from pyinstrument import Profiler
from starlette.applications import Starlette
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from toolkit import App, StreamingResponse
from toolkit.middleware import ProfilingMiddleware
from toolkit.middleware.profiling import REFUSAL
from toolkit.testing import AsyncTestClient, TestClient

SPEEDSCOPE_SCHEMA = "https://www.speedscope.app/file-format-schema.json"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def spin(seconds: float) -> None:
    """Busy work the sampler sees as the caller's own time."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def make_app(*, debug: bool = True, **options: Any) -> tuple[App, list[dict[str, str]]]:
    """An app with the middleware and a few handlers; ``seen`` gets each handler's query params."""
    seen: list[dict[str, str]] = []
    startups: list[str] = []

    async def lifespan(app: App) -> AsyncIterator[None]:
        startups.append("started")
        yield

    app = App(debug=debug, lifespan=contextlib.asynccontextmanager(lifespan))
    app.state.startups = startups

    @app.get("/widgets/{widget_id}")
    async def read_widget_alpha(widget_id: int, request: Request, q: str = "") -> dict[str, Any]:
        seen.append(dict(request.query_params))
        spin(0.02)
        await anyio.sleep(0.02)
        return {"widget_id": widget_id, "q": q}

    @app.get("/beta")
    async def read_beta_handler() -> dict[str, str]:
        spin(0.02)
        await anyio.sleep(0.05)
        return {"beta": "yes"}

    @app.get("/sleepy")
    async def sleepy_handler() -> dict[str, bool]:
        await anyio.sleep(0.3)
        return {"slept": True}

    @app.get("/boom")
    async def exploding_handler() -> None:
        await anyio.sleep(0.01)
        raise ValueError("secret detail from /srv/app/boom.py")

    @app.get("/cookie")
    async def set_cookie_handler() -> PlainTextResponse:
        response = PlainTextResponse("cookie set", status_code=201)
        response.set_cookie("sid", "abc")
        return response

    app.add_middleware(ProfilingMiddleware, **options)
    return app, seen


def speedscope_names(response: Any) -> set[str]:
    """The frame names of a speedscope file (an httpx or httpx2 response)."""
    document = response.json()
    assert document["$schema"] == SPEEDSCOPE_SCHEMA
    return {frame["name"] for frame in document["shared"]["frames"]}


def speedscope_time_in(response: Any, name: str) -> float:
    """Seconds the profile spends inside frames called ``name`` (outermost ones only)."""
    document = response.json()
    indexes = {i for i, frame in enumerate(document["shared"]["frames"]) if frame["name"] == name}
    total, depth, opened = 0.0, 0, 0.0
    for profile in document["profiles"]:
        for event in profile["events"]:
            if event["frame"] not in indexes:
                continue
            if event["type"] == "O":
                if depth == 0:
                    opened = event["at"]
                depth += 1
            else:
                depth -= 1
                if depth == 0:
                    total += event["at"] - opened
    return total


# --- what a developer asks for ----------------------------------------------------------------


def test_html_profile_on_demand() -> None:
    app, seen = make_app()
    with TestClient(app) as client:
        response = client.get("/widgets/3?profile=html")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-profiled-status"] == "200"
    assert "<!DOCTYPE html>" in response.text
    assert "read_widget_alpha" in response.text
    assert seen == [{}]  # the handler never saw ?profile


def test_bare_parameter_means_html() -> None:
    app, _ = make_app()
    with TestClient(app) as client:
        response = client.get("/widgets/3?profile")
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "read_widget_alpha" in response.text


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", "On", " true "])
def test_common_recipe_values_mean_html(value: str) -> None:
    app, seen = make_app()
    with TestClient(app) as client:
        response = client.get("/widgets/3", params={"profile": value, "q": "x"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "read_widget_alpha" in response.text
    assert seen == [{"q": "x"}]


def test_speedscope_profile_on_demand() -> None:
    app, _ = make_app()
    with TestClient(app) as client:
        response = client.get("/widgets/3", params={"profile": "speedscope"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-disposition"] == 'attachment; filename="profile.speedscope.json"'
    assert "read_widget_alpha" in speedscope_names(response)
    assert "spin" in speedscope_names(response)


def test_header_trigger_when_configured() -> None:
    app, seen = make_app(header="X-Profile")
    with TestClient(app) as client:
        response = client.get("/widgets/3?q=a", headers={"X-Profile": "speedscope"})
        assert "read_widget_alpha" in speedscope_names(response)
        assert seen == [{"q": "a"}]
        assert client.get("/widgets/3", headers={"X-Other": "html"}).json() == {"widget_id": 3, "q": ""}


def test_configured_query_param_name() -> None:
    app, seen = make_app(query_param="_prof")
    with TestClient(app) as client:
        assert client.get("/widgets/3?profile=html").json() == {"widget_id": 3, "q": ""}
        assert "read_widget_alpha" in client.get("/widgets/3?_prof=html").text
    assert seen == [{"profile": "html"}, {}]


def test_other_parameters_reach_the_handler_unchanged() -> None:
    app, seen = make_app()
    with TestClient(app) as client:
        response = client.get("/widgets/3?q=a%20b&profile=html&x=%26&y=&profile=html")
    assert response.status_code == 200
    assert seen == [{"q": "a b", "x": "&", "y": ""}]


# --- requests that do not ask ------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/widgets/3?q=1", "/widgets/3?user_profile=html&q=2", "/nope", "/cookie"])
def test_a_request_that_does_not_ask_is_untouched(url: str) -> None:
    with_middleware, seen = make_app()
    without, seen_without = make_app()
    without.user_middleware.clear()
    with TestClient(with_middleware) as client, TestClient(without) as plain:
        response, expected = client.get(url), plain.get(url)
    assert (response.status_code, response.content) == (expected.status_code, expected.content)
    assert response.headers.multi_items() == expected.headers.multi_items()
    assert seen == seen_without


def test_no_profiler_is_started_for_a_request_that_does_not_ask(monkeypatch: pytest.MonkeyPatch) -> None:
    app, _ = make_app()
    with TestClient(app) as client:
        middleware = _find(app)

        def refuse(*args: Any, **kwargs: Any) -> None:
            raise AssertionError("a profiler was made")

        monkeypatch.setattr(middleware, "_profiler", refuse)
        assert client.get("/widgets/3?q=x&user_profile=1").json() == {"widget_id": 3, "q": "x"}


def _find(app: App) -> ProfilingMiddleware:
    layer: Any = app.middleware_stack
    while not isinstance(layer, ProfilingMiddleware):
        layer = layer.app
    return layer


# --- refused when debug is off --------------------------------------------------------------


def test_debug_off_refuses_to_start() -> None:
    app, _ = make_app(debug=False)
    with pytest.raises(RuntimeError, match="debug is off") as raised, TestClient(app):
        pass
    assert "force=True" in str(raised.value)
    assert app.state.startups == []  # the app's own startup never ran


@pytest.mark.anyio
async def test_debug_off_refuses_a_real_server_startup(caplog: pytest.LogCaptureFixture) -> None:
    app, _ = make_app(debug=False)
    server = uvicorn.Server(uvicorn.Config(app, port=0, lifespan="on", log_config=None, ws="none"))
    code = None
    try:
        await server.serve()
    except SystemExit as exited:  # newer uvicorn exits 3 at a failed startup (0.34 returns)
        code = exited.code
    assert code in (None, 3)
    assert not server.started  # it never bound or served
    assert REFUSAL in caplog.text


def test_debug_off_without_lifespan_serves_no_profile(caplog: pytest.LogCaptureFixture) -> None:
    app, seen = make_app(debug=False)
    client = TestClient(app)  # no ``with``: no lifespan
    for _ in range(2):
        response = client.get("/widgets/3?profile=html")
        assert response.json() == {"widget_id": 3, "q": ""}  # as if the middleware were not there
    assert client.get("/widgets/3?profile=pdf").status_code == 200  # nothing tells it is there
    assert seen == [{"profile": "html"}, {"profile": "html"}, {"profile": "pdf"}]
    refusals = [r for r in caplog.records if r.name == "toolkit.profiling"]
    assert [r.getMessage() for r in refusals] == [REFUSAL]  # logged once


def test_force_profiles_with_debug_off(caplog: pytest.LogCaptureFixture) -> None:
    app, _ = make_app(debug=False, force=True)
    with TestClient(app) as client:
        assert "read_widget_alpha" in client.get("/widgets/3?profile=html").text
    assert any(
        "forced on with debug off" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
    )


def test_toolkit_dev_debug_switch_is_read_at_startup() -> None:
    app, _ = make_app(debug=False)
    app.debug = True  # what `toolkit dev` does after importing the app
    with TestClient(app) as client:
        assert "read_widget_alpha" in client.get("/widgets/3?profile").text


def test_allow_refuses_quietly() -> None:
    def only_admin(conn: HTTPConnection) -> bool:
        return conn.headers.get("x-admin") == "yes"

    app, seen = make_app(debug=False, force=True, allow=only_admin)
    with TestClient(app) as client:
        assert client.get("/widgets/3?profile=html").json() == {"widget_id": 3, "q": ""}
        assert seen == [{"profile": "html"}]
        assert "read_widget_alpha" in client.get("/widgets/3?profile=html", headers={"X-Admin": "yes"}).text


# --- async, concurrency --------------------------------------------------------------------


def test_await_time_is_in_the_profile() -> None:
    app, _ = make_app()
    with TestClient(app) as client:
        response = client.get("/sleepy?profile=speedscope")
    names = speedscope_names(response)
    assert {"sleepy_handler", "sleep", "[await]"} <= names
    assert speedscope_time_in(response, "sleepy_handler") >= 0.25
    assert speedscope_time_in(response, "[await]") >= 0.25


@pytest.mark.anyio
async def test_concurrent_profiled_requests_each_get_their_own() -> None:
    app, _ = make_app()
    async with AsyncTestClient(app) as client:
        results: dict[str, httpx.Response] = {}

        async def get(key: str, url: str) -> None:
            results[key] = await client.get(url)

        async with anyio.create_task_group() as tg:
            tg.start_soon(get, "alpha", "/widgets/1?profile=speedscope")
            tg.start_soon(get, "beta", "/beta?profile=speedscope")
            tg.start_soon(get, "plain", "/widgets/2")
            tg.start_soon(get, "plain_beta", "/beta")
    alpha, beta = speedscope_names(results["alpha"]), speedscope_names(results["beta"])
    assert "read_widget_alpha" in alpha
    assert "read_beta_handler" not in alpha
    assert "read_beta_handler" in beta
    assert "read_widget_alpha" not in beta
    assert results["plain"].json() == {"widget_id": 2, "q": ""}
    assert results["plain_beta"].json() == {"beta": "yes"}


@pytest.mark.anyio
async def test_many_concurrent_profiles_never_fail() -> None:
    app, _ = make_app()
    async with AsyncTestClient(app) as client:
        responses = await asyncio.gather(
            *(client.get(f"/widgets/{i}?profile={'html' if i % 2 else 'speedscope'}") for i in range(8)),
            *(client.get(f"/widgets/{i}") for i in range(8)),
        )
    assert [r.status_code for r in responses] == [200] * 16
    assert all("read_widget_alpha" in r.text for r in responses[:8])
    assert [r.json() for r in responses[8:]] == [{"widget_id": i, "q": ""} for i in range(8)]


def light_app(**options: Any) -> App:
    """Two handlers doing light CPU work between ``await anyio.sleep(0)``: what mixed profiles."""
    app = App(debug=True)

    def small_loops() -> int:
        total = 0
        for _ in range(2):
            for i in range(3000):
                total += i
        return total

    @app.get("/alpha")
    async def alpha_work() -> dict[str, int]:
        for _ in range(40):
            small_loops()
            await anyio.sleep(0)
        return {"alpha": 1}

    @app.get("/beta")
    async def beta_work() -> dict[str, int]:
        for _ in range(40):
            small_loops()
            await anyio.sleep(0)
        return {"beta": 1}

    app.add_middleware(ProfilingMiddleware, **options)
    return app


@pytest.mark.anyio
async def test_concurrent_profiled_requests_never_mix() -> None:
    leaks = []
    async with AsyncTestClient(light_app()) as client:
        for round_ in range(20):
            alpha, beta = await asyncio.gather(
                client.get("/alpha?profile=speedscope"), client.get("/beta?profile=speedscope")
            )
            alpha_names, beta_names = speedscope_names(alpha), speedscope_names(beta)
            assert "alpha_work" in alpha_names
            assert "beta_work" in beta_names
            if "beta_work" in alpha_names or "alpha_work" in beta_names:
                leaks.append(round_)
    assert leaks == []


@pytest.mark.anyio
async def test_a_request_not_asking_never_appears_in_a_profile() -> None:
    leaks = []
    async with AsyncTestClient(light_app()) as client:
        for round_ in range(20):
            alpha, beta = await asyncio.gather(client.get("/alpha?profile=speedscope"), client.get("/beta"))
            assert beta.json() == {"beta": 1}
            if "beta_work" in speedscope_names(alpha):
                leaks.append(round_)
    assert leaks == []


@pytest.mark.anyio
async def test_a_second_profile_waits_for_the_first() -> None:
    app, _ = make_app()
    async with AsyncTestClient(app) as client:
        done: list[str] = []

        async def get(key: str, url: str) -> httpx.Response:
            response = await client.get(url)
            done.append(key)
            return response

        sleepy, widget, plain = await asyncio.gather(
            get("sleepy", "/sleepy?profile=speedscope"),
            get("widget", "/widgets/1?profile=speedscope"),
            get("plain", "/widgets/2"),
        )
    assert done == ["plain", "sleepy", "widget"]  # the unprofiled one was not held up
    assert plain.json() == {"widget_id": 2, "q": ""}
    assert "read_widget_alpha" not in speedscope_names(sleepy)
    assert "sleepy_handler" not in speedscope_names(widget)
    assert speedscope_time_in(widget, "read_widget_alpha") < 0.2  # its own time, not its wait


@pytest.mark.anyio
async def test_a_profile_waiting_too_long_is_a_409() -> None:
    app, seen = make_app(wait=0.05)
    async with AsyncTestClient(app) as client:
        sleepy, widget, plain = await asyncio.gather(
            client.get("/sleepy?profile=html"),
            client.get("/widgets/1?profile=html"),
            client.get("/widgets/2"),
        )
        assert sleepy.status_code == 200
        assert widget.status_code == 409
        assert widget.headers["content-type"] == "application/json"
        assert "another profiled request is running" in widget.json()["detail"].lower()
        assert plain.json() == {"widget_id": 2, "q": ""}
        assert seen == [{}]  # the refused one never ran the app
        assert "read_widget_alpha" in (await client.get("/widgets/1?profile=html")).text


def test_wait_zero_still_profiles_when_none_runs() -> None:
    app, _ = make_app(wait=0)
    with TestClient(app) as client:
        assert "read_widget_alpha" in client.get("/widgets/3?profile=html").text


def test_profiles_keep_working_on_a_second_event_loop() -> None:
    app, _ = make_app()

    async def two_at_once() -> None:
        async with AsyncTestClient(app) as client:
            responses = await asyncio.gather(
                client.get("/widgets/1?profile=speedscope"), client.get("/beta?profile=speedscope")
            )
        assert [r.status_code for r in responses] == [200, 200]

    for _ in range(2):  # two loops in a row, the lock contended in each
        anyio.run(two_at_once)
    with TestClient(app) as client:
        assert "read_widget_alpha" in client.get("/widgets/3?profile=html").text


def test_a_request_already_profiled_around_the_app_is_a_conflict() -> None:
    app, _ = make_app()

    def outer_profiler(inner: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await inner(scope, receive, send)
                return
            profiler = Profiler(async_mode="enabled")
            profiler.start()
            try:
                await inner(scope, receive, send)
            finally:
                profiler.stop()

        return wrapped

    with TestClient(outer_profiler(app)) as client:
        response = client.get("/widgets/3?profile=html")
        assert response.status_code == 409
        assert "already being profiled" in response.json()["detail"]
        assert client.get("/widgets/3").json() == {"widget_id": 3, "q": ""}
    with TestClient(app) as client:  # nothing is left running: a profile works
        assert "read_widget_alpha" in client.get("/widgets/3?profile=html").text


def test_the_middleware_twice_profiles_in_the_outer_one() -> None:
    app, _ = make_app()
    app.add_middleware(ProfilingMiddleware, query_param="outer")
    with TestClient(app) as client:
        response = client.get("/widgets/3?outer=html&profile=html")
        # The outer one answers its profile; the inner one's 409 is the response it profiled.
        assert (response.status_code, response.headers["x-profiled-status"]) == (200, "409")
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert "read_widget_alpha" in client.get("/widgets/3?profile=html").text


# --- errors, streaming, other middleware -------------------------------------------------------


def test_a_profiled_request_that_raises_takes_the_normal_error_path() -> None:
    app, _ = make_app(debug=False, force=True)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom?profile=html")
        assert response.status_code == 500
        assert response.json() == {"detail": "Internal Server Error"}
        assert "secret detail" not in response.text
        assert "Traceback" not in response.text
        # The profiler was stopped: the next profiled request works.
        assert "read_widget_alpha" in client.get("/widgets/3?profile=html").text


def test_a_profiled_request_that_raises_in_debug_shows_the_traceback_as_usual() -> None:
    app, _ = make_app()
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom?profile=speedscope")
    assert response.status_code == 500
    assert "ValueError" in response.text  # debug's traceback, from the error guard


def test_an_error_response_is_profiled_with_its_status() -> None:
    app, _ = make_app()
    with TestClient(app) as client:
        response = client.get("/widgets/not-a-number?profile=html")
        assert (response.status_code, response.headers["x-profiled-status"]) == (200, "422")
        assert client.get("/missing?profile=html").headers["x-profiled-status"] == "404"


def test_set_cookie_of_the_app_is_kept() -> None:
    app, _ = make_app()
    with TestClient(app) as client:
        response = client.get("/cookie?profile=html")
    assert response.headers["x-profiled-status"] == "201"
    assert response.headers.get_list("set-cookie") == ["sid=abc; Path=/; SameSite=lax"]
    assert "cookie set" not in response.text


def test_a_streaming_response_is_drained_and_replaced() -> None:
    app, _ = make_app()
    finished: list[bool] = []

    @app.get("/stream")
    async def streaming_handler() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(5):
                spin(0.005)
                await anyio.sleep(0.01)
                yield b"chunk %d\n" % i
            finished.append(True)

        return StreamingResponse(chunks(), media_type="text/plain")

    with TestClient(app) as client:
        response = client.get("/stream?profile=speedscope")
        assert finished == [True]
        assert "chunks" in speedscope_names(response)
        assert b"chunk 0\n" not in response.content
        assert client.get("/stream").text == "".join(f"chunk {i}\n" for i in range(5))


def test_websocket_passes_through() -> None:
    app, _ = make_app()

    @app.websocket("/ws")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(f"{websocket.query_params.get('profile')}:{await websocket.receive_text()}")
        await websocket.close()

    with TestClient(app) as client, client.websocket_connect("/ws?profile=html") as ws:
        ws.send_text("hi")
        assert ws.receive_text() == "html:hi"


def test_gzip_outside_compresses_the_profile() -> None:
    app, _ = make_app()
    app.add_middleware(GZipMiddleware, minimum_size=500)
    with TestClient(app) as client:
        response = client.get("/widgets/3?profile=html", headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert "read_widget_alpha" in response.text


def test_plain_starlette_app() -> None:
    async def starlette_handler(request: Request) -> PlainTextResponse:
        await anyio.sleep(0.02)
        return PlainTextResponse(request.url.query or "-")

    def build(debug: bool) -> Starlette:
        app = Starlette(debug=debug, routes=[Route("/", starlette_handler)])
        app.add_middleware(ProfilingMiddleware)
        return app

    with TestClient(build(True)) as client:
        assert "starlette_handler" in client.get("/?profile=html&a=1").text
        assert client.get("/?a=1").text == "a=1"
    with pytest.raises(RuntimeError, match="debug is off"), TestClient(build(False)):
        pass


def test_a_bare_asgi_app_counts_as_debug_off() -> None:
    async def bare(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        await PlainTextResponse("bare")(scope, receive, send)

    client = TestClient(ProfilingMiddleware(bare))
    assert client.get("/?profile=html").text == "bare"
    forced: ASGIApp = ProfilingMiddleware(bare, force=True)
    assert TestClient(forced).get("/?profile=html").headers["content-type"].startswith("text/html")


# --- what an attacker tries ---------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["pdf", "../../etc/passwd", "html,speedscope", "<script>", "0", "false", "no", "off", "true1"]
)
def test_unknown_format_is_a_400(value: str) -> None:
    app, seen = make_app()
    with TestClient(app) as client:
        response = client.get("/widgets/3", params={"profile": value})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    detail = response.json()["detail"]
    assert "html, speedscope" in detail
    assert "?profile=html" in detail
    assert "1, true, yes, on or a bare ?profile mean html" in detail
    assert seen == []  # the app did not run


def test_conflicting_formats_are_a_400() -> None:
    app, _ = make_app(header="X-Profile")
    with TestClient(app) as client:
        assert client.get("/widgets/3?profile=html&profile=speedscope").status_code == 400
        assert client.get("/widgets/3?profile=html", headers={"X-Profile": "speedscope"}).status_code == 400
        assert client.get("/widgets/3?profile=HTML", headers={"X-Profile": " html"}).status_code == 200
        assert client.get("/widgets/3?profile=true", headers={"X-Profile": "html"}).status_code == 200
        assert client.get("/widgets/3?profile=1", headers={"X-Profile": "speedscope"}).status_code == 400


def test_a_hostile_path_cannot_inject_into_the_html_page() -> None:
    app, _ = make_app()
    with TestClient(app) as client:
        response = client.get("/%3C/script%3E%3Cscript%3Ealert(1)%3C/script%3E?profile=html")
    assert response.headers["x-profiled-status"] == "404"
    assert "<script>alert(1)" not in response.text
    assert "%3C/script%3E%3Cscript%3Ealert(1)" in response.text  # the description, encoded


# --- configuration and installation -----------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"query_param": None}, "query_param or a header"),
        ({"query_param": ""}, "non-empty ASCII"),
        ({"interval": 0}, "positive"),
        ({"wait": -1}, "0 or more"),
        ({"wait": float("nan")}, "0 or more"),
    ],
)
def test_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ProfilingMiddleware(PlainTextResponse("x"), **options)


def test_missing_pyinstrument_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "pyinstrument" or m.startswith("pyinstrument.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pyinstrument", None)
    with pytest.raises(ImportError, match=r"pip install 'toolkit\[profiling\]'"):
        ProfilingMiddleware(PlainTextResponse("x"))


def test_importing_toolkit_does_not_import_pyinstrument() -> None:
    code = (
        "import sys, toolkit, toolkit.middleware\n"
        "from toolkit.middleware import ProfilingMiddleware\n"
        "assert not [m for m in sys.modules if m.startswith('pyinstrument')], 'pyinstrument imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
