"""The ``response_model_*`` options, and the dataclass defaults msgspec leaves unset.

What the options make of a checked result (``Shaper``) and whether a type's decoded values need
their dataclasses' defaults set back (``needs_defaults_filled``, then ``fill_defaults``) are
decided once, at registration: ``shaper`` is ``None`` when the options leave the output as the
model writes it, so a route that asks for neither pays nothing at request time.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import typing
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from ._types import type_nodes
from .encoders import model_info, names
from .exceptions import RouteConfigError

__all__ = ["ALL_SET", "Shaper", "fill_defaults", "needs_defaults_filled", "shaper"]

ALL_SET: Any = object()  # exclude_unset: every field here counts as set (no record of what was)


class Shaper:
    """Writes a checked value (the decoded model) as the ``response_model_*`` options ask."""

    __slots__ = ("by_alias", "exclude", "exclude_defaults", "exclude_none", "exclude_unset", "include")

    def __init__(
        self,
        include: frozenset[Any] | None,
        exclude: frozenset[Any],
        by_alias: bool,
        exclude_unset: bool,
        exclude_defaults: bool,
        exclude_none: bool,
    ) -> None:
        self.include = include
        self.exclude = exclude
        self.by_alias = by_alias
        self.exclude_unset = exclude_unset
        self.exclude_defaults = exclude_defaults
        self.exclude_none = exclude_none

    def _keeps(self, name: Any) -> bool:
        return (self.include is None or name in self.include) and name not in self.exclude

    def shape(self, value: Any, raw: Any, top: bool = False) -> Any:
        """``value`` as builtins; ``raw``: what the handler returned there, as JSON builtins
        (``ALL_SET`` when every field counts as set); ``top``: ``include``/``exclude`` apply here."""
        if isinstance(value, msgspec.Struct) or (
            dataclasses.is_dataclass(value) and not isinstance(value, type)
        ):
            return self._model(value, raw, top)
        if isinstance(value, dict):
            given = raw if isinstance(raw, dict) else {}
            return {
                key: self.shape(item, given.get(key, ALL_SET) if isinstance(key, str) else ALL_SET)
                for key, item in value.items()
                if not top or self._keeps(key)
            }
        if isinstance(value, list | tuple):
            raws = raw if isinstance(raw, list) and len(raw) == len(value) else None
            # A list model: each of its models is a top level.
            return [
                self.shape(item, ALL_SET if raws is None else raws[i], top) for i, item in enumerate(value)
            ]
        if isinstance(value, set | frozenset):
            return [self.shape(item, ALL_SET, top) for item in value]
        return value

    def _model(self, value: Any, raw: Any, top: bool) -> Any:
        info = model_info(type(value))
        if info.array_like:  # written as an array: no field to leave out
            return [self.shape(getattr(value, field.name), ALL_SET) for field in info.fields]
        out: dict[str, Any] = {}
        if info.tag_field is not None:
            out[info.tag_field] = info.tag
        given = raw if isinstance(raw, dict) else None
        skip_defaults = self.exclude_defaults or info.omit_defaults
        for field in info.fields:
            if top and not self._keeps(field.name):
                continue
            item = getattr(value, field.name)
            if item is msgspec.UNSET or (item is None and self.exclude_none):
                continue
            child = ALL_SET
            if given is not None:
                if field.encode_name not in given:
                    continue  # not set by the handler
                child = given[field.encode_name]
            if skip_defaults and field.is_default(item):
                continue
            out[field.encode_name if self.by_alias else field.name] = self.shape(item, child)
        return out


def shaper(
    model: Any,
    owner: str,
    include: Iterable[str] | None,
    exclude: Iterable[str] | None,
    by_alias: bool,
    exclude_unset: bool,
    exclude_defaults: bool,
    exclude_none: bool,
) -> Shaper | None:
    """The route's shaper; ``None`` when its options leave the output as the model writes it."""
    included = _option_names("response_model_include", include, owner)
    excluded = _option_names("response_model_exclude", exclude, owner) or frozenset()
    shaped = included is not None or excluded or not by_alias
    if not (shaped or exclude_unset or exclude_defaults or exclude_none):
        return None
    fields = _field_names(model)
    if fields is not None:
        for option, given in (("response_model_include", included), ("response_model_exclude", excluded)):
            unknown = sorted(set(given or ()) - fields)
            if unknown:
                raise RouteConfigError(
                    f"{owner}: {option} names {', '.join(map(repr, unknown))}, which the response model "
                    f"has no field of (its fields: {', '.join(sorted(fields))})"
                )
    if model is None:
        return None  # nothing to shape (as FastAPI, which applies them to the model only)
    return Shaper(included, excluded, by_alias, exclude_unset, exclude_defaults, exclude_none)


def _option_names(option: str, value: Iterable[str] | None, owner: str) -> frozenset[Any] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        raise RouteConfigError(
            f"{owner}: {option} takes top-level field names (a set); pydantic's nested "
            "{'field': {...}} form is not supported"
        )
    if isinstance(value, str):
        raise RouteConfigError(f"{owner}: {option} takes a set of field names, not the string {value!r}")
    return names(value)


def _field_names(model: Any) -> frozenset[str] | None:
    """The field names of ``model`` (of its item type for a list of models), when it is one
    Struct, dataclass or TypedDict; ``None`` otherwise (a dict, a union...: nothing to check)."""
    origin = typing.get_origin(model)
    args = typing.get_args(model)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        args = args[:1]
    if origin in (list, set, frozenset, tuple, collections.abc.Sequence) and len(args) == 1:
        model = args[0]
    if not isinstance(model, type):
        return None
    if issubclass(model, msgspec.Struct):
        return frozenset(model.__struct_fields__)
    if dataclasses.is_dataclass(model):
        return frozenset(field.name for field in dataclasses.fields(model))
    if typing.is_typeddict(model):
        keys: frozenset[str] = getattr(model, "__required_keys__", frozenset())
        return keys | getattr(model, "__optional_keys__", frozenset())
    return None


# --- dataclass defaults ------------------------------------------------------------------------------


def needs_defaults_filled(tp: Any) -> bool:
    """Whether values decoded as ``tp`` hold dataclasses whose plain defaults msgspec leaves unset.

    msgspec decodes a dataclass (with a ``__dict__``) without setting the fields it did not read
    that have a plain default (the class attribute answers for them), and encodes one from its
    ``__dict__``: echoed, ``Body(a=1)`` decoded from ``{"a": 1}`` would lose ``b=2``.
    """
    return any(
        isinstance(node, msgspec.inspect.DataclassType)
        and dataclasses.is_dataclass(node.cls)
        and "__slots__" not in vars(node.cls)
        and any(field.default is not dataclasses.MISSING for field in dataclasses.fields(node.cls))
        for node in type_nodes(tp)
    )


def fill_defaults(value: Any) -> Any:
    """``value`` (decoded by msgspec) with the plain defaults of its dataclasses set on them
    (see ``needs_defaults_filled``)."""
    if isinstance(value, dict):
        for item in value.values():
            fill_defaults(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            fill_defaults(item)
    elif isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            fill_defaults(getattr(value, name))
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        attrs = getattr(value, "__dict__", None)
        for field in dataclasses.fields(value):
            if attrs is not None and field.name not in attrs and field.default is not dataclasses.MISSING:
                attrs[field.name] = field.default
            fill_defaults(getattr(value, field.name))
    return value
