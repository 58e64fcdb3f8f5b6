"""Second round of attacks on the FastAPI drop-in features: the fixes of the first round (lax
NaN/infinity, cleanups under cancellation, the urlencoded limit of a function middleware's form
read, ``require_scopes``, empty unknown keys) and what was not attacked yet (``get_openapi``, the
docs pages, ``jsonable_encoder``, ``ServerSentEvent``, ``root_path``, start-up hooks, ``Security``
under ``dependency_overrides``, parameter models with aliases, ``RequestValidationError``
contents, the test clients' re-raise around a plain Starlette app).

The first part holds the defects found (each test says what must hold); the second the attacks
that held, kept as guards. Everything runs in-process.
"""

import contextlib
import dataclasses
import json
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import anyio
import msgspec
import pytest
from adv_support import call, scope_for
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import Message

from toolkit import (
    App,
    Body,
    Cookie,
    Depends,
    Form,
    Header,
    HTTPException,
    JSONResponse,
    Query,
    Request,
    Response,
    Router,
    Security,
    SecurityScopes,
    WebSocket,
)
from toolkit.cache import Cache
from toolkit.encoders import jsonable_encoder
from toolkit.middleware.errors import ErrorMiddleware
from toolkit.middleware.http import CallNext
from toolkit.openapi.docs import get_redoc_html, get_swagger_ui_html
from toolkit.openapi.utils import get_openapi
from toolkit.responses import EventSourceResponse, ServerSentEvent
from toolkit.security import APIKeyHeader, OAuth2PasswordRequestFormStrict
from toolkit.security.scopes import require_scopes
from toolkit.sessions import MemoryStore
from toolkit.testing import TestClient, run_lifespan

DEADLINE = 10.0  # a guard against hanging; nothing asserts on how long anything took
SECRET = "hunter2-S3CRET"


class Item(msgspec.Struct):
    name: str
    price: float


# === defects ==========================================================================================


# --- RequestValidationError: a missing field echoes its neighbours, secrets included -------------------


def _login_app() -> App:
    app = App()

    @app.post("/token")
    async def token(form: Annotated[OAuth2PasswordRequestFormStrict, Depends()]) -> dict[str, str]:
        return {"username": form.username}

    @app.post("/form")
    async def form_login(
        username: Annotated[str, Form()], password: Annotated[str, Form()]
    ) -> dict[str, str]:
        return {"username": username}

    @app.post("/embedded")
    async def embedded(username: Annotated[str, Body()], password: Annotated[str, Body()]) -> dict[str, str]:
        return {"username": username}

    @app.post("/mixed")
    async def mixed(item: Item, api_secret: Annotated[str, Body()]) -> dict[str, str]:
        return {"name": item.name}

    return app


@pytest.mark.parametrize(
    ("path", "request_kwargs"),
    [
        # A client that leaves out grant_type (most do: it is optional in the non-strict form).
        ("/token", {"data": {"username": "alice", "password": SECRET, "client_secret": SECRET}}),
        ("/form", {"data": {"password": SECRET}}),
        ("/embedded", {"json": {"password": SECRET}}),
        ("/mixed", {"json": {"api_secret": SECRET}}),
    ],
)
def test_a_missing_parameter_does_not_echo_the_other_parameters(path: str, request_kwargs: Any) -> None:
    """Separate ``Form()``/``Body()`` parameters are gathered into one synthetic Struct, so the
    ``missing`` entry of one of them echoes that Struct's input: the whole form or body, the
    password and ``client_secret`` included (``OAuth2PasswordRequestFormStrict`` without
    ``grant_type``). FastAPI validates each parameter on its own and answers ``"input": null``
    there; error bodies end up in client logs, error trackers and proxies' logs. Only a model's
    own missing field may echo the model's input (as pydantic does)."""
    response = TestClient(_login_app()).post(path, **request_kwargs)
    assert response.status_code == 422
    assert SECRET not in response.text, response.json()
    for entry in response.json()["detail"]:
        if entry["type"] == "missing" and len(entry["loc"]) == 2:
            assert entry["input"] is None, entry


