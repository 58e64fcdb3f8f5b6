"""Collect *every* failing field of an input that already failed validation, within bounds.

msgspec stops at the first error, which keeps the happy path fast. Only when a request has
already failed do we walk the input again (``collect_errors``) to report all failures at once.

The walk is bounded, because its input is hostile by definition:

* Its cost follows what it reports, not the size of the input. The first msgspec error already
  locates the first failure (``- at `$.tags[123]```), so everything msgspec accepted before it is
  never looked at again; the rest of a list or dict is converted in chunks of ``_CHUNK`` items by
  one C call each, and only failing items are walked one by one, in Python.
* A container that breaks its own constraints (``max_length``, a wrong length for a fixed tuple,
  not a list at all...) gets that one error; its items are not walked.
* At most ``MAX_REPORTED_ERRORS`` entries (and about ``MAX_DETAIL_SIZE`` bytes of them) are
  reported, after at most ``MAX_CHECKS`` conversions and ``MAX_DEPTH`` levels of nesting; below
  that depth a value gets msgspec's first error only. A walk that stops early ends its list with
  one marker entry, in the same shape as the others::

      {"type": "too_many_errors", "loc": ["body"], "msg": "Only the first 100 errors are reported",
       "input": None, "ctx": {"max_errors": 100}}

  ``loc`` is where the walk started (``["body"]``); ``msg`` gives the number actually reported.
* ``input`` echoes the failing value only when it is at most ``MAX_INPUT_SIZE`` bytes of JSON
  (``null`` otherwise): a ``missing`` entry echoes its enclosing object, and a huge one must not be
  copied into every entry.

Models are read with ``msgspec.inspect.type_info`` (``required``, ``encode_name``,
``forbid_unknown_fields``, keyword-only fields in any order) and recursed into with their real
annotations (``typing.get_type_hints``), so ``convert(value, tp)`` always receives a real type.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import itertools
import re
import types
import typing
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any

import msgspec

from ._validation import (
    ErrorEntry,
    Loc,
    _echo,
    _Failure,
    _failure,
    _failure_entry,
    _json_size,
    error_entry,
    missing_entry,
)

#: The class attribute marking a Struct the toolkit made of several parameters (``make_struct``).
PARAMETER_STRUCT = "__toolkit_parameters__"

MAX_REPORTED_ERRORS = 100  # entries in one walk's list, not counting the marker
MAX_CHECKS = 10_000  # conversions one walk may run (a chunk of items is one conversion)
MAX_DEPTH = 32  # levels of nesting walked; deeper, a value gets msgspec's first error only
MAX_DETAIL_SIZE = 64 * 1024  # bytes of entries (estimated) after which the walk stops
_CHUNK = 1024  # list items or dict entries converted by one call
_FIRST_CHUNK = 16  # dict entries converted by one call after a failure
_INDEX = re.compile(r"\[(\d+)\]")
_UNKNOWN_FIELD = re.compile(r"Object contains unknown field `(.*)`", re.DOTALL)


def _entry_size(entry: ErrorEntry) -> int:
    loc_size = sum(len(part) + 3 if isinstance(part, str) else 8 for part in entry["loc"])
    return 48 + len(entry["msg"]) + loc_size + _json_size(entry["input"], MAX_DETAIL_SIZE)


def _too_many_errors(loc: Loc, reported: int, max_errors: int) -> ErrorEntry:
    first = "the first error is" if reported == 1 else f"the first {reported} errors are"
    return {
        "type": "too_many_errors",
        "loc": list(loc),
        "msg": f"Only {first} reported",
        "input": None,
        "ctx": {"max_errors": max_errors},
    }


# --- the shape of a type, as far as the walk cares (cached per type) ---------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Field:
    key: str  # the encoded name, as it appears in the input
    type: Any  # the real annotation (Annotated constraints kept), generics substituted
    required: bool


@dataclasses.dataclass(frozen=True, slots=True)
class _Model:
    fields: tuple[_Field, ...]
    keys: frozenset[str]  # every key the model accepts (fields and a struct's tag field)
    forbid_unknown: bool
    # A user's model echoes itself in a ``missing`` entry, as pydantic does; the Structs the
    # toolkit makes of several parameters (form fields, embedded bodies) do not: their other
    # fields are other parameters (a password beside a missing ``grant_type``).
    echoes: bool = True

    def match(self, path: str) -> tuple[str, int] | None:
        """The field a path starts with, and how many characters of the path name it."""
        best: tuple[str, int] | None = None
        if path.startswith("."):
            for field in self.fields:
                end = len(field.key) + 1
                fits = path.startswith(field.key, 1) and (len(path) == end or path[end] in ".[")
                if fits and (best is None or end > best[1]):
                    best = (field.key, end)
        return best


@dataclasses.dataclass(frozen=True, slots=True)
class _Shape:
    """``kind``: "model", "seq" (list, set, frozenset, ``tuple[T, ...]``), "tuple" (fixed length),
    "dict", "optional" (``T | None``) or "leaf" (anything the walk does not look into)."""

    kind: str
    model: _Model | None = None
    items: tuple[Any, ...] = ()  # seq/optional: (item,); tuple: every position; dict: (key, value)
    chunks: tuple[Any, ...] = ()  # seq: (list[item],); dict: (dict[key, value],), no constraints


_LEAF = _Shape("leaf")
_SEQUENCES = {
    list,
    set,
    frozenset,
    collections.abc.Sequence,
    collections.abc.MutableSequence,
    collections.abc.Set,
    collections.abc.MutableSet,
    collections.abc.Collection,
}
_MAPPINGS = {dict, collections.abc.Mapping, collections.abc.MutableMapping}
_FIELD_WRAPPERS = {typing.Required, typing.NotRequired}
_TYPE_ALIASES: tuple[type, ...] = tuple(
    alias for alias in (getattr(typing, "TypeAliasType", None),) if isinstance(alias, type)
)


def _unwrap(tp: Any) -> Any:
    """Drop what does not change the shape: ``Annotated``, ``NotRequired``, ``NewType``, aliases."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = tp.__origin__
        elif origin in _FIELD_WRAPPERS:
            tp = typing.get_args(tp)[0]
        elif isinstance(tp, typing.NewType):
            tp = tp.__supertype__
        elif isinstance(tp, _TYPE_ALIASES):  # ``type X = ...`` (3.12)
            tp = typing.cast(Any, tp).__value__
        else:
            return tp


