"""Turn msgspec errors into FastAPI-shaped error entries, and collect *every* failing field.

msgspec stops at the first error, which keeps the happy path fast. Only when a request has
already failed do we walk the input again (``collect_errors``) to report all failures at once.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import msgspec

ErrorEntry = dict[str, Any]
Loc = tuple[str | int, ...]

_AT_PATH = re.compile(r" - at `\$(.*)`$")
_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")

_TYPE_NAMES = {
    "int": ("int", "a valid integer"),
    "float": ("float", "a valid number"),
    "bool": ("bool", "a valid boolean"),
    "str": ("string", "a valid string"),
    "object": ("dict", "a valid object"),
    "array": ("list", "a valid array"),
    "null": ("none", "null"),
    "bytes": ("bytes", "valid bytes"),
}
_COMPARISONS = {
    ">=": ("greater_than_equal", "greater than or equal to"),
    ">": ("greater_than", "greater than"),
    "<=": ("less_than_equal", "less than or equal to"),
    "<": ("less_than", "less than"),
}


def _number(text: str) -> int | float | str:
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text


def _shown(text: str) -> str:
    """A bound as pydantic prints it: ``0.0`` -> ``0``, ``2.5`` stays."""
    value = _number(text)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return text


def _plural(count: str, word: str) -> str:
    return f"{count} {word}" if count == "1" else f"{count} {word}s"


def _describe(message: str) -> tuple[str, str, Loc, dict[str, Any] | None]:
    """Map a msgspec message (no ``- at`` suffix) to ``(type, msg, extra loc, ctx)``, in pydantic's words."""
    if m := re.fullmatch(r"Object missing required field `(.+)`", message):
        return "missing", "Field required", (m[1],), None
    if m := re.fullmatch(r"Object contains unknown field `(.+)`", message):
        return "extra_forbidden", "Extra inputs are not permitted", (m[1],), None
    if m := re.fullmatch(r"Expected `([^`]+)`, got `(\w+)`", message):
        expected = m[1].split(" | ")[0]  # "int | null": the parameter was optional
        name, article = _TYPE_NAMES.get(expected, (expected, f"a valid {expected}"))
        if m[2] == "str" and name in ("int", "float", "bool"):
            what = {"int": "an integer", "float": "a number", "bool": "a boolean"}[name]
            return f"{name}_parsing", f"Input should be {article}, unable to parse string as {what}", (), None
        return f"{name}_type", f"Input should be {article}", (), None
    if m := re.fullmatch(r"Expected `str` of length (>=|<=) (\d+)", message):
        if m[1] == ">=":
            msg = f"String should have at least {_plural(m[2], 'character')}"
            return "string_too_short", msg, (), {"min_length": int(m[2])}
        msg = f"String should have at most {_plural(m[2], 'character')}"
        return "string_too_long", msg, (), {"max_length": int(m[2])}
    if m := re.fullmatch(r"Expected `(array|object|bytes)` of length (>=|<=) (\d+)", message):
        if m[2] == ">=":
            msg = f"Input should have at least {_plural(m[3], 'item')}"
            return "too_short", msg, (), {"min_length": int(m[3])}
        return "too_long", f"Input should have at most {_plural(m[3], 'item')}", (), {"max_length": int(m[3])}
    if m := re.fullmatch(r"Expected `str` matching regex '(.*)'", message):
        return "string_pattern_mismatch", f"String should match pattern '{m[1]}'", (), {"pattern": m[1]}
    if m := re.fullmatch(r"Expected `\w+` that's a multiple of (\S+)", message):
        return "multiple_of", f"Input should be a multiple of {m[1]}", (), {"multiple_of": _number(m[1])}
    if m := re.fullmatch(r"Expected `\w+` (>=|>|<=|<) (\S+)", message):
        kind, words = _COMPARISONS[m[1]]
        key = {">=": "ge", ">": "gt", "<=": "le", "<": "lt"}[m[1]]
        return kind, f"Input should be {words} {_shown(m[2])}", (), {key: _number(m[2])}
    if m := re.fullmatch(r"Invalid enum value (.*)", message):
        return "enum", f"Input should be one of the allowed values, got {m[1]}", (), None
    if m := re.fullmatch(r"Invalid (UUID|RFC3339 encoded (\w+)|ISO8601 duration)", message):
        kind = (m[2] or m[1].split()[0]).lower()
        return f"{kind}_parsing", f"Input should be a valid {kind}: {message}", (), None
    if message in ("Number out of range", "Integer value out of range"):
        return "number_out_of_range", "Number out of range", (), None
    return "value_error", message, (), None


