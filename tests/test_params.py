"""Parameters resolved from the handler signature: path, query, header, cookie, body, form, DI."""

import dataclasses
import datetime
import decimal
import enum
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Annotated, Any, Literal, TypedDict

import msgspec
import pytest

from toolkit import (
    App,
    BackgroundTasks,
    Body,
    Cookie,
    Depends,
    File,
    Form,
    Header,
    Query,
    Request,
    Response,
    UploadFile,
)
from toolkit.testing import TestClient

ClientFactory = Callable[..., TestClient]


def error_locs(response: Any) -> list[tuple[Any, ...]]:
    """The sorted ``loc`` of every entry of a 422 response."""
    assert response.status_code == 422, response.text
    return sorted(tuple(e["loc"]) for e in response.json()["detail"])


UUID_TEXT = "12345678-1234-5678-1234-567812345678"


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Owner(msgspec.Struct):
    id: int
    name: str


class Item(msgspec.Struct):
    name: str
    price: float
    owner: Owner | None = None
    tags: list[str] = []


class User(msgspec.Struct):
    username: str


@dataclasses.dataclass
class Point:
    x: int
    y: int = 0


class Movie(TypedDict):
    title: str
    year: int


class LoginStruct(msgspec.Struct):
    username: str
    password: str
    remember: bool = False


# --- path --------------------------------------------------------------------------------------


def test_path_params_by_name(client_factory: ClientFactory) -> None:
    app = App()

    @app.get("/users/{user_id}/items/{slug}")
    async def read(slug: str, user_id: int) -> dict[str, Any]:
        return {"user_id": user_id, "slug": slug}

    client = client_factory(app)
    assert client.get("/users/7/items/pen").json() == {"user_id": 7, "slug": "pen"}


# --- query scalars -----------------------------------------------------------------------------

SCALAR_CASES: list[tuple[Any, str, Any, type]] = [
    # (annotation, raw query value, JSON echoed back, Python type the handler receives)
    (str, "hello", "hello", str),
    (int, "42", 42, int),
    (int, "-3", -3, int),
    (int, "007", 7, int),
    (int, "+5", 5, int),
    (float, "2.5", 2.5, float),
    (float, "3", 3.0, float),
    (bool, "true", True, bool),
    (bool, "false", False, bool),
    (bool, "1", True, bool),
    (bool, "0", False, bool),
    (bool, "yes", True, bool),
    (bool, "On", True, bool),
    (bool, "off", False, bool),
    (bool, "n", False, bool),
    (decimal.Decimal, "1.10", "1.10", decimal.Decimal),
    (Color, "green", "green", Color),
    (Literal["asc", "desc"], "desc", "desc", str),
    (uuid.UUID, UUID_TEXT, UUID_TEXT, uuid.UUID),
    (datetime.date, "2024-02-29", "2024-02-29", datetime.date),
    (datetime.datetime, "2024-01-02T03:04:05Z", "2024-01-02T03:04:05Z", datetime.datetime),
]


def echo_client(client_factory: ClientFactory, annotation: Any) -> TestClient:
    """A client for an app whose ``GET /q`` echoes its one query parameter ``v: annotation``."""
    app = App()

    async def handler(v: Any) -> dict[str, Any]:
        return {"v": v, "type": type(v).__name__}

    handler.__annotations__ = {"v": annotation, "return": dict[str, Any]}
    app.get("/q")(handler)
    return client_factory(app)


@pytest.mark.parametrize(("tp", "raw", "expected", "py_type"), SCALAR_CASES)
def test_query_scalar_types_accept(
    client_factory: ClientFactory, tp: Any, raw: str, expected: Any, py_type: type
) -> None:
    response = echo_client(client_factory, tp).get("/q", params={"v": raw})
    assert response.status_code == 200, response.text
    assert response.json() == {"v": expected, "type": py_type.__name__}


