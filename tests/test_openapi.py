"""The OpenAPI document and the docs pages, checked through the public API.

Every document built here is validated with openapi-spec-validator before anything else is read.
"""

import enum
from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar

import msgspec
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource

from toolkit import (
    App,
    Body,
    Cookie,
    Depends,
    File,
    Form,
    Header,
    HTMLResponse,
    Path,
    PlainTextResponse,
    Query,
    Request,
    Router,
    UploadFile,
    WebSocket,
)
from toolkit.openapi import REDOC_JS, SWAGGER_CSS, SWAGGER_JS
from toolkit.testing import TestClient

ClientFactory = Callable[..., TestClient]

VALIDATION_REF = {"$ref": "#/components/schemas/HTTPValidationError"}


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Owner(msgspec.Struct):
    id: int
    name: str


class Item(msgspec.Struct):
    name: str
    price: float
    color: Color = Color.RED
    owner: Owner | None = None


class Conflict(msgspec.Struct):
    reason: str


class ApiKeyScheme:
    """A minimal security dependency: declares its scheme, reads the header."""

    openapi_security = ("ApiKey", {"type": "apiKey", "in": "header", "name": "X-Key"})

    async def __call__(self, request: Request) -> str:
        return request.headers.get("x-key", "")


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def document(app: App) -> dict[str, Any]:
    """The app's document, validated."""
    doc = app.openapi()
    validate(doc)  # type: ignore[arg-type]
    return doc


def operation(doc: dict[str, Any], path: str, method: str = "get") -> dict[str, Any]:
    result: dict[str, Any] = doc["paths"][path][method]
    return result