def _substitute(hint: Any, mapping: dict[Any, Any]) -> Any:
    """``list[T]`` -> ``list[int]`` for a field of ``Model[int]``."""
    if not mapping:
        return hint
    if isinstance(hint, typing.TypeVar):
        return mapping.get(hint, hint)
    params = getattr(hint, "__parameters__", ())
    if params:
        try:
            return hint[tuple(mapping.get(p, p) for p in params)]
        except TypeError:
            return hint
    return hint


def _model(tp: Any) -> _Model | None:
    """Field layout of a Struct, dataclass or TypedDict (``None`` for anything else)."""
    try:
        info = msgspec.inspect.type_info(tp)
        if isinstance(info, msgspec.inspect.StructType) and info.array_like:
            return None
        if not isinstance(
            info, (msgspec.inspect.StructType, msgspec.inspect.DataclassType, msgspec.inspect.TypedDictType)
        ):
            return None
        origin = typing.get_origin(tp) or tp
        hints = typing.get_type_hints(origin, include_extras=True)
        params = getattr(origin, "__parameters__", ())
        mapping = dict(zip(params, typing.get_args(tp), strict=False))
        fields = tuple(
            _Field(f.encode_name, _substitute(hints[f.name], mapping), f.required) for f in info.fields
        )
    except (TypeError, NameError, ValueError, AttributeError, KeyError):  # unresolvable: one error
        return None
    keys = {f.key for f in fields}
    tag_field = getattr(info, "tag_field", None)
    if tag_field is not None:
        keys.add(tag_field)
    forbid = bool(getattr(info, "forbid_unknown_fields", False))
    return _Model(fields, frozenset(keys), forbid, not getattr(origin, PARAMETER_STRUCT, False))


