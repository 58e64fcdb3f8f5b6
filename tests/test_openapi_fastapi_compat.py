"""The OpenAPI document reads like FastAPI's: what a FastAPI app would document, the toolkit app
documents the same way, so a ported app keeps its docs and its generated clients.

Each expectation below is what FastAPI (pydantic v2) emits for the equivalent app; the last test
builds a few apps both ways and compares the whole documents. Every document is validated as
OpenAPI 3.1 before anything else is read.
"""

import dataclasses
import datetime
import html
import json
from collections.abc import AsyncIterator, Iterator
from enum import Enum
from typing import Annotated, Any, Literal

import msgspec
import pytest
from openapi_spec_validator import validate

import toolkit
from toolkit import (
    App,
    Body,
    Cookie,
    Depends,
    EventSourceResponse,
    File,
    FileResponse,
    Form,
    Header,
    HTMLResponse,
    Path,
    Query,
    RedirectResponse,
    Router,
    Security,
    StreamingResponse,
    UploadFile,
)
from toolkit.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from toolkit.openapi.utils import get_openapi
from toolkit.security import OAuth2PasswordBearer
from toolkit.testing import TestClient

VALIDATION_REF = {"$ref": "#/components/schemas/HTTPValidationError"}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def document(app: App) -> dict[str, Any]:
    doc = app.openapi()
    validate(doc)  # type: ignore[arg-type]
    return doc


def operation(doc: dict[str, Any], path: str, method: str = "get") -> dict[str, Any]:
    result: dict[str, Any] = doc["paths"][path][method]
    return result


def parameters(op: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in op.get("parameters", [])}


class Color(Enum):
    red = "red"
    blue = "blue"


class Owner(msgspec.Struct):
    id: int
    email: str


class Item(msgspec.Struct):
    name: str
    price: float
    description: str | None = None
    tags: list[str] = []
    owner: Owner | None = None
    color: Color = Color.red


# --- 1. titles -----------------------------------------------------------------------------------


def test_parameter_schemas_are_titled_from_their_names() -> None:
    app = App()

    @app.get("/items/{item_id}")
    async def read_item(
        item_id: int,
        q: str | None = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
        x_token: Annotated[str | None, Header()] = None,
        session_id: Annotated[str | None, Cookie()] = None,
        search: Annotated[str, Query(alias="item-query")] = "",
        named: Annotated[str, Query(title="Explicit")] = "",
        meta: Annotated[str, msgspec.Meta(title="From Meta")] = "",
        color: Color | None = None,
        exact: Color = Color.red,
    ) -> None:
        pass

    params = parameters(operation(document(app), "/items/{item_id}"))
    assert params["item_id"]["schema"] == {"type": "integer", "title": "Item Id"}
    assert params["q"]["schema"] == {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "Q"}
    assert params["limit"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 100,
        "default": 10,
        "title": "Limit",
    }
    assert params["x-token"]["schema"]["title"] == "X-Token"
    assert params["session_id"]["schema"]["title"] == "Session Id"
    assert params["item-query"]["schema"]["title"] == "Item-Query"
    assert params["named"]["schema"]["title"] == "Explicit"
    assert params["meta"]["schema"]["title"] == "From Meta"
    assert params["color"]["schema"] == {"anyOf": [ref("Color"), {"type": "null"}], "title": "Color"}
    # A bare reference carries no title (pydantic's rule: the referenced schema has its own).
    assert params["exact"]["schema"] == {**ref("Color"), "default": "red"}


def test_model_properties_are_titled_as_pydantic_titles_them() -> None:
    class Camel(msgspec.Struct, rename="camel"):
        first_name: str
        owners: list[Owner]
        best: Owner
        maybe: Owner | None = None
        either: Owner | int | None = None
        labelled: Annotated[int, msgspec.Meta(title="Custom")] = 0

    @dataclasses.dataclass
    class Point:
        x_pos: int

    app = App()

    @app.post("/camel")
    async def camel(body: Camel) -> Point:
        return Point(1)

    schemas = document(app)["components"]["schemas"]
    props = schemas["Camel"]["properties"]
    assert props["firstName"] == {"type": "string", "title": "Firstname"}
    assert props["owners"] == {"type": "array", "items": ref("Owner"), "title": "Owners"}
    assert props["best"] == ref("Owner")
    assert props["maybe"] == {"anyOf": [ref("Owner"), {"type": "null"}]}  # no null default, as FastAPI
    assert props["either"]["title"] == "Either"
    assert props["labelled"]["title"] == "Custom"
    assert schemas["Point"]["properties"]["x_pos"] == {"type": "integer", "title": "X Pos"}
    assert schemas["Owner"]["properties"] == {
        "id": {"type": "integer", "title": "Id"},
        "email": {"type": "string", "title": "Email"},
    }