def parameters(op: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """The operation's parameters by ``(in, name)``."""
    return {(p["in"], p["name"]): p for p in op.get("parameters", [])}


def operation_ids(doc: dict[str, Any]) -> list[str]:
    return [op["operationId"] for item in doc["paths"].values() for op in item.values()]


# --- the document and the App's metadata ---------------------------------------------------------


def test_app_metadata_servers_and_tags() -> None:
    app = App(
        title="Shop API",
        version="2.5.1",
        description="Sells **things**.",
        servers=[{"url": "https://api.example.com", "description": "production"}, {"url": "/"}],
        openapi_tags=[{"name": "items", "description": "Everything about items"}],
    )

    @app.get("/items", tags=["items"])
    async def list_items() -> list[str]:
        return []

    doc = document(app)
    assert doc["openapi"] == "3.1.0"
    assert doc["info"] == {"title": "Shop API", "version": "2.5.1", "description": "Sells **things**."}
    assert doc["servers"] == [{"url": "https://api.example.com", "description": "production"}, {"url": "/"}]
    assert doc["tags"] == [{"name": "items", "description": "Everything about items"}]
    assert operation(doc, "/items")["tags"] == ["items"]


def test_defaults_of_a_bare_app() -> None:
    app = App()

    @app.get("/")
    async def root() -> dict[str, str]:
        return {}

    doc = document(app)
    assert doc["info"] == {"title": "toolkit", "version": "0.1.0"}
    assert "servers" not in doc
    assert "tags" not in doc
    # The docs routes themselves are not operations of the document.
    assert list(doc["paths"]) == ["/"]


def test_an_app_without_routes_has_a_valid_document() -> None:
    doc = document(App())
    assert doc["paths"] == {}
    assert "components" not in doc


# --- paths, operation ids, summaries -------------------------------------------------------------


def test_paths_drop_converters() -> None:
    app = App()

    @app.get("/items/{item_id:int}/files/{file_path:path}")
    async def read_file(item_id: int, file_path: str) -> str:
        return file_path

    @app.get("/users/{user_id}")
    async def read_user(user_id: str) -> str:
        return user_id

    doc = document(app)
    assert set(doc["paths"]) == {"/items/{item_id}/files/{file_path}", "/users/{user_id}"}
    params = parameters(operation(doc, "/items/{item_id}/files/{file_path}"))
    assert set(params) == {("path", "item_id"), ("path", "file_path")}
    assert params["path", "item_id"]["schema"] == {"type": "integer", "title": "Item Id"}
    assert params["path", "item_id"]["required"] is True


def build_shop() -> App:
    """The same app, built afresh on each call (what ``stable`` is checked against)."""
    app = App()

    @app.get("/items")
    async def list_items() -> list[Item]:
        return []

    @app.post("/items")
    async def create_item(item: Item) -> Item:
        return item

    @app.get("/items/{item_id:int}")
    async def read_item(item_id: int) -> Item:
        raise NotImplementedError

    @app.api_route("/items/{item_id:int}", methods=["PUT", "PATCH"])
    async def update_item(item_id: int, item: Item) -> Item:
        return item

    @app.delete("/items/{item_id:int}", operation_id="removeItem")
    async def delete_item(item_id: int) -> None:
        pass

    router = Router()

    @router.get("/items")
    async def list_items_v2() -> list[Item]:
        return []

    app.include_router(router, prefix="/v2")
    app.include_router(router, prefix="/v3")
    return app


def test_operation_ids_are_unique_and_stable() -> None:
    first, second = document(build_shop()), document(build_shop())
    ids = operation_ids(first)
    assert len(ids) == len(set(ids)) == 8
    assert operation(first, "/items")["operationId"] == "list_items_items_get"
    assert operation(first, "/items", "post")["operationId"] == "create_item_items_post"
    assert operation(first, "/items/{item_id}")["operationId"] == "read_item_items__item_id__get"
    assert operation(first, "/items/{item_id}", "put")["operationId"] == "update_item_items__item_id__put"
    assert operation(first, "/items/{item_id}", "patch")["operationId"] == "update_item_items__item_id__patch"
    assert operation(first, "/items/{item_id}", "delete")["operationId"] == "removeItem"
    assert operation(first, "/v2/items")["operationId"] == "list_items_v2_v2_items_get"
    assert operation(first, "/v3/items")["operationId"] == "list_items_v2_v3_items_get"
    # Building the same app again gives the same document, ids included.
    assert operation_ids(second) == ids
    assert second == first


def test_summary_from_the_name_and_description_from_the_docstring() -> None:
    app = App()

    @app.get("/a")
    async def read_all_items() -> None:
        """List the items.

        Paginated, newest first.
        """

    @app.get("/b", description="Given explicitly.")
    async def with_description() -> None:
        """Not this docstring."""

    @app.get("/c", summary="A custom summary", name="ignored_name")
    async def undocumented() -> None:
        pass

    @app.get("/d", name="named_route")
    async def by_name() -> None:
        pass

    doc = document(app)
    a = operation(doc, "/a")
    assert a["summary"] == "Read All Items"
    assert a["description"] == "List the items.\n\nPaginated, newest first."
    b = operation(doc, "/b")
    assert b["summary"] == "With Description"
    assert b["description"] == "Given explicitly."
    c = operation(doc, "/c")
    assert c["summary"] == "A custom summary"
    assert "description" not in c
    assert operation(doc, "/d")["summary"] == "Named Route"


def test_tags_from_routes_routers_and_include() -> None:
    app = App()

    @app.get("/plain")
    async def plain() -> None:
        pass

    @app.get("/tagged", tags=["one", "two"])
    async def tagged() -> None:
        pass

    users = Router(prefix="/users", tags=["users"])

    @users.get("/me", tags=["me"])
    async def me() -> None:
        pass

    app.include_router(users, tags=["public"])

    admin = Router(tags=["admin"])

    @admin.get("/stats")
    async def stats() -> None:
        pass

    app.include_router(admin, prefix="/admin", tags=["admin"])  # the same tag twice: listed once

    doc = document(app)
    assert "tags" not in operation(doc, "/plain")
    assert operation(doc, "/tagged")["tags"] == ["one", "two"]
    assert operation(doc, "/users/me")["tags"] == ["public", "users", "me"]
    assert operation(doc, "/admin/stats")["tags"] == ["admin"]


def test_deprecated_routes() -> None:
    app = App()

    @app.get("/old", deprecated=True)
    async def old() -> None:
        pass

    @app.get("/new")
    async def new() -> None:
        pass

    legacy = Router()

    @legacy.get("/thing")
    async def thing() -> None:
        pass

    app.include_router(legacy, prefix="/legacy", deprecated=True)

    doc = document(app)
    assert operation(doc, "/old")["deprecated"] is True
    assert "deprecated" not in operation(doc, "/new")
    assert operation(doc, "/legacy/thing")["deprecated"] is True


# --- parameters ----------------------------------------------------------------------------------


def test_parameters_with_locations_constraints_and_docs() -> None:
    app = App()

    @app.get("/items/{item_id}")
    async def search(
        item_id: Annotated[int, Path(ge=1, le=1000, description="The item")],
        q: Annotated[str, Query(min_length=3, max_length=50, pattern="^[a-z]+$")],
        limit: Annotated[int, Query(gt=0, lt=101)] = 10,
        ratio: Annotated[float, Query(multiple_of=0.5, ge=0)] = 1.0,
        color: Color = Color.RED,
        tag: Annotated[list[str] | None, Query()] = None,
        old: Annotated[str | None, Query(deprecated=True, description="Use q")] = None,
        page_token: Annotated[str | None, Query(alias="page-token")] = None,
        x_request_id: Annotated[str | None, Header()] = None,
        x_raw_name: Annotated[str | None, Header(convert_underscores=False)] = None,
        session: Annotated[str | None, Cookie()] = None,
    ) -> None:
        pass

    doc = document(app)
    params = parameters(operation(doc, "/items/{item_id}"))
    assert set(params) == {
        ("path", "item_id"),
        ("query", "q"),
        ("query", "limit"),
        ("query", "ratio"),
        ("query", "color"),
        ("query", "tag"),
        ("query", "old"),
        ("query", "page-token"),
        ("header", "x-request-id"),
        ("header", "x_raw_name"),
        ("cookie", "session"),
    }
    item_id = params["path", "item_id"]
    assert item_id["required"] is True
    assert item_id["description"] == "The item"
    assert item_id["schema"]["type"] == "integer"
    assert item_id["schema"]["minimum"] == 1
    assert item_id["schema"]["maximum"] == 1000

    q = params["query", "q"]
    assert q["required"] is True
    assert q["schema"] == {
        "type": "string",
        "minLength": 3,
        "maxLength": 50,
        "pattern": "^[a-z]+$",
        "title": "Q",
    }

    limit = params["query", "limit"]
    assert limit["required"] is False
    assert limit["schema"]["type"] == "integer"
    assert limit["schema"]["exclusiveMinimum"] == 0
    assert limit["schema"]["exclusiveMaximum"] == 101
    assert limit["schema"]["default"] == 10

    ratio = params["query", "ratio"]["schema"]
    assert ratio["multipleOf"] == 0.5
    assert ratio["minimum"] == 0
    assert ratio["default"] == 1.0

    color = params["query", "color"]
    assert color["schema"] == {**ref("Color"), "default": "red"}
    assert doc["components"]["schemas"]["Color"]["enum"] == ["red", "green"]  # declaration order

    tag_schema = params["query", "tag"]["schema"]
    assert {"type": "array", "items": {"type": "string"}} in tag_schema["anyOf"]

    old = params["query", "old"]
    assert old["deprecated"] is True
    assert old["description"] == "Use q"
    assert old["required"] is False
    assert "deprecated" not in q

    for key in [("query", "page-token"), ("header", "x-request-id"), ("header", "x_raw_name")]:
        assert params[key]["required"] is False
    assert params["cookie", "session"]["required"] is False


def test_required_parameters_without_defaults_even_when_optional_typed() -> None:
    app = App()

    @app.get("/h")
    async def handler(
        x_token: Annotated[str, Header()],
        maybe: Annotated[int | None, Query()],
        opt: int = 3,
    ) -> None:
        pass

    params = parameters(operation(document(app), "/h"))
    assert params["header", "x-token"]["required"] is True
    assert params["query", "maybe"]["required"] is True
    assert params["query", "opt"]["required"] is False


def test_parameter_examples_and_title() -> None:
    app = App()

    @app.get("/e")
    async def handler(q: Annotated[str, Query(title="Search", examples=["apple", "pear"])] = "x") -> None:
        pass

    q = parameters(operation(document(app), "/e"))["query", "q"]
    assert q["schema"]["title"] == "Search"
    assert q["examples"] == {"0": {"value": "apple"}, "1": {"value": "pear"}}


def test_parameters_of_dependencies_are_listed() -> None:
    app = App()

    def pagination(
        skip: Annotated[int, Query(ge=0)] = 0, limit: Annotated[int, Query(le=100)] = 10
    ) -> tuple[int, int]:
        return skip, limit

    async def tenant(x_tenant: Annotated[str, Header()]) -> str:
        return x_tenant

    async def scoped(tenant_id: Annotated[str, Depends(tenant)], region: str = "eu") -> str:
        return tenant_id + region

    async def audited(trace: Annotated[str | None, Cookie()] = None) -> None:
        pass

    @app.get("/items", dependencies=[Depends(audited)])
    async def list_items(
        page: Annotated[tuple[int, int], Depends(pagination)],
        where: Annotated[str, Depends(scoped)],
        q: str | None = None,
    ) -> None:
        pass

    params = parameters(operation(document(app), "/items"))
    assert set(params) == {
        ("query", "skip"),
        ("query", "limit"),
        ("header", "x-tenant"),
        ("query", "region"),
        ("cookie", "trace"),
        ("query", "q"),
    }
    assert params["query", "skip"]["schema"]["minimum"] == 0
    assert params["query", "limit"]["schema"]["maximum"] == 100
    assert params["header", "x-tenant"]["required"] is True


def test_a_parameter_shared_by_handler_and_dependency_is_listed_once() -> None:
    app = App()

    async def dep(q: str) -> str:
        return q

    @app.get("/s")
    async def handler(q: str, d: Annotated[str, Depends(dep)]) -> None:
        pass

    op = operation(document(app), "/s")
    assert [p["name"] for p in op["parameters"]] == ["q"]


# --- include_in_schema ---------------------------------------------------------------------------


def test_routes_left_out_of_the_schema_still_work(client_factory: ClientFactory) -> None:
    app = App()

    @app.get("/public")
    async def public() -> str:
        return "public"

    @app.get("/internal", include_in_schema=False)
    async def internal() -> str:
        return "internal"

    hidden = Router(include_in_schema=False)

    @hidden.get("/metrics")
    async def metrics() -> str:
        return "metrics"

    app.include_router(hidden)

    also_hidden = Router()

    @also_hidden.get("/debug")
    async def debug() -> str:
        return "debug"

    app.include_router(also_hidden, include_in_schema=False)

    doc = document(app)
    assert list(doc["paths"]) == ["/public"]
    client = client_factory(app)
    assert client.get("/internal").json() == "internal"
    assert client.get("/metrics").json() == "metrics"
    assert client.get("/debug").json() == "debug"


def test_parameters_left_out_of_the_schema_still_validate(client_factory: ClientFactory) -> None:
    app = App()

    @app.get("/p")
    async def handler(
        shown: int = 0,
        secret: Annotated[int, Query(include_in_schema=False)] = 0,
        x_internal: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> int:
        return secret

    @app.get("/only-hidden")
    async def only_hidden(secret: Annotated[int, Query(include_in_schema=False)] = 0) -> int:
        return secret

    doc = document(app)
    assert set(parameters(operation(doc, "/p"))) == {("query", "shown")}
    hidden_only = operation(doc, "/only-hidden")
    assert "parameters" not in hidden_only
    # The hidden parameter can still fail validation, so the 422 is documented.
    assert hidden_only["responses"]["422"]["content"]["application/json"]["schema"] == VALIDATION_REF
    client = client_factory(app)
    assert client.get("/p?secret=5").json() == 5
    assert client.get("/only-hidden?secret=nope").status_code == 422


def test_form_fields_left_out_of_the_schema() -> None:
    app = App()

    @app.post("/login")
    async def login(
        username: Annotated[str, Form()],
        honeypot: Annotated[str, Form(include_in_schema=False)] = "",
    ) -> None:
        pass

    doc = document(app)
    body = operation(doc, "/login", "post")["requestBody"]
    assert body["content"]["application/x-www-form-urlencoded"]["schema"] == ref("Body_login_login_post")
    assert doc["components"]["schemas"]["Body_login_login_post"] == {
        "properties": {"username": {"type": "string", "title": "Username"}},
        "type": "object",
        "required": ["username"],
        "title": "Body_login_login_post",
    }


# --- request bodies ------------------------------------------------------------------------------


def test_struct_body_is_a_shared_component() -> None:
    app = App()

    @app.post("/items")
    async def create_item(item: Item) -> Item:
        return item

    @app.put("/items/{item_id}")
    async def replace_item(item_id: int, item: Item) -> Item:
        return item

    doc = document(app)
    for path, method in [("/items", "post"), ("/items/{item_id}", "put")]:
        op = operation(doc, path, method)
        assert op["requestBody"] == {
            "required": True,
            "content": {"application/json": {"schema": ref("Item")}},
        }
        assert op["responses"]["200"]["content"]["application/json"]["schema"] == ref("Item")
    schemas = doc["components"]["schemas"]
    assert set(schemas) == {"Item", "Owner", "Color", "HTTPValidationError", "ValidationError"}
    item = schemas["Item"]
    assert item["type"] == "object"
    assert item["required"] == ["name", "price"]
    assert item["properties"]["name"] == {"type": "string", "title": "Name"}
    assert item["properties"]["price"] == {"type": "number", "title": "Price"}
    # A reference is not titled, and a null default is left out (as pydantic and FastAPI do).
    assert item["properties"]["color"] == {**ref("Color"), "default": "red"}
    assert item["properties"]["owner"] == {"anyOf": [ref("Owner"), {"type": "null"}]}
    assert schemas["Owner"]["required"] == ["id", "name"]
    assert schemas["Color"] == {"type": "string", "enum": ["red", "green"], "title": "Color"}


def test_several_bodies_are_embedded_in_one_component() -> None:
    app = App()

    @app.put("/orders/{order_id}")
    async def update_order_embedded(
        order_id: int,
        item: Item,
        owner: Owner,
        note: Annotated[str, Body(max_length=200)],
        urgent: Annotated[bool, Body()] = False,
    ) -> None:
        pass

    doc = document(app)
    body = operation(doc, "/orders/{order_id}", "put")["requestBody"]
    assert body == {
        "required": True,
        "content": {"application/json": {"schema": ref("Body_update_order_embedded_orders__order_id__put")}},
    }
    component = doc["components"]["schemas"]["Body_update_order_embedded_orders__order_id__put"]
    assert component["type"] == "object"
    assert component["properties"]["item"] == ref("Item")
    assert component["properties"]["owner"] == ref("Owner")
    assert component["properties"]["note"] == {"type": "string", "maxLength": 200, "title": "Note"}
    assert component["properties"]["urgent"] == {"type": "boolean", "title": "Urgent", "default": False}
    assert sorted(component["required"]) == ["item", "note", "owner"]


def test_single_embedded_body_and_alias() -> None:
    app = App()

    @app.post("/embed")
    async def create_embedded_alias(item: Annotated[Item, Body(embed=True, alias="the-item")]) -> None:
        pass

    doc = document(app)
    body = operation(doc, "/embed", "post")["requestBody"]
    schema = doc["components"]["schemas"][
        body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    ]
    assert schema["properties"] == {"the-item": ref("Item")}
    assert schema["required"] == ["the-item"]


def test_optional_body_is_not_required() -> None:
    app = App()

    @app.post("/maybe")
    async def maybe(item: Item | None = None) -> None:
        pass

    @app.post("/plain")
    async def plain(data: dict[str, int]) -> None:
        pass

    doc = document(app)
    maybe_body = operation(doc, "/maybe", "post")["requestBody"]
    assert "required" not in maybe_body  # FastAPI leaves it out rather than saying false
    assert maybe_body["content"]["application/json"]["schema"] == {
        "anyOf": [ref("Item"), {"type": "null"}],
        "title": "Item",
    }
    plain_body = operation(doc, "/plain", "post")["requestBody"]
    assert plain_body["required"] is True
    assert plain_body["content"]["application/json"]["schema"] == {
        "type": "object",
        "additionalProperties": {"type": "integer"},
        "title": "Data",
    }


def test_urlencoded_form() -> None:
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
    assert body["required"] is True
    assert list(body["content"]) == ["application/x-www-form-urlencoded"]
    # The form is a component named after the operation, as FastAPI names it.
    assert body["content"]["application/x-www-form-urlencoded"]["schema"] == ref("Body_login_login_post")
    schema = doc["components"]["schemas"]["Body_login_login_post"]
    assert schema["type"] == "object"
    assert schema["properties"]["username"] == {"type": "string", "minLength": 1, "title": "Username"}
    assert schema["properties"]["password"] == {"type": "string", "title": "Password"}
    assert schema["properties"]["remember"] == {"type": "boolean", "title": "Remember", "default": False}
    assert schema["required"] == ["username", "password"]


def test_multipart_form_with_files() -> None:
    app = App()

    @app.post("/upload")
    async def upload(
        document: UploadFile,
        attachments: Annotated[list[UploadFile], File()],
        raw: Annotated[bytes | None, File()] = None,
        title: Annotated[str, Form()] = "untitled",
    ) -> None:
        pass

    doc = document_of(app)
    body = operation(doc, "/upload", "post")["requestBody"]
    assert list(body["content"]) == ["multipart/form-data"]
    assert body["content"]["multipart/form-data"]["schema"] == ref("Body_upload_upload_post")
    schema = doc["components"]["schemas"]["Body_upload_upload_post"]
    binary = {"type": "string", "format": "binary", "contentMediaType": "application/octet-stream"}
    assert schema["properties"]["document"] == {**binary, "title": "Document"}
    assert schema["properties"]["attachments"] == {"type": "array", "items": binary, "title": "Attachments"}
    assert schema["properties"]["raw"] == {**binary, "title": "Raw"}
    assert schema["properties"]["title"] == {"type": "string", "title": "Title", "default": "untitled"}
    assert sorted(schema["required"]) == ["attachments", "document"]


document_of = document  # for handlers with a parameter named ``document``


def test_form_model_is_the_form_schema() -> None:
    app = App()

    class Signup(msgspec.Struct):
        email: str
        age: int

    @app.post("/signup")
    async def signup(data: Annotated[Signup, Form()]) -> None:
        pass

    doc = document(app)
    body = operation(doc, "/signup", "post")["requestBody"]
    assert body["content"]["application/x-www-form-urlencoded"]["schema"] == ref("Signup")
    assert doc["components"]["schemas"]["Signup"]["required"] == ["email", "age"]


# --- responses -----------------------------------------------------------------------------------


def test_status_code_and_response_schemas() -> None:
    app = App()

    @app.post("/items", status_code=201)
    async def create(item: Item) -> Item:
        return item

    @app.get("/items")
    async def list_all() -> list[Item]:
        return []

    @app.get("/explicit", response_model=list[Owner], response_description="The owners")
    async def explicit() -> Any:
        return []

    @app.get("/untyped")
    async def untyped():  # type: ignore[no-untyped-def]
        return {}

    @app.get("/unvalidated", response_model=None)
    async def unvalidated() -> Item:
        raise NotImplementedError

    @app.get("/scalar")
    async def scalar() -> int:
        return 1

    doc = document(app)
    created = operation(doc, "/items", "post")["responses"]
    assert set(created) == {"201", "422"}
    assert created["201"] == {
        "description": "Successful Response",
        "content": {"application/json": {"schema": ref("Item")}},
    }
    listed = operation(doc, "/items")["responses"]
    assert set(listed) == {"200"}
    # An inline response schema is titled after the operation (FastAPI's ``Response_<id>``).
    assert listed["200"]["content"]["application/json"]["schema"] == {
        "type": "array",
        "items": ref("Item"),
        "title": "Response List All Items Get",
    }
    explicit_200 = operation(doc, "/explicit")["responses"]["200"]
    assert explicit_200["description"] == "The owners"
    assert explicit_200["content"]["application/json"]["schema"] == {
        "type": "array",
        "items": ref("Owner"),
        "title": "Response Explicit Explicit Get",
    }
    assert operation(doc, "/untyped")["responses"]["200"]["content"] == {"application/json": {"schema": {}}}
    assert operation(doc, "/unvalidated")["responses"]["200"]["content"] == {
        "application/json": {"schema": {}}
    }
    assert operation(doc, "/scalar")["responses"]["200"]["content"]["application/json"]["schema"] == {
        "type": "integer",
        "title": "Response Scalar Scalar Get",
    }


def test_no_content_responses() -> None:
    app = App()

    @app.delete("/items/{item_id}", status_code=204)
    async def delete_item(item_id: int) -> None:
        pass

    @app.get("/not-modified", status_code=304)
    async def not_modified() -> None:
        pass

    doc = document(app)
    assert operation(doc, "/items/{item_id}", "delete")["responses"]["204"] == {
        "description": "Successful Response"
    }
    assert operation(doc, "/not-modified")["responses"]["304"] == {"description": "Successful Response"}


def test_additional_responses() -> None:
    app = App()

    @app.post(
        "/items",
        status_code=201,
        responses={
            409: {"description": "Already exists", "model": Conflict},
            404: {"model": Conflict},
            403: {"description": "Forbidden"},
            499: {},
        },
    )
    async def create(item: Item) -> Item:
        return item

    shared = Router(responses={503: {"description": "Down for maintenance"}})

    @shared.get("/status", responses={429: {"description": "Slow down", "model": Conflict}})
    async def status() -> None:
        pass

    app.include_router(shared)

    doc = document(app)
    responses = operation(doc, "/items", "post")["responses"]
    assert set(responses) == {"201", "422", "409", "404", "403", "499"}
    assert responses["409"] == {
        "description": "Already exists",
        "content": {"application/json": {"schema": ref("Conflict")}},
    }
    assert responses["404"] == {
        "description": "Not Found",
        "content": {"application/json": {"schema": ref("Conflict")}},
    }
    assert responses["403"] == {"description": "Forbidden"}
    assert responses["499"] == {"description": "Additional Response"}  # FastAPI's, for a code without phrase
    status_responses = operation(doc, "/status")["responses"]
    assert set(status_responses) == {"200", "429", "503"}
    assert status_responses["503"] == {"description": "Down for maintenance"}
    assert status_responses["429"]["content"]["application/json"]["schema"] == ref("Conflict")
    assert list(doc["components"]["schemas"]).count("Conflict") == 1


def test_response_class_sets_the_media_type() -> None:
    app = App()

    @app.get("/page", response_class=HTMLResponse)
    async def page() -> str:
        return "<h1>hi</h1>"

    @app.get("/text", response_class=PlainTextResponse)
    async def text() -> str:
        return "hi"

    doc = document(app)
    assert list(operation(doc, "/page")["responses"]["200"]["content"]) == ["text/html"]
    assert list(operation(doc, "/text")["responses"]["200"]["content"]) == ["text/plain"]
    default_app = App(default_response_class=HTMLResponse)

    @default_app.get("/x")
    async def x() -> str:
        return ""

    assert list(operation(document(default_app), "/x")["responses"]["200"]["content"]) == ["text/html"]


def test_validation_error_schemas_only_when_something_can_fail() -> None:
    app = App()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    doc = document(app)
    assert set(operation(doc, "/health")["responses"]) == {"200"}
    assert "HTTPValidationError" not in doc.get("components", {}).get("schemas", {})
    assert "ValidationError" not in doc.get("components", {}).get("schemas", {})

    @app.get("/items/{item_id}")
    async def read(item_id: int) -> None:
        pass

    doc = document(app)
    assert set(operation(doc, "/health")["responses"]) == {"200"}
    assert operation(doc, "/items/{item_id}")["responses"]["422"] == {
        "description": "Validation Error",
        "content": {"application/json": {"schema": VALIDATION_REF}},
    }
    schemas = doc["components"]["schemas"]
    assert schemas["HTTPValidationError"]["properties"]["detail"] == {
        "type": "array",
        "items": ref("ValidationError"),
        "title": "Detail",
    }
    assert sorted(schemas["ValidationError"]["required"]) == ["loc", "msg", "type"]


def test_validation_error_schema_matches_real_422s(client_factory: ClientFactory) -> None:
    app = App()

    @app.post("/items/{item_id}")
    async def create(item_id: int, item: Item, q: Annotated[int, Query(ge=0)]) -> None:
        pass

    doc = document(app)
    response = client_factory(app).post("/items/x?q=-1", json={"name": 1})
    assert response.status_code == 422
    assert len(response.json()["detail"]) >= 3
    # A real 422 fits the schema the document gives it.
    resource = Resource.from_contents(
        {"$schema": "https://json-schema.org/draft/2020-12/schema", "components": doc["components"]}
    )
    registry: Registry[Any] = Registry().with_resource("urn:doc", resource)
    schema = {"$ref": "urn:doc#/components/schemas/HTTPValidationError"}
    Draft202012Validator(schema, registry=registry).validate(response.json())


# --- components ----------------------------------------------------------------------------------


def test_a_type_used_by_several_operations_is_one_component() -> None:
    app = App()

    class Tag(msgspec.Struct):
        label: str

    class Post(msgspec.Struct):
        title: str
        tags: list[Tag]

    @app.post("/posts")
    async def create_post(post: Post) -> Post:
        return post

    @app.get("/posts")
    async def list_posts() -> list[Post]:
        return []

    @app.get("/tags")
    async def list_tags(color: Color | None = None) -> list[Tag]:
        return []

    doc = document(app)
    schemas = doc["components"]["schemas"]
    assert {"Post", "Tag", "Color"} <= set(schemas)
    assert schemas["Post"]["properties"]["tags"] == {"type": "array", "items": ref("Tag"), "title": "Tags"}
    assert operation(doc, "/posts", "post")["requestBody"]["content"]["application/json"]["schema"] == ref(
        "Post"
    )
    assert operation(doc, "/posts")["responses"]["200"]["content"]["application/json"]["schema"] == {
        "type": "array",
        "items": ref("Post"),
        "title": "Response List Posts Posts Get",
    }
    # Components are sorted by name, so the document is stable.
    assert list(schemas) == sorted(schemas)


def test_two_different_types_with_one_name_are_refused() -> None:
    app = App()

    def make() -> type:
        class Thing(msgspec.Struct):
            x: int

        return Thing

    first, second = make(), make()

    @app.post("/a")
    async def a(thing: first) -> None:  # type: ignore[valid-type]
        pass

    @app.post("/b")
    async def b(thing: second) -> None:  # type: ignore[valid-type]
        pass

    with pytest.raises(
        RuntimeError, match=r"both named 'Thing' \(.*make.<locals>.Thing and .*make.<locals>.Thing\)"
    ):
        app.openapi()


def test_a_clash_nested_inside_another_type_is_refused_too() -> None:
    """The duplicate sits in a field of a body and in a response, not at the top level."""

    def make() -> type:
        class Owner(msgspec.Struct):
            name: str

        return Owner

    first, second = make(), make()
    Pet = msgspec.defstruct("Pet", [("owners", dict[str, list[first]])])  # type: ignore[valid-type]
    app = App()

    @app.post("/pets")
    async def create(pet: Pet) -> None:  # type: ignore[valid-type]
        pass

    @app.get("/owner", response_model=second)
    async def owner() -> dict[str, str]:
        return {"name": "x"}

    with pytest.raises(RuntimeError, match="both named 'Owner'"):
        app.openapi()


def test_a_type_named_like_the_422_schema_is_refused_not_overwritten() -> None:
    class ValidationError(msgspec.Struct):
        field: str
        reason: str

    app = App()

    @app.post("/check", response_model=ValidationError)
    async def check(q: int) -> dict[str, str]:
        return {"field": "q", "reason": "x"}

    with pytest.raises(RuntimeError, match="'ValidationError' clashes with the schema of the 422 response"):
        app.openapi()


def test_generic_instances_and_one_type_used_twice_are_not_clashes() -> None:
    T = TypeVar("T")

    class Page(msgspec.Struct, Generic[T]):
        items: list[T]

    class Cat(msgspec.Struct):
        name: str

    class Dog(msgspec.Struct):
        name: str

    app = App()

    @app.get("/cats", response_model=Page[Cat])
    async def cats() -> dict[str, list[str]]:
        return {"items": []}

    @app.get("/dogs", response_model=Page[Dog])
    async def dogs() -> dict[str, list[str]]:
        return {"items": []}

    @app.post("/cats")
    async def add(cat: Cat) -> Cat:
        return cat

    names = set(app.openapi()["components"]["schemas"])
    assert {"Page_Cat_", "Page_Dog_", "Cat", "Dog"} <= names
    assert not [name for name in names if "." in name]  # never a module-qualified name


# --- security ------------------------------------------------------------------------------------


def test_security_scheme_of_a_dependency() -> None:
    app = App()
    api_key = ApiKeyScheme()

    @app.get("/secure")
    async def secure(key: Annotated[str, Depends(api_key)]) -> str:
        return key

    async def nested(key: Annotated[str, Depends(api_key)]) -> str:
        return key

    @app.get("/nested")
    async def via_nested(
        value: Annotated[str, Depends(nested)], again: Annotated[str, Depends(api_key)]
    ) -> str:
        return value

    @app.get("/route-level", dependencies=[Depends(api_key)])
    async def route_level() -> None:
        pass

    @app.get("/open")
    async def open_route() -> None:
        pass

    doc = document(app)
    assert doc["components"]["securitySchemes"] == {
        "ApiKey": {"type": "apiKey", "in": "header", "name": "X-Key"}
    }
    for path in ["/secure", "/nested", "/route-level"]:
        assert operation(doc, path)["security"] == [{"ApiKey": []}], path
    assert "security" not in operation(doc, "/open")


def test_several_security_schemes() -> None:
    app = App()
    key_a, key_b = ApiKeyScheme(), ApiKeyScheme()  # two instances of one scheme: one requirement

    class BearerScheme:
        @property
        def openapi_security(self) -> tuple[str, dict[str, Any]]:
            return "Bearer", {"type": "http", "scheme": "bearer"}

        async def __call__(self, request: Request) -> str:
            return request.headers.get("authorization", "")

    class ReadsToken(BearerScheme):
        """Used as a class dependency: the class itself has a property, not a scheme."""

        def __init__(self, request: Request) -> None:
            self.token = request.headers.get("authorization", "")

    bearer = BearerScheme()

    @app.get("/both")
    async def both(
        a: Annotated[str, Depends(key_a)],
        b: Annotated[str, Depends(key_b)],
        token: Annotated[str, Depends(bearer)],
    ) -> None:
        pass

    @app.get("/class-dependency")
    async def class_dependency(reader: Annotated[ReadsToken, Depends()]) -> str:
        return reader.token

    doc = document(app)
    assert doc["components"]["securitySchemes"] == {
        "ApiKey": {"type": "apiKey", "in": "header", "name": "X-Key"},
        "Bearer": {"type": "http", "scheme": "bearer"},
    }
    assert operation(doc, "/both")["security"] == [{"ApiKey": []}, {"Bearer": []}]
    assert "security" not in operation(doc, "/class-dependency")


def test_security_dependency_runs(client_factory: ClientFactory) -> None:
    app = App()

    @app.get("/secure")
    async def secure(key: Annotated[str, Depends(ApiKeyScheme())]) -> str:
        return key

    assert client_factory(app).get("/secure", headers={"X-Key": "k1"}).json() == "k1"


# --- HEAD, websockets ----------------------------------------------------------------------------


def test_head_is_not_a_separate_operation_of_get_routes() -> None:
    app = App()

    @app.get("/items")
    async def list_items() -> None:
        pass

    @app.api_route("/both", methods=["GET", "HEAD", "POST"])
    async def both() -> None:
        pass

    @app.head("/ping")
    async def ping() -> None:
        pass

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.close()

    doc = document(app)
    assert doc["paths"] == {
        "/items": {"get": doc["paths"]["/items"]["get"]},
        "/both": {"get": doc["paths"]["/both"]["get"], "post": doc["paths"]["/both"]["post"]},
        "/ping": {"head": doc["paths"]["/ping"]["head"]},
    }


# --- caching and serving -------------------------------------------------------------------------


def test_document_is_cached_and_rebuilt_after_a_route_is_added(client_factory: ClientFactory) -> None:
    app = App()

    @app.get("/a")
    async def a() -> None:
        pass

    first = app.openapi()
    assert app.openapi() is first
    client = client_factory(app)
    served = client.get("/openapi.json")
    assert served.status_code == 200
    assert served.headers["content-type"] == "application/json"
    assert served.json() == first
    assert client.get("/openapi.json").content == served.content

    @app.get("/b")
    async def b() -> None:
        pass

    second = document(app)
    assert second is not first
    assert set(second["paths"]) == {"/a", "/b"}
    assert app.openapi() is second
    assert set(client.get("/openapi.json").json()["paths"]) == {"/a", "/b"}

    router = Router()

    @router.get("/c")
    async def c() -> None:
        pass

    app.include_router(router)
    assert set(client.get("/openapi.json").json()["paths"]) == {"/a", "/b", "/c"}


def test_served_document_is_json_of_the_document(client_factory: ClientFactory) -> None:
    doc = document(build_shop())
    assert client_factory(build_shop()).get("/openapi.json").json() == doc


def test_openapi_url_none_disables_everything(client_factory: ClientFactory) -> None:
    app = App(openapi_url=None)

    @app.get("/a")
    async def a() -> str:
        return "a"

    client = client_factory(app)
    for path in ["/openapi.json", "/docs", "/redoc"]:
        assert client.get(path).status_code == 404, path
    assert client.get("/a").json() == "a"
    # The document itself can still be built in code.
    assert list(document(app)["paths"]) == ["/a"]


def test_docs_and_redoc_can_be_disabled_one_by_one(client_factory: ClientFactory) -> None:
    client = client_factory(App(docs_url=None))
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    client = client_factory(App(redoc_url=None))
    assert client.get("/docs").status_code == 200
    assert client.get("/redoc").status_code == 404


def test_custom_urls(client_factory: ClientFactory) -> None:
    app = App(openapi_url="/api/schema.json", docs_url="/api/docs", redoc_url="/api/redoc")

    @app.get("/api/items")
    async def items() -> list[int]:
        return []

    client = client_factory(app)
    for path in ["/openapi.json", "/docs", "/redoc"]:
        assert client.get(path).status_code == 404, path
    assert list(client.get("/api/schema.json").json()["paths"]) == ["/api/items"]
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    assert '"url":"/api/schema.json"' in docs.text
    redoc = client.get("/api/redoc")
    assert redoc.status_code == 200
    assert 'spec-url="/api/schema.json"' in redoc.text


# --- the docs pages ------------------------------------------------------------------------------


def test_swagger_page_defaults_to_the_cdn(client_factory: ClientFactory) -> None:
    response = client_factory(App(title="Shop")).get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = response.text
    assert f'<script src="{SWAGGER_JS}"></script>' in page
    assert f'<link rel="stylesheet" href="{SWAGGER_CSS}">' in page
    assert SWAGGER_JS.startswith("https://")
    assert SWAGGER_CSS.startswith("https://")
    assert '"url":"/openapi.json"' in page
    assert '"dom_id":"#swagger-ui"' in page
    assert '<div id="swagger-ui"></div>' in page
    assert "<title>Shop - Swagger UI</title>" in page


def test_swagger_page_with_self_hosted_assets_and_parameters(client_factory: ClientFactory) -> None:
    app = App(
        swagger_js_url="/static/swagger-ui-bundle.js",
        swagger_css_url="/static/swagger-ui.css",
        swagger_ui_parameters={"deepLinking": False, "docExpansion": "none", "syntaxHighlight": False},
    )
    page = client_factory(app).get("/docs").text
    assert '<script src="/static/swagger-ui-bundle.js"></script>' in page
    assert '<link rel="stylesheet" href="/static/swagger-ui.css">' in page
    assert "cdn.jsdelivr.net" not in page
    assert '"deepLinking":false' in page
    assert '"docExpansion":"none"' in page
    assert '"syntaxHighlight":false' in page


def test_redoc_page(client_factory: ClientFactory) -> None:
    page = client_factory(App(title="Shop")).get("/redoc").text
    assert f'<script src="{REDOC_JS}"></script>' in page
    assert '<redoc spec-url="/openapi.json"></redoc>' in page
    assert "<title>Shop - ReDoc</title>" in page
    custom = client_factory(App(redoc_js_url="/static/redoc.js")).get("/redoc").text
    assert '<script src="/static/redoc.js"></script>' in custom
    assert REDOC_JS not in custom


def test_pages_escape_what_they_embed(client_factory: ClientFactory) -> None:
    evil = "</script><script>alert(1)</script>"
    app = App(
        title=evil, swagger_ui_parameters={"x": evil}, swagger_js_url='/a.js"><script>alert(2)</script>'
    )
    page = client_factory(app).get("/docs").text
    assert "<script>alert(" not in page
    assert "&lt;/script&gt;&lt;script&gt;alert(1)" in page
    assert "\\u003c/script\\u003e" in page
    redoc = client_factory(App(title=evil)).get("/redoc").text
    assert "<script>alert(" not in redoc


def test_mounted_app_docs_point_under_the_mount(client_factory: ClientFactory) -> None:
    sub = App(title="Sub")

    @sub.get("/items")
    async def sub_items() -> list[int]:
        return [1]

    main = App(title="Main")

    @main.get("/health")
    async def health() -> str:
        return "ok"

    main.mount("/v1", sub)
    client = client_factory(main)
    docs = client.get("/v1/docs")
    assert docs.status_code == 200
    assert '"url":"/v1/openapi.json"' in docs.text
    redoc = client.get("/v1/redoc")
    assert redoc.status_code == 200
    assert 'spec-url="/v1/openapi.json"' in redoc.text
    sub_doc = client.get("/v1/openapi.json").json()
    assert sub_doc["info"]["title"] == "Sub"
    assert list(sub_doc["paths"]) == ["/items"]
    assert client.get("/v1/items").json() == [1]
    # The outer app's own pages and document are unaffected.
    assert '"url":"/openapi.json"' in client.get("/docs").text
    assert list(client.get("/openapi.json").json()["paths"]) == ["/health"]


def test_docs_behind_a_proxy_root_path(client_factory: ClientFactory) -> None:
    client = client_factory(App(), root_path="/proxy")
    assert '"url":"/proxy/openapi.json"' in client.get("/proxy/docs").text
    assert 'spec-url="/proxy/openapi.json"' in client.get("/proxy/redoc").text


# --- one app with everything, validated ----------------------------------------------------------


def test_a_full_featured_app_validates() -> None:
    app = App(
        title="Everything",
        version="1.0.0",
        description="All features at once.",
        servers=[{"url": "http://localhost:8000"}],
        openapi_tags=[{"name": "items"}, {"name": "users", "description": "People"}],
    )
    api_key = ApiKeyScheme()

    def paging(skip: Annotated[int, Query(ge=0)] = 0, limit: Annotated[int, Query(ge=1, le=100)] = 10) -> int:
        return limit

    items = Router(prefix="/items", tags=["items"], dependencies=[Depends(api_key)])

    @items.get("/")
    async def list_everything(p: Annotated[int, Depends(paging)], color: Color | None = None) -> list[Item]:
        """All items."""
        return []

    @items.post("/", status_code=201, responses={409: {"description": "Exists", "model": Conflict}})
    async def create_everything(item: Item) -> Item:
        return item

    @items.get("/{item_id:int}")
    async def read_everything(
        item_id: Annotated[int, Path(ge=1)],
        if_none_match: Annotated[str | None, Header()] = None,
        q: Annotated[str | None, Query(deprecated=True, max_length=10)] = None,
    ) -> Item:
        raise NotImplementedError

    @items.put("/{item_id:int}")
    async def update_everything(item_id: int, item: Item, owner: Owner) -> Item:
        return item

    @items.delete("/{item_id:int}", status_code=204, deprecated=True)
    async def delete_everything(item_id: int) -> None:
        pass

    app.include_router(items)
    users = Router()

    @users.post("/login")
    async def login_everything(
        username: Annotated[str, Form()],
        password: Annotated[str, Form()],
        session: Annotated[str | None, Cookie()] = None,
    ) -> dict[str, str]:
        return {}

    @users.post("/avatar")
    async def avatar_everything(file: UploadFile, alt: Annotated[str, Form()] = "") -> None:
        pass

    @users.get("/page", response_class=HTMLResponse, include_in_schema=True)
    async def page_everything() -> str:
        return ""

    app.include_router(users, prefix="/users", tags=["users"])

    @app.get("/hidden", include_in_schema=False)
    async def hidden_everything() -> None:
        pass

    @app.websocket("/ws")
    async def ws_everything(websocket: WebSocket) -> None:
        await websocket.close()

    doc = document(app)
    assert set(doc["paths"]) == {
        "/items/",
        "/items/{item_id}",
        "/users/login",
        "/users/avatar",
        "/users/page",
    }
    ids = operation_ids(doc)
    assert len(ids) == len(set(ids)) == 8
    assert set(doc["components"]["schemas"]) == {
        "Body_avatar_everything_users_avatar_post",
        "Body_login_everything_users_login_post",
        "Body_update_everything_items__item_id__put",
        "Color",
        "Conflict",
        "HTTPValidationError",
        "Item",
        "Owner",
        "ValidationError",
    }
    assert doc["components"]["securitySchemes"] == {"ApiKey": ApiKeyScheme.openapi_security[1]}
    for path, item in doc["paths"].items():
        for op in item.values():
            assert (op.get("security") == [{"ApiKey": []}]) == path.startswith("/items"), path


def test_embedded_body_component_names_are_stable_across_app_builds() -> None:
    class Part(msgspec.Struct):
        x: int

    def make() -> App:
        app = App()

        @app.post("/parts")
        async def create(a: Part, b: Part) -> None:
            return None

        return app

    first, second = make().openapi(), make().openapi()
    assert first == second
    assert "Body_create_parts_post" in first["components"]["schemas"]


def test_a_mounted_app_documents_its_prefix_as_the_server() -> None:
    sub = App()

    @sub.get("/items")
    async def items() -> list[int]:
        return []

    main = App(openapi_url=None)
    main.mount("/v1", sub)
    client = TestClient(main)
    assert client.get("/v1/openapi.json").json()["servers"] == [{"url": "/v1"}]
    assert client.get("/v1/items").status_code == 200
    assert "servers" not in TestClient(sub).get("/openapi.json").json()


def test_a_streaming_route_documents_its_media_type() -> None:
    from toolkit import EventSourceResponse

    app = App()

    @app.get("/events")
    async def events() -> EventSourceResponse:
        return EventSourceResponse(iter(()))

    @app.get("/raw", response_class=EventSourceResponse)
    async def raw() -> EventSourceResponse:
        return EventSourceResponse(iter(()))

    paths = app.openapi()["paths"]
    for path in ("/events", "/raw"):
        assert list(paths[path]["get"]["responses"]["200"]["content"]) == ["text/event-stream"]
