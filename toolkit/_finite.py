"""NaN and infinities are refused where lax readings would let them in.

msgspec's lax mode (the default for bodies, always for parameters) reads the strings ``"nan"``,
``"inf"`` and ``"infinity"`` (any case, ``-`` allowed) as floats. A non-finite float cannot be
written back as JSON (it becomes ``null``), so a returned model holding one failed its response
check: one request, one 500. They are refused as input instead, as pydantic's
``allow_inf_nan=False`` does: a 422 ``finite_number`` at each place one was sent.

Checked only where it can happen: parameters typed with a float, and bodies whose type holds a
float and whose raw bytes contain such a string (one C-level regex search).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable
from typing import Any

import msgspec

from ._analysis import type_nodes
from ._validation import ErrorEntry, Loc

__all__ = ["NON_FINITE_JSON", "holds_floats", "non_finite_entries"]

#: A JSON string a lax float reading turns into NaN or an infinity.
NON_FINITE_JSON = re.compile(rb'"-?(?:nan|inf(?:inity)?)"', re.IGNORECASE)

#: Values one walk looks at, at most: past it the input is refused whole (a hostile body of a
#: million items must not buy a second of CPU).
MAX_VISITED = 100_000


def holds_floats(tp: Any) -> bool:
    """Whether a value of type ``tp`` can hold a float (a lax reading may make it non-finite)."""
    return any(isinstance(node, msgspec.inspect.FloatType) for node in type_nodes(tp))


def non_finite_entries(value: Any, loc: Loc) -> list[ErrorEntry]:
    """A ``finite_number`` entry for each non-finite float in ``value`` (decoded, typed)."""
    found: list[ErrorEntry] = []
    todo: list[tuple[Any, Loc]] = [(value, loc)]
    visited = 0
    while todo:
        item, where = todo.pop()
        visited += 1
        if visited > MAX_VISITED:
            return [
                _entry(loc, None, "Input should hold finite numbers only (NaN and infinities are refused)")
            ]
        if isinstance(item, float):
            if not math.isfinite(item):
                found.append(_entry(where, str(item), "Input should be a finite number"))
        elif isinstance(item, msgspec.Struct):
            todo += [
                (getattr(item, field.name), (*where, field.encode_name))
                for field in msgspec.structs.fields(item)
            ]
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            todo += [(getattr(item, field.name), (*where, field.name)) for field in dataclasses.fields(item)]
        elif isinstance(item, dict):
            todo += [(sub, (*where, key)) for key, sub in item.items()]
        elif isinstance(item, list | tuple | set | frozenset):
            todo += _indexed(item, where)
    found.reverse()  # the order they were sent in
    return found


def _indexed(items: Iterable[Any], where: Loc) -> list[tuple[Any, Loc]]:
    return [(sub, (*where, index)) for index, sub in enumerate(items)]


def _entry(loc: Loc, value: str | None, message: str) -> ErrorEntry:
    return {"type": "finite_number", "loc": list(loc), "msg": message, "input": value}