def test_inline_response_and_body_schemas_are_titled() -> None:
    app = App()

    @app.post("/numbers")
    async def add_numbers(numbers: Annotated[list[int], Body()] = []) -> dict[str, int]:  # noqa: B006
        return {}

    @app.get("/items")
    async def list_items() -> list[Item]:
        return []

    @app.get("/one")
    async def one() -> Item:
        raise NotImplementedError

    doc = document(app)
    op = operation(doc, "/numbers", "post")
    assert op["requestBody"]["content"]["application/json"]["schema"] == {
        "type": "array",
        "items": {"type": "integer"},
        "default": [],
        "title": "Numbers",
    }
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == {
        "type": "object",
        "additionalProperties": {"type": "integer"},
        "title": "Response Add Numbers Numbers Post",
    }
    assert operation(doc, "/items")["responses"]["200"]["content"]["application/json"]["schema"] == {
        "type": "array",
        "items": ref("Item"),
        "title": "Response List Items Items Get",
    }
    assert operation(doc, "/one")["responses"]["200"]["content"]["application/json"]["schema"] == ref("Item")


def test_enum_components_keep_their_declared_order_and_type() -> None:
    class Size(Enum):
        small = "S"
        large = "L"
        medium = "M"

    class Level(Enum):
        high = 3
        low = 1

    app = App()

    @app.get("/sized")
    async def sized(size: Size, level: Level) -> None:
        pass

    schemas = document(app)["components"]["schemas"]
    assert schemas["Size"] == {"type": "string", "enum": ["S", "L", "M"], "title": "Size"}
    assert schemas["Level"] == {"type": "integer", "enum": [3, 1], "title": "Level"}


def test_datetimes_times_and_literals_are_typed_as_pydantic_types_them() -> None:
    class Event(msgspec.Struct):
        at: datetime.datetime
        daily: datetime.time | None = None
        history: list[datetime.datetime] = []
        kind: Literal["a", "b"] = "a"
        aware: Annotated[datetime.datetime, msgspec.Meta(tz=True)] | None = None

    app = App()

    @app.get("/events")
    async def events(
        since: datetime.datetime | None = None,
        kind: Literal["x", "y"] = "x",
        level: Literal[1, 2] = 1,
    ) -> list[Event]:
        return []

    doc = document(app)
    props = doc["components"]["schemas"]["Event"]["properties"]
    assert props["at"] == {"type": "string", "format": "date-time", "title": "At"}
    assert props["daily"] == {
        "anyOf": [{"type": "string", "format": "time"}, {"type": "null"}],
        "title": "Daily",
    }
    assert props["history"]["items"] == {"type": "string", "format": "date-time"}
    assert props["kind"] == {"type": "string", "enum": ["a", "b"], "title": "Kind", "default": "a"}
    assert props["aware"]["anyOf"][0] == {"type": "string", "format": "date-time"}
    params = parameters(operation(doc, "/events"))
    assert params["since"]["schema"]["anyOf"][0] == {"type": "string", "format": "date-time"}
    assert params["kind"]["schema"] == {"enum": ["x", "y"], "type": "string", "default": "x", "title": "Kind"}
    assert params["level"]["schema"]["type"] == "integer"


# --- 2. placement and order of ``required`` ------------------------------------------------------


def test_required_is_placed_as_fastapi_places_it() -> None:
    app = App()

    @app.put("/items/{item_id}")
    async def update(
        item_id: int, item: Item, q: Annotated[str | None, Query(description="Search")] = None
    ) -> None:
        pass

    @app.post("/maybe")
    async def maybe(item: Item | None = None) -> None:
        pass

    doc = document(app)
    op = operation(doc, "/items/{item_id}", "put")
    assert list(op) == ["summary", "operationId", "parameters", "requestBody", "responses"]
    assert [list(p) for p in op["parameters"]] == [
        ["name", "in", "required", "schema"],
        ["name", "in", "required", "schema", "description"],
    ]
    assert list(op["requestBody"]) == ["content", "required"]
    assert op["requestBody"]["required"] is True
    # An optional body is not required: FastAPI leaves the key out.
    assert "required" not in operation(doc, "/maybe", "post")["requestBody"]
    item = doc["components"]["schemas"]["Item"]
    assert list(item) == ["properties", "type", "required", "title"]
    assert item["required"] == ["name", "price"]


