"""FastAPI code moved over by renaming imports: the names, options and behaviours it relies on.

Each test is written the way the FastAPI documentation (or a FastAPI test suite) writes it, with
``fastapi`` replaced by ``toolkit`` and pydantic models by msgspec Structs.
"""

import datetime
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

import msgspec
import pytest
from starlette.websockets import WebSocketDisconnect

from toolkit import (
    APIRouter,
    App,
    Cookie,
    Depends,
    Header,
    HTTPException,
    Query,
    Request,
    RequestValidationError,
    RouteConfigError,
    Security,
    SecurityScopes,
    StreamingResponse,
    WebSocket,
)
from toolkit.exception_handlers import http_exception_handler, request_validation_exception_handler
from toolkit.security import OAuth2PasswordBearer, require_scopes
from toolkit.testing import AsyncTestClient, TestClient

# --- the test client raises what the handler raised ----------------------------------------------


def _boom_app() -> App:
    app = App()

    @app.get("/boom")
    async def boom() -> None:
        raise ValueError("handler failed")

    return app


def test_test_client_raises_the_handler_exception_by_default() -> None:
    with pytest.raises(ValueError, match="handler failed"):
        TestClient(_boom_app()).get("/boom")


def test_test_client_can_return_the_500_instead() -> None:
    response = TestClient(_boom_app(), raise_server_exceptions=False).get("/boom")
    assert response.status_code == 500
    assert response.json()["detail"] == "Internal Server Error"
    assert "handler failed" not in response.text


def test_handled_errors_are_not_raised_in_tests() -> None:
    app = _boom_app()

    @app.exception_handler(ValueError)
    async def bad_value(request: Request, exc: Exception) -> Any:
        return await http_exception_handler(request, HTTPException(400, str(exc)))

    response = TestClient(app).get("/boom")
    assert (response.status_code, response.json()) == (400, {"detail": "handler failed"})


@pytest.mark.anyio
async def test_async_test_client_raises_too() -> None:
    async with AsyncTestClient(_boom_app()) as client:
        with pytest.raises(ValueError, match="handler failed"):
            await client.get("/boom")
    async with AsyncTestClient(_boom_app(), raise_server_exceptions=False) as client:
        assert (await client.get("/boom")).status_code == 500


# --- Security and SecurityScopes ----------------------------------------------------------------

oauth2 = OAuth2PasswordBearer("token", scopes={"me": "Read yourself", "items": "Read items"})


def _scoped_app(seen: list[list[str]]) -> App:
    async def current_user(security_scopes: SecurityScopes, token: Annotated[str, Depends(oauth2)]) -> str:
        seen.append(list(security_scopes.scopes))
        require_scopes(security_scopes, token)  # the test's "token" is its space-separated scopes
        return token

    async def active_user(user: Annotated[str, Security(current_user, scopes=["me"])]) -> str:
        return user

    app = App()

    @app.get("/users/me")
    async def me(user: Annotated[str, Depends(active_user)]) -> str:
        return user

    @app.get("/users/me/items")
    async def my_items(user: Annotated[str, Security(active_user, scopes=["items"])]) -> str:
        return user

    @app.get("/status", dependencies=[Security(current_user, scopes=["items"])])
    async def status() -> str:
        return "ok"

    return app


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_security_scopes_collect_every_marker_on_the_way_down() -> None:
    seen: list[list[str]] = []
    client = TestClient(_scoped_app(seen))
    assert client.get("/users/me", headers=bearer("me")).json() == "me"
    assert client.get("/users/me/items", headers=bearer("me items")).json() == "me items"
    assert client.get("/status", headers=bearer("items")).json() == "ok"
    assert seen == [["me"], ["items", "me"], ["items"]]


def test_a_missing_scope_is_a_403_naming_the_scopes_needed() -> None:
    response = TestClient(_scoped_app([])).get("/users/me/items", headers=bearer("me"))
    assert response.status_code == 403
    assert response.json() == {"detail": "Not enough permissions: missing scope items"}
    assert response.headers["www-authenticate"] == 'Bearer error="insufficient_scope", scope="items me"'
    assert TestClient(_scoped_app([])).get("/users/me/items").status_code == 401  # no token at all


