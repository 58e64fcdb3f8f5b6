"""The App: lifespan, state, middleware stack, exception handlers, threads, test clients, exports."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import pathlib
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import toolkit
from toolkit import (
    App,
    HTTPException,
    JSONResponse,
    Middleware,
    PlainTextResponse,
    Request,
    RequestValidationError,
    Response,
)
from toolkit.testing import AsyncTestClient, TestClient


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- lifespan and state --------------------------------------------------------------------------


def _lifespan_app(events: list[str]) -> App:
    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
        events.append("startup")
        app.state.greeting = "hello"
        yield {"db": "connection"}
        events.append("shutdown")

    app = App(lifespan=lifespan)

    @app.get("/state")
    async def read_state(request: Request) -> dict[str, Any]:
        return {"db": request.state.db, "greeting": request.app.state.greeting}

    return app


def test_lifespan_runs_on_client_enter_and_exit(client_factory: Any) -> None:
    events: list[str] = []
    app = _lifespan_app(events)
    client = client_factory(app)
    assert events == []
    with client:
        assert events == ["startup"]
        assert client.get("/state").json() == {"db": "connection", "greeting": "hello"}
        assert app.state.greeting == "hello"
        assert events == ["startup"]
    assert events == ["startup", "shutdown"]


def test_lifespan_receives_the_app_and_may_yield_nothing(client_factory: Any) -> None:
    seen: list[object] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        seen.append(app)
        yield

    app = App(lifespan=lifespan)

    @app.get("/")
    async def root() -> str:
        return "ok"

    with client_factory(app) as client:
        assert client.get("/").json() == "ok"
    assert seen == [app]


def test_lifespan_startup_failure_surfaces(client_factory: Any) -> None:
    reached: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        raise RuntimeError("database is down")
        yield  # pragma: no cover

    app = App(lifespan=lifespan)
    with pytest.raises(RuntimeError, match="database is down"), client_factory(app):
        reached.append("body")  # pragma: no cover
    assert reached == []


def test_app_state(client_factory: Any) -> None:
    app = App()
    app.state.counter = 0

    @app.post("/bump")
    async def bump(request: Request) -> int:
        request.app.state.counter += 1
        return int(request.app.state.counter)

    client = client_factory(app)
    assert client.post("/bump").json() == 1
    assert client.post("/bump").json() == 2
    assert app.state.counter == 2


# --- middleware ----------------------------------------------------------------------------------


class Tag:
    """Pure ASGI middleware: records its name on the way in (scope) and out (a response header)."""

    def __init__(self, app: ASGIApp, name: str) -> None:
        self.app = app
        self.name = name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("trail", []).append(self.name)

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("x-trail", self.name)
            await send(message)

        await self.app(scope, receive, send_wrapper)


def _trail_app(**kwargs: Any) -> App:
    app = App(**kwargs)

    @app.get("/trail")
    async def trail(request: Request) -> list[str]:
        return list(request.scope["trail"])

    return app


def test_middleware_order(client_factory: Any) -> None:
    app = _trail_app(middleware=[Middleware(Tag, name="a"), Middleware(Tag, name="b")])
    app.add_middleware(Tag, name="c")
    app.add_middleware(Tag, name="d")  # last added = outermost
    response = client_factory(app).get("/trail")
    assert response.json() == ["d", "c", "a", "b"]
    assert response.headers.get_list("x-trail") == ["b", "a", "c", "d"]


def test_add_middleware_after_start_is_refused(client_factory: Any) -> None:
    app = _trail_app(middleware=[Middleware(Tag, name="a")])
    assert client_factory(app).get("/trail").json() == ["a"]
    with pytest.raises(RuntimeError):
        app.add_middleware(Tag, name="late")


def test_cors_middleware(client_factory: Any) -> None:
    app = App(
        middleware=[
            Middleware(CORSMiddleware, allow_origins=["https://example.com"], allow_methods=["GET", "POST"])
        ]
    )

    @app.get("/items")
    async def items() -> list[int]:
        return [1, 2]

    client = client_factory(app)
    preflight = client.options(
        "/items",
        headers={"Origin": "https://example.com", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://example.com"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    simple = client.get("/items", headers={"Origin": "https://example.com"})
    assert simple.json() == [1, 2]
    assert simple.headers["access-control-allow-origin"] == "https://example.com"
    other = client.get("/items", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_gzip_middleware(client_factory: Any) -> None:
    app = App(middleware=[Middleware(GZipMiddleware, minimum_size=100)])
    payload = {"text": "x" * 2000}

    @app.get("/big")
    async def big() -> dict[str, str]:
        return payload

    @app.get("/small")
    async def small() -> dict[str, str]:
        return {"a": "b"}

    client = client_factory(app)
    response = client.get("/big", headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert response.json() == payload
    assert "content-encoding" not in client.get("/small", headers={"Accept-Encoding": "gzip"}).headers
    raw = client.get("/big", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers
    assert raw.json() == payload
    assert int(response.headers["content-length"]) < int(raw.headers["content-length"]) == len(raw.content)


# --- exception handlers --------------------------------------------------------------------------


class AppError(Exception):
    pass


class MissingThing(AppError):
    pass


class OtherAppError(AppError):
    pass


def test_exception_handlers_by_class_follow_the_mro(client_factory: Any) -> None:
    def app_error(request: Request, exc: Exception) -> Response:
        return JSONResponse({"handler": "app_error", "exc": type(exc).__name__}, status_code=418)

    async def missing(request: Request, exc: Exception) -> Response:
        return JSONResponse({"handler": "missing", "path": request.url.path}, status_code=404)

    app = App(exception_handlers={AppError: app_error, MissingThing: missing})

    @app.get("/missing")
    async def raise_missing() -> None:
        raise MissingThing

    @app.get("/other")
    def raise_other() -> None:
        raise OtherAppError

    client = client_factory(app)
    response = client.get("/missing")
    assert (response.status_code, response.json()) == (404, {"handler": "missing", "path": "/missing"})
    response = client.get("/other")
    assert (response.status_code, response.json()) == (418, {"handler": "app_error", "exc": "OtherAppError"})


def test_exception_handler_by_status_code_catches_router_404(client_factory: Any, tmp_path: Any) -> None:
    async def not_found(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(f"nothing at {request.url.path}", status_code=404)

    app = App(exception_handlers={404: not_found})
    app.mount("/static", StaticFiles(directory=tmp_path))

    @app.get("/items/{item_id:int}")
    async def read_item(item_id: int) -> int:
        raise HTTPException(404, "no such item")

    client = client_factory(app)
    for path in ("/nowhere", "/items/3", "/static/missing.txt"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.text == f"nothing at {path}"
    response = client.post("/items/3")  # other statuses keep the default rendering
    assert (response.status_code, response.json()) == (405, {"detail": "Method Not Allowed"})


def test_exception_handler_decorator_and_validation_override(client_factory: Any) -> None:
    app = App()

    @app.exception_handler(409)
    def conflict(request: Request, exc: Exception) -> Response:
        return JSONResponse({"conflict": True}, status_code=409)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse({"fields": [e["loc"][-1] for e in exc.errors()]}, status_code=400)

    @app.put("/things/{thing_id:int}")
    async def put_thing(thing_id: int, version: int) -> None:
        raise HTTPException(409)

    client = client_factory(app)
    assert client.put("/things/1?version=2").json() == {"conflict": True}
    response = client.put("/things/1?version=x")
    assert (response.status_code, response.json()) == (400, {"fields": ["version"]})


def test_http_exception_detail_and_headers(client_factory: Any) -> None:
    app = App()

    @app.get("/forbidden")
    async def forbidden() -> None:
        raise HTTPException(403, {"code": "policy", "ids": [1, 2]}, headers={"X-Reason": "policy"})

    @app.get("/default")
    async def default_detail() -> None:
        raise HTTPException(404)

    @app.get("/starlette")
    async def starlette_error() -> None:
        raise StarletteHTTPException(409, "taken", headers={"Retry-After": "5"})

    client = client_factory(app)
    response = client.get("/forbidden")
    assert response.status_code == 403
    assert response.json() == {"detail": {"code": "policy", "ids": [1, 2]}}
    assert response.headers["x-reason"] == "policy"
    assert client.get("/default").json() == {"detail": "Not Found"}
    response = client.get("/starlette")
    assert (response.status_code, response.json()) == (409, {"detail": "taken"})
    assert response.headers["retry-after"] == "5"


def _failing_app(**kwargs: Any) -> App:
    app = App(**kwargs)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    @app.get("/sync-boom")
    def sync_boom() -> None:
        raise ValueError("secret internals")

    @app.get("/fine")
    async def fine() -> str:
        return "fine"

    return app


@pytest.mark.parametrize("path", ["/boom", "/sync-boom"])
def test_unhandled_exception_is_a_plain_500(path: str) -> None:
    client = TestClient(_failing_app(), raise_server_exceptions=False)
    response = client.get(path)
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal Server Error"}
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text
    assert client.get("/fine").json() == "fine"  # the app keeps serving


def test_unhandled_exception_is_logged_once_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    # The guard answers and logs; it does not re-raise to the server (which would log it again).
    with caplog.at_level("ERROR", logger="toolkit.errors"):
        response = TestClient(_failing_app(), raise_server_exceptions=False).get("/boom")
    assert response.status_code == 500
    records = [r for r in caplog.records if r.name == "toolkit.errors"]
    assert len(records) == 1
    assert records[0].exc_info is not None
    assert "secret internals" in str(records[0].exc_info[1])


def test_debug_shows_the_traceback() -> None:
    client = TestClient(_failing_app(debug=True), raise_server_exceptions=False)
    response = client.get("/boom")
    assert response.status_code == 500
    assert "secret internals" in response.text


@pytest.mark.parametrize("key", [500, Exception])
@pytest.mark.parametrize("is_async", [False, True])
def test_custom_500_handler(key: int | type[Exception], is_async: bool) -> None:
    def render(request: Request, exc: Exception) -> Response:
        return JSONResponse({"oops": type(exc).__name__, "path": request.url.path}, status_code=500)

    async def render_async(request: Request, exc: Exception) -> Response:
        return render(request, exc)

    client = TestClient(
        _failing_app(exception_handlers={key: render_async if is_async else render}),
        raise_server_exceptions=False,
    )
    response = client.get("/boom")
    assert (response.status_code, response.json()) == (500, {"oops": "RuntimeError", "path": "/boom"})
    assert client.get("/fine").json() == "fine"


# --- threads -------------------------------------------------------------------------------------


def _has_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _thread_app() -> App:
    app = App()

    @app.get("/sync")
    def sync_handler() -> dict[str, Any]:
        return {"thread": threading.get_ident(), "loop": _has_running_loop()}

    @app.get("/async")
    async def async_handler() -> dict[str, Any]:
        return {"thread": threading.get_ident(), "loop": _has_running_loop()}

    return app


def test_sync_handlers_run_in_a_worker_thread(client_factory: Any) -> None:
    with client_factory(_thread_app()) as client:  # one event loop thread for every request
        on_loop = client.get("/async").json()
        in_worker = client.get("/sync").json()
        assert client.get("/async").json() == on_loop
    assert on_loop["loop"] is True
    assert in_worker["loop"] is False
    assert in_worker["thread"] != on_loop["thread"]


@pytest.mark.anyio
async def test_async_client_threads() -> None:
    async with AsyncTestClient(_thread_app()) as client:
        on_loop = (await client.get("/async")).json()
        in_worker = (await client.get("/sync")).json()
    assert on_loop == {"thread": threading.get_ident(), "loop": True}  # the test's own loop
    assert in_worker["thread"] != threading.get_ident()
    assert in_worker["loop"] is False


# --- AsyncTestClient -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_client_runs_lifespan() -> None:
    events: list[str] = []
    app = _lifespan_app(events)
    async with AsyncTestClient(app) as client:
        assert events == ["startup"]
        response = await client.get("/state")
        assert response.json() == {"db": "connection", "greeting": "hello"}
        assert (await client.get("/nowhere")).status_code == 404
    assert events == ["startup", "shutdown"]


@pytest.mark.anyio
async def test_async_client_startup_failure() -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        raise RuntimeError("cache is down")
        yield  # pragma: no cover

    with pytest.raises(RuntimeError, match="cache is down"):
        async with AsyncTestClient(App(lifespan=lifespan)):
            pass  # pragma: no cover


# --- package surface -----------------------------------------------------------------------------

EXPECTED_EXPORTS = {
    "APIRouter",
    "App",
    "Security",
    "SecurityScopes",
    "BackgroundTasks",
    "Body",
    "Cookie",
    "Depends",
    "EventSourceResponse",
    "File",
    "FileResponse",
    "Form",
    "HTMLResponse",
    "HTTPException",
    "Header",
    "JSONResponse",
    "Middleware",
    "Path",
    "PlainTextResponse",
    "Query",
    "RedirectResponse",
    "Request",
    "RequestValidationError",
    "Response",
    "ResponseValidationError",
    "RouteConfigError",
    "Router",
    "ServerSentEvent",
    "StreamingResponse",
    "UploadFile",
    "WebSocket",
    "WebSocketDisconnect",
    "WebSocketException",
    "__version__",
    "status",
}


def test_public_exports() -> None:
    assert set(toolkit.__all__) == EXPECTED_EXPORTS
    assert len(toolkit.__all__) == len(EXPECTED_EXPORTS)  # no duplicates
    namespace: dict[str, Any] = {}
    exec("from toolkit import *", namespace)
    for name in EXPECTED_EXPORTS:
        assert getattr(toolkit, name) is namespace[name]


def _source_files() -> list[pathlib.Path]:
    files = sorted(pathlib.Path(toolkit.__file__).parent.rglob("*.py"))
    assert len(files) > 5
    return files


def test_no_fastapi_or_pydantic_imports() -> None:
    for file in _source_files():
        for node in ast.walk(ast.parse(file.read_text(), filename=str(file))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                assert module.split(".")[0] not in {"fastapi", "pydantic"}, f"{file}: imports {module}"


def test_no_base_http_middleware() -> None:
    for file in _source_files():
        assert "BaseHTTPMiddleware" not in file.read_text(), file


def test_the_integrations_load_only_when_asked_for() -> None:
    """``import toolkit`` (and its middleware package) loads none of the optional integrations;
    ``toolkit.graphql`` loads strawberry, and still no pydantic."""
    code = (
        "import sys, toolkit, toolkit.middleware\n"
        "optional = ('strawberry', 'graphql', 'sqlalchemy', 'pyinstrument', 'pydantic', 'fastapi')\n"
        "print(sorted(m for m in optional if m in sys.modules))\n"
        "import toolkit.graphql\n"
        "print(sorted(m for m in optional if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = result.stdout.splitlines()
    assert before == "[]"
    # strawberry itself imported pydantic when installed, up to some 0.3xx releases (0.319 did).
    assert after in ("['graphql', 'strawberry']", "['graphql', 'pydantic', 'strawberry']")