def test_required_lists_follow_field_order() -> None:
    class Late(msgspec.Struct, kw_only=True):
        first: int = 0
        second: str
        third: float

    class Patch(msgspec.Struct):
        name: str | msgspec.UnsetType = msgspec.UNSET

    app = App()

    @app.post("/late")
    async def late(body: Late, extra: Annotated[int, Body()]) -> None:
        pass

    @app.patch("/patch")
    async def patch(body: Patch) -> None:
        pass

    schemas = document(app)["components"]["schemas"]
    assert schemas["Late"]["required"] == ["second", "third"]
    assert schemas["Body_late_late_post"]["required"] == ["body", "extra"]
    assert "required" not in schemas["Patch"]  # pydantic leaves out an empty list


def test_validation_error_schemas_are_fastapis() -> None:
    app = App()

    @app.get("/n")
    async def n(x: int) -> None:
        pass

    schemas = document(app)["components"]["schemas"]
    assert schemas["ValidationError"] == {
        "properties": {
            "loc": {
                "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                "type": "array",
                "title": "Location",
            },
            "msg": {"type": "string", "title": "Message"},
            "type": {"type": "string", "title": "Error Type"},
            "input": {"title": "Input"},
            "ctx": {"type": "object", "title": "Context"},
        },
        "type": "object",
        "required": ["loc", "msg", "type"],
        "title": "ValidationError",
    }
    assert schemas["HTTPValidationError"] == {
        "properties": {
            "detail": {"items": ref("ValidationError"), "type": "array", "title": "Detail"},
        },
        "type": "object",
        "title": "HTTPValidationError",
    }


# --- 3. form bodies ------------------------------------------------------------------------------


def test_form_body_is_a_component_named_after_the_operation() -> None:
    app = App()

    @app.post("/login")
    async def login(
        username: Annotated[str, Form(min_length=1)],
        password: Annotated[str, Form()],
        remember: Annotated[bool, Form()] = False,
    ) -> None:
        pass

    doc = document(app)
    body = operation(doc, "/login", "post")["requestBody"]
    assert body == {
        "content": {"application/x-www-form-urlencoded": {"schema": ref("Body_login_login_post")}},
        "required": True,
    }
    assert doc["components"]["schemas"]["Body_login_login_post"] == {
        "properties": {
            "username": {"type": "string", "minLength": 1, "title": "Username"},
            "password": {"type": "string", "title": "Password"},
            "remember": {"type": "boolean", "title": "Remember", "default": False},
        },
        "type": "object",
        "required": ["username", "password"],
        "title": "Body_login_login_post",
    }


def test_multipart_form_component_and_optional_forms() -> None:
    app = App()

    @app.post("/upload")
    async def upload(
        upload: Annotated[UploadFile, File()],
        note: Annotated[str, Form(alias="theNote")] = "",
    ) -> None:
        pass

    @app.post("/optional")
    async def optional(a: Annotated[str, Form()] = "x") -> None:
        pass

    doc = document(app)
    body = operation(doc, "/upload", "post")["requestBody"]
    assert body == {
        "content": {"multipart/form-data": {"schema": ref("Body_upload_upload_post")}},
        "required": True,
    }
    component = doc["components"]["schemas"]["Body_upload_upload_post"]
    assert component["properties"]["upload"]["title"] == "Upload"
    assert component["properties"]["upload"]["contentMediaType"] == "application/octet-stream"
    assert component["properties"]["theNote"] == {"type": "string", "title": "Thenote", "default": ""}
    assert component["required"] == ["upload"]
    # No required field: the body may be left out (FastAPI omits ``required``).
    assert operation(doc, "/optional", "post")["requestBody"] == {
        "content": {"application/x-www-form-urlencoded": {"schema": ref("Body_optional_optional_post")}}
    }


def test_a_form_component_clashing_with_a_model_is_refused() -> None:
    body_type = msgspec.defstruct("Body_login_login_post", [("x", int)])
    app = App()

    @app.post("/login")
    async def login(username: Annotated[str, Form()]) -> None:
        pass

    @app.post("/other")
    async def other(data: body_type) -> None:  # type: ignore[valid-type]
        pass

    with pytest.raises(RuntimeError, match="Body_login_login_post"):
        app.openapi()


# --- 4. media types of the success response ------------------------------------------------------


