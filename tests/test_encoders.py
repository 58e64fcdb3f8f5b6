"""``jsonable_encoder``: FastAPI's, for msgspec Structs and the rest.

Expected values are what ``fastapi.encoders.jsonable_encoder`` 0.165 returns for the same input
(a pydantic model where this passes a Struct)."""

import collections
import dataclasses
import datetime
import decimal
import enum
import ipaddress
import json
import pathlib
import re
import uuid
from typing import Any

import msgspec
import pytest
from msgspec import UNSET, UnsetType

from toolkit.encoders import jsonable_encoder


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            datetime.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=datetime.UTC),
            "2024-01-02T03:04:05.678000+00:00",
        ),
        (datetime.datetime(2024, 1, 2, 3, 4, 5), "2024-01-02T03:04:05"),
        (datetime.date(2024, 1, 2), "2024-01-02"),
        (datetime.time(1, 2, 3), "01:02:03"),
        (datetime.timedelta(days=1, seconds=1.5), 86401.5),
        (decimal.Decimal("1.50"), 1.5),
        (decimal.Decimal("2"), 2),
        (decimal.Decimal("1E+2"), 100),
        (decimal.Decimal("0.1"), 0.1),
        (b"abc", "abc"),
        ({3}, [3]),
        (frozenset({1}), [1]),
        (pathlib.PurePosixPath("/a/b"), "/a/b"),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        (Color.RED, "red"),
        (Level.HIGH, 1),
        (ipaddress.ip_address("::1"), "::1"),
        (ipaddress.ip_network("10.0.0.0/8"), "10.0.0.0/8"),
        (re.compile("a+"), "a+"),
        ((i for i in range(2)), [0, 1]),
        (collections.deque([1]), [1]),
        ((1, (2,)), [1, [2]]),
        (True, True),
        (None, None),
        ("s", "s"),
    ],
    ids=lambda v: type(v).__name__,
)
def test_builtin_and_standard_library_values(value: Any, expected: Any) -> None:
    encoded = jsonable_encoder(value)
    assert encoded == expected
    assert type(encoded) is type(expected)


def test_dict_keys_are_encoded_and_sqlalchemy_state_is_skipped() -> None:
    value = {1: "a", uuid.UUID(int=2): "b", Color.RED: "c", "_sa_instance_state": object()}
    assert jsonable_encoder(value) == {1: "a", "00000000-0000-0000-0000-000000000002": "b", "red": "c"}
    assert jsonable_encoder({"_sa_x": 1}, sqlalchemy_safe=False) == {"_sa_x": 1}


@dataclasses.dataclass
class Leaf:
    x: int = 1
    n: None = None


@dataclasses.dataclass
class Tree:
    a: int
    leaf: Leaf
    leaves: list[Leaf]
    extra: dict[str, Any]
    b: int = 2


def test_dataclasses_become_dicts() -> None:
    tree = Tree(a=1, leaf=Leaf(), leaves=[Leaf(x=5)], extra={"k": None, "j": {"z": None}})
    assert jsonable_encoder(tree) == {
        "a": 1,
        "leaf": {"x": 1, "n": None},
        "leaves": [{"x": 5, "n": None}],
        "extra": {"k": None, "j": {"z": None}},
        "b": 2,
    }
    assert jsonable_encoder(tree, include={"a", "leaf"}) == {"a": 1, "leaf": {"x": 1, "n": None}}
    # exclude_none reaches every dict (as in FastAPI); exclude_defaults does not apply to dataclasses.
    assert jsonable_encoder(tree, exclude_none=True) == {
        "a": 1,
        "leaf": {"x": 1},
        "leaves": [{"x": 5}],
        "extra": {"j": {}},
        "b": 2,
    }
    assert jsonable_encoder(Leaf(), exclude_defaults=True) == {"x": 1, "n": None}


def test_a_dataclass_decoded_by_msgspec_keeps_its_defaults() -> None:
    decoded = msgspec.json.decode(b'{"a": 1, "leaf": {}, "leaves": [], "extra": {}}', type=Tree)
    assert jsonable_encoder(decoded) == {
        "a": 1,
        "leaf": {"x": 1, "n": None},
        "leaves": [],
        "extra": {},
        "b": 2,
    }


