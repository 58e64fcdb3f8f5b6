"""How an endpoint turns a handler's result into a response: the response model, class and status.

Built once per route (``Responder``); ``Responder.build`` is on the hot path.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any

import msgspec
from starlette.background import BackgroundTasks
from starlette.responses import Response

from ._analysis import describe, undecodable_types
from .exceptions import ResponseValidationError, RouteConfigError
from .responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    json_encoder,
    json_response,
    raw_response,
)

__all__ = ["INFER", "Responder", "extra_headers", "response_model_of"]

_NO_BODY_STATUSES = frozenset({204, 304})


class _Unset:
    pass


INFER: Any = _Unset()  # response_model not given: use the return annotation


def response_model_of(declared: Any, endpoint: Callable[..., Any]) -> Any:
    """The type the return value is validated against (``declared``, else the return
    annotation), or ``None`` for no validation."""
    if declared is not INFER:
        return declared
    try:
        hints = typing.get_type_hints(endpoint, include_extras=True)
    except (NameError, TypeError) as exc:
        raise RouteConfigError(f"{describe(endpoint)}: cannot resolve the return annotation: {exc}") from exc
    annotation = hints.get("return")
    if annotation is None or annotation is type(None) or annotation is Any:
        return None
    bare = typing.get_origin(annotation) or annotation
    if isinstance(bare, type) and issubclass(bare, Response):
        return None
    if bare in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        responses = [a for a in members if isinstance(a, type) and issubclass(a, Response)]
        if responses and len(responses) == len(members):
            return None
        if responses:
            # A model or a Response: no single model to check a result against. Checking
            # nothing would let a returned row through unfiltered, so ask (as FastAPI does).
            raise RouteConfigError(
                f"{describe(endpoint)}: the return annotation {annotation!r} mixes a response class "
                "with a model; pass response_model=<the model> (results that are a Response pass "
                "through) or response_model=None (no checking)"
            )
    return annotation


class Responder:
    """The response side of one route, prepared at registration."""

    def __init__(self, model: Any, response_class: type[Response], status_code: int, owner: str) -> None:
        self.owner = owner
        self.model = model
        self.status_code = status_code
        self.response_class = response_class
        # Only the exact class: a subclass may override media_type or render().
        self.json_fast = response_class is JSONResponse
        # Starlette's text classes: a str result is encoded here with a precomputed header.
        self.text_content_type: tuple[bytes, bytes] | None = None
        if response_class in (PlainTextResponse, HTMLResponse):
            media = f"{response_class.media_type}; charset={response_class.charset}"
            self.text_content_type = (b"content-type", media.encode("latin-1"))
        if model is not None:
            try:
                msgspec.inspect.type_info(model)
            except (TypeError, ValueError) as exc:
                raise RouteConfigError(f"{owner}: response model {model!r} is not supported: {exc}") from exc
            custom = undecodable_types(model)
            if custom:
                raise RouteConfigError(
                    f"{owner}: the response model holds {', '.join(custom)}, which msgspec cannot check: "
                    "make it a msgspec.Struct (or a dataclass / TypedDict), or pass response_model=None"
                )
        # Lax, as FastAPI's output validation is: "1.5" or a Decimal for a float, 3.0 for an int.
        self.response_decoder = msgspec.json.Decoder(model, strict=False) if model is not None else None
        # PERF: only a plain scalar is provably of the declared type by its class alone.
        self.trusted_type = model if model in (str, int, float, bool) else None

    def build(
        self, result: Any, background: BackgroundTasks | None, sub_response: Response | None
    ) -> Response:
        if isinstance(result, Response):
            if background is not None and result.background is None:
                result.background = background
            if sub_response is not None:
                result.raw_headers.extend(extra_headers(sub_response))
            return result
        encoded: bytes | None = None
        if self.response_decoder is not None and type(result) is not self.trusted_type:
            encoded = self._validated(result)
            if not self.json_fast:
                result = self.response_decoder.decode(encoded)
        status = self.status_code
        extra = None
        if sub_response is not None:
            if sub_response.status_code:
                status = sub_response.status_code
            extra = extra_headers(sub_response)
        if self.json_fast:
            if status in _NO_BODY_STATUSES or status < 200:
                body = b""
            else:
                body = encoded if encoded is not None else json_encoder.encode(result)
            return json_response(body, status, extra, background)
        if self.text_content_type is not None and isinstance(result, str):
            body = b"" if status in _NO_BODY_STATUSES or status < 200 else result.encode()
            return raw_response(self.response_class, body, status, self.text_content_type, extra, background)
        if status in _NO_BODY_STATUSES:
            response = Response(status_code=status, background=background)
        else:
            response = self.response_class(result, status_code=status, background=background)
        if extra:
            response.raw_headers.extend(extra)
        return response

    def _validated(self, result: Any) -> bytes:
        """``result`` as the JSON of the response model: every field checked, undeclared ones dropped.

        msgspec does not check a Struct when it is built, and ``convert`` passes an instance of
        the target type through unchecked, so a returned model (or one nested in a dict) could
        carry a wrong type or an undeclared field (``{"password_hash": ...}`` in a list of
        ``UserOut``). Its JSON is decoded as the model and encoded again instead.
        """
        assert self.response_decoder is not None
        try:
            value = self.response_decoder.decode(json_encoder.encode(result))
        except (TypeError, msgspec.ValidationError):
            # An object msgspec cannot encode (an ORM row, a generator), or a Struct of another
            # class with other field names: read the model's fields by attribute instead.
            try:
                loose = msgspec.convert(_loosened(result), self.model, from_attributes=True, strict=False)
                value = self.response_decoder.decode(json_encoder.encode(loose))
            except (msgspec.ValidationError, TypeError) as exc:
                raise ResponseValidationError(str(exc), self.owner) from exc
        return json_encoder.encode(value)


# Read as lists (an ORM row may be iterable too: only these are taken for sequences).
_ITERABLES = (
    list,
    tuple,
    set,
    frozenset,
    range,
    collections.abc.Iterator,
    collections.abc.KeysView,
    collections.abc.ValuesView,
)


def _loosened(value: Any) -> Any:
    """``value`` with models (Structs, dataclasses; at any depth of lists and dicts) as plain
    attribute objects and iterables as lists, so ``convert`` checks them field by field instead
    of passing an instance of the target class through, and reads them by attribute name."""
    if isinstance(value, msgspec.Struct):
        return types.SimpleNamespace(
            **{name: _loosened(getattr(value, name)) for name in value.__struct_fields__}
        )
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return types.SimpleNamespace(
            **{field.name: _loosened(getattr(value, field.name)) for field in dataclasses.fields(value)}
        )
    if isinstance(value, dict):
        return {key: _loosened(item) for key, item in value.items()}
    if isinstance(value, _ITERABLES):
        return [_loosened(item) for item in value]
    return value


def extra_headers(sub_response: Response) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in sub_response.raw_headers if k not in (b"content-length", b"content-type")]