def test_streaming_file_and_text_responses() -> None:
    app = App()

    @app.get("/events", response_class=EventSourceResponse)
    async def events() -> EventSourceResponse:
        return EventSourceResponse(iter(()))

    @app.get("/returns-events")
    async def returns_events() -> EventSourceResponse:
        return EventSourceResponse(iter(()))

    @app.get("/file", response_class=FileResponse)
    async def file() -> FileResponse:
        raise NotImplementedError

    @app.get("/stream", response_class=StreamingResponse)
    async def stream() -> StreamingResponse:
        raise NotImplementedError

    @app.get("/page", response_class=HTMLResponse)
    async def page() -> str:
        return ""

    doc = document(app)
    for path in ("/events", "/returns-events"):
        assert operation(doc, path)["responses"]["200"] == {
            "description": "Successful Response",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    # The media type of a file or stream is only known when it is sent: FastAPI says nothing.
    for path in ("/file", "/stream"):
        assert operation(doc, path)["responses"]["200"] == {"description": "Successful Response"}
    assert operation(doc, "/page")["responses"]["200"]["content"] == {
        "text/html": {"schema": {"type": "string"}}
    }


def test_handlers_that_yield_document_their_stream() -> None:
    app = App()

    @app.get("/lines")
    async def lines() -> AsyncIterator[Item]:
        yield Item("a", 1.0)

    @app.get("/events", response_class=EventSourceResponse)
    async def events() -> AsyncIterator[Item]:
        yield Item("a", 1.0)

    @app.get("/chunks", response_class=StreamingResponse)
    def chunks() -> Iterator[bytes]:
        yield b"x"

    @app.get("/moved", response_class=RedirectResponse)
    async def moved() -> str:
        return "/elsewhere"

    doc = document(app)
    # FastAPI describes each item with OpenAPI 3.2's ``itemSchema``, which a 3.1 document cannot
    # have: the stream is documented as a string of its media type.
    assert operation(doc, "/lines")["responses"]["200"]["content"] == {
        "application/jsonl": {"schema": {"type": "string"}}
    }
    assert operation(doc, "/events")["responses"]["200"]["content"] == {
        "text/event-stream": {"schema": {"type": "string"}}
    }
    assert operation(doc, "/chunks")["responses"]["200"] == {"description": "Successful Response"}
    assert operation(doc, "/moved")["responses"] == {"307": {"description": "Successful Response"}}
    assert "Item" not in doc.get("components", {}).get("schemas", {})
    assert get_openapi(title=app.title, version=app.version, routes=app.routes) == doc


def test_additional_responses_merge_into_the_main_one() -> None:
    app = App()

    @app.get(
        "/image",
        responses={200: {"content": {"image/png": {}}, "description": "The item or its picture"}},
    )
    async def image() -> Item:
        raise NotImplementedError

    @app.get("/catch-all", responses={"4xx": {"description": "Client trouble"}, "DEFAULT": {}})
    async def catch_all(q: int) -> None:
        pass

    @app.get("/unknown", responses={499: {}, "5XX": {}})
    async def unknown() -> None:
        pass

    doc = document(app)
    ok = operation(doc, "/image")["responses"]["200"]
    assert ok == {
        "description": "The item or its picture",
        "content": {"application/json": {"schema": ref("Item")}, "image/png": {}},
    }
    responses = operation(doc, "/catch-all")["responses"]
    # A 4XX (or default) response covers the 422: FastAPI adds none.
    assert list(responses) == ["200", "4XX", "default"]
    assert responses["default"] == {"description": "Default Response"}
    unknown_responses = operation(doc, "/unknown")["responses"]
    assert unknown_responses["499"] == {"description": "Additional Response"}
    assert unknown_responses["5XX"] == {"description": "Server Error"}


# --- 5. openapi_extra ----------------------------------------------------------------------------


def test_openapi_extra_is_deep_merged_into_the_operation() -> None:
    extra: dict[str, Any] = {
        "x-rate-limit": {"per-minute": 10},
        "tags": ["extra"],
        "responses": {"200": {"description": "Custom", "x-cached": True}},
        "requestBody": {"content": {"application/json": {"schema": {"description": "Overridden"}}}},
    }
    frozen = json.dumps(extra, sort_keys=True)
    app = App()

    @app.post("/a", tags=["items"], openapi_extra=extra)
    async def a(item: Item) -> Item:
        return item

    @app.post("/b")
    async def b(item: Item) -> Item:
        return item

    doc = document(app)
    op = operation(doc, "/a", "post")
    assert op["x-rate-limit"] == {"per-minute": 10}
    assert op["tags"] == ["items", "extra"]  # lists are extended, as FastAPI's deep_dict_update does
    assert op["responses"]["200"]["description"] == "Custom"
    assert op["responses"]["200"]["x-cached"] is True
    assert op["responses"]["200"]["content"] == {"application/json": {"schema": ref("Item")}}
    assert op["requestBody"]["content"]["application/json"]["schema"] == {
        **ref("Item"),
        "description": "Overridden",
    }
    # Nothing leaks into the other operation (which shares the schemas) or back into the option.
    other = operation(doc, "/b", "post")
    assert other["requestBody"]["content"]["application/json"]["schema"] == ref("Item")
    assert other["responses"]["200"]["description"] == "Successful Response"
    assert json.dumps(extra, sort_keys=True) == frozen


def test_openapi_extra_can_describe_a_raw_body() -> None:
    # FastAPI's "read the body yourself" recipe: the handler reads Request, the extra documents it.
    app = App()

    @app.post(
        "/raw",
        openapi_extra={
            "requestBody": {
                "content": {"application/x-yaml": {"schema": ref("Item")}},
                "required": True,
            }
        },
    )
    async def raw(request: toolkit.Request) -> None:
        pass

    @app.post("/uses")
    async def uses(item: Item) -> None:
        pass

    op = operation(document(app), "/raw", "post")
    assert op["requestBody"] == {"content": {"application/x-yaml": {"schema": ref("Item")}}, "required": True}


# --- 6. openapi_examples -------------------------------------------------------------------------


def test_openapi_examples_of_parameters_and_bodies() -> None:
    examples = {
        "normal": {"summary": "A normal item", "value": {"name": "Foo", "price": 35.4}},
        "invalid": {"summary": "Invalid data is rejected", "value": {"name": "Bar", "price": "x"}},
    }
    app = App()

    @app.put("/items/{item_id}")
    async def update(
        item_id: Annotated[int, Path(openapi_examples={"one": {"summary": "One", "value": 1}})],
        item: Annotated[Item, Body(openapi_examples=examples)],
        q: Annotated[str, Query(examples=["a"])] = "",
    ) -> None:
        pass

    @app.post("/embedded")
    async def embedded(
        a: Annotated[int, Body(openapi_examples={"x": {"value": 1}})], b: Annotated[int, Body()]
    ) -> None:
        pass

    doc = document(app)
    op = operation(doc, "/items/{item_id}", "put")
    params = parameters(op)
    assert params["item_id"]["examples"] == {"one": {"summary": "One", "value": 1}}
    assert list(params["item_id"]) == ["name", "in", "required", "schema", "examples"]
    assert op["requestBody"]["content"]["application/json"] == {"schema": ref("Item"), "examples": examples}
    # Plain ``examples`` stay in the schema (as in FastAPI) and are listed for the docs' picker.
    assert params["q"]["schema"]["examples"] == ["a"]
    # Several bodies make one model: FastAPI shows no per-field examples on it.
    assert "examples" not in operation(doc, "/embedded", "post")["requestBody"]["content"]["application/json"]


# --- 7. app info ---------------------------------------------------------------------------------


def test_app_info_fields() -> None:
    app = App(
        title="Shop",
        version="2.0",
        summary="Sells things",
        description="Long text",
        terms_of_service="https://example.com/terms",
        contact={"name": "Support", "email": "support@example.com"},
        license_info={"name": "MIT", "identifier": "MIT"},
    )
    doc = TestClient(app).get("/openapi.json").json()
    validate(doc)
    assert doc["info"] == {
        "title": "Shop",
        "summary": "Sells things",
        "description": "Long text",
        "termsOfService": "https://example.com/terms",
        "contact": {"name": "Support", "email": "support@example.com"},
        "license": {"name": "MIT", "identifier": "MIT"},
        "version": "2.0",
    }
    assert list(doc["info"]) == [
        "title",
        "summary",
        "description",
        "termsOfService",
        "contact",
        "license",
        "version",
    ]
    assert list(App().openapi()["info"]) == ["title", "version"]


def test_top_level_and_operation_key_order() -> None:
    oauth2 = OAuth2PasswordBearer(tokenUrl="/token")
    app = App(servers=[{"url": "https://api.example.com"}], openapi_tags=[{"name": "items"}])

    @app.get("/items/{item_id}", tags=["items"], description="Read one", deprecated=True)
    async def read(item_id: int, token: Annotated[str, Depends(oauth2)]) -> None:
        pass

    doc = document(app)
    assert list(doc) == ["openapi", "info", "servers", "paths", "components", "tags"]
    assert list(operation(doc, "/items/{item_id}")) == [
        "tags",
        "summary",
        "description",
        "operationId",
        "deprecated",
        "security",
        "parameters",
        "responses",
    ]


# --- 8. security scopes --------------------------------------------------------------------------


def test_security_scopes_are_listed_per_scheme() -> None:
    # FastAPI's Security(dependency, scopes=[...]): each scheme once, with every scope asked for it.
    oauth2 = OAuth2PasswordBearer(tokenUrl="/token", scopes={"items:read": "Read", "me": "Me"})

    def current_user(token: Annotated[str, Security(oauth2, scopes=["me"])]) -> str:
        return token

    app = App()

    @app.get("/items", dependencies=[Security(oauth2, scopes=["items:read"])])
    async def items(user: Annotated[str, Security(current_user, scopes=["items:read"])]) -> None:
        pass

    @app.get("/plain")
    async def plain(token: Annotated[str, Depends(oauth2)]) -> None:
        pass

    doc = document(app)
    assert operation(doc, "/items")["security"] == [{"OAuth2PasswordBearer": ["items:read", "me"]}]
    assert operation(doc, "/plain")["security"] == [{"OAuth2PasswordBearer": []}]


def test_without_scopes_the_requirement_lists_none() -> None:
    oauth2 = OAuth2PasswordBearer(tokenUrl="/token")
    app = App()

    @app.get("/me")
    async def me(token: Annotated[str, Depends(oauth2)]) -> None:
        pass

    doc = document(app)
    assert operation(doc, "/me")["security"] == [{"OAuth2PasswordBearer": []}]
    assert doc["components"]["securitySchemes"]["OAuth2PasswordBearer"]["type"] == "oauth2"


# --- 9. get_openapi and the docs pages -----------------------------------------------------------


def shop() -> App:
    oauth2 = OAuth2PasswordBearer(tokenUrl="/token")
    app = App(title="Shop", version="1.0")
    router = Router(prefix="/items", tags=["items"], dependencies=[Depends(oauth2)])

    @router.get("/{item_id:int}")
    async def read_item(item_id: int, q: str | None = None) -> Item:
        raise NotImplementedError

    @router.post("/", status_code=201)
    async def create_item(item: Item) -> Item:
        return item

    @router.post("/login")
    async def login(username: Annotated[str, Form()]) -> None:
        pass

    app.include_router(router)

    @app.websocket("/ws")
    async def ws(websocket: toolkit.WebSocket) -> None:
        pass

    @app.get("/hidden", include_in_schema=False)
    async def hidden() -> None:
        pass

    return app


def test_get_openapi_builds_the_apps_document_from_its_routes() -> None:
    app = shop()
    built = get_openapi(title=app.title, version=app.version, routes=app.routes)
    validate(built)  # type: ignore[arg-type]
    assert built == app.openapi()
    assert get_openapi(title="X", version="1", routes=[])["paths"] == {}
    full = get_openapi(
        title="X",
        version="2",
        openapi_version="3.1.0",
        summary="S",
        description="D",
        routes=app.routes,
        tags=[{"name": "items", "description": "Things"}],
        servers=[{"url": "https://api.example.com"}],
        terms_of_service="https://example.com/terms",
        contact={"name": "Me"},
        license_info={"name": "MIT"},
    )
    validate(full)  # type: ignore[arg-type]
    assert full["info"]["termsOfService"] == "https://example.com/terms"
    assert full["tags"] == [{"name": "items", "description": "Things"}]
    assert full["servers"] == [{"url": "https://api.example.com"}]


def test_the_extending_openapi_recipe_works_end_to_end() -> None:
    app = shop()
    calls: list[int] = []

    def custom_openapi() -> dict[str, Any]:
        calls.append(1)
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title="Custom title",
            version="2.5.0",
            summary="This is a very custom OpenAPI schema",
            description="Here's a longer description of the custom **OpenAPI** schema",
            routes=app.routes,
        )
        schema["info"]["x-logo"] = {"url": "https://fastapi.tiangolo.com/img/logo-margin/logo-teal.png"}
        app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = custom_openapi  # type: ignore[method-assign]
    client = TestClient(app)
    served = client.get("/openapi.json").json()
    validate(served)
    assert served["info"] == {
        "title": "Custom title",
        "summary": "This is a very custom OpenAPI schema",
        "description": "Here's a longer description of the custom **OpenAPI** schema",
        "version": "2.5.0",
        "x-logo": {"url": "https://fastapi.tiangolo.com/img/logo-margin/logo-teal.png"},
    }
    assert "/items/{item_id}" in served["paths"]
    assert client.get("/openapi.json").json() == served
    assert calls