# --- the urlencoded form limit: a second Content-Type line ------------------------------------------------


def _form_apps() -> list[tuple[str, App, list[int]]]:
    typed = App()

    @typed.post("/login")
    async def login(username: Annotated[str, Form()] = "") -> dict[str, str]:
        return {"username": username}

    parsed: list[int] = []
    dispatch = App()

    @dispatch.post("/login")
    async def login2(username: Annotated[str, Form()] = "") -> dict[str, str]:
        return {"username": username}

    @dispatch.middleware("http")
    async def csrf(request: Request, call_next: CallNext) -> Response:
        form = await request.form()
        parsed.append(len(form))
        return await call_next(request)

    return [("typed form", typed, []), ("dispatch form", dispatch, parsed)]


@pytest.mark.parametrize("which", [0, 1], ids=["typed-form", "dispatch-form"])
def test_a_second_content_type_line_does_not_lift_the_urlencoded_limit(which: int) -> None:
    """``form_body_limit`` reads the *last* ``Content-Type`` line (``body_headers`` lets a later
    line win), Starlette's ``request.form()`` parses by the *first*. A client sends
    ``application/x-www-form-urlencoded`` then ``text/plain``: the limit is the app's 10 MB, the
    parser still parses the body as urlencoded, byte by byte in Python (seconds of CPU on the
    event loop for 10 MB of ``&``). Uvicorn (h11 and httptools) passes both lines on. The 256 KiB
    limit must hold whichever line the parser reads (any urlencoded line, or refuse a request
    with two Content-Type lines)."""
    name, app, parsed = _form_apps()[which]
    body = b"&" * (512 * 1024)
    headers = [
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"content-type", b"text/plain"),
        (b"content-length", str(len(body)).encode()),
    ]
    reply = anyio.run(call, app, scope_for("/login", method="POST", headers=headers), body)
    assert reply.status in (400, 413, 415), f"{name}: {reply.status} {reply.body[:100]!r}"
    assert parsed == [], "the dispatch parsed a 512 KiB urlencoded body"


def test_a_form_read_by_hand_in_a_handler_holds_the_urlencoded_limit() -> None:
    """The first round held a function middleware's ``request.form()`` to the 256 KiB urlencoded
    limit; a handler (or dependency) reading ``await request.form()`` itself (a webhook, a port of
    FastAPI code) is still held to 10 MB only: 4 MiB of ``&`` is ~1.5 s of parsing on the event
    loop, 10 MB ~4 s, for one request. Same cause, same fix: the route's limit for an urlencoded
    body read through the ``Request`` is the urlencoded one unless the route sets
    ``max_body_size``."""
    parsed: list[int] = []
    app = App()

    @app.post("/hook")
    async def hook(request: Request) -> dict[str, int]:
        form = await request.form()
        parsed.append(len(form))
        return {"fields": len(form)}

    body = b"&" * (512 * 1024)
    headers = [
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"content-length", str(len(body)).encode()),
    ]
    reply = anyio.run(call, app, scope_for("/hook", method="POST", headers=headers), body)
    assert reply.status == 413
    assert parsed == []


# --- cleanups under a pending cancellation: the paths the first fix did not cover ------------------------