def test_the_same_dependency_under_other_scopes_is_another_value() -> None:
    calls: list[list[str]] = []

    async def scopes_of(security_scopes: SecurityScopes) -> list[str]:
        calls.append(security_scopes.scopes)
        security_scopes.scopes.append("mutated")  # a dependency's own copy
        return security_scopes.scopes

    app = App()

    @app.get("/")
    async def both(
        a: Annotated[list[str], Security(scopes_of, scopes=["a"])],
        b: Annotated[list[str], Security(scopes_of, scopes=["b"])],
        a_again: Annotated[list[str], Security(scopes_of, scopes=["a"])],
    ) -> list[list[str]]:
        return [a, b, a_again]

    client = TestClient(app)
    assert client.get("/").json() == [["a", "mutated"], ["b", "mutated"], ["a", "mutated"]]
    assert client.get("/").json() == [["a", "mutated"], ["b", "mutated"], ["a", "mutated"]]
    assert len(calls) == 4  # once per distinct set of scopes and request


def test_security_scopes_outside_security_is_empty_and_scopes_must_be_a_list() -> None:
    app = App()

    @app.get("/")
    async def plain(scopes: SecurityScopes) -> str:
        return f"[{scopes.scope_str}]"

    assert TestClient(app).get("/").json() == "[]"
    with pytest.raises(TypeError, match="list of scope names"):
        Security(plain, scopes="items")  # type: ignore[arg-type]


# --- Depends(scope="function") ------------------------------------------------------------------


def test_function_scoped_cleanup_runs_before_the_response_is_sent() -> None:
    events: list[str] = []

    async def per_function() -> AsyncIterator[str]:
        events.append("function: enter")
        yield "f"
        events.append("function: exit")

    async def per_request() -> AsyncIterator[str]:
        events.append("request: enter")
        yield "r"
        events.append("request: exit")

    app = App()

    @app.get("/")
    async def stream(
        f: Annotated[str, Depends(per_function, scope="function")],
        r: Annotated[str, Depends(per_request)],
    ) -> StreamingResponse:
        events.append("handler")

        def body() -> Iterator[bytes]:
            events.append("sending")
            yield b"x"

        return StreamingResponse(body())

    assert TestClient(app).get("/").text == "x"
    assert events == [
        "function: enter",
        "request: enter",
        "handler",
        "function: exit",
        "sending",
        "request: exit",
    ]


def test_function_scoped_dependency_sees_the_handler_error() -> None:
    seen: list[str] = []

    async def transaction() -> AsyncIterator[None]:
        try:
            yield
        except ValueError as exc:
            seen.append(f"rollback: {exc}")
            raise HTTPException(409, "conflict") from exc

    app = App()

    @app.post("/")
    async def write(_: Annotated[None, Depends(transaction, scope="function")]) -> None:
        raise ValueError("duplicate")

    response = TestClient(app).post("/")
    assert (response.status_code, response.json()) == (409, {"detail": "conflict"})
    assert seen == ["rollback: duplicate"]


def test_depends_scope_is_checked() -> None:
    with pytest.raises(ValueError, match="'request', 'function' or 'app'"):
        Depends(lambda: None, scope="session")  # type: ignore[arg-type]


# --- parameter models: query, header, cookie ----------------------------------------------------


class FilterParams(msgspec.Struct, forbid_unknown_fields=True):
    limit: Annotated[int, msgspec.Meta(gt=0, le=100)] = 100
    offset: Annotated[int, msgspec.Meta(ge=0)] = 0
    order_by: Literal["created_at", "updated_at"] = "created_at"
    tags: list[str] = []
    archived: bool = False


class CommonHeaders(msgspec.Struct):
    x_token: str
    traceparent: str | None = None


class Cookies(msgspec.Struct, forbid_unknown_fields=True):
    session_id: str
    tracker: str | None = None


def _models_app() -> App:
    app = App()

    @app.get("/items")
    async def items(filters: Annotated[FilterParams, Query()], q: str | None = None) -> dict[str, Any]:
        return {"filters": msgspec.to_builtins(filters), "q": q}

    @app.get("/headers")
    async def headers(h: Annotated[CommonHeaders, Header()]) -> CommonHeaders:
        return h

    @app.get("/cookies")
    async def cookies(c: Annotated[Cookies, Cookie()]) -> Cookies:
        return c

    return app


def test_a_query_model_reads_each_field() -> None:
    client = TestClient(_models_app())
    body = client.get("/items?limit=5&tags=a&tags=b&archived=yes&q=x").json()
    assert body == {
        "filters": {"limit": 5, "offset": 0, "order_by": "created_at", "tags": ["a", "b"], "archived": True},
        "q": "x",
    }
    assert client.get("/items").json()["filters"]["limit"] == 100


