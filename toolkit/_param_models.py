"""Parameter models (``filters: Annotated[FilterParams, Query()]``) at request time: the keys a
model reads, gathered from the query string, the headers or the cookies into the dict msgspec
validates it from (``forbid_unknown_fields`` sees the keys no parameter of the route reads)."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any
from urllib.parse import unquote_plus

import msgspec

from ._analysis import ScalarSpec
from ._body import request_cookies
from ._lax import is_bool, normalize_bool

__all__ = ["ModelParam", "lax_convert"]


def lax_convert(value: Any, tp: Any) -> Any:
    return msgspec.convert(value, tp, strict=False)


class ModelParam:
    """A parameter model's source keys, gathered into the dict msgspec validates it from."""

    __slots__ = ("bools", "claimed", "field", "forbid", "keys", "source")

    def __init__(self, spec: ScalarSpec, field: str, claimed: set[str]) -> None:
        self.source = spec.source
        self.field = field  # in the params Struct
        self.keys = {sub.key: (sub.name, sub.is_sequence) for sub in spec.model_fields}
        self.bools = tuple(sub.name for sub in spec.model_fields if is_bool(sub.annotation))
        self.forbid = spec.forbid_unknown
        # Keys other parameters of the route read are theirs, not unknown fields of the model
        # (FastAPI reports them as unknown too: a route could not have both).
        self.claimed = claimed

    def gather(self, scope: MutableMapping[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        keys = self.keys
        for key, value in self._pairs(scope):
            hit = keys.get(key)
            if hit is None:
                if self.forbid and key not in self.claimed:
                    values[key] = value  # refused by the model, as unknown
                continue
            name, is_sequence = hit
            if is_sequence:
                values.setdefault(name, []).append(value)
            elif self.source != "header" or name not in values:
                values[name] = value  # a query key's last value, a header's first line (as Starlette)
        for name in self.bools:
            if name in values:
                values[name] = normalize_bool(values[name])
        return values

    def _pairs(self, scope: MutableMapping[str, Any]) -> list[tuple[str, str]]:
        if self.source == "query":
            query_string = scope["query_string"].decode("latin-1")
            return [
                (unquote_plus(key), unquote_plus(value))
                for key, _, value in (pair.partition("=") for pair in query_string.split("&") if pair)
            ]
        if self.source == "header":
            return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]]
        return list(request_cookies(scope).items())