def _run_cancelled_sync_handler(scope_name: str, raises: bool) -> list[str]:
    """A sync handler runs in a worker thread while its request is cancelled (a timeout around
    the app, a server shutting down); the thread then returns or raises. ``send`` does not
    checkpoint, as uvicorn's does not (``transport.write``). Returns the cleanup events."""
    events: list[str] = []
    entered = threading.Event()
    release = threading.Event()

    def make(name: str) -> Any:
        async def resource() -> AsyncIterator[str]:
            events.append(f"{name} acquired")
            try:
                yield name
            finally:
                await anyio.sleep(0)  # e.g. await connection.close()
                events.append(f"{name} released")

        return resource

    outer, inner = make("outer"), make("inner")
    app = App()

    @app.get("/sync")
    def handler(
        a: Annotated[str, Depends(outer, scope=scope_name)],  # type: ignore[arg-type]
        b: Annotated[str, Depends(inner, scope=scope_name)],  # type: ignore[arg-type]
    ) -> str:
        entered.set()
        release.wait(DEADLINE)
        if raises:
            raise LookupError("the database timed out too")
        return a + b

    async def receive() -> Message:
        await anyio.sleep_forever()
        raise AssertionError  # pragma: no cover

    async def send(message: Message) -> None:
        pass

    async def main() -> None:
        with anyio.fail_after(DEADLINE):
            async with anyio.create_task_group() as tg:
                request_scope = anyio.CancelScope()

                async def run() -> None:
                    # The handler's error, re-raised or not: only the cleanups matter here.
                    with request_scope, contextlib.suppress(Exception):
                        await app(scope_for("/sync"), receive, send)

                tg.start_soon(run)
                while not entered.is_set():
                    await anyio.sleep(0.001)
                request_scope.cancel()
                await anyio.sleep(0.01)
                release.set()

    anyio.run(main)
    return sorted(events)


@pytest.mark.parametrize(
    ("scope_name", "raises"),
    [("function", False), ("function", True), ("request", True), ("request", False)],
    ids=[
        "function-scoped/handler-returns",
        "function-scoped/handler-raises",
        "request-scoped/handler-raises",
        "request-scoped/handler-returns",
    ],
)
def test_every_cleanup_completes_when_a_cancellation_is_pending(scope_name: str, raises: bool) -> None:
    """The first round's fix (``close(check_first=True)``) covers function-scoped cleanups after
    a handler *returned*. Two paths still run the newest cleanup unshielded with the
    cancellation already pending, so it is cancelled at its first ``await`` and the resource is
    never released (a pooled connection lost per timed-out request):

    - the handler *raised*: ``res.early.unwind(exc)`` and ``_fail``'s ``stack.unwind(exc)`` do not
      check first (a handler failing at its deadline is the common case: its own timeout);
    - request-scoped cleanups after a normal return: with a server whose ``send`` does not
      checkpoint (uvicorn), ``await response(...)`` completes and ``stack.close()`` runs them.

    Through ``@app.middleware("http")`` with ``move_on_after`` around ``call_next`` the first path
    reproduces as well. Every cleanup must run to its end, once."""
    events = _run_cancelled_sync_handler(scope_name, raises)
    assert events == ["inner acquired", "inner released", "outer acquired", "outer released"]


# --- lax NaN: a custom JSON response class ---------------------------------------------------------


class VendorJSON(JSONResponse):
    media_type = "application/vnd.api+json"


@dataclasses.dataclass
class Price:
    price: float
    currency: str = "EUR"


def test_a_nan_under_a_custom_json_response_class_is_not_a_500() -> None:
    """The first round's fix writes a NaN or an infinity a lax float read as ``null``. A route
    whose response class is not exactly ``JSONResponse`` (a subclass with another media type, or
    any route of ``App(default_response_class=VendorJSON)``) has its checked JSON read back by
    ``reread`` (``response_decoder.decode``), which refuses the ``null`` it wrote for a float:
    ``?value=nan`` is a 500 with a logged traceback, on every route echoing a float. (FastAPI
    500s under a custom JSON class too; the toolkit's own rule, ``null``, should not depend on
    the class: decode the re-read leniently, or hand the checked value over instead.)"""
    app = App(default_response_class=VendorJSON)

    @app.get("/item")
    async def item(value: float) -> Item:
        return Item("x", value)

    @app.get("/price")
    async def price(value: float) -> Price:
        return Price(value)

    client = TestClient(app, raise_server_exceptions=False)
    for path in ("/item", "/price"):
        for text in ("nan", "inf", "-Infinity"):
            response = client.get(path, params={"value": text})
            assert response.status_code == 200, (path, text, response.text)
            assert response.json()["price"] is None


# --- duplicated headers: the check and the use read different lines ----------------------------------


class Caller(msgspec.Struct):
    x_api_key: str