def test_a_query_model_reports_every_failing_field_and_unknown_keys() -> None:
    response = TestClient(_models_app()).get("/items?limit=0&order_by=name&offset=x&color=red&q=ok")
    assert response.status_code == 422
    errors = {tuple(e["loc"]): e["type"] for e in response.json()["detail"]}
    assert errors == {
        ("query", "limit"): errors[("query", "limit")],
        ("query", "order_by"): "enum",
        ("query", "offset"): "int_parsing",
        ("query", "color"): "extra_forbidden",  # q is the route's own parameter, not unknown
    }
    assert errors[("query", "limit")].startswith("greater_than")


def test_header_and_cookie_models() -> None:
    client = TestClient(_models_app())
    assert client.get("/headers", headers={"X-Token": "t"}).json() == {"x_token": "t", "traceparent": None}
    missing = client.get("/headers").json()["detail"]
    assert [(e["type"], e["loc"]) for e in missing] == [("missing", ["header", "x_token"])]
    client.cookies.set("session_id", "s1")
    assert client.get("/cookies").json() == {"session_id": "s1", "tracker": None}
    client.cookies.set("other", "z")
    refused = client.get("/cookies").json()["detail"]
    assert [(e["type"], e["loc"]) for e in refused] == [("extra_forbidden", ["cookie", "other"])]


def test_parameter_models_are_documented_field_by_field() -> None:
    operation = _models_app().openapi()["paths"]["/items"]["get"]
    assert [(p["name"], p["in"]) for p in operation["parameters"]] == [
        ("limit", "query"),
        ("offset", "query"),
        ("order_by", "query"),
        ("tags", "query"),
        ("archived", "query"),
        ("q", "query"),
    ]
    headers = _models_app().openapi()["paths"]["/headers"]["get"]["parameters"]
    assert [(p["name"], p["in"], p["required"]) for p in headers] == [
        ("x-token", "header", True),
        ("traceparent", "header", False),
    ]


def test_parameter_models_that_cannot_work_are_refused() -> None:
    class Strict(msgspec.Struct, forbid_unknown_fields=True):
        x_token: str

    class Nested(msgspec.Struct):
        inner: FilterParams

    app = App()
    with pytest.raises(RouteConfigError, match="header model cannot forbid unknown fields"):

        @app.get("/a")
        async def a(h: Annotated[Strict, Header()]) -> None: ...

    with pytest.raises(RouteConfigError, match=r"field 'inner' of .*Nested must be a scalar"):

        @app.get("/b")
        async def b(n: Annotated[Nested, Query()]) -> None: ...


# --- lax JSON bodies, strict on request ---------------------------------------------------------


class Item(msgspec.Struct):
    name: str
    price: float
    ttl: datetime.timedelta = datetime.timedelta(0)
    count: int = 0


def test_json_bodies_are_lax_like_fastapi() -> None:
    app = App()

    @app.post("/items")
    async def create(item: Item) -> Item:
        return item

    client = TestClient(app)
    response = client.post("/items", json={"name": "a", "price": "50.5", "ttl": 30, "count": "3"})
    assert response.json() == {"name": "a", "price": 50.5, "ttl": "PT30S", "count": 3}
    bad = client.post("/items", json={"name": 1, "price": "cheap"}).json()["detail"]
    assert [(e["loc"], e["type"]) for e in bad] == [
        (["body", "name"], "string_type"),
        (["body", "price"], "float_parsing"),
    ]


@pytest.mark.parametrize("where", ["app", "route"])
def test_strict_bodies_take_json_types_only(where: str) -> None:
    app = App(strict=where == "app")

    @app.post("/items", **({"strict": True} if where == "route" else {}))  # type: ignore[arg-type]
    async def create(item: Item) -> Item:
        return item

    @app.post("/lax", strict=False)
    async def lax(item: Item) -> Item:
        return item

    client = TestClient(app)
    refused = client.post("/items", json={"name": "a", "price": "50.5"})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "price"]
    assert client.post("/items", json={"name": "a", "price": 50.5}).status_code == 200
    assert client.post("/lax", json={"name": "a", "price": "50.5"}).status_code == 200


# --- names and options FastAPI code uses --------------------------------------------------------