BAD_SCALARS: list[tuple[Any, str, str]] = [
    (int, "abc", "int_parsing"),
    (int, "1.5", "int_parsing"),
    (float, "x", "float_parsing"),
    (bool, "maybe", "bool_parsing"),
    (Color, "blue", "enum"),
    (Literal["asc", "desc"], "up", "enum"),
    (uuid.UUID, "not-a-uuid", "uuid_parsing"),
    (datetime.date, "2023-02-30", "date_parsing"),
    (datetime.datetime, "yesterday", "datetime_parsing"),
]


@pytest.mark.parametrize(("tp", "raw", "kind"), BAD_SCALARS)
def test_query_scalar_types_reject(client_factory: ClientFactory, tp: Any, raw: str, kind: str) -> None:
    response = echo_client(client_factory, tp).get("/q", params={"v": raw})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", "v"]
    assert error["input"] == raw
    assert error["type"] == kind


def test_optional_query_defaults_to_none_and_last_duplicate_wins(client_factory: ClientFactory) -> None:
    app = App()

    @app.get("/q")
    async def handler(q: str | None = None, n: int | None = None, page: int = 1) -> dict[str, Any]:
        return {"q": q, "n": n, "page": page}

    client = client_factory(app)
    assert client.get("/q").json() == {"q": None, "n": None, "page": 1}
    assert client.get("/q?q=x&n=3&page=2").json() == {"q": "x", "n": 3, "page": 2}
    assert client.get("/q?n=x").status_code == 422
    # A scalar given several times: the last value wins (as in FastAPI).
    assert client.get("/q?q=a&q=b&n=1&n=2").json() == {"q": "b", "n": 2, "page": 1}


def test_query_lists_from_repeated_keys(client_factory: ClientFactory) -> None:
    app = App()

    @app.get("/q")
    async def handler(tag: list[str] = [], n: Annotated[list[int], Query()] = []) -> dict[str, Any]:  # noqa: B006
        return {"tag": tag, "n": n}

    client = client_factory(app)
    assert client.get("/q?tag=a&tag=b&n=1&n=2").json() == {"tag": ["a", "b"], "n": [1, 2]}
    assert client.get("/q").json() == {"tag": [], "n": []}
    assert client.get("/q?tag=").json() == {"tag": [""], "n": []}
    response = client.get("/q?n=1&n=two")
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", "n", 1]
    assert error["input"] == "two"


def test_query_marker_annotated_and_default_forms(client_factory: ClientFactory) -> None:
    app = App()

    @app.get("/a")
    async def annotated(q: Annotated[str, Query(max_length=3)] = "x") -> str:
        return q

    @app.get("/d")
    async def default_form(q: str = Query("x", max_length=3)) -> str:
        return q

    client = client_factory(app)
    for path in ("/a", "/d"):
        assert client.get(path).json() == "x"
        assert client.get(path, params={"q": "abc"}).json() == "abc"
        response = client.get(path, params={"q": "abcd"})
        assert response.status_code == 422
        assert response.json()["detail"][0]["type"] == "string_too_long"


def test_query_ellipsis_means_required(client_factory: ClientFactory) -> None:
    app = App()

    @app.get("/q")
    async def handler(q: str = Query(...), r: Annotated[int, Query(...)] = 0) -> dict[str, Any]:
        return {"q": q}

    client = client_factory(app)
    assert error_locs(client.get("/q")) == [("query", "q")]
    assert client.get("/q?q=1").json() == {"q": "1"}


def test_query_alias(client_factory: ClientFactory) -> None:
    app = App()

    @app.get("/q")
    async def handler(item_query: Annotated[str, Query(alias="item-query")]) -> str:
        return item_query

    client = client_factory(app)
    assert client.get("/q?item-query=yes").json() == "yes"
    assert error_locs(client.get("/q?item_query=no")) == [("query", "item-query")]


