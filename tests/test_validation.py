"""The 422 wire contract (FastAPI's shape), every kind of bad input, and response validation."""

from collections.abc import Callable, Iterator
from typing import Annotated, Any

import msgspec
import pytest

from toolkit import App, Body, Cookie, Header, Query, UploadFile
from toolkit.testing import TestClient

ClientFactory = Callable[..., TestClient]

JSON = {"content-type": "application/json"}
ERROR_KEYS = {"type", "loc", "msg", "input"}


class Owner(msgspec.Struct):
    id: int
    name: str


class Item(msgspec.Struct):
    name: str
    price: Annotated[float, msgspec.Meta(gt=0)]
    owner: Owner
    tags: list[str] = []


class Strict(msgspec.Struct, forbid_unknown_fields=True):
    a: int


class FloatBox(msgspec.Struct):
    x: float


class IntBox(msgspec.Struct):
    n: int


class SmallIntBox(msgspec.Struct):
    n: Annotated[int, msgspec.Meta(le=10)]


class UserOut(msgspec.Struct):
    id: int
    name: str


class UserRecord(msgspec.Struct):
    id: int
    name: str
    password_hash: str


def detail(response: Any) -> list[dict[str, Any]]:
    """The error list of a 422, after checking the envelope and the keys of every entry."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"detail"}
    errors: list[dict[str, Any]] = body["detail"]
    assert errors
    for error in errors:
        assert set(error) >= ERROR_KEYS, error
        assert isinstance(error["msg"], str)
        assert error["msg"]
        assert error["loc"][0] in ("path", "query", "header", "cookie", "body")
    return errors


def by_loc(errors: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {tuple(e["loc"]): e for e in errors}


def assert_no_traceback(text: str) -> None:
    assert "Traceback" not in text
    assert 'File "' not in text
    assert ".py" not in text


@pytest.fixture
def app() -> App:
    app = App(max_body_size=4096)

    @app.post("/items")
    async def create(item: Item, q: int = 0, r: Annotated[str, Query(max_length=2)] = "") -> dict[str, Any]:
        return {"name": item.name}

    @app.get("/items/{item_id}")
    async def read(item_id: int, x_token: str = Header(), session: str = Cookie(), n: int = Query()) -> int:
        return item_id

    @app.post("/strict")
    async def strict(s: Strict) -> int:
        return s.a

    @app.post("/float")
    async def float_body(b: FloatBox) -> float:
        return b.x

    @app.post("/int")
    async def int_body(b: IntBox) -> str:
        return str(b.n)[:5]

    @app.post("/small")
    async def small(b: SmallIntBox) -> int:
        return b.n

    @app.post("/scalar")
    async def scalar(n: Annotated[int, Body(le=10)]) -> int:
        return n

    @app.get("/search/{name}")
    async def search(name: str, q: str = "", n: int = 0) -> dict[str, Any]:
        return {"name": name, "q": q, "n": n}

    return app


@pytest.fixture
def client(app: App, client_factory: ClientFactory) -> TestClient:
    return client_factory(app, raise_server_exceptions=False)


# --- shape and locations ---------------------------------------------------------------------


def test_error_shape_and_nested_body_locs(client: TestClient) -> None:
    payload = {"name": 1, "price": -1, "owner": {"id": "x"}, "tags": ["a", 2]}
    errors = by_loc(detail(client.post("/items", json=payload)))
    assert set(errors) == {
        ("body", "name"),
        ("body", "price"),
        ("body", "owner", "id"),
        ("body", "owner", "name"),
        ("body", "tags", 1),
    }
    assert errors["body", "name"]["type"] == "string_type"
    assert errors["body", "name"]["input"] == 1
    assert errors["body", "price"]["type"] == "greater_than"
    assert errors["body", "price"]["input"] == -1
    assert errors["body", "owner", "id"]["type"] == "int_parsing"
    assert errors["body", "owner", "id"]["input"] == "x"
    assert errors["body", "owner", "name"]["type"] == "missing"
    assert errors["body", "tags", 1]["type"] == "string_type"
    assert errors["body", "tags", 1]["input"] == 2


def test_every_failing_query_param_is_reported(client: TestClient) -> None:
    errors = by_loc(detail(client.get("/items/1?n=x", headers={"X-Token": "t", "Cookie": "session=s"})))
    assert set(errors) == {("query", "n")}
    errors = by_loc(detail(client.post("/items?q=x&r=abc", json={"name": "a", "price": 1, "owner": {}})))
    assert errors["query", "q"]["type"] == "int_parsing"
    assert errors["query", "r"]["type"] == "string_too_long"


def test_query_and_body_errors_in_one_response(client: TestClient) -> None:
    response = client.post("/items?q=x&r=abc", json={"name": "a", "price": 0, "owner": {"id": 1}})
    errors = by_loc(detail(response))
    assert set(errors) == {("query", "q"), ("query", "r"), ("body", "price"), ("body", "owner", "name")}


def test_missing_required_path_query_header_cookie(client: TestClient) -> None:
    errors = by_loc(detail(client.get("/items/abc")))
    assert set(errors) == {("path", "item_id"), ("header", "x-token"), ("cookie", "session"), ("query", "n")}
    assert errors["path", "item_id"]["type"] == "int_parsing"
    assert errors["path", "item_id"]["input"] == "abc"
    for loc in (("header", "x-token"), ("cookie", "session"), ("query", "n")):
        assert errors[loc]["type"] == "missing"
        assert errors[loc]["msg"] == "Field required"
        assert errors[loc]["input"] is None


def test_unknown_field_in_forbidding_struct(client: TestClient) -> None:
    assert client.post("/strict", json={"a": 1}).json() == 1
    errors = by_loc(detail(client.post("/strict", json={"a": "x", "b": 2})))
    assert errors["body", "b"]["type"] == "extra_forbidden"
    assert errors["body", "b"]["input"] == 2
    assert errors["body", "a"]["type"] == "int_parsing"


# --- malformed and hostile bodies --------------------------------------------------------------


@pytest.mark.parametrize("raw", [b'{"x": ', b"{x: 1}", b'{"x": 1}}', b"nul"])
def test_malformed_json_is_json_invalid(client: TestClient, raw: bytes) -> None:
    (error,) = detail(client.post("/float", content=raw, headers=JSON))
    assert error["type"] == "json_invalid"
    assert error["loc"][0] == "body"


@pytest.mark.parametrize("raw", [b"[" * 100000, b'{"x":' * 50000, b"[" * 100000 + b"]" * 100000])
def test_deeply_nested_json_is_a_client_error(client_factory: ClientFactory, raw: bytes) -> None:
    app = App(max_body_size=None)

    @app.post("/any")
    async def anything(data: Any = Body()) -> str:
        return "ok"

    @app.post("/box")
    async def box(b: FloatBox) -> str:
        return "ok"

    client = client_factory(app, raise_server_exceptions=False)
    for path in ("/any", "/box"):
        response = client.post(path, content=raw, headers=JSON)
        assert 400 <= response.status_code < 500, response.text
        assert_no_traceback(response.text)


def test_float_out_of_range_is_a_client_error(client: TestClient) -> None:
    response = client.post("/float", content=b'{"x": 1e400}', headers=JSON)
    assert 400 <= response.status_code < 500
    assert response.json()["detail"][0]["loc"][0] == "body"
    response = client.post("/float", content=b'{"x": -1e400}', headers=JSON)
    assert 400 <= response.status_code < 500


def test_huge_integers(client: TestClient) -> None:
    digits = b"9" * 400
    (error,) = detail(client.post("/small", content=b'{"n": ' + digits + b"}", headers=JSON))
    assert error["loc"] == ["body", "n"]
    assert error["type"] == "less_than_equal"
    (error,) = detail(client.post("/scalar", content=digits, headers=JSON))
    assert error["loc"] == ["body"]
    # A plain int may take an arbitrarily large value, or refuse it: either way not a 500.
    response = client.post("/int", content=b'{"n": ' + digits + b"}", headers=JSON)
    assert response.status_code == 200 or 400 <= response.status_code < 500
    if response.status_code == 200:
        assert response.json() == "99999"
    response = client.post("/int", content=b'{"n": ' + b"9" * 5000 + b"}", headers=JSON)
    assert 200 <= response.status_code < 500
    response = client.get("/search/x", params={"n": "9" * 5000})
    assert 200 <= response.status_code < 500


def test_invalid_utf8_in_json_string(client: TestClient) -> None:
    (error,) = detail(client.post("/float", content=b'{"x": "\xff\xfe"}', headers=JSON))
    assert error["type"] == "json_invalid"
    (error,) = detail(client.post("/strict", content=b'{"a\xc3": 1}', headers=JSON))
    assert error["type"] == "json_invalid"


def test_empty_and_missing_required_body(client: TestClient) -> None:
    for response in (client.post("/float"), client.post("/float", content=b"", headers=JSON)):
        (error,) = detail(response)
        assert error["type"] == "missing"
        assert error["loc"] == ["body"]


def test_json_body_with_wrong_or_no_content_type_is_not_parsed(client: TestClient) -> None:
    for headers in (
        {"content-type": "text/plain"},
        {},
        {"content-type": "application/x-www-form-urlencoded"},
    ):
        response = client.post("/float", content=b'{"x": 1}', headers=headers)
        assert response.status_code == 415, headers
        assert isinstance(response.json()["detail"], str)


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/vnd.api+json", "application/json; charset=utf-8"]
)
def test_json_content_types_accepted(client: TestClient, content_type: str) -> None:
    response = client.post("/float", content=b'{"x": 1.5}', headers={"content-type": content_type})
    assert response.status_code == 200
    assert response.json() == 1.5


def test_body_over_max_body_size(client: TestClient) -> None:
    big = b'{"x": "' + b"a" * 5000 + b'"}'
    response = client.post("/float", content=big, headers=JSON)
    assert response.status_code == 413
    assert isinstance(response.json()["detail"], str)

    def chunks() -> Iterator[bytes]:
        yield b'{"x": "'
        for _ in range(10):
            yield b"a" * 1000
        yield b'"}'

    # No Content-Length (chunked transfer): the limit is enforced while reading.
    response = client.post("/float", content=chunks(), headers=JSON)
    assert response.status_code == 413
    # A lying Content-Length: still counted, not trusted.
    response = client.post("/float", content=chunks(), headers={**JSON, "content-length": "10"})
    assert response.status_code == 413
    # Just under the limit passes.
    ok = b'{"x": 2.0' + b" " * (4096 - 10) + b"}"
    assert len(ok) == 4096
    assert client.post("/float", content=ok, headers=JSON).json() == 2.0
    one_over = ok[:-1] + b" }"
    assert client.post("/float", content=one_over, headers=JSON).status_code == 413


@pytest.mark.parametrize(
    "url",
    [
        "/search/%ff",
        "/search/%00",
        "/search/a%ff%fe",
        "/search/x?q=%ff",
        "/search/x?q=%00",
        "/search/x?n=%ff",
        "/search/x?n=%00",
        "/search/x?%ff=%00",
        "/search/%ff?q=%ff&n=%00",
    ],
)
def test_percent_encoded_garbage_never_500(client: TestClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code < 500, response.text
    assert_no_traceback(response.text)


def test_nul_byte_query_value_reaches_handler_or_is_rejected(client: TestClient) -> None:
    response = client.get("/search/x?q=a%00b")
    assert response.json() == {"name": "x", "q": "a\x00b", "n": 0}
    (error,) = detail(client.get("/search/x?n=%00"))
    assert error["loc"] == ["query", "n"]
    assert error["input"] == "\x00"


# --- response validation -----------------------------------------------------------------------


def test_response_model_drops_extra_fields(client_factory: ClientFactory) -> None:
    app = App()

    @app.get("/dict")
    async def from_dict() -> UserOut:
        return {"id": 1, "name": "ann", "password_hash": "x"}  # type: ignore[return-value]

    @app.get("/struct")
    async def from_struct() -> UserOut:
        return UserRecord(1, "ann", "x")  # type: ignore[return-value]

    @app.get("/list")
    async def from_list() -> list[UserOut]:
        return [UserRecord(1, "ann", "x")]  # type: ignore[list-item]

    @app.get("/override", response_model=UserOut)
    async def override() -> dict[str, Any]:
        return {"id": 1, "name": "ann", "password_hash": "x"}

    @app.get("/override-none", response_model=None)
    async def no_model() -> UserOut:
        return UserRecord(1, "ann", "x")  # type: ignore[return-value]

    client = client_factory(app)
    for path in ("/dict", "/struct", "/override"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.json() == {"id": 1, "name": "ann"}, path
        assert "password_hash" not in response.text
    assert client.get("/list").json() == [{"id": 1, "name": "ann"}]
    assert client.get("/override-none").json() == {"id": 1, "name": "ann", "password_hash": "x"}


def test_return_value_not_matching_model_is_500(client_factory: ClientFactory) -> None:
    app = App()

    @app.get("/bad")
    async def bad() -> UserOut:
        return {"id": "not-an-int", "name": "ann"}  # type: ignore[return-value]

    @app.get("/bad-override", response_model=list[UserOut])
    async def bad_override() -> Any:
        return {"id": 1}

    client = client_factory(app, raise_server_exceptions=False)
    for path in ("/bad", "/bad-override"):
        response = client.get(path)
        assert response.status_code == 500
        assert response.json() == {"detail": "Internal Server Error"}
        assert "not-an-int" not in response.text
        assert_no_traceback(response.text)


def test_server_error_body_has_no_traceback(client_factory: ClientFactory) -> None:
    app = App()

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    response = client_factory(app, raise_server_exceptions=False).get("/boom")
    assert response.status_code == 500
    assert "secret internals" not in response.text
    assert "RuntimeError" not in response.text
    assert_no_traceback(response.text)


def test_validation_error_bodies_have_no_traceback(client: TestClient) -> None:
    responses = [
        client.post("/items", json={"name": 1}),
        client.post("/float", content=b"[" * 10000, headers=JSON),
        client.post("/float", content=b'{"x": "\xff"}', headers=JSON),
        client.get("/items/x"),
    ]
    for response in responses:
        assert 400 <= response.status_code < 500
        assert_no_traceback(response.text)


def test_a_form_upload_over_max_body_size_is_a_413(client_factory: ClientFactory) -> None:
    app = App(max_body_size=1024)

    @app.post("/upload")
    async def upload(file: UploadFile) -> dict[str, int | None]:
        return {"size": file.size}

    client = client_factory(app)
    assert client.post("/upload", files={"file": ("a", b"a" * 100)}).status_code == 200
    response = client.post("/upload", files={"file": ("a", b"a" * 50_000)})
    assert response.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n'
        for _ in range(50):
            yield b"a" * 1000
        yield b"\r\n--b--\r\n"

    response = client.post(
        "/upload", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert response.status_code == 413
