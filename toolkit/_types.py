"""What a type is, for the analysis and the plans: scalars, sequences, models, uploads; attaching
constraints; the Structs plans are made of; walking msgspec's view of a type (what it cannot
decode, pydantic models refused with the way to port them)."""

from __future__ import annotations

import copy
import dataclasses
import datetime
import decimal
import enum
import functools
import types
import typing
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec
from starlette.datastructures import UploadFile

from ._error_walk import PARAMETER_STRUCT
from .exceptions import RouteConfigError
from .params import UNSET

__all__ = [
    "MIGRATING",
    "SCALAR_TYPES",
    "SEQUENCE_ORIGINS",
    "attach_meta",
    "check_msgspec_type",
    "is_model",
    "is_scalar",
    "make_struct",
    "refuse_pydantic",
    "sequence_item",
    "split_optional",
    "strip_optional",
    "type_nodes",
    "undecodable_types",
    "unwrap_annotated",
    "upload_kind",
]


SCALAR_TYPES: tuple[type, ...] = (
    str,
    int,
    float,
    bool,
    uuid.UUID,
    datetime.datetime,
    datetime.date,
    datetime.time,
    datetime.timedelta,
    decimal.Decimal,
)


SEQUENCE_ORIGINS = (list, set, frozenset, tuple)


MIGRATING = "see 'Migrating from FastAPI' in the README"


def _is_pydantic_model(cls: Any) -> bool:
    """A pydantic model, told by its bases (pydantic is never imported here)."""
    return isinstance(cls, type) and any(
        base.__name__ == "BaseModel" and base.__module__.startswith("pydantic") for base in cls.__mro__
    )


def refuse_pydantic(tp: Any, where: str) -> None:
    """Refuse a type holding pydantic models with a message that says how to port it."""
    todo, seen = [tp], set()
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if _is_pydantic_model(node):
            raise RouteConfigError(
                f"{where}: {node.__name__} is a pydantic model; the toolkit validates with msgspec: "
                f"make it a msgspec.Struct (Field -> msgspec.Meta, validators -> __post_init__; {MIGRATING})"
            )
        todo += [arg for arg in typing.get_args(node) if not isinstance(arg, (str, int, msgspec.Meta))]
        origin = typing.get_origin(node)
        if origin is not None:
            todo.append(origin)


def type_nodes(tp: Any) -> Iterator[Any]:
    """Every ``msgspec.inspect`` node of ``tp`` once (models, their fields, containers' items),
    nothing when msgspec does not support ``tp`` (refused elsewhere, with msgspec's message)."""
    try:
        root = msgspec.inspect.type_info(tp)
    except (TypeError, ValueError):
        return
    seen: set[int] = set()
    todo: list[Any] = [root]
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        for name in getattr(node, "__struct_fields__", ()):
            child = getattr(node, name)
            if isinstance(child, (msgspec.inspect.Type, msgspec.inspect.Field)):
                todo.append(child.type if isinstance(child, msgspec.inspect.Field) else child)
            elif isinstance(child, tuple):
                todo += [c.type if isinstance(c, msgspec.inspect.Field) else c for c in child]


def undecodable_types(tp: Any) -> list[str]:
    """The classes inside ``tp`` that msgspec can neither decode nor check (plain classes, read
    as ``CustomType``): a body or response model holding one would fail on every request."""
    found = {
        getattr(node.cls, "__qualname__", repr(node.cls))
        for node in type_nodes(tp)
        if isinstance(node, msgspec.inspect.CustomType) and node.cls is not object  # object: any value
    }
    return sorted(found)


def unwrap_annotated(annotation: Any) -> tuple[Any, list[Any]]:
    metadata: list[Any] = []
    while typing.get_origin(annotation) is typing.Annotated:
        metadata.extend(annotation.__metadata__)
        annotation = annotation.__origin__
    return annotation, metadata