def test_validation_errors_are_a_method_and_default_handlers_are_importable() -> None:
    app = App()
    seen: list[list[dict[str, Any]]] = []

    @app.exception_handler(RequestValidationError)
    async def logged(request: Request, exc: RequestValidationError) -> Any:
        seen.append(exc.errors())
        return await request_validation_exception_handler(request, exc)

    @app.get("/items/{item_id}")
    async def read(item_id: int) -> int:
        return item_id

    response = TestClient(app).get("/items/x")
    assert response.status_code == 422
    assert response.json()["detail"] == seen[0]
    assert seen[0][0]["loc"] == ["path", "item_id"]


def test_on_event_still_runs_with_a_deprecation_warning() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        events.append("lifespan start")
        yield
        events.append("lifespan end")

    app = App(lifespan=lifespan, on_shutdown=[lambda: events.append("on_shutdown")])
    with pytest.warns(DeprecationWarning, match="lifespan"):

        @app.on_event("startup")
        async def start() -> None:
            events.append("startup")

    with pytest.warns(DeprecationWarning, match="lifespan"):

        @app.on_event("shutdown")
        def stop() -> None:
            events.append("shutdown")

    with TestClient(app):
        assert events == ["startup", "lifespan start"]
    assert events == ["startup", "lifespan start", "lifespan end", "on_shutdown", "shutdown"]
    with pytest.raises(ValueError, match="startup' or 'shutdown"):
        app.add_event_handler("teardown", stop)


def test_root_path_behind_a_proxy() -> None:
    app = App(root_path="/api/v1")

    @app.get("/items/{item_id}", name="item")
    async def item(item_id: int, request: Request) -> str:
        return str(request.url_for("item", item_id=item_id))

    client = TestClient(app)
    assert client.get("/items/3").json() == "http://testserver/api/v1/items/3"  # the proxy stripped it
    assert client.get("/api/v1/items/3").json() == "http://testserver/api/v1/items/3"
    assert client.get("/openapi.json").json()["servers"] == [{"url": "/api/v1"}]
    assert "/api/v1/openapi.json" in client.get("/docs").text
    with pytest.raises(ValueError, match="must start with '/'"):
        App(root_path="api/")


def test_query_regex_is_pattern() -> None:
    app = App()

    @app.get("/")
    async def search(q: Annotated[str, Query(regex="^fixed")]) -> str:
        return q

    client = TestClient(app)
    assert client.get("/?q=fixedquery").json() == "fixedquery"
    assert client.get("/?q=other").json()["detail"][0]["type"] == "string_pattern_mismatch"
    with pytest.raises(TypeError, match="not both"):
        Query(regex="a", pattern="b")


def test_list_defaults_are_fresh_per_request() -> None:
    app = App()

    @app.get("/")
    async def tags(q: list[str] = Query(["a", "b"])) -> list[str]:
        q.append("added")
        return q

    client = TestClient(app)
    assert client.get("/").json() == ["a", "b", "added"]
    assert client.get("/").json() == ["a", "b", "added"]
    assert client.get("/?q=z").json() == ["z", "added"]


def test_pydantic_models_are_refused_with_the_way_to_port_them() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Model(pydantic.BaseModel):  # type: ignore[name-defined,misc]
        name: str

    app = App()
    with pytest.raises(RouteConfigError, match=r"Model is a pydantic model.*Migrating from FastAPI"):

        @app.post("/")
        async def create(item: Model) -> None: ...

    with pytest.raises(RouteConfigError, match="Model is a pydantic model"):

        @app.post("/many")
        async def many(items: list[Model] | None = None) -> None: ...

    with pytest.raises(RouteConfigError, match=r"response model: Model is a pydantic model"):

        @app.get("/out", response_model=list[Model])
        async def out() -> list[dict[str, str]]:
            return []


def test_api_router_is_the_router() -> None:
    router = APIRouter(prefix="/users", tags=["users"])

    @router.get("/{user_id}")
    async def user(user_id: int) -> int:
        return user_id

    app = App()
    app.include_router(router)
    assert TestClient(app).get("/users/7").json() == 7


def test_websocket_validation_closes_naming_the_fields() -> None:
    app = App()

    @app.websocket("/ws/{room}")
    async def ws(websocket: WebSocket, room: int, token: str) -> None:
        await websocket.accept()

    with pytest.raises(WebSocketDisconnect) as exc, TestClient(app).websocket_connect("/ws/x"):
        pass
    assert exc.value.code == 1008
    assert exc.value.reason == "Invalid parameters: path.room, query.token"