def test_a_header_parameter_reads_the_same_line_as_the_security_scheme() -> None:
    """With a header sent twice, ``Header()`` parameters and header models take the *last* line
    (``extract_params`` and ``ModelParam.gather`` overwrite), while Starlette's
    ``request.headers`` (``APIKeyHeader``, middleware, any ``request.headers.get``) and FastAPI's
    parameters take the *first*. A dependency checks one API key and the handler uses another:
    ``X-API-Key: <valid key>`` then ``X-API-Key: <someone else's id>``. Both must read one line
    (the first, as FastAPI), or a repeated single-valued header be refused."""
    api_key = APIKeyHeader(name="X-API-Key")
    app = App()

    @app.get("/plain")
    async def plain(
        checked: Annotated[str, Security(api_key)], x_api_key: Annotated[str, Header()]
    ) -> list[str]:
        return [checked, x_api_key]

    @app.get("/model")
    async def model(
        checked: Annotated[str, Security(api_key)], caller: Annotated[Caller, Header()]
    ) -> list[str]:
        return [checked, caller.x_api_key]

    client = TestClient(app)
    read = {
        path: client.get(path, headers=[("X-API-Key", "valid-key"), ("X-API-Key", "victim-tenant")]).json()
        for path in ("/plain", "/model")
    }
    # Today: {"/plain": ["valid-key", "victim-tenant"], "/model": ["valid-key", "victim-tenant"]}.
    assert read == {"/plain": ["valid-key", "valid-key"], "/model": ["valid-key", "valid-key"]}


# === attacks that held (guards) ==========================================================================


# --- NaN: no bound is bypassed, no response path fails ------------------------------------------------

Bounded = Annotated[float, msgspec.Meta(ge=0, le=100)]


class BoundedModel(msgspec.Struct):
    value: Bounded = 1.0
    values: list[Bounded] = []
    by_key: dict[str, Bounded] = {}
    maybe: Bounded | None = None


class BoundedParams(msgspec.Struct):
    values: list[Bounded] = []
    single: Bounded = 1.0


def _bounded_app() -> App:
    app = App()

    @app.post("/body")
    async def body(model: BoundedModel) -> dict[str, str]:
        return {"got": repr(model)}

    @app.get("/query")
    async def query(
        value: Annotated[float, Query(ge=0, le=100)] = 1.0,
        header: Annotated[float | None, Header(ge=0, le=100)] = None,
        cookie: Annotated[float | None, Cookie(ge=0, le=100)] = None,
    ) -> dict[str, str]:
        return {"got": repr((value, header, cookie))}

    @app.get("/query-model")
    async def query_model(model: Annotated[BoundedParams, Query()]) -> dict[str, str]:
        return {"got": repr(model)}

    @app.post("/form")
    async def form(value: Annotated[float, Form(ge=0, le=100)] = 1.0) -> dict[str, str]:
        return {"got": repr(value)}

    @app.post("/embedded")
    async def embedded(
        a: Annotated[float, Body(ge=0, le=100)], b: Annotated[float, Body()] = 0
    ) -> dict[str, str]:
        return {"got": repr(a)}

    return app


@pytest.mark.parametrize("text", ["nan", "NaN", "-nan", "inf", "-Infinity", "1e999"])
def test_a_non_finite_float_never_passes_a_bound(text: str) -> None:
    client = TestClient(_bounded_app())
    attempts = [
        client.post("/body", json={"value": text}),
        client.post("/body", json={"values": [1, text]}),
        client.post("/body", json={"by_key": {"k": text}}),
        client.post("/body", json={"maybe": text}),
        client.get("/query", params={"value": text}),
        client.get("/query-model", params={"single": text}),
        client.get("/query-model", params={"values": ["1", text]}),
        client.get("/query", headers={"header": text}),
        client.get("/query", headers={"cookie": f"cookie={text}"}),
        client.post("/form", data={"value": text}),
        client.post("/embedded", json={"a": text}),
    ]
    assert [r.status_code for r in attempts] == [422] * len(attempts), [r.text for r in attempts]


