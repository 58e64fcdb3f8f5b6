"""Lax readings of query, path, header and cookie strings, as pydantic's lax mode (and so FastAPI)
reads them where msgspec is stricter: ``"01"``/``"+1"``/``" 1 "`` as integers, ``yes``/``on``/...
as booleans, and bounds reported as they were declared. Slow path only, except ``normalize_bool``."""

from __future__ import annotations

import re
import typing
from typing import Any

import msgspec

from ._analysis import ScalarSpec
from ._types import strip_optional
from ._validation import ErrorEntry

__all__ = ["is_bool", "lenient_ints", "normalize_bool", "restore_bound"]


def restore_bound(entry: ErrorEntry, spec: ScalarSpec) -> ErrorEntry:
    """msgspec turns ``gt=0`` on an int into ``ge=1``; report the bound as it was declared."""
    declared = spec.marker.meta_kwargs
    if entry["type"] == "greater_than_equal" and "gt" in declared and "ge" not in declared:
        entry["type"], entry["msg"] = "greater_than", f"Input should be greater than {declared['gt']}"
        entry["ctx"] = {"gt": declared["gt"]}
    elif entry["type"] == "less_than_equal" and "lt" in declared and "le" not in declared:
        entry["type"], entry["msg"] = "less_than", f"Input should be less than {declared['lt']}"
        entry["ctx"] = {"lt": declared["lt"]}
    return entry


_INT_TEXT = re.compile(r"[ \t]*[+-]?[0-9]+[ \t]*", re.ASCII)  # ASCII digits only, as pydantic


def lenient_ints(value: Any, annotation: Any) -> Any:
    """``"01"``, ``"+1"``, ``" 1 "`` as integers, as pydantic's lax mode reads them (msgspec does not);
    ``None`` when that does not make ``value`` valid. Slow path only."""
    texts = value if isinstance(value, list) else [value]
    lax = [isinstance(t, str) and _INT_TEXT.fullmatch(t) is not None for t in texts]
    if not any(lax):
        return None
    try:
        # Only the lax texts: the others ("1e3") stay for msgspec, so a list may mix both.
        # int() refuses some texts the regex lets through: "\x1c5" (\s matches U+001C-U+001F,
        # int() does not strip them) and more than 4300 digits ("0" + "9" * 5000).
        numbers = [int(t) if is_lax else t for t, is_lax in zip(texts, lax, strict=True)]
        return msgspec.convert(numbers if isinstance(value, list) else numbers[0], annotation, strict=False)
    except (ValueError, msgspec.ValidationError):
        return None


_BOOL_WORDS = {
    "yes": "true",
    "y": "true",
    "on": "true",
    "t": "true",
    "no": "false",
    "n": "false",
    "off": "false",
    "f": "false",
}


def normalize_bool(value: Any) -> Any:
    if isinstance(value, list):
        return [_BOOL_WORDS.get(v.lower(), v) for v in value]
    return _BOOL_WORDS.get(value.lower(), value) if isinstance(value, str) else value


def is_bool(annotation: Any) -> bool:
    bare = strip_optional(annotation)
    if typing.get_origin(bare) in (list, set, frozenset, tuple):
        args = typing.get_args(bare)
        bare = strip_optional(args[0]) if args else None
    return bare is bool