CONSTRAINTS: list[tuple[dict[str, Any], Any, str, str, str]] = [
    # (Query kwargs, type, accepted, rejected, error type)
    # msgspec normalises an integer gt/lt to ge/le (gt=0 -> ge=1); the toolkit reports the
    # bound as declared, with FastAPI's type names.
    ({"gt": 0}, int, "1", "0", "greater_than"),
    ({"ge": 1}, int, "1", "0", "greater_than_equal"),
    ({"lt": 10}, int, "9", "10", "less_than"),
    ({"le": 10}, int, "10", "11", "less_than_equal"),
    ({"gt": 0.5}, float, "0.6", "0.5", "greater_than"),
    ({"ge": 0.5}, float, "0.5", "0.4", "greater_than_equal"),
    ({"lt": 1.5}, float, "1.4", "1.5", "less_than"),
    ({"le": 1.5}, float, "1.5", "1.6", "less_than_equal"),
    ({"multiple_of": 3}, int, "9", "10", "multiple_of"),
    ({"min_length": 2}, str, "ab", "a", "string_too_short"),
    ({"max_length": 2}, str, "ab", "abc", "string_too_long"),
    ({"pattern": "^[a-z]+$"}, str, "abc", "ab1", "string_pattern_mismatch"),
]


@pytest.mark.parametrize(("kwargs", "tp", "good", "bad", "kind"), CONSTRAINTS)
def test_query_constraints(
    client_factory: ClientFactory, kwargs: dict[str, Any], tp: Any, good: str, bad: str, kind: str
) -> None:
    client = echo_client(client_factory, Annotated[tp, Query(**kwargs)])
    ok = client.get("/q", params={"v": good})
    assert ok.status_code == 200, ok.text
    assert ok.json()["v"] == tp(good)
    response = client.get("/q", params={"v": bad})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["type"] == kind
    assert error["loc"] == ["query", "v"]
    assert error["input"] == bad


# --- headers and cookies -----------------------------------------------------------------------


def test_header_names_underscores_to_hyphens_and_case_insensitive(client_factory: ClientFactory) -> None:
    app = App()

    @app.get("/h")
    async def handler(
        x_client_id: Annotated[str, Header()],
        x_alias: str = Header("-", alias="X-Custom-Alias"),
        x_raw_name: Annotated[str | None, Header(convert_underscores=False)] = None,
    ) -> list[Any]:
        return [x_client_id, x_alias, x_raw_name]

    client = client_factory(app)
    headers = {"X-CLIENT-ID": "c1", "x-custom-alias": "a", "X-Raw-Name": "hyphen"}
    assert client.get("/h", headers=headers).json() == ["c1", "a", None]
    headers = {"x-client-id": "c2", "X-CUSTOM-ALIAS": "b", "X_RAW_NAME": "underscore"}
    assert client.get("/h", headers=headers).json() == ["c2", "b", "underscore"]
    assert error_locs(client.get("/h", headers={"x_client_id": "x"})) == [("header", "x-client-id")]


def test_repeated_headers_into_a_list(client_factory: ClientFactory) -> None:
    app = App()

    @app.get("/h")
    async def handler(x_n: Annotated[list[int], Header()] = [], x_one: str = Header("-")) -> Any:  # noqa: B006
        return {"n": x_n, "one": x_one}

    client = client_factory(app)
    headers = [("X-N", "1"), ("x-n", "2"), ("X-One", "a"), ("X-One", "b")]
    assert client.get("/h", headers=headers).json() == {
        "n": [1, 2],
        "one": "a",
    }  # the first line, as Request.headers and FastAPI read it
    assert client.get("/h").json() == {"n": [], "one": "-"}


def test_cookie_params(client_factory: ClientFactory) -> None:
    app = App()

    @app.get("/c")
    async def handler(session: str = Cookie(), visits: Annotated[int, Cookie()] = 0) -> Any:
        return {"session": session, "visits": visits}

    client = client_factory(app)
    response = client.get("/c", headers={"Cookie": "session=abc; visits=3; other=x"})
    assert response.json() == {"session": "abc", "visits": 3}
    bad_cookies = client.get("/c", headers={"Cookie": "visits=many"})
    assert error_locs(bad_cookies) == [("cookie", "session"), ("cookie", "visits")]


