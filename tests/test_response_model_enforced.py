"""A declared response model holds on every return path: dict, Struct, dataclass and mixes.

What a user returns the natural typed way (the model itself, which mypy pushes towards) must be
filtered exactly like a dict: no undeclared field and no wrong-typed value reaches the wire; a
value that does not fit is a logged 500, never a leak."""

import dataclasses
import logging
from typing import Any

import msgspec
import pytest

from toolkit import App
from toolkit.testing import TestClient


class UserOut(msgspec.Struct):
    id: int
    name: str


class Page(msgspec.Struct):
    items: list[UserOut]
    total: int


@dataclasses.dataclass
class UserRow:
    id: int
    name: str
    password_hash: str


class Row:
    """An ORM-like object: attributes only, nothing msgspec can encode."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)


LEAKY = {"id": 1, "name": "a", "password_hash": "scrypt$secret"}


def serve(result: Any, model: Any = Page) -> TestClient:
    app = App()

    @app.get("/out", response_model=model)
    async def out() -> Any:
        return result

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(
    "result",
    [
        Page(items=[LEAKY], total=1),  # type: ignore[list-item]
        {"items": [LEAKY], "total": 1},
        {"items": [UserOut(**{k: v for k, v in LEAKY.items() if k != "password_hash"})], "total": 1},
        Page(items=[UserRow(**LEAKY)], total=1),  # type: ignore[list-item]
        Page(items=[Row(**LEAKY)], total=1),  # type: ignore[list-item]
        Row(items=[Row(**LEAKY)], total=1),
    ],
    ids=["model-with-dicts", "dict", "dict-with-models", "model-with-dataclasses", "model-with-rows", "rows"],
)
def test_undeclared_fields_never_reach_the_wire(result: Any) -> None:
    response = serve(result).get("/out")
    assert response.status_code == 200
    assert response.json() == {"items": [{"id": 1, "name": "a"}], "total": 1}
    assert "password_hash" not in response.text


def test_a_returned_model_is_filtered_by_the_annotation_too() -> None:
    app = App()

    @app.get("/page")
    async def page() -> Page:
        return Page(items=[LEAKY], total=1)  # type: ignore[list-item]

    response = TestClient(app).get("/page")
    assert response.json() == {"items": [{"id": 1, "name": "a"}], "total": 1}


@pytest.mark.parametrize(
    "result",
    [
        Page(items=[{"id": "x"}], total="x"),  # type: ignore[list-item, arg-type]
        Page(items=[UserOut(id="x", name="a")], total=1),  # type: ignore[arg-type]
        {"items": [UserOut(id=1, name=2)], "total": 1},  # type: ignore[arg-type]
        Page(items=[], total="many"),  # type: ignore[arg-type]
    ],
    ids=["model-with-bad-dicts", "nested-model-bad-type", "dict-with-bad-model", "bad-scalar"],
)
def test_a_value_that_does_not_fit_is_a_logged_500(result: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        response = serve(result).get("/out")
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal Server Error"}
    assert any("does not match the response model" in r.getMessage() or r.exc_info for r in caplog.records)


def test_a_model_of_the_right_shape_is_sent_as_declared() -> None:
    class Item(msgspec.Struct, rename="camel"):
        item_id: int
        tags: list[str] = []
        price: float = 0.0

    response = serve(Item(item_id=3, tags=["a"], price=2), Item).get("/out")
    assert response.json() == {"itemId": 3, "tags": ["a"], "price": 2.0}


def test_values_fastapi_would_accept_are_converted_as_it_does() -> None:
    """Output checking is lax, as pydantic's: a Decimal or "1.5" for a float, 3.0 for an int,
    a generator or dict values for a list, a Struct of another class with other field names."""
    import decimal

    class Price(msgspec.Struct):
        amount: float
        count: int
        tags: list[str]

    class Other(msgspec.Struct, rename="camel"):
        amount_due: float
        count: int
        tags: tuple[str, ...]

    class Due(msgspec.Struct):
        amount_due: float
        count: int
        tags: list[str]

    assert serve(Price(decimal.Decimal("1.5"), 3.0, (t for t in "ab")), Price).get("/out").json() == {  # type: ignore[arg-type]
        "amount": 1.5,
        "count": 3,
        "tags": ["a", "b"],
    }
    assert serve({"amount": "2", "count": 1, "tags": {"x": "y"}.values()}, Price).get("/out").json() == {
        "amount": 2.0,
        "count": 1,
        "tags": ["y"],
    }
    assert serve(Other(1.0, 2, ("t",)), Due).get("/out").json() == {
        "amount_due": 1.0,
        "count": 2,
        "tags": ["t"],
    }


def test_a_scalar_model_keeps_its_fast_path_and_still_checks_other_types() -> None:
    assert serve("plain", str).get("/out").json() == "plain"
    assert serve(3, str).get("/out").status_code == 500
