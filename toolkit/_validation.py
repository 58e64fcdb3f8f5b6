"""Turn msgspec errors into FastAPI-shaped error entries (``type``, ``loc``, ``msg``, ``input``).

msgspec stops at the first error, which keeps the happy path fast; ``_error_walk.collect_errors``
walks a failed input again, bounded, to report every failing field with these helpers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from typing import Any

import msgspec

ErrorEntry = dict[str, Any]
Loc = tuple[str | int, ...]

MAX_INPUT_SIZE = 4 * 1024  # an ``input`` larger than this (estimated JSON bytes) is reported as null

# "<message> - at `$.a[0]`" and, for a dict key, "<message> - at `key` in `$.a`"
_AT_PATH = re.compile(r" - at `\$(.*)`\Z", re.DOTALL)
_AT_KEY = re.compile(r" - at `key` in `\$(.*)`\Z", re.DOTALL)
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
    if m := re.fullmatch(r"Object contains unknown field `(.*)`", message):
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
    if m := re.fullmatch(r"Expected `array` of length (\d+), got (\d+)", message):  # a fixed-length tuple
        expected, actual = int(m[1]), int(m[2])
        ctx: dict[str, Any] = {"field_type": "Tuple", "actual_length": actual}
        if actual > expected:
            msg = f"Tuple should have at most {_plural(m[1], 'item')} after validation, not {actual}"
            return "too_long", msg, (), {**ctx, "max_length": expected}
        msg = f"Tuple should have at least {_plural(m[1], 'item')} after validation, not {actual}"
        return "too_short", msg, (), {**ctx, "min_length": expected}
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


# --- msgspec error text -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Failure:
    """A msgspec error, located below the value it was raised for.

    ``path`` is msgspec's path without the ``$`` (``".a[0]"``, ``"[...]"`` for some dict value,
    ``""`` for the value itself); ``key`` means the failing value is a key of the dict at ``path``.
    """

    message: str
    path: str
    key: bool = False

    @property
    def inside(self) -> bool:
        """The error is in an item, field, key or value, not about the value as a whole."""
        return bool(self.path) or self.key

    def below(self, consumed: int) -> _Failure:
        return _Failure(self.message, self.path[consumed:], self.key)


def _failure(text: str) -> _Failure:
    if m := _AT_KEY.search(text):
        return _Failure(text[: m.start()], m[1], key=True)
    if m := _AT_PATH.search(text):
        return _Failure(text[: m.start()], m[1])
    return _Failure(text, "")


def _path_parts(path: str) -> Loc:
    """``".a[0].b"`` -> ``("a", 0, "b")``, stopping at the first part that names no key or index.

    msgspec writes a dict value as ``[...]``, without its key: the location stops at the dict.
    """
    parts: list[str | int] = []
    pos = 0
    while pos < len(path):
        m = _PATH_PART.match(path, pos)
        if m is None:
            break
        parts.append(m[1] if m[1] is not None else int(m[2]))
        pos = m.end()
    return tuple(parts)


def split_error(exc: msgspec.ValidationError) -> tuple[str, Loc]:
    """``"Expected `int`, got `str` - at `$.a[0]`"`` -> ``("Expected `int`, got `str`", ("a", 0))``.

    A dict value (``$.a[...]``) or key (``key` in `$.a``) is located at its dict, ``("a",)``:
    msgspec does not say which key. ``collect_errors`` names it.
    """
    failure = _failure(str(exc))
    return failure.message, _path_parts(failure.path)


def error_entry(message: str, loc: Loc, input_value: Any) -> ErrorEntry:
    """An entry for a msgspec message; for a missing field ``input`` is the enclosing object."""
    kind, msg, extra, ctx = _describe(message)
    if kind.endswith("_parsing") and kind[:-8] in _STRING_READINGS and _reads_as(kind[:-8], input_value):
        # A string that would parse, refused anyway: a strict body wants a JSON number or boolean.
        kind, msg = f"{kind[:-8]}_type", msg.split(",", 1)[0]
    entry: ErrorEntry = {"type": kind, "loc": list(loc + extra), "msg": msg, "input": input_value}
    if ctx is not None:
        entry["ctx"] = ctx
    return entry


_STRING_READINGS = ("int", "float", "bool")


def _reads_as(name: str, value: Any) -> bool:
    """Whether the string ``value`` is a lax reading of an ``int``/``float``/``bool``."""
    if not isinstance(value, str):
        return False
    target = {"int": int, "float": float, "bool": bool}[name]
    try:
        msgspec.convert(value, target, strict=False)
    except msgspec.ValidationError:
        return False
    return True


def missing_entry(loc: Loc, enclosing: Any = None) -> ErrorEntry:
    return {"type": "missing", "loc": list(loc), "msg": "Field required", "input": enclosing}


def entry_from_exception(exc: msgspec.ValidationError, loc: Loc, root: Any) -> ErrorEntry:
    """An entry for ``exc`` raised while converting ``root``; ``input`` is the failing sub-value."""
    message, rel = split_error(exc)
    return error_entry(message, loc + rel, _dig(root, rel))


def _failure_entry(failure: _Failure, loc: Loc, value: Any) -> ErrorEntry:
    rel = _path_parts(failure.path)
    return error_entry(failure.message, loc + rel, _dig(value, rel))


def _dig(value: Any, path: Loc) -> Any:
    for part in path:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return None
    return _echo(value)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool, list, dict)):
        return value
    return str(value)


def _echo(value: Any) -> Any:
    """``value`` as an entry's ``input``: ``None`` when its JSON would exceed ``MAX_INPUT_SIZE``."""
    value = _jsonable(value)
    return value if _json_size(value, MAX_INPUT_SIZE) <= MAX_INPUT_SIZE else None


def _json_size(value: Any, limit: int) -> int:
    """About how many bytes ``value`` takes as JSON; stops counting (cheaply) past ``limit``."""
    size = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            # Escapes count: a control character is six bytes on the wire (\u0001).
            size += len(item) if len(item) > limit else len(msgspec.json.encode(item)) + 1
        elif isinstance(item, bool) or item is None:
            size += 6
        elif isinstance(item, int):
            size += item.bit_length() // 3 + 2
        elif isinstance(item, (list, dict)):
            size += 2 * len(item) + 2
            if size > limit:
                return size
            if isinstance(item, dict):
                stack.extend(item)
                stack.extend(item.values())
            else:
                stack.extend(item)
        else:
            size += 24
        if size > limit:
            return size
    return size


def json_invalid_entry(detail: str, size: int | None = None) -> ErrorEntry:
    """FastAPI's ``json_invalid`` entry; ``loc`` ends with the byte offset where parsing stopped."""
    loc: tuple[str | int, ...] = ("body",)
    if detail == "Input data was truncated" and size is not None:
        loc = ("body", size)
    elif "(byte " in detail:
        with contextlib.suppress(ValueError):
            loc = ("body", int(detail.rsplit("(byte ", 1)[1].rstrip(")")))
    return {
        "type": "json_invalid",
        "loc": list(loc),
        "msg": "JSON decode error",
        "input": {},
        "ctx": {"error": detail},
    }
