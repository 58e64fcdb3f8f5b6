"""The every-failing-field walk behind a 422 (``toolkit/_validation.py``): complete and bounded.

Complete: kw_only Structs (the toolkit's own embedded bodies and forms), dict keys and values,
tuple positions, ``Optional`` models and dataclasses all report every failing field at its real
location. Bounded: a container over its own ``max_length`` is one error, a list of bad items is
cut at ``MAX_REPORTED_ERRORS`` with one ``too_many_errors`` marker, and the work done is counted
in ``msgspec.convert`` calls (never in wall-clock time).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Annotated, Any

import msgspec
import pytest

import toolkit._json_body
from toolkit import App, Body, Form
from toolkit._error_walk import MAX_REPORTED_ERRORS
from toolkit.testing import TestClient

ClientFactory = Callable[..., TestClient]

MARKER = {
    "type": "too_many_errors",
    "loc": ["body"],
    "msg": f"Only the first {MAX_REPORTED_ERRORS} errors are reported",
    "input": None,
    "ctx": {"max_errors": MAX_REPORTED_ERRORS},
}


class Order(msgspec.Struct, kw_only=True):
    note: str = ""  # an optional field before required ones: legal only with kw_only
    qty: int
    sku: str


class Owner(msgspec.Struct):
    id: int
    name: str


class Listing(msgspec.Struct):
    title: str
    owner: Owner | None = None


class Tagged(msgspec.Struct):
    name: str
    tags: Annotated[list[str], msgspec.Meta(max_length=100)] = []


class Unbounded(msgspec.Struct):
    name: str
    tags: list[str] = []


class Node(msgspec.Struct):
    value: int
    kids: list[Node] = []


class Profile(msgspec.Struct):
    first_name: str
    last_name: str
    age: int


@dataclasses.dataclass
class Point:
    x: int
    y: int
    scores: dict[str, int] = dataclasses.field(default_factory=dict)
    label: str | None = None


ShortKey = Annotated[str, msgspec.Meta(max_length=3)]


def detail(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    errors: list[dict[str, Any]] = response.json()["detail"]
    for error in errors:
        assert {"type", "loc", "msg", "input"} <= set(error), error
    return errors


def by_loc(errors: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {tuple(e["loc"]): e for e in errors}


@pytest.fixture(autouse=True)
def walk_every_body(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests measure the walk's own bounds: lift the size above which a body is not walked
    at all (tests/adversarial/test_bounded_work.py covers that cut-off)."""
    monkeypatch.setattr(toolkit._json_body, "MAX_WALKED_BODY", 1 << 30)