def test_the_app_closes_the_stores_it_knows_at_shutdown() -> None:
    from toolkit.cache import Cache
    from toolkit.middleware.sessions import SessionMiddleware
    from toolkit.sessions import MemoryStore

    closed: list[str] = []

    class ClosingStore(MemoryStore):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

        async def aclose(self) -> None:
            closed.append(self.name)

    sessions = ClosingStore("sessions")
    app = App(cache=Cache(ClosingStore("cache")))
    app.add_middleware(SessionMiddleware, secret_key="s" * 32, store=sessions)
    with TestClient(app):
        assert closed == []
    assert sorted(closed) == ["cache", "sessions"]
    with TestClient(app):  # a second session (another event loop) works and closes them again
        pass
    assert len(closed) == 4


def test_unannotated_and_any_parameters_are_query_strings() -> None:
    app = App()

    @app.get("/")
    async def read(q, extra: Any = None) -> list[Any]:  # type: ignore[no-untyped-def]
        return [q, extra]

    client = TestClient(app)
    assert client.get("/?q=1&extra=x").json() == ["1", "x"]
    assert client.get("/").json()["detail"][0]["loc"] == ["query", "q"]


def test_status_names_and_a_streaming_handler_cannot_be_cached() -> None:
    from toolkit import status
    from toolkit.cache import Cache
    from toolkit.sessions import MemoryStore

    assert status.HTTP_404_NOT_FOUND == 404
    app = App(cache=Cache(MemoryStore()))
    with pytest.raises(RouteConfigError, match="yields streams its response"):

        @app.get("/events", cache=60)
        async def events() -> AsyncIterator[int]:
            yield 1


def test_docs_serve_the_oauth2_redirect_page_and_a_replaced_document() -> None:
    from toolkit.openapi.utils import get_openapi
    from toolkit.security import OAuth2PasswordRequestForm

    app = App(title="Shop")

    @app.post("/token")
    async def token(form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> str:
        return form.username

    client = TestClient(app)
    docs = client.get("/docs").text
    assert "oauth2RedirectUrl" in docs
    assert "/docs/oauth2-redirect" in docs
    assert "Swagger UI: OAuth2 Redirect" in client.get("/docs/oauth2-redirect").text
    form = next(iter(client.get("/openapi.json").json()["components"]["schemas"].values()))
    assert form["properties"]["password"]["format"] == "password"

    def custom_openapi() -> dict[str, Any]:  # FastAPI's "Extending OpenAPI", set after a request
        schema = get_openapi(title="Custom", version="2.0", routes=app.routes)
        schema["info"]["x-logo"] = {"url": "logo.png"}
        return schema

    app.openapi = custom_openapi  # type: ignore[method-assign]
    assert client.get("/openapi.json").json()["info"]["x-logo"] == {"url": "logo.png"}
    assert (
        TestClient(App(swagger_ui_oauth2_redirect_url=None)).get("/docs/oauth2-redirect").status_code == 404
    )


def test_a_form_field_alias_need_not_be_an_identifier() -> None:
    from toolkit import Form

    app = App()

    @app.post("/notes")
    async def note(text: Annotated[str, Form(alias="the-note")], tags: list[str] = Form([])) -> list[Any]:
        return [text, tags]

    response = TestClient(app).post("/notes", data={"the-note": "hi", "tags": ["a", "b"]})
    assert response.json() == ["hi", ["a", "b"]]


def test_a_lax_nan_is_written_as_null_and_refused_by_a_bound() -> None:
    class Reading(msgspec.Struct):
        value: float
        bounded: Annotated[float, msgspec.Meta(ge=0, le=1e9)] = 0.0

    app = App()

    @app.post("/readings")
    async def record(reading: Reading) -> Reading:
        return reading

    client = TestClient(app)
    assert client.post("/readings", json={"value": "NaN"}).json() == {"value": None, "bounded": 0.0}
    refused = client.post("/readings", json={"value": 1, "bounded": "inf"})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "bounded"]


def test_validation_error_carries_the_body_for_fastapis_recipe() -> None:
    app = App()

    @app.exception_handler(RequestValidationError)
    async def with_body(request: Request, exc: RequestValidationError) -> Any:
        from toolkit import JSONResponse

        return JSONResponse({"detail": exc.errors(), "body": exc.body}, status_code=422)

    @app.post("/items")
    async def create(item: Item) -> Item:
        return item

    client = TestClient(app)
    sent = {"name": "x", "price": "cheap"}
    assert client.post("/items", json=sent).json()["body"] == sent
    broken = client.post("/items", content=b'{"name": ', headers={"Content-Type": "application/json"})
    assert broken.json()["body"] is not None