def test_get_openapi_serves_custom_docs_routes() -> None:
    # FastAPI's "custom docs UI" recipe: docs_url=None, then the pages served by hand.
    app = App(docs_url=None, redoc_url=None)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=app.title + " - Swagger UI",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_js_url="/static/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui.css",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=app.title + " - ReDoc", redoc_js_url="/r.js")

    client = TestClient(app)
    page = client.get("/docs")
    assert page.headers["content-type"].startswith("text/html")
    assert '<script src="/static/swagger-ui-bundle.js">' in page.text
    assert '<link rel="stylesheet" href="/static/swagger-ui.css">' in page.text
    assert 'config.oauth2RedirectUrl = window.location.origin + "/docs/oauth2-redirect";' in page.text
    assert "swaggerUIRedirectOauth2" in client.get("/docs/oauth2-redirect").text
    redoc_page = client.get("/redoc").text
    assert '<redoc spec-url="/openapi.json"></redoc>' in redoc_page
    assert '<script src="/r.js">' in redoc_page
    assert list(client.get("/openapi.json").json()["paths"]) == []


def test_docs_helpers_escape_what_they_embed() -> None:
    hostile = "</script><script>alert(1)</script>"
    page = get_swagger_ui_html(
        openapi_url=f"/openapi.json?{hostile}",
        title=f"<b>{hostile}",
        swagger_js_url=f'x.js"{hostile}',
        swagger_css_url=f'x.css"{hostile}',
        swagger_ui_parameters={"docExpansion": hostile, "deepLinking": False},
        oauth2_redirect_url=f"/redirect'{hostile}",
        init_oauth={"clientId": hostile, "usePkceWithAuthorizationCodeGrant": True},
    ).body.decode()
    assert "<script>alert(1)" not in page
    assert page.count("</script>") == 2  # the page's own two script elements
    assert html.escape(f"<b>{hostile}") in page
    assert '"deepLinking":false' in page
    assert 'ui.initOAuth({"clientId":' in page
    assert '"usePkceWithAuthorizationCodeGrant":true' in page
    redoc = get_redoc_html(openapi_url=f'/o"{hostile}', title=hostile, redoc_js_url=f'r"{hostile}').body
    assert b"<script>alert(1)" not in redoc
    assert b"swaggerUIRedirectOauth2" in get_swagger_ui_oauth2_redirect_html().body