@pytest.fixture
def conversions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times ``msgspec.convert`` ran (the walk converts through it; one call may be a chunk)."""
    calls = [0]
    real = msgspec.convert

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(msgspec, "convert", counting)
    return calls


@pytest.fixture
def client(client_factory: ClientFactory) -> TestClient:
    app = App()

    @app.post("/orders")
    async def order(o: Order) -> int:
        return o.qty

    @app.post("/embedded")
    async def embedded(note: str = Body(""), qty: int = Body(), sku: str = Body()) -> int:
        return qty

    @app.post("/form")
    async def form(note: str = Form(""), qty: int = Form()) -> int:
        return qty

    @app.post("/scores")
    async def scores(s: dict[str, int]) -> int:
        return sum(s.values())

    @app.post("/short-keys")
    async def short_keys(s: dict[ShortKey, int]) -> int:
        return len(s)

    @app.post("/triple")
    async def triple(t: tuple[int, str, int]) -> int:
        return t[0]

    @app.post("/listings")
    async def listing(item: Listing) -> str:
        return item.title

    @app.post("/points")
    async def point(p: Point) -> int:
        return p.x

    @app.post("/tagged")
    async def tagged(t: Tagged) -> int:
        return len(t.tags)

    @app.post("/unbounded")
    async def unbounded(t: Unbounded) -> int:
        return len(t.tags)

    @app.post("/tree")
    async def tree(n: Node) -> int:
        return n.value

    @app.post("/profile")
    async def profile(p: Profile) -> str:
        return p.first_name

    return client_factory(app, raise_server_exceptions=False)


# --- every failing field, at its real location ------------------------------------------------


def test_kw_only_struct_reports_every_missing_required_field(client: TestClient) -> None:
    errors = by_loc(detail(client.post("/orders", json={})))
    assert set(errors) == {("body", "qty"), ("body", "sku")}  # not "note": it has a default
    assert {e["type"] for e in errors.values()} == {"missing"}
    errors = by_loc(detail(client.post("/orders", json={"qty": "x", "note": 1})))
    assert set(errors) == {("body", "note"), ("body", "qty"), ("body", "sku")}
    assert errors["body", "qty"]["type"] == "int_parsing"
    assert errors["body", "note"]["type"] == "string_type"


def test_embedded_bodies_and_forms_report_required_fields_after_optional_ones(client: TestClient) -> None:
    # The toolkit builds kw_only Structs for several Body() parameters and for form fields.
    errors = by_loc(detail(client.post("/embedded", json={"note": "n"})))
    assert set(errors) == {("body", "qty"), ("body", "sku")}
    errors = by_loc(detail(client.post("/form", data={"note": "n"})))
    assert set(errors) == {("body", "qty")}
    assert client.post("/form", data={"qty": "3"}).json() == 3


def test_dict_value_errors_are_located_at_their_key(client: TestClient) -> None:
    errors = detail(client.post("/scores", json={"a": 1, "b": "x", "c": 2, "d": [3]}))
    assert [(e["loc"], e["type"], e["input"]) for e in errors] == [
        (["body", "b"], "int_parsing", "x"),
        (["body", "d"], "int_type", [3]),
    ]


def test_dict_key_errors_are_located_at_key_then_key_marker(client: TestClient) -> None:
    errors = detail(client.post("/short-keys", json={"ok": 1, "long": 2, "fine": "x", "abc": "y"}))
    assert [(e["loc"], e["type"], e["input"]) for e in errors] == [
        (["body", "long", "[key]"], "string_too_long", "long"),
        (["body", "fine", "[key]"], "string_too_long", "fine"),
        (["body", "fine"], "int_parsing", "x"),  # a bad key does not hide its bad value
        (["body", "abc"], "int_parsing", "y"),
    ]


def test_tuple_positions(client: TestClient) -> None:
    errors = detail(client.post("/triple", json=["a", 2, "x"]))
    assert [(e["loc"], e["type"]) for e in errors] == [
        (["body", 0], "int_parsing"),
        (["body", 1], "string_type"),
        (["body", 2], "int_parsing"),
    ]
    errors = detail(client.post("/triple", json=[1]))
    assert [(e["loc"], e["type"]) for e in errors] == [(["body", 1], "missing"), (["body", 2], "missing")]
    (error,) = detail(client.post("/triple", json=[1, "a", 3, 4]))
    assert (error["loc"], error["type"]) == (["body"], "too_long")
    assert error["ctx"]["max_length"] == 3


def test_optional_nested_model_is_walked(client: TestClient) -> None:
    errors = by_loc(detail(client.post("/listings", json={"title": 1, "owner": {"id": "x"}})))
    assert set(errors) == {("body", "title"), ("body", "owner", "id"), ("body", "owner", "name")}
    assert errors["body", "owner", "id"]["type"] == "int_parsing"
    assert errors["body", "owner", "name"]["type"] == "missing"
    (error,) = detail(client.post("/listings", json={"title": "t", "owner": "ann"}))
    assert error["loc"] == ["body", "owner"]
    assert client.post("/listings", json={"title": "t", "owner": None}).json() == "t"


def test_dataclass_body(client: TestClient) -> None:
    payload = {"x": "one", "scores": {"math": 10, "art": "A"}, "label": 5}
    errors = by_loc(detail(client.post("/points", json=payload)))
    assert set(errors) == {("body", "x"), ("body", "y"), ("body", "scores", "art"), ("body", "label")}
    assert errors["body", "y"]["type"] == "missing"
    assert errors["body", "scores", "art"]["input"] == "A"


# --- bounds -------------------------------------------------------------------------------------


def test_a_list_over_its_max_length_is_one_error(client: TestClient, conversions: list[int]) -> None:
    response = client.post("/tagged", json={"name": "x", "tags": [0] * 500_000})
    (error,) = detail(response)
    assert error["loc"] == ["body", "tags"]
    assert error["type"] == "too_long"
    assert error["ctx"] == {"max_length": 100}
    assert error["input"] is None  # a 500,000-item list is not echoed back
    assert len(response.content) < 1000
    assert conversions[0] < 10  # the items are never visited


def test_a_list_of_bad_items_is_capped_with_a_marker(client: TestClient, conversions: list[int]) -> None:
    response = client.post("/unbounded", json={"name": "x", "tags": [0] * 200_000})
    errors = detail(response)
    assert len(errors) == MAX_REPORTED_ERRORS + 1
    assert [e["loc"] for e in errors[:-1]] == [["body", "tags", i] for i in range(MAX_REPORTED_ERRORS)]
    assert {e["type"] for e in errors[:-1]} == {"string_type"}
    assert errors[-1] == MARKER
    assert len(response.content) < 50_000
    assert conversions[0] < 2 * MAX_REPORTED_ERRORS


def test_a_dict_of_bad_values_is_capped_with_a_marker(client: TestClient, conversions: list[int]) -> None:
    response = client.post("/scores", json={f"k{i}": "x" for i in range(100_000)})
    errors = detail(response)
    assert len(errors) == MAX_REPORTED_ERRORS + 1
    assert errors[0]["loc"] == ["body", "k0"]
    assert errors[-1] == MARKER
    assert len(response.content) < 50_000
    assert conversions[0] < 20 * MAX_REPORTED_ERRORS


def test_one_bad_item_after_many_valid_ones(client: TestClient, conversions: list[int]) -> None:
    tags = ["t"] * 300_000 + [1]
    response = client.post("/unbounded", json={"name": "x", "tags": tags})
    (error,) = detail(response)
    assert error["loc"] == ["body", "tags", 300_000]
    assert error["type"] == "string_type"
    assert len(response.content) < 1000
    assert conversions[0] < 10  # msgspec's first error located it: the valid items are not revisited
    # Valid runs between errors are converted in chunks, not item by item.
    conversions[0] = 0
    errors = detail(client.post("/unbounded", json={"name": "x", "tags": [1, *tags]}))
    assert [e["loc"] for e in errors] == [["body", "tags", 0], ["body", "tags", 300_001]]
    assert conversions[0] < 1000


def test_deep_recursive_models_get_one_located_error(client: TestClient) -> None:
    root: dict[str, Any] = {"value": 0}
    node = root
    for _ in range(300):
        child: dict[str, Any] = {"value": 0}
        node["kids"] = [{"value": 1}, child]
        node = child
    node["value"] = "bad"
    (error,) = detail(client.post("/tree", json=root))
    assert error["loc"] == ["body", *(["kids", 1] * 300), "value"]
    assert error["type"] == "int_parsing"


def test_a_huge_enclosing_object_is_not_echoed_by_every_missing_entry(client: TestClient) -> None:
    response = client.post("/profile", json={"junk": "x" * 100_000})
    errors = detail(response)
    assert [e["loc"] for e in errors] == [["body", "first_name"], ["body", "last_name"], ["body", "age"]]
    assert all(e["type"] == "missing" and e["input"] is None for e in errors)
    assert len(response.content) < 2000
    (error, *_) = detail(client.post("/profile", json={"age": 1}))
    assert error["input"] == {"age": 1}  # a small one still is, as in FastAPI


Wide = msgspec.defstruct("Wide", [(f"f{i}", str) for i in range(20)])


def test_a_422_stays_small_when_the_enclosing_object_is_echoed(client_factory: ClientFactory) -> None:
    """Twenty missing fields used to echo the enclosing object twenty times, and control
    characters (six bytes each on the wire) were counted as one."""
    app = App()

    @app.post("/wide")
    async def wide(body: Wide) -> int:
        return 1

    raw = b'{"pad":"' + b"\\u0001" * 4000 + b'"}'
    response = client_factory(app).post("/wide", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert len(response.json()["detail"]) == 20
    assert len(response.content) < 4 * len(raw)