def split_error(exc: msgspec.ValidationError) -> tuple[str, Loc]:
    """``"Expected `int`, got `str` - at `$.a[0]`"`` -> ``("Expected `int`, got `str`", ("a", 0))``."""
    text = str(exc)
    m = _AT_PATH.search(text)
    if m is None:
        return text, ()
    parts: list[str | int] = []
    for key, index in _PATH_PART.findall(m[1]):
        parts.append(key if key else int(index))
    return text[: m.start()], tuple(parts)


def error_entry(message: str, loc: Loc, input_value: Any) -> ErrorEntry:
    """An entry for a msgspec message; for a missing field ``input`` is the enclosing object."""
    kind, msg, extra, ctx = _describe(message)
    entry: ErrorEntry = {"type": kind, "loc": list(loc + extra), "msg": msg, "input": input_value}
    if ctx is not None:
        entry["ctx"] = ctx
    return entry


def missing_entry(loc: Loc, enclosing: Any = None) -> ErrorEntry:
    return {"type": "missing", "loc": list(loc), "msg": "Field required", "input": enclosing}


def entry_from_exception(exc: msgspec.ValidationError, loc: Loc, root: Any) -> ErrorEntry:
    """An entry for ``exc`` raised while converting ``root``; ``input`` is the failing sub-value."""
    message, rel = split_error(exc)
    return error_entry(message, loc + rel, _dig(root, rel))


def _dig(value: Any, path: Loc) -> Any:
    for part in path:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return None
    return _jsonable(value)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool, list, dict)):
        return value
    return str(value)


# --- collecting every error (slow path only) ------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Field:
    key: str
    type: Any
    required: bool


@dataclasses.dataclass(frozen=True, slots=True)
class _Model:
    fields: tuple[_Field, ...]
    forbid_unknown: bool


@lru_cache(maxsize=1024)
def _model_of(tp: Any) -> _Model | None:
    """Field layout of a Struct, dataclass or TypedDict (``None`` for anything else)."""
    try:
        if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
            hints = typing.get_type_hints(tp, include_extras=True)
            names = tp.__struct_fields__
            n_required = len(names) - len(tp.__struct_defaults__)
            return _Model(
                tuple(
                    _Field(key, hints[name], i < n_required)
                    for i, (name, key) in enumerate(zip(names, tp.__struct_encode_fields__, strict=True))
                ),
                bool(tp.__struct_config__.forbid_unknown_fields),
            )
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            hints = typing.get_type_hints(tp, include_extras=True)
            return _Model(
                tuple(
                    _Field(
                        f.name,
                        hints[f.name],
                        f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
                    )
                    for f in dataclasses.fields(tp)
                    if f.init
                ),
                False,
            )
        if typing.is_typeddict(tp):
            hints = typing.get_type_hints(tp, include_extras=True)
            required = tp.__required_keys__
            return _Model(tuple(_Field(k, v, k in required) for k, v in hints.items()), False)
    except (NameError, TypeError):  # unresolvable forward references: fall back to one error
        return None
    return None


def _strip_annotated(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = tp.__origin__
    return tp


def collect_errors(
    value: Any,
    tp: Any,
    loc: Loc,
    convert: Callable[[Any, Any], Any],
) -> list[ErrorEntry]:
    """Every validation error of ``value`` against ``tp``, recursing into models and lists.

    ``convert(value, tp)`` is the conversion the fast path used (strict JSON semantics for
    bodies, lax string semantics for forms), so both paths agree on what is valid.
    """
    try:
        convert(value, tp)
        return []
    except msgspec.ValidationError as exc:
        first = entry_from_exception(exc, loc, value)
    bare = _strip_annotated(tp)
    model = _model_of(bare)
    errors: list[ErrorEntry] = []
    if model is not None and isinstance(value, dict):
        known = set()
        for field in model.fields:
            known.add(field.key)
            if field.key not in value:
                if field.required:
                    errors.append(missing_entry((*loc, field.key), _jsonable(value)))
                continue
            errors.extend(collect_errors(value[field.key], field.type, (*loc, field.key), convert))
        if model.forbid_unknown:
            errors.extend(
                error_entry(f"Object contains unknown field `{key}`", loc, value[key])
                for key in value
                if key not in known
            )
    elif typing.get_origin(bare) in (list, set, frozenset) and isinstance(value, list):
        (item_type,) = typing.get_args(bare) or (Any,)
        for index, item in enumerate(value):
            errors.extend(collect_errors(item, item_type, (*loc, index), convert))
    # Constraints on the container itself (length, struct-level checks) or unions: keep the
    # original error when the walk found nothing more precise.
    return errors or [first]