def test_swagger_ui_defaults_match_fastapis() -> None:
    page = get_swagger_ui_html(openapi_url="/openapi.json", title="T").body.decode()
    for key in ('"dom_id"', '"layout"', '"deepLinking"', '"showExtensions"', '"showCommonExtensions"'):
        assert key in page
    assert "swagger-ui-dist@5/swagger-ui-bundle.js" in page
    assert "swagger-ui-dist@5/swagger-ui.css" in page
    assert "oauth2RedirectUrl" not in page
    assert "initOAuth" not in page
    assert "redoc@2" in get_redoc_html(openapi_url="/openapi.json", title="T").body.decode()


# --- side by side with FastAPI -------------------------------------------------------------------

# Where the toolkit's document differs on purpose (the twins below avoid all but the first):
# - file fields also say ``format: binary`` (what OpenAPI 3.0 tools look for): removed before comparing;
# - ``Query(examples=[...])`` are also listed as the parameter's named examples (the docs' picker);
# - a stream is ``{"schema": {"type": "string"}}``, not 3.2's ``itemSchema`` (invalid in 3.1);
# - one schema per type: msgspec has no pydantic-style ``Item-Input``/``Item-Output`` split.


def _without_binary_format(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _without_binary_format(v) for k, v in value.items() if not (k == "format" and v == "binary")
        }
    if isinstance(value, list):
        return [_without_binary_format(v) for v in value]
    return value


