"""``jsonable_encoder``: FastAPI's, for msgspec Structs, dataclasses and the standard library.

Turns a value into JSON-compatible builtins (dicts, lists, str, int, float, bool, None) with the
rules of ``fastapi.encoders.jsonable_encoder``: datetimes, dates and times as ``isoformat()``, a
``timedelta`` as its seconds, a ``Decimal`` as an int when it has no fractional digits else a float,
bytes decoded as UTF-8, sets, tuples and generators as lists, enums as their value, UUIDs, paths and
IP addresses as strings. A msgspec Struct is what a pydantic model is there (its fields, written
under their ``rename``\\d names unless ``by_alias=False``); a dataclass becomes a dict of its fields.
"""

from __future__ import annotations

import dataclasses
import datetime
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from enum import Enum
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface, IPv6Network
from pathlib import Path, PurePath
from re import Pattern
from types import GeneratorType
from typing import Any
from uuid import UUID

import msgspec

__all__ = ["jsonable_encoder"]


def _decimal(value: Decimal) -> int | float:
    """An int when ``value`` has no fractional digits (``Decimal("2")``, ``Decimal("1E+2")``), else a
    float (``Decimal("1.50")`` -> 1.5), as FastAPI writes it."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= 0:
        return int(value)
    return float(value)


def _isoformat(value: datetime.date | datetime.time) -> str:
    return value.isoformat()


ENCODERS_BY_TYPE: dict[type[Any], Callable[[Any], Any]] = {
    bytes: lambda value: value.decode(),
    datetime.date: _isoformat,
    datetime.datetime: _isoformat,
    datetime.time: _isoformat,
    datetime.timedelta: lambda value: value.total_seconds(),
    Decimal: _decimal,
    Enum: lambda value: value.value,
    frozenset: list,
    deque: list,
    GeneratorType: list,
    IPv4Address: str,
    IPv4Interface: str,
    IPv4Network: str,
    IPv6Address: str,
    IPv6Interface: str,
    IPv6Network: str,
    Path: str,
    Pattern: lambda value: value.pattern,
    set: list,
    UUID: str,
}

_SEQUENCES = (list, set, frozenset, GeneratorType, tuple, deque)
_Names = frozenset[Any] | None


# --- the fields of Structs and dataclasses (shared with the responder) ---------------------------

_NO_DEFAULT: Any = msgspec.NODEFAULT


@dataclasses.dataclass(frozen=True, slots=True)
class FieldInfo:
    """One field of a Struct or dataclass: its attribute and wire names, and its default."""

    name: str
    encode_name: str
    default: Any = _NO_DEFAULT
    factory: Callable[[], Any] | None = None

    def is_default(self, value: Any) -> bool:
        """Whether ``value`` equals the field's default (a factory's is made anew, as pydantic does)."""
        if self.factory is not None:
            default = self.factory()
        elif self.default is _NO_DEFAULT:
            return False
        else:
            default = self.default
        try:
            return bool(value == default)
        except Exception:  # an __eq__ that cannot answer (an array's, say): not the default
            return False


@dataclasses.dataclass(frozen=True, slots=True)
class ModelInfo:
    """How a Struct or dataclass is written: its fields, and msgspec's options for a Struct."""

    fields: tuple[FieldInfo, ...]
    tag_field: str | None = None
    tag: str | int | None = None
    array_like: bool = False
    omit_defaults: bool = False


_MODEL_INFO: weakref.WeakKeyDictionary[type, ModelInfo] = weakref.WeakKeyDictionary()


def model_info(cls: type) -> ModelInfo:
    """The fields of a Struct or dataclass class (cached per class)."""
    info = _MODEL_INFO.get(cls)
    if info is not None:
        return info
    if issubclass(cls, msgspec.Struct):
        config = cls.__struct_config__
        info = ModelInfo(
            tuple(
                FieldInfo(
                    field.name,
                    field.encode_name,
                    field.default,
                    None if field.default_factory is _NO_DEFAULT else field.default_factory,
                )
                for field in msgspec.structs.fields(cls)
            ),
            config.tag_field,
            config.tag,
            config.array_like,
            config.omit_defaults,
        )
    else:
        assert dataclasses.is_dataclass(cls)
        info = ModelInfo(
            tuple(
                FieldInfo(
                    field.name,
                    field.name,
                    _NO_DEFAULT if field.default is dataclasses.MISSING else field.default,
                    None if field.default_factory is dataclasses.MISSING else field.default_factory,
                )
                for field in dataclasses.fields(cls)
            )
        )
    _MODEL_INFO[cls] = info
    return info


def names(value: Iterable[Any] | None) -> frozenset[Any] | None:
    """``include``/``exclude`` as a set of top-level names (a mapping's keys)."""
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset({value})
    return frozenset(value.keys() if isinstance(value, Mapping) else value)


# --- jsonable_encoder ------------------------------------------------------------------------------