def _shape_of(tp: Any) -> _Shape:
    bare = _unwrap(tp)
    origin = typing.get_origin(bare)
    args = typing.get_args(bare)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        # Other unions keep msgspec's one error: which member was meant is a guess.
        return _Shape("optional", items=(members[0],)) if len(members) == 1 < len(args) else _LEAF
    if origin is tuple or bare is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _Shape("seq", items=(args[0],), chunks=(list[args[0]],))  # type: ignore[valid-type]
        if not args or args == ((),):
            return _LEAF
        return _Shape("tuple", items=args)
    if origin in _SEQUENCES or bare in _SEQUENCES:
        (item,) = args or (Any,)
        return _Shape("seq", items=(item,), chunks=(list[item],))  # type: ignore[valid-type]
    if origin in _MAPPINGS or bare in _MAPPINGS:
        key, value = args or (Any, Any)
        return _Shape("dict", items=(key, value), chunks=(dict[key, value],))  # type: ignore[valid-type]
    model = _model(bare)
    return _Shape("model", model=model) if model is not None else _LEAF


_cached_shape = lru_cache(maxsize=1024)(_shape_of)


def _shape(tp: Any) -> _Shape:
    try:
        return _cached_shape(tp)
    except TypeError:  # an unhashable annotation: not cached
        return _shape_of(tp)


# --- collecting every error (slow path only) ------------------------------------------------


class _Stop(Exception):
    """The walk reached one of its bounds."""