# --- JSON bodies -------------------------------------------------------------------------------


def test_struct_body_nested(client_factory: ClientFactory) -> None:
    app = App()

    @app.post("/items")
    async def create(item: Item) -> dict[str, Any]:
        assert isinstance(item, Item)
        assert item.owner is None or isinstance(item.owner, Owner)
        return {"name": item.name, "owner": item.owner.name if item.owner else None, "tags": item.tags}

    client = client_factory(app)
    payload = {"name": "pen", "price": 1.5, "owner": {"id": 1, "name": "ann"}, "tags": ["a"]}
    assert client.post("/items", json=payload).json() == {"name": "pen", "owner": "ann", "tags": ["a"]}
    assert client.post("/items", json={"name": "pen", "price": 2}).json()["owner"] is None


def test_dataclass_typeddict_dict_list_bodies(client_factory: ClientFactory) -> None:
    app = App()

    @app.post("/point")
    async def point(p: Point) -> list[int]:
        assert isinstance(p, Point)
        return [p.x, p.y]

    @app.post("/movie")
    async def movie(m: Movie) -> str:
        return f"{m['title']} ({m['year']})"

    @app.post("/dict")
    async def mapping(d: dict[str, int]) -> int:
        return sum(d.values())

    @app.post("/list")
    async def items(xs: list[Item]) -> list[str]:
        return [x.name for x in xs]

    client = client_factory(app)
    assert client.post("/point", json={"x": 3}).json() == [3, 0]
    assert client.post("/movie", json={"title": "Up", "year": 2009}).json() == "Up (2009)"
    assert client.post("/dict", json={"a": 1, "b": 2}).json() == 3
    two_items = [{"name": "a", "price": 1}, {"name": "b", "price": 2}]
    assert client.post("/list", json=two_items).json() == ["a", "b"]
    assert client.post("/movie", json={"title": "Up"}).status_code == 422
    assert client.post("/dict", json={"a": "x"}).status_code == 422


def test_body_marker_on_a_scalar(client_factory: ClientFactory) -> None:
    app = App()

    @app.post("/n")
    async def handler(n: Annotated[int, Body(ge=0)]) -> int:
        return n * 2

    client = client_factory(app)
    assert client.post("/n", json=21).json() == 42
    assert error_locs(client.post("/n", json=-1)) == [("body",)]


def test_several_body_params_embed_by_name(client_factory: ClientFactory) -> None:
    app = App()

    @app.put("/items/{item_id}")
    async def update(item_id: int, item: Item, user: User, importance: int = Body()) -> dict[str, Any]:
        return {"item_id": item_id, "item": item.name, "user": user.username, "importance": importance}

    client = client_factory(app)
    payload = {"item": {"name": "Foo", "price": 42.0}, "user": {"username": "dave"}, "importance": 5}
    expected = {"item_id": 1, "item": "Foo", "user": "dave", "importance": 5}
    assert client.put("/items/1", json=payload).json() == expected
    missing_two = client.put("/items/1", json={"item": {"name": "Foo", "price": 42.0}})
    assert error_locs(missing_two) == [("body", "importance"), ("body", "user")]


def test_body_embed_on_a_single_param(client_factory: ClientFactory) -> None:
    app = App()

    @app.post("/items")
    async def create(item: Annotated[Item, Body(embed=True)]) -> str:
        return item.name

    client = client_factory(app)
    assert client.post("/items", json={"item": {"name": "x", "price": 1}}).json() == "x"
    assert error_locs(client.post("/items", json={"name": "x", "price": 1})) == [("body", "item")]


def test_optional_body_with_empty_request(client_factory: ClientFactory) -> None:
    app = App()

    @app.post("/items")
    async def create(item: Item | None = None) -> dict[str, Any]:
        return {"item": None if item is None else item.name}

    client = client_factory(app)
    assert client.post("/items").json() == {"item": None}
    assert client.post("/items", json={"name": "a", "price": 1}).json() == {"item": "a"}