def _normalized(doc: dict[str, Any]) -> Any:
    """Key order made canonical (``json.dumps(sort_keys=True)``), deliberate differences removed."""
    return json.loads(json.dumps(_without_binary_format(doc), sort_keys=True))


def _toolkit_twin() -> App:
    oauth2 = OAuth2PasswordBearer(tokenUrl="/token")
    app = App(title="Twin", version="1.0", summary="S", contact={"name": "me"}, license_info={"name": "MIT"})

    @app.get("/items/{item_id}", tags=["items"])
    async def read_item(
        item_id: int,
        q: str | None = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
        x_token: Annotated[str | None, Header()] = None,
        session: Annotated[str | None, Cookie()] = None,
    ) -> Item:
        raise NotImplementedError

    @app.post("/items", status_code=201, responses={409: {"description": "Exists"}})
    async def create_item(item: Item) -> Item:
        return item

    @app.put("/items/{item_id}")
    async def update_item(item_id: int, item: Item, importance: Annotated[int, Body()]) -> Item:
        return item

    @app.post("/login")
    async def login(
        username: Annotated[str, Form()],
        password: Annotated[str, Form()],
        remember: Annotated[bool, Form()] = False,
    ) -> dict[str, str]:
        return {}

    @app.post("/upload")
    async def upload(
        file: Annotated[UploadFile, File()], note: Annotated[str, Form()] = ""
    ) -> dict[str, str]:
        return {}

    @app.get("/me")
    async def me(token: Annotated[str, Depends(oauth2)]) -> dict[str, str]:
        return {}

    @app.get("/list")
    async def listing(tags: Annotated[list[str], Query()] = [], color: Color | None = None) -> list[Item]:  # noqa: B006
        return []

    @app.get("/page", response_class=HTMLResponse)
    async def page() -> str:
        return ""

    @app.get("/file", response_class=FileResponse)
    async def file() -> Any:
        return None

    @app.get("/extra", openapi_extra={"x-foo": 1, "responses": {"200": {"description": "Custom"}}})
    async def extra() -> dict[str, int]:
        return {}

    @app.get("/examples")
    async def examples(
        q: Annotated[str, Query(openapi_examples={"a": {"summary": "A", "value": "x"}})] = "d",
    ) -> None:
        pass

    @app.delete("/items/{item_id}", status_code=204)
    async def delete_item(item_id: int) -> None:
        pass

    return app