def test_a_nan_on_every_json_response_path_is_written_as_null() -> None:
    app = App(cache=Cache(MemoryStore()))

    @app.post("/shaped", response_model_exclude_none=True, response_model_exclude={"name"})
    async def shaped(item: Item) -> Item:
        return item

    @app.post("/unset", response_model_exclude_unset=True)
    async def unset(item: Item) -> dict[str, float]:
        return {"price": item.price}

    @app.post("/dataclass")
    async def as_dataclass(item: Item) -> dict[str, Price]:
        return {"a": Price(item.price)}

    @app.post("/stream")
    async def stream(item: Item) -> AsyncIterator[Item]:
        yield item

    @app.post("/sync-stream")
    def sync_stream(item: Item) -> Iterator[float]:
        yield item.price

    @app.post("/events", response_class=EventSourceResponse)
    async def events(item: Item) -> AsyncIterator[Item]:
        yield item

    @app.get("/cached", cache=60)
    async def cached(value: float) -> Price:
        return Price(value)

    client = TestClient(app, raise_server_exceptions=False)
    body = {"name": "x", "price": "nan"}
    replies = {
        path: client.post(path, json=body)
        for path in ("/shaped", "/unset", "/dataclass", "/stream", "/sync-stream", "/events")
    }
    replies["/cached"] = client.get("/cached", params={"value": "inf"})
    replies["/cached again"] = client.get("/cached", params={"value": "inf"})
    assert {path: r.status_code for path, r in replies.items()} == dict.fromkeys(replies, 200)
    assert replies["/shaped"].json() == {"price": None}
    assert replies["/dataclass"].json() == {"a": {"price": None, "currency": "EUR"}}
    assert replies["/stream"].text == '{"name":"x","price":null}\n'
    assert replies["/sync-stream"].text == "null\n"
    assert replies["/events"].text == 'data: {"name":"x","price":null}\n\n'
    assert replies["/cached again"].json() == {"price": None, "currency": "EUR"}


# --- get_openapi(routes=app.routes) -------------------------------------------------------------------


def test_get_openapi_runs_no_user_code_and_matches_the_app_document() -> None:
    calls: list[str] = []

    async def pool() -> AsyncIterator[str]:
        calls.append("pool created")
        yield "pool"
        calls.append("pool closed")  # pragma: no cover

    class Service:
        def __init__(self, db: Annotated[str, Depends(pool, scope="app")]) -> None:
            calls.append("service")  # pragma: no cover

    async def current_user(scopes: SecurityScopes) -> str:
        calls.append("current_user")  # pragma: no cover
        return scopes.scope_str  # pragma: no cover

    def verify(x_key: Annotated[str, Header()]) -> None:
        calls.append("verify")  # pragma: no cover

    class Filters(msgspec.Struct):
        limit: int = msgspec.field(default=10, name="page-size")

    app = App(dependencies=[Depends(verify)])

    @app.get("/items/{item_id:int}")
    async def items(
        item_id: int,
        service: Annotated[Service, Depends()],
        user: Annotated[str, Security(current_user, scopes=["items:read"])],
        filters: Annotated[Filters, Query()],
    ) -> Item:
        raise AssertionError  # pragma: no cover

    @app.post("/upload")
    async def upload(note: Annotated[str, Form(alias="the-note")]) -> None:
        raise AssertionError  # pragma: no cover

    @app.get("/events", response_class=EventSourceResponse)
    async def events() -> AsyncIterator[Item]:
        yield Item("x", 1.0)  # pragma: no cover

    @app.get("/hidden", include_in_schema=False)
    async def hidden() -> None:
        raise AssertionError  # pragma: no cover

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        raise AssertionError  # pragma: no cover

    router = Router(prefix="/r")

    @router.get("/{name}")
    async def named(name: str) -> str:
        return name

    app.include_router(router, prefix="/v1")
    app.include_router(router, prefix="/internal", include_in_schema=False)
    sub = App()
    app.mount("/sub", sub)

    expected = json.dumps(app.openapi(), sort_keys=True)
    for routes in (app.routes, app.endpoints, [*app.routes, Route("/plain", lambda request: None)]):
        document = get_openapi(title=app.title, version=app.version, routes=routes)
        assert json.dumps(document, sort_keys=True) == expected
    assert calls == []
    assert "/hidden" not in expected
    assert "/internal" not in expected
    assert json.dumps(app.openapi(), sort_keys=True) == expected  # the app's own is untouched
    assert TestClient(app).get("/v1/r/abc", headers={"x-key": "k"}).json() == "abc"