# --- injected objects --------------------------------------------------------------------------


def test_request_injection(client_factory: ClientFactory) -> None:
    app = App()

    @app.post("/r/{x}")
    async def handler(request: Request, x: str) -> dict[str, Any]:
        return {"method": request.method, "path": request.url.path, "x": request.path_params.get("x", x)}

    assert client_factory(app).post("/r/abc").json() == {"method": "POST", "path": "/r/abc", "x": "abc"}


def test_background_task_runs_after_the_response(client_factory: ClientFactory) -> None:
    app = App()
    log: list[str] = []

    def remember(message: str) -> None:
        log.append(message)

    @app.post("/notify")
    async def notify(email: str, tasks: BackgroundTasks) -> dict[str, Any]:
        tasks.add_task(remember, f"sent to {email}")
        return {"queued": True, "log": list(log)}

    response = client_factory(app).post("/notify?email=a@b.c")
    assert response.json() == {"queued": True, "log": []}
    assert log == ["sent to a@b.c"]


def test_response_parameter_sets_header_cookie_status(client_factory: ClientFactory) -> None:
    app = App()

    @app.post("/login")
    async def login(response: Response) -> dict[str, str]:
        response.headers["X-Trace"] = "abc"
        response.set_cookie("sid", "s3cr3t", httponly=True)
        response.status_code = 201
        return {"ok": "yes"}

    @app.get("/plain")
    async def plain(response: Response) -> dict[str, str]:
        response.headers["X-Only"] = "1"
        return {"ok": "yes"}

    client = client_factory(app)
    result = client.post("/login")
    assert result.status_code == 201
    assert result.headers["x-trace"] == "abc"
    assert result.cookies["sid"] == "s3cr3t"
    assert "httponly" in result.headers["set-cookie"].lower()
    assert result.headers["content-type"] == "application/json"
    assert result.json() == {"ok": "yes"}
    plain_result = client.get("/plain")
    assert plain_result.status_code == 200
    assert plain_result.headers["x-only"] == "1"


# --- forms and files ---------------------------------------------------------------------------


def test_form_fields_urlencoded_and_multipart(client_factory: ClientFactory) -> None:
    app = App()

    @app.post("/login")
    async def login(username: str = Form(), age: Annotated[int, Form(ge=0)] = 0) -> dict[str, Any]:
        return {"username": username, "age": age}

    client = client_factory(app)
    assert client.post("/login", data={"username": "ann", "age": "30"}).json() == {
        "username": "ann",
        "age": 30,
    }
    multipart = client.post("/login", data={"username": "bob"}, files={"unused": ("x.txt", b"x")})
    assert multipart.json() == {"username": "bob", "age": 0}
    assert error_locs(client.post("/login", data={"age": "-1"})) == [("body", "age"), ("body", "username")]


def test_file_uploads(client_factory: ClientFactory) -> None:
    app = App()

    @app.post("/one")
    async def one(upload: UploadFile) -> dict[str, Any]:
        content = await upload.read()
        return {"name": upload.filename, "type": upload.content_type, "size": len(content)}

    @app.post("/many")
    async def many(files: list[UploadFile], note: str = Form("")) -> dict[str, Any]:
        return {"names": [f.filename for f in files], "note": note}

    @app.post("/raw")
    async def raw(data: Annotated[bytes, File()]) -> dict[str, Any]:
        return {"data": data.decode()}

    client = client_factory(app)
    result = client.post("/one", files={"upload": ("a.txt", b"hello", "text/plain")})
    assert result.json() == {"name": "a.txt", "type": "text/plain", "size": 5}
    files = [("files", ("a.txt", b"a")), ("files", ("b.txt", b"bb"))]
    result = client.post("/many", files=files, data={"note": "two"})
    assert result.json() == {"names": ["a.txt", "b.txt"], "note": "two"}
    assert client.post("/raw", files={"data": ("d.bin", b"xyz")}).json() == {"data": "xyz"}
    missing = client.post("/one", data={"other": "1"}, files={"nope": ("n.txt", b"")})
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "upload"]
    assert missing.json()["detail"][0]["type"] == "missing"