def jsonable_encoder(
    obj: Any,
    include: Iterable[Any] | None = None,
    exclude: Iterable[Any] | None = None,
    by_alias: bool = True,
    exclude_unset: bool = False,
    exclude_defaults: bool = False,
    exclude_none: bool = False,
    custom_encoder: Mapping[Any, Callable[[Any], Any]] | None = None,
    sqlalchemy_safe: bool = True,
) -> Any:
    """``obj`` as JSON-compatible builtins, as FastAPI's ``jsonable_encoder`` makes it.

    - ``include``/``exclude``: top-level field names (attribute names, not ``rename``\\d ones) of a
      Struct or dataclass, or keys of a dict; applied to each item of a list. Only the top level:
      pydantic's nested ``{"field": {...}}`` form is not supported (a mapping counts as its keys).
    - ``by_alias=False``: a Struct's fields under their attribute names instead of their wire names.
    - ``exclude_unset``: a Struct records no "fields set", so only fields left at ``msgspec.UNSET``
      are unset, and those are never written anyway.
    - ``exclude_defaults``: a Struct's fields equal to their default are left out (at any depth;
      not a dataclass's, as in FastAPI).
    - ``exclude_none``: ``None`` fields and dict values are left out, at any depth.
    - ``custom_encoder``: ``{type: function}``, tried first on every value (the exact type, then
      ``isinstance`` in order).
    - ``sqlalchemy_safe``: dict keys starting with ``_sa`` (SQLAlchemy's state) are skipped.

    Raises ``ValueError`` for an object that is neither a known type, a mapping nor something with
    attributes, and ``UnicodeDecodeError`` for bytes that are not UTF-8 (as FastAPI does).
    """
    encoder = _Encoder(
        by_alias, exclude_unset, exclude_defaults, exclude_none, dict(custom_encoder or {}), sqlalchemy_safe
    )
    return encoder.encode(obj, names(include), names(exclude))


class _Encoder:
    __slots__ = ("by_alias", "custom", "exclude_defaults", "exclude_none", "exclude_unset", "sqlalchemy_safe")

    def __init__(
        self,
        by_alias: bool,
        exclude_unset: bool,
        exclude_defaults: bool,
        exclude_none: bool,
        custom: dict[Any, Callable[[Any], Any]],
        sqlalchemy_safe: bool,
    ) -> None:
        self.by_alias = by_alias
        self.exclude_unset = exclude_unset
        self.exclude_defaults = exclude_defaults
        self.exclude_none = exclude_none
        self.custom = custom
        self.sqlalchemy_safe = sqlalchemy_safe

    def encode(self, obj: Any, include: _Names = None, exclude: _Names = None) -> Any:
        custom = self.custom
        if custom:
            if type(obj) in custom:
                return custom[type(obj)](obj)
            for cls, function in custom.items():
                if isinstance(obj, cls):
                    return function(obj)
        if isinstance(obj, msgspec.Struct):
            return self._struct(obj, include, exclude)
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            fields = {field.name: getattr(obj, field.name) for field in dataclasses.fields(obj)}
            return self._dict(fields, include, exclude)
        if isinstance(obj, Enum):
            return self.encode(obj.value)
        if isinstance(obj, PurePath):
            return str(obj)
        if isinstance(obj, str | int | float | None):
            return obj
        if obj is msgspec.UNSET:
            return None
        if isinstance(obj, dict):
            return self._dict(obj, include, exclude)
        if isinstance(obj, _SEQUENCES):
            return [self.encode(item, include, exclude) for item in obj]
        encoder = ENCODERS_BY_TYPE.get(type(obj))
        if encoder is not None:
            return encoder(obj)
        for cls, function in ENCODERS_BY_TYPE.items():
            if isinstance(obj, cls):
                return function(obj)
        errors: list[Exception] = []
        try:
            data = dict(obj)
        except Exception as exc:
            errors.append(exc)
            try:
                data = vars(obj)
            except Exception as exc:
                errors.append(exc)
                raise ValueError(errors) from exc
        return self._dict(data, include, exclude)

    def _struct(self, obj: msgspec.Struct, include: _Names, exclude: _Names) -> Any:
        info = model_info(type(obj))
        if info.array_like:
            return [self.encode(getattr(obj, field.name)) for field in info.fields]
        out: dict[str, Any] = {}
        if info.tag_field is not None:
            out[info.tag_field] = info.tag
        skip_defaults = self.exclude_defaults or info.omit_defaults
        for field in info.fields:
            if (include is not None and field.name not in include) or (exclude and field.name in exclude):
                continue
            value = getattr(obj, field.name)
            if value is msgspec.UNSET or (value is None and self.exclude_none):
                continue
            if skip_defaults and field.is_default(value):
                continue
            out[field.encode_name if self.by_alias else field.name] = self.encode(value)
        return out

    def _dict(self, obj: Mapping[Any, Any], include: _Names, exclude: _Names) -> Any:
        out: dict[Any, Any] = {}
        for key, value in obj.items():
            if (include is not None and key not in include) or (exclude and key in exclude):
                continue
            if value is None and self.exclude_none:
                continue
            if self.sqlalchemy_safe and isinstance(key, str) and key.startswith("_sa"):
                continue
            out[self.encode(key)] = self.encode(value)
        return out