class _Walk:
    def __init__(self, convert: Callable[[Any, Any], Any], max_errors: int, max_checks: int) -> None:
        self.convert = convert
        self.max_errors = max_errors
        self.max_checks = max_checks
        self.checks = 0
        self.size = 0
        self.errors: list[ErrorEntry] = []

    def check(self, value: Any, tp: Any) -> _Failure | None:
        """Convert ``value`` as the fast path would: ``None`` if valid, else where it fails."""
        if self.checks >= self.max_checks:
            raise _Stop
        self.checks += 1
        try:
            self.convert(value, tp)
        except msgspec.ValidationError as exc:
            return _failure(str(exc))
        except TypeError:  # a type msgspec cannot convert to: say nothing, the caller's error stands
            return None
        return None

    def add(self, entry: ErrorEntry) -> None:
        size = _entry_size(entry)
        if self.errors and (len(self.errors) >= self.max_errors or self.size + size > MAX_DETAIL_SIZE):
            raise _Stop
        self.errors.append(entry)
        self.size += size

    def node(self, value: Any, tp: Any, loc: Loc, failure: _Failure, depth: int) -> None:
        """Report the errors of ``value``, known to fail as ``failure`` says, against ``tp``."""
        reported = len(self.errors)
        shape = _shape(tp)
        if depth < MAX_DEPTH:
            if shape.kind == "model" and isinstance(value, dict):
                assert shape.model is not None
                self.model(value, shape.model, loc, failure, depth)
            elif shape.kind == "seq" and isinstance(value, list) and failure.inside:
                self.sequence(value, shape, loc, failure, depth)
            elif shape.kind == "tuple" and isinstance(value, list):
                self.fixed_tuple(value, shape.items, loc, failure, depth)
            elif shape.kind == "dict" and isinstance(value, dict) and failure.inside:
                self.mapping(value, shape, loc, depth)
            elif shape.kind == "optional" and value is not None:
                self.node(value, shape.items[0], loc, failure, depth + 1)
        if len(self.errors) == reported:  # nothing more precise found: msgspec's own error
            self.add(_failure_entry(failure, loc, value))

    def failing(
        self, items: list[Any], item_type: Any, chunk_type: Any, first: tuple[int, _Failure] | None
    ) -> Iterator[tuple[int, _Failure]]:
        """``(index, failure)`` of every failing item, in order; valid runs cost one C call per chunk.

        ``first``, when known, is the first failure: the items before it are valid.
        """
        start = 0
        if first is not None:
            yield first
            start = first[0] + 1
        while start < len(items):
            chunk = items[start : start + _CHUNK]
            failure = self.check(chunk, chunk_type)
            if failure is None:
                start += len(chunk)
                continue
            m = _INDEX.match(failure.path)
            if m is None or int(m[1]) >= len(chunk):  # not located: one item at a time
                for offset, item in enumerate(chunk):
                    if (sub := self.check(item, item_type)) is not None:
                        yield start + offset, sub
                start += len(chunk)
                continue
            index = start + int(m[1])
            yield index, failure.below(m.end())
            start = index + 1

    def sequence(self, items: list[Any], shape: _Shape, loc: Loc, failure: _Failure, depth: int) -> None:
        item_type = shape.items[0]
        first = None
        if (m := _INDEX.match(failure.path)) is not None and int(m[1]) < len(items):
            first = (int(m[1]), failure.below(m.end()))
        for index, sub in self.failing(items, item_type, shape.chunks[0], first):
            self.node(items[index], item_type, (*loc, index), sub, depth + 1)

    def fixed_tuple(
        self, items: list[Any], positions: tuple[Any, ...], loc: Loc, failure: _Failure, depth: int
    ) -> None:
        if len(items) > len(positions):
            return  # too long: msgspec's one error
        known, sub = -1, None  # msgspec checks the positions in order: those before ``known`` passed
        if len(items) == len(positions) and (m := _INDEX.match(failure.path)) is not None:
            known, sub = int(m[1]), failure.below(m.end())
        for index, (item, tp) in enumerate(zip(items, positions, strict=False)):
            if index < known:
                continue
            found = sub if index == known else self.check(item, tp)
            if found is not None:
                self.node(item, tp, (*loc, index), found, depth + 1)
        for index in range(len(items), len(positions)):
            self.add(missing_entry((*loc, index), _echo(items) if index == len(items) else None))

    def mapping(self, value: dict[Any, Any], shape: _Shape, loc: Loc, depth: int) -> None:
        key_type, value_type = shape.items
        for key, item, failure in self.failing_entries(value, shape.chunks[0]):
            name = key if isinstance(key, (str, int)) else str(key)
            found: _Failure | None = failure
            if failure.key:  # msgspec checks an entry's key first: its value is still unknown
                self.node(key, key_type, (*loc, name, "[key]"), _Failure(failure.message, ""), depth + 1)
                found = self.check(item, value_type)
            elif failure.path.startswith("[...]"):
                found = failure.below(len("[...]"))
            else:  # not located: ask again
                found = self.check(item, value_type)
            if found is not None:
                self.node(item, value_type, (*loc, name), found, depth + 1)

    def failing_entries(self, value: dict[Any, Any], chunk_type: Any) -> Iterator[tuple[Any, Any, _Failure]]:
        """``(key, value, failure)`` of every failing entry of ``value``, in order.

        msgspec names no key (``$[...]``, ``key` in `$``), so a failing chunk is bisected, by
        prefixes, down to its first failing entry. Entries are converted as a dict (not as lists
        of keys and values) so that keys get exactly the semantics ``convert`` gives them, and
        read lazily: the walk may stop long before the end of a huge dict.
        """
        entries = iter(value.items())
        pending: list[tuple[Any, Any]] = []  # read, not yet checked
        size = _FIRST_CHUNK  # small after a failure (errors tend to come in runs), then doubling
        while True:
            chunk = pending + list(itertools.islice(entries, size - len(pending)))
            if not chunk:
                return
            failure = self.check(dict(chunk), chunk_type)
            if failure is None:
                pending = []
                size = min(2 * size, _CHUNK)
                continue
            valid, failing = 0, len(chunk)  # the prefix of ``valid`` entries passes, ``failing`` fails
            while failing - valid > 1:
                middle = (valid + failing) // 2
                found = self.check(dict(chunk[:middle]), chunk_type)
                if found is None:
                    valid = middle
                else:
                    failing, failure = middle, found
            key, item = chunk[failing - 1]
            yield key, item, failure
            pending = chunk[failing:]
            size = max(_FIRST_CHUNK, len(pending))

    def model(self, value: dict[Any, Any], model: _Model, loc: Loc, failure: _Failure, depth: int) -> None:
        # msgspec converts the input's keys in order, then looks for missing fields: what comes
        # before the failing key was accepted, and a missing field means every key was.
        known: str | None = None
        sub: _Failure | None = None
        accepted: frozenset[str] | None = None  # fields msgspec accepted; None: every key
        extra_from = 0  # where in the input to start looking for unknown keys
        if not failure.inside:
            if failure.message.startswith("Object missing required field `"):
                pass
            elif (m := _UNKNOWN_FIELD.fullmatch(failure.message)) and m[1] in value:
                keys = list(value)
                extra_from = keys.index(m[1])
                accepted = model.keys.intersection(itertools.islice(keys, extra_from))
            else:
                return  # the object as a whole (``__post_init__``, ...): msgspec's one error
        elif (hit := model.match(failure.path)) is not None and hit[0] in value:
            known, consumed = hit
            sub = failure.below(consumed)
            keys = list(value)
            position = keys.index(known)
            accepted = model.keys.intersection(itertools.islice(keys, position))
            extra_from = position + 1
        else:
            accepted = frozenset()
        echoed = False
        for field in model.fields:
            if field.key not in value:
                if field.required:
                    # The enclosing object is echoed once, not once per missing field.
                    self.add(
                        missing_entry((*loc, field.key), None if echoed or not model.echoes else _echo(value))
                    )
                    echoed = True
                continue
            if accepted is None or field.key in accepted:
                continue
            item = value[field.key]
            found = sub if field.key == known else self.check(item, field.type)
            if found is not None:
                self.node(item, field.type, (*loc, field.key), found, depth + 1)
        if model.forbid_unknown and accepted is not None:
            for key in itertools.islice(value, extra_from, None):
                if key not in model.keys:
                    self.add(error_entry(f"Object contains unknown field `{key}`", loc, _echo(value[key])))


def collect_errors(
    value: Any,
    tp: Any,
    loc: Loc,
    convert: Callable[[Any, Any], Any],
    *,
    max_errors: int = MAX_REPORTED_ERRORS,
    max_checks: int = MAX_CHECKS,
) -> list[ErrorEntry]:
    """Every validation error of ``value`` against ``tp`` (within the bounds above).

    ``convert(value, tp)`` is the conversion the fast path used (strict JSON semantics for
    bodies, lax string semantics for forms), so both paths agree on what is valid. The list is
    empty only when ``convert`` accepts ``value``; a walk cut short ends with a
    ``too_many_errors`` entry at ``loc``.
    """
    try:
        convert(value, tp)
        return []
    except msgspec.ValidationError as exc:
        failure = _failure(str(exc))
    walk = _Walk(convert, max_errors, max_checks)
    try:
        walk.node(value, tp, loc, failure, 0)
    except (_Stop, RecursionError):
        if not walk.errors:
            walk.errors.append(_failure_entry(failure, loc, value))
        walk.errors.append(_too_many_errors(loc, len(walk.errors), max_errors))
    return walk.errors