def _fastapi_twin() -> Any:
    import pydantic
    from fastapi import Body as FBody
    from fastapi import Cookie as FCookie
    from fastapi import Depends as FDepends
    from fastapi import FastAPI
    from fastapi import File as FFile
    from fastapi import Form as FForm
    from fastapi import Header as FHeader
    from fastapi import Query as FQuery
    from fastapi import UploadFile as FUploadFile
    from fastapi.responses import FileResponse as FFileResponse
    from fastapi.responses import HTMLResponse as FHTMLResponse
    from fastapi.security import OAuth2PasswordBearer as FOAuth2PasswordBearer

    namespace: dict[str, Any] = {"pydantic": pydantic, "Color": Color}
    exec(  # the models' names must be Item and Owner, as the toolkit's
        "class Owner(pydantic.BaseModel):\n    id: int\n    email: str\n"
        "class Item(pydantic.BaseModel):\n"
        "    name: str\n    price: float\n    description: str | None = None\n"
        "    tags: list[str] = []\n    owner: Owner | None = None\n    color: Color = Color.red\n",
        namespace,
    )
    PItem = namespace["Item"]
    oauth2 = FOAuth2PasswordBearer(tokenUrl="/token")
    app = FastAPI(
        title="Twin", version="1.0", summary="S", contact={"name": "me"}, license_info={"name": "MIT"}
    )

    @app.get("/items/{item_id}", tags=["items"])
    async def read_item(
        item_id: int,
        q: str | None = None,
        limit: Annotated[int, FQuery(ge=1, le=100)] = 10,
        x_token: Annotated[str | None, FHeader()] = None,
        session: Annotated[str | None, FCookie()] = None,
    ) -> PItem:  # type: ignore[valid-type]
        raise NotImplementedError

    @app.post("/items", status_code=201, responses={409: {"description": "Exists"}})
    async def create_item(item: PItem) -> PItem:  # type: ignore[valid-type]
        return item

    @app.put("/items/{item_id}")
    async def update_item(item_id: int, item: PItem, importance: Annotated[int, FBody()]) -> PItem:  # type: ignore[valid-type]
        return item

    @app.post("/login")
    async def login(
        username: Annotated[str, FForm()],
        password: Annotated[str, FForm()],
        remember: Annotated[bool, FForm()] = False,
    ) -> dict[str, str]:
        return {}

    @app.post("/upload")
    async def upload(
        file: Annotated[FUploadFile, FFile()], note: Annotated[str, FForm()] = ""
    ) -> dict[str, str]:
        return {}

    @app.get("/me")
    async def me(token: Annotated[str, FDepends(oauth2)]) -> dict[str, str]:
        return {}

    @app.get("/list")
    async def listing(  # type: ignore[valid-type]
        tags: Annotated[list[str], FQuery()] = [],  # noqa: B006
        color: Color | None = None,
    ) -> list[PItem]:
        return []

    @app.get("/page", response_class=FHTMLResponse)
    async def page() -> str:
        return ""

    @app.get("/file", response_class=FFileResponse)
    async def file() -> Any:
        return None

    @app.get("/extra", openapi_extra={"x-foo": 1, "responses": {"200": {"description": "Custom"}}})
    async def extra() -> dict[str, int]:
        return {}

    @app.get("/examples")
    async def examples(
        q: Annotated[str, FQuery(openapi_examples={"a": {"summary": "A", "value": "x"}})] = "d",
    ) -> None:
        pass

    @app.delete("/items/{item_id}", status_code=204)
    async def delete_item(item_id: int) -> None:
        pass

    return app


def test_the_document_matches_fastapis_for_the_same_app() -> None:
    pytest.importorskip("fastapi")
    ours = document(_toolkit_twin())
    theirs = _fastapi_twin().openapi()
    assert _normalized(ours) == _normalized(theirs)
    # Same key order too, where FastAPI's is fixed by its models (not by pydantic's sorting).
    assert list(ours) == list(theirs)
    assert list(ours["info"]) == list(theirs["info"])
    for path, item in theirs["paths"].items():
        for method, op in item.items():
            # FastAPI reorders an operation without parameters (its Operation model's order:
            # ``security`` after ``responses``); the others keep the order it builds them in.
            if "parameters" in op:
                assert list(ours["paths"][path][method]) == list(op), (path, method)
    for name, schema in theirs["components"]["schemas"].items():
        assert list(ours["components"]["schemas"][name]) == list(schema), name