def test_fastapi_markers_left_in_a_port_are_refused_naming_the_import() -> None:
    fastapi = pytest.importorskip("fastapi")

    def require_user() -> None:
        raise HTTPException(401)

    app = App()
    with pytest.raises(
        RouteConfigError, match=r"fastapi\.params\.Depends\(\.\.\.\) is FastAPI's; import Depends"
    ):

        @app.get("/a")
        async def a(user: Any = fastapi.Depends(require_user)) -> None: ...

    with pytest.raises(RouteConfigError, match=r"dependencies=.*import Depends from toolkit"):
        app.get("/b", dependencies=[fastapi.Depends(require_user)])(lambda: None)
    with pytest.raises(RouteConfigError, match="import Query from toolkit"):

        @app.get("/c")
        async def c(q: Annotated[str | None, fastapi.Query(max_length=3)] = None) -> None: ...

    with pytest.raises(RouteConfigError, match=r"a msgspec\.Meta default is not a constraint"):

        @app.post("/d")
        async def d(price: float = msgspec.Meta(gt=0)) -> None: ...  # type: ignore[assignment]


def test_a_struct_as_a_class_dependency_is_typed() -> None:
    class Page(msgspec.Struct):
        limit: Annotated[int, msgspec.Meta(le=100)] = 10
        tags: list[str] = []

    app = App()

    @app.get("/")
    async def page(p: Annotated[Page, Depends()]) -> dict[str, Any]:
        return {"limit": p.limit, "tags": p.tags}

    client = TestClient(app)
    assert client.get("/?limit=3&tags=a&tags=b").json() == {"limit": 3, "tags": ["a", "b"]}
    assert client.get("/?limit=x").status_code == 422
    assert client.get("/?limit=101").status_code == 422


def test_an_app_scoped_value_made_before_the_lifespan_is_not_kept_by_it() -> None:
    events: list[str] = []

    async def pool() -> AsyncIterator[str]:
        events.append("open")
        yield f"pool {len(events)}"
        events.append("close")

    app = App()

    @app.get("/")
    async def read(p: Annotated[str, Depends(pool, scope="app")]) -> str:
        return p

    # No `with`: no lifespan, resolved lazily (and bound to that client's event loop, now gone).
    assert TestClient(app).get("/").json() == "pool 1"
    with TestClient(app) as client:
        assert client.get("/").json() == "pool 2"  # the lifespan's own, not the stale one
    assert events == ["open", "open", "close"]


def test_a_streaming_handler_cannot_use_a_function_scoped_generator() -> None:
    async def session() -> AsyncIterator[str]:
        yield "s"

    app = App()
    with pytest.raises(RouteConfigError, match="a handler that yields streams after it returns"):

        @app.get("/feed")
        async def feed(s: Annotated[str, Depends(session, scope="function")]) -> AsyncIterator[str]:
            yield s


def test_starlettes_json_response_class_renders_models() -> None:
    from starlette.responses import JSONResponse as StarletteJSON  # fastapi.responses.JSONResponse

    app = App(default_response_class=StarletteJSON)

    @app.get("/checked")
    async def checked() -> Item:
        return Item(name="a", price=1.5)

    @app.get("/unchecked", response_model=None)
    async def unchecked() -> Any:
        return [Item(name="b", price=2.0)]

    client = TestClient(app)
    assert client.get("/checked").json() == {"name": "a", "price": 1.5, "ttl": "P0D", "count": 0}
    assert client.get("/unchecked").json() == [{"name": "b", "price": 2.0, "ttl": "P0D", "count": 0}]


def test_an_http_exception_before_accept_denies_the_websocket_handshake() -> None:
    from starlette.testclient import WebSocketDenialResponse

    def token(x_token: Annotated[str | None, Header()] = None) -> str:
        if x_token != "secret":
            raise HTTPException(401, "bad token", headers={"WWW-Authenticate": "Token"})
        return x_token

    app = App()

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, t: Annotated[str, Depends(token)]) -> None:
        await websocket.accept()
        raise HTTPException(403, "after accept")

    client = TestClient(app)
    with pytest.raises(WebSocketDenialResponse) as denied, client.websocket_connect("/ws"):
        pass
    assert (denied.value.status_code, denied.value.json()) == (401, {"detail": "bad token"})
    assert denied.value.headers["www-authenticate"] == "Token"
    with (
        client.websocket_connect("/ws", headers={"X-Token": "secret"}) as websocket,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        websocket.receive_text()
    assert (closed.value.code, closed.value.reason) == (1008, "after accept")