# --- the docs pages -------------------------------------------------------------------------------------

INJECTION = "</title></script><script>alert(1)</script><!--\"'><img src=x onerror=alert(2)>"


def test_the_docs_pages_escape_every_configured_value() -> None:
    app = App(
        title=INJECTION,
        swagger_ui_parameters={"syntaxHighlight": INJECTION, INJECTION: True},
        swagger_ui_init_oauth={"clientId": INJECTION},
        swagger_js_url="/js" + INJECTION,
        swagger_css_url="/css" + INJECTION,
        redoc_js_url="/redoc" + INJECTION,
    )
    client = TestClient(app)
    pages = [client.get("/docs").text, client.get("/redoc").text]
    pages.append(
        get_swagger_ui_html(
            openapi_url="/o" + INJECTION,
            title=INJECTION,
            swagger_favicon_url="/f" + INJECTION,
            oauth2_redirect_url="/r" + INJECTION,
        ).body.decode()
    )
    pages.append(
        get_redoc_html(
            openapi_url="/o" + INJECTION, title=INJECTION, redoc_favicon_url="/f" + INJECTION
        ).body.decode()
    )
    for page in pages:
        assert "<script>alert" not in page
        assert "<img" not in page
        assert "<!--" not in page
        assert page.lower().count("</script>") == page.lower().count("<script")
        assert page.count("</title>") == 1
    redirect = client.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200
    assert "window.opener.swaggerUIRedirectOauth2" in redirect.text


def test_the_docs_under_a_root_path_point_inside_it() -> None:
    app = App(root_path="/api")

    @app.get("/items/")
    async def items() -> list[int]:
        return []

    client = TestClient(app)
    assert '"url":"/api/openapi.json"' in client.get("/docs").text
    assert client.get("/openapi.json").json()["servers"] == [{"url": "/api"}]
    # Whatever path the client sends (stripped by the proxy or not), a redirect stays on this
    # host, inside the prefix; one that could read as another host is not redirected.
    for path in ("/items", "/api/items"):
        reply = anyio.run(call, app, scope_for(path))
        assert (reply.status, reply.headers["location"]) == (307, "http://testserver/api/items/")
    for path in ("//evil.example/items", "/api//evil.example/items", "/api/\\evil.example/items"):
        assert anyio.run(call, app, scope_for(path)).status == 404, path


# --- ServerSentEvent: no field forges another event ----------------------------------------------------


@pytest.mark.parametrize("field", ["event", "id"])
@pytest.mark.parametrize("line_break", ["\n", "\r", "\r\n"])
def test_a_line_break_in_a_single_line_event_field_is_refused(field: str, line_break: str) -> None:
    with pytest.raises((ValueError, msgspec.ValidationError)):
        ServerSentEvent(data=1, **{field: f"x{line_break}data: forged"})


def test_multi_line_event_fields_cannot_forge_fields_or_events() -> None:
    forged = "a\r\n\r\nevent: admin\rid: 9\ndata: forged"
    events = [
        ServerSentEvent(comment=forged),
        ServerSentEvent(raw_data=forged),
        ServerSentEvent(data=forged, event="e", id="1"),
        ServerSentEvent(data={"k": forged}),
    ]
    for event in events:
        text = event.encode().decode()
        assert text.endswith("\n\n")
        lines = text[:-2].replace("\r\n", "\n").replace("\r", "\n").split("\n")
        assert "" not in lines, text  # one event: no blank line inside it
        fields = [line for line in lines if not line.startswith((":", "data: "))]
        assert fields == ([] if event.event is None else ["event: e", "id: 1"]), text