def test_form_model(client_factory: ClientFactory) -> None:
    app = App()

    @app.post("/login")
    async def login(form: Annotated[LoginStruct, Form()]) -> dict[str, Any]:
        assert isinstance(form, LoginStruct)
        return {"username": form.username, "remember": form.remember}

    client = client_factory(app)
    data = {"username": "ann", "password": "pw", "remember": "true"}
    assert client.post("/login", data=data).json() == {"username": "ann", "remember": True}
    response = client.post("/login", data={"username": "ann"})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["type"] == "missing"
    assert error["loc"] == ["body", "password"]


# --- sync handlers -----------------------------------------------------------------------------


def test_sync_handler_with_parameters(client_factory: ClientFactory) -> None:
    app = App()

    @app.post("/items/{item_id}")
    def update(item_id: int, item: Item, q: str | None = None, x_token: str = Header("none")) -> Any:
        return {"item_id": item_id, "name": item.name, "q": q, "token": x_token}

    client = client_factory(app)
    response = client.post("/items/3?q=z", json={"name": "a", "price": 1}, headers={"X-Token": "t"})
    assert response.json() == {"item_id": 3, "name": "a", "q": "z", "token": "t"}


# --- dependencies (basics) ---------------------------------------------------------------------


def test_dependency_query_params_share_the_422_list(client_factory: ClientFactory) -> None:
    app = App()

    def pagination(skip: int = 0, limit: Annotated[int, Query(le=100)] = 10) -> dict[str, int]:
        return {"skip": skip, "limit": limit}

    @app.get("/items")
    async def items(q: int, page: Annotated[dict[str, int], Depends(pagination)]) -> dict[str, Any]:
        return {"q": q, **page}

    client = client_factory(app)
    assert client.get("/items?q=1&skip=5").json() == {"q": 1, "skip": 5, "limit": 10}
    three_bad = client.get("/items?q=x&skip=y&limit=1000")
    assert error_locs(three_bad) == [("query", "limit"), ("query", "q"), ("query", "skip")]


def test_sub_dependency_and_per_request_cache(client_factory: ClientFactory) -> None:
    app = App()
    calls: list[str] = []

    async def token(x_token: str = Header()) -> str:
        calls.append("token")
        return x_token

    async def user(tok: Annotated[str, Depends(token)]) -> str:
        return f"user-of-{tok}"

    @app.get("/me")
    async def me(u: Annotated[str, Depends(user)], t: Annotated[str, Depends(token)]) -> list[str]:
        return [u, t]

    client = client_factory(app)
    assert client.get("/me", headers={"X-Token": "abc"}).json() == ["user-of-abc", "abc"]
    assert calls == ["token"]
    assert client.get("/me", headers={"X-Token": "def"}).json() == ["user-of-def", "def"]
    assert calls == ["token", "token"]
    assert error_locs(client.get("/me")) == [("header", "x-token")]


def test_generator_dependency_cleanup_after_response(client_factory: ClientFactory) -> None:
    app = App()
    events: list[str] = []

    async def async_resource() -> AsyncIterator[str]:
        events.append("async open")
        yield "A"
        events.append("async close")

    def sync_resource() -> Iterator[str]:
        events.append("sync open")
        yield "S"
        events.append("sync close")

    @app.get("/r")
    async def handler(
        a: Annotated[str, Depends(async_resource)], s: Annotated[str, Depends(sync_resource)]
    ) -> dict[str, Any]:
        return {"a": a, "s": s, "events": list(events)}

    response = client_factory(app).get("/r")
    assert response.json() == {"a": "A", "s": "S", "events": ["async open", "sync open"]}
    assert events == ["async open", "sync open", "sync close", "async close"]