class Model(msgspec.Struct, rename={"c": "C"}):
    a: int = 1
    b: int | None = None
    c: int = 3
    d: dict[str, Any] = {}
    e: int | UnsetType = UNSET


def test_structs_take_the_options_as_fastapi_applies_them_to_pydantic_models() -> None:
    assert jsonable_encoder(Model()) == {"a": 1, "b": None, "C": 3, "d": {}}
    assert jsonable_encoder(Model(d={"x": None}), exclude_none=True) == {"a": 1, "C": 3, "d": {}}
    assert jsonable_encoder(Model(), by_alias=False) == {"a": 1, "b": None, "c": 3, "d": {}}
    assert jsonable_encoder(Model(a=2), exclude_defaults=True) == {"a": 2}
    assert jsonable_encoder(Model(), include={"c"}) == {"C": 3}
    assert jsonable_encoder(Model(), include={"C"}) == {}  # attribute names, as pydantic's
    assert jsonable_encoder(Model(), exclude={"a", "d"}) == {"b": None, "C": 3}
    # A Struct records no "fields set": only UNSET fields are unset (they are never written).
    assert jsonable_encoder(Model(e=5), exclude_unset=True) == {"a": 1, "b": None, "C": 3, "d": {}, "e": 5}


class Event(msgspec.Struct, tag=True):
    when: datetime.date
    price: decimal.Decimal


def test_struct_values_are_encoded_by_the_same_rules_as_any_value() -> None:
    """(pydantic writes a model's ``Decimal`` field as ``"1.50"``; a Struct's is a number, as a
    dataclass's is in FastAPI.)"""
    event = Event(when=datetime.date(2024, 1, 2), price=decimal.Decimal("1.50"))
    assert jsonable_encoder(event) == {"type": "Event", "when": "2024-01-02", "price": 1.5}
    assert jsonable_encoder([event, event], include={"price"}) == [
        {"type": "Event", "price": 1.5},
        {"type": "Event", "price": 1.5},
    ]


def test_include_and_exclude_reach_the_items_of_a_list_not_the_values_of_a_dict() -> None:
    assert jsonable_encoder([{"a": 1, "b": 2}, {"a": 3}], include={"a"}) == [{"a": 1}, {"a": 3}]
    assert jsonable_encoder({"a": {"a": 1, "b": 2}, "b": 1}, include={"a"}) == {"a": {"a": 1, "b": 2}}
    assert jsonable_encoder({"a": 1, "b": 2}, include=["a"]) == {"a": 1}


def test_custom_encoder_by_exact_type_then_by_isinstance() -> None:
    custom = {datetime.date: lambda d: "D", int: lambda i: i + 1}
    assert jsonable_encoder({"t": datetime.date(2024, 1, 1), "n": 1}, custom_encoder=custom) == {
        "t": "D",
        "n": 2,
    }
    # A datetime is a date: the isinstance match applies.
    assert (
        jsonable_encoder(datetime.datetime(2024, 1, 1), custom_encoder={datetime.date: str})
        == "2024-01-01 00:00:00"
    )


class Plain:
    def __init__(self) -> None:
        self.a = 1
        self._p = 2


class Pairs:
    def __iter__(self) -> Any:
        return iter([("k", 1)])


def test_other_objects_are_read_as_mappings_or_by_their_attributes() -> None:
    assert jsonable_encoder(Plain()) == {"a": 1, "_p": 2}
    assert jsonable_encoder(Pairs()) == {"k": 1}
    with pytest.raises(ValueError, match="not iterable"):
        jsonable_encoder(object())


def test_the_result_is_json() -> None:
    value = {
        "model": Model(d={"when": datetime.datetime(2024, 1, 1)}),
        "rows": [Leaf(), {uuid.UUID(int=3)}],
        "money": decimal.Decimal("9.99"),
    }
    assert json.loads(json.dumps(jsonable_encoder(value))) == {
        "model": {"a": 1, "b": None, "C": 3, "d": {"when": "2024-01-01T00:00:00"}},
        "rows": [{"x": 1, "n": None}, ["00000000-0000-0000-0000-000000000003"]],
        "money": 9.99,
    }