def test_a_handler_yielding_strings_as_events_cannot_forge_one() -> None:
    app = App()

    @app.get("/events", response_class=EventSourceResponse)
    async def events(text: str) -> AsyncIterator[str]:
        yield text

    response = TestClient(app).get("/events", params={"text": "hi\n\nevent: admin\ndata: x"})
    assert response.text == 'data: "hi\\n\\nevent: admin\\ndata: x"\n\n'


# --- start-up hooks failing ------------------------------------------------------------------------------


def test_a_failing_startup_hook_fails_the_startup_and_releases_app_scoped_values() -> None:
    events: list[str] = []

    async def pool() -> AsyncIterator[str]:
        events.append("pool open")
        yield "pool"
        events.append("pool closed")

    app = App()

    @app.get("/")
    async def root(db: Annotated[str, Depends(pool, scope="app")]) -> str:
        return db  # pragma: no cover

    def first() -> None:
        events.append("first hook")

    async def failing() -> None:
        raise OSError("cannot reach the broker")

    app.add_event_handler("startup", first)
    app.add_event_handler("startup", failing)
    app.add_event_handler("shutdown", lambda: events.append("shutdown hook"))  # pragma: no cover

    async def main() -> None:
        async with run_lifespan(app):
            raise AssertionError("started")  # pragma: no cover

    with pytest.raises(RuntimeError, match="lifespan startup failed"):
        anyio.run(main)
    assert events == ["pool open", "first hook", "pool closed"]


def test_a_failing_shutdown_hook_still_releases_app_scoped_values() -> None:
    events: list[str] = []

    async def pool() -> AsyncIterator[str]:
        yield "pool"
        events.append("pool closed")

    app = App(on_shutdown=[lambda: (_ for _ in ()).throw(OSError("flush failed"))])

    @app.get("/")
    async def root(db: Annotated[str, Depends(pool, scope="app")]) -> str:
        return db

    async def main() -> None:
        async with run_lifespan(app):
            pass

    with pytest.raises(RuntimeError, match="lifespan shutdown failed"):
        anyio.run(main)
    assert events == ["pool closed"]


# --- Security scopes with dependency_overrides ------------------------------------------------------------


def test_security_scopes_still_reach_an_overriding_dependency_per_route() -> None:
    def token() -> str:
        return "read"

    async def current_user(scopes: SecurityScopes, granted: Annotated[str, Depends(token)]) -> str:
        require_scopes(scopes, granted)
        return "real"

    app = App()

    @app.get("/read")
    async def read(user: Annotated[str, Security(current_user, scopes=["read"])]) -> str:
        return user

    @app.get("/admin")
    async def admin(
        reader: Annotated[str, Security(current_user, scopes=["read"])],
        user: Annotated[str, Security(current_user, scopes=["admin"])],
    ) -> str:
        return user  # pragma: no cover

    async def fake_user(scopes: SecurityScopes) -> str:
        require_scopes(scopes, "read")
        return "fake:" + scopes.scope_str

    client = TestClient(app)
    app.dependency_overrides[token] = lambda: "read"
    assert [client.get(p).status_code for p in ("/read", "/admin")] == [200, 403]
    app.dependency_overrides = {current_user: fake_user}
    assert client.get("/read").json() == "fake:read"
    assert client.get("/admin").status_code == 403
    app.dependency_overrides = {}
    assert [client.get(p).status_code for p in ("/read", "/admin")] == [200, 403]


# --- parameter models: aliases, header spellings, what errors echo --------------------------------------


class Token(msgspec.Struct):
    token: str = msgspec.field(name="x_token")


class Paging(msgspec.Struct, forbid_unknown_fields=True):
    size: int = msgspec.field(default=10, name="page-size")


def test_parameter_models_read_their_aliases_only() -> None:
    app = App()

    @app.get("/token")
    async def token(model: Annotated[Token, Header()]) -> str:
        return model.token

    @app.get("/paging")
    async def paging(model: Annotated[Paging, Query()]) -> int:
        return model.size

    client = TestClient(app)
    assert client.get("/token", headers={"X-Token": "ok"}).json() == "ok"
    # The underscore spelling (which proxies drop or pass unchecked) is not the header.
    assert client.get("/token", headers=[("x_token", "smuggled")]).status_code == 422
    assert client.get("/paging", params={"page-size": "5"}).json() == 5
    refused = client.get("/paging", params={"size": "5"})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["query", "size"]