def split_optional(tp: Any) -> tuple[Any, bool]:
    """``T | None`` -> ``(T, True)``; anything else -> ``(tp, False)``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) < len(typing.get_args(tp)):
            inner = args[0] if len(args) == 1 else typing.Union[tuple(args)]  # noqa: UP007
            return inner, True
    return tp, False


def strip_optional(tp: Any) -> Any:
    """``Annotated[T | None, ...]`` -> ``T``."""
    return split_optional(unwrap_annotated(tp)[0])[0]


def is_scalar(tp: Any) -> bool:
    tp, _ = split_optional(unwrap_annotated(tp)[0])
    if typing.get_origin(tp) is typing.Literal:
        return True
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return all(is_scalar(a) for a in typing.get_args(tp))
    return isinstance(tp, type) and (issubclass(tp, SCALAR_TYPES) or issubclass(tp, enum.Enum))


def sequence_item(tp: Any) -> Any | None:
    """The item type of ``list[T]``/``set[T]``/``tuple[T, ...]`` of scalars, else ``None``."""
    tp, _ = split_optional(unwrap_annotated(tp)[0])
    origin = typing.get_origin(tp)
    if origin not in SEQUENCE_ORIGINS:
        return None
    args = [a for a in typing.get_args(tp) if a is not Ellipsis]
    if len(args) == 1 and is_scalar(args[0]):
        return args[0]
    return None


def upload_kind(tp: Any) -> str | None:
    tp, _ = split_optional(unwrap_annotated(tp)[0])
    if isinstance(tp, type) and issubclass(tp, UploadFile):
        return "upload"
    if tp is bytes:
        return "bytes"
    if typing.get_origin(tp) in SEQUENCE_ORIGINS:
        args = typing.get_args(tp)
        if args and isinstance(args[0], type) and issubclass(args[0], UploadFile):
            return "uploads"
        if args and args[0] is bytes:
            return "bytes_list"
    return None


def is_model(tp: Any) -> bool:
    tp, _ = split_optional(unwrap_annotated(tp)[0])
    return isinstance(tp, type) and (
        issubclass(tp, msgspec.Struct) or dataclasses.is_dataclass(tp) or typing.is_typeddict(tp)
    )


_DOC_KEYS = ("title", "description", "examples", "extra_json_schema", "extra")


_META_KEYS = (
    *_DOC_KEYS,
    *("gt", "ge", "lt", "le", "multiple_of", "pattern", "min_length", "max_length", "tz"),
)


def attach_meta(annotation: Any, meta: Sequence[msgspec.Meta]) -> Any:
    """Attach constraints to the non-``None`` part of ``annotation`` (msgspec refuses them on a
    union), and the docs (title, description, examples) to the whole, where OpenAPI shows them."""
    if not meta:
        return annotation
    inner, optional = split_optional(annotation)
    if not optional:
        return typing.Annotated[(inner, *meta)]
    constraints, docs = [], {}
    for item in meta:
        kwargs = {key: getattr(item, key) for key in _META_KEYS if getattr(item, key) is not None}
        doc = {key: kwargs.pop(key) for key in _DOC_KEYS if key in kwargs}
        docs.update(doc)
        if kwargs:
            constraints.append(msgspec.Meta(**kwargs))
    constrained = typing.Annotated[(inner, *constraints)] if constraints else inner
    whole = constrained | None
    return typing.Annotated[whole, msgspec.Meta(**docs)] if docs else whole


def make_struct(name: str, fields: list[tuple[str, Any, Any]], rename: dict[str, str] | None = None) -> Any:
    """A keyword-only Struct of ``(field, type, default or UNSET)``, ``rename`` giving wire names."""
    spec = [(f, t) if d is UNSET else (f, t, _field_default_of(d)) for f, t, d in fields]
    struct = msgspec.defstruct(name, spec, kw_only=True, rename=rename)
    setattr(struct, PARAMETER_STRUCT, True)  # its fields are parameters: errors never echo them
    return struct


def _field_default_of(value: Any) -> Any:
    """A non-empty list, dict or set default (``Query(["a", "b"])``) is copied for each value."""
    if isinstance(value, (list, dict, set, bytearray)) and value:
        return msgspec.field(default_factory=functools.partial(copy.copy, value))
    return value


def check_msgspec_type(annotation: Any, where: str) -> None:
    try:
        msgspec.inspect.type_info(annotation)
    except (TypeError, ValueError) as exc:
        raise RouteConfigError(f"{where}: type {annotation!r} is not supported by msgspec: {exc}") from exc