def test_a_header_model_error_echoes_no_other_header() -> None:
    """FastAPI's ``missing`` entry of a header model echoes every request header (Authorization
    and Cookie included); the toolkit's only the model's own."""
    app = App()

    @app.get("/token")
    async def token(model: Annotated[Token, Header()]) -> str:
        return model.token  # pragma: no cover

    response = TestClient(app).get(
        "/token", headers={"Authorization": f"Bearer {SECRET}", "Cookie": f"session={SECRET}"}
    )
    assert response.status_code == 422
    assert SECRET not in response.text


@pytest.mark.parametrize(
    ("path", "request_kwargs"),
    [
        ("/query", {"params": {"": "1"}}),
        ("/cookie", {"headers": {"cookie": "=1"}}),
        ("/body", {"json": {"": 1}}),
        ("/form", {"data": {"": "1"}}),
    ],
)
def test_an_empty_unknown_key_is_extra_forbidden_everywhere(path: str, request_kwargs: Any) -> None:
    class Strict(msgspec.Struct, forbid_unknown_fields=True):
        limit: int = 10

    app = App()

    @app.get("/query")
    async def query(model: Annotated[Strict, Query()]) -> int:
        return model.limit  # pragma: no cover

    @app.get("/cookie")
    async def cookie(model: Annotated[Strict, Cookie()]) -> int:
        return model.limit  # pragma: no cover

    @app.post("/body")
    async def body(model: Strict) -> int:
        return model.limit  # pragma: no cover

    @app.post("/form")
    async def form(model: Annotated[Strict, Form()]) -> int:
        return model.limit  # pragma: no cover

    response = TestClient(app).request(
        "GET" if path in ("/query", "/cookie") else "POST", path, **request_kwargs
    )
    assert response.status_code == 422
    (entry,) = response.json()["detail"]
    assert entry["type"] == "extra_forbidden"
    assert entry["loc"][-1] == ""


def test_require_scopes_holds_on_odd_granted_values() -> None:
    for granted in ("read\tadmin", "read,admin", ["read admin"], ("admin ",), b"admin", None, ""):
        with pytest.raises(HTTPException) as caught:
            require_scopes(SecurityScopes(["admin"]), granted)  # type: ignore[arg-type]
        assert caught.value.status_code == 403, granted
    require_scopes(SecurityScopes(["admin"]), "read  admin")  # double spaces split cleanly


# --- jsonable_encoder -------------------------------------------------------------------------------------


class Row:
    def __init__(self) -> None:
        self._sa_instance_state = object()
        self.id = 1
        self.note = None


def test_jsonable_encoder_skips_orm_state_and_honours_exclude_none_at_depth() -> None:
    encoded = jsonable_encoder({"row": Row(), "items": [Item("a", float("nan"))]}, exclude_none=True)
    assert set(encoded["row"]) == {"id"}
    assert encoded["items"][0]["name"] == "a"
    with pytest.raises(ValueError, match="vars"):
        jsonable_encoder(object())


# --- the test clients' re-raise around a plain Starlette app ---------------------------------------------


def test_error_middleware_inside_a_starlette_app_does_not_re_raise_to_a_server() -> None:
    async def boom(request: Request) -> Response:
        raise LookupError("internals")

    app = Starlette(routes=[Route("/boom", boom)], middleware=[Middleware(ErrorMiddleware)])
    # A server's scope: no "http.response.debug" extension, so nothing reaches Starlette's
    # ServerErrorMiddleware (which would answer again and re-raise to the server).
    reply = anyio.run(call, app, scope_for("/boom"))
    assert reply.status == 500
    assert json.loads(reply.body)["detail"] == "Internal Server Error"
    with pytest.raises(LookupError):  # a test client's scope: the error reaches the test
        TestClient(app).get("/boom")
