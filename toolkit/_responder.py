"""How an endpoint turns a handler's result into a response: the response model, class and status.

Built once per route (``Responder``); ``Responder.build`` is on the hot path. What a route asks
beyond a plain model check (the ``response_model_*`` options, a handler that yields, dataclasses
msgspec would write without their defaults) is chosen here once, at registration, so routes that
do not ask pay nothing: the options and the defaults are ``_shaping``'s, the streams
``_streaming``'s.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

import msgspec
from starlette.background import BackgroundTasks
from starlette.responses import JSONResponse as StarletteJSONResponse
from starlette.responses import Response

from ._analysis import describe
from ._shaping import ALL_SET, fill_defaults, needs_defaults_filled, shaper
from ._streaming import StreamBuilder, item_model, stream_kind
from ._types import undecodable_types
from .exceptions import ResponseValidationError, RouteConfigError
from .responses import (
    JSON_CONTENT_TYPE,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    json_encoder,
    json_response,
    raw_response,
)

__all__ = ["INFER", "Encoded", "Responder", "default_status", "extra_headers", "response_model_of"]

_NO_BODY_STATUSES = frozenset({204, 304})

Encoded = tuple[int, list[tuple[bytes, bytes]], bytes]  # status, headers, body


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
    """The response side of one route, prepared at registration.

    The ``response_model_*`` options (FastAPI's) shape what the model check lets through:

    - ``include``/``exclude``: top-level field names of the model (attribute names, not the
      ``rename``\\d ones); of each model when the response model is a list of them (FastAPI reads
      the names as list indices there: ``include`` sends ``[]``); keys when it is a dict. Only
      sets of names: pydantic's nested ``{"field": {...}}`` form is refused, and so is a name the
      model has no field of.
    - ``by_alias=False``: fields under their attribute names instead of their ``rename``/``name=``.
    - ``exclude_unset``: what the handler did not set is left out. A returned dict (at any depth)
      sets the keys it has. A Struct records no "fields set": its fields left at ``msgspec.UNSET``
      are the unset ones (never written anyway), so a PATCH model declares
      ``price: float | UnsetType = UNSET``; every other field of a returned Struct or dataclass is
      set (FastAPI, through pydantic, leaves out a model's fields not passed to it).
    - ``exclude_defaults``: fields of Structs and dataclasses equal to their default (a factory's
      made anew), at any depth.
    - ``exclude_none``: fields of Structs and dataclasses that are ``None``, at any depth (a dict's
      ``None`` values stay, as in FastAPI).

    Without a response model they change nothing, as in FastAPI. The output is still the model's:
    checked, undeclared fields dropped.

    A handler that yields (``streams``) sends its items as they come: JSON Lines
    (``application/jsonl``) with a JSON response class, events with ``EventSourceResponse``, its
    str/bytes chunks as they are with any other class. See ``StreamBuilder``.
    """

    def __init__(
        self,
        model: Any,
        response_class: type[Response],
        status_code: int | None,
        owner: str,
        *,
        streams: bool = False,
        include: Iterable[str] | None = None,
        exclude: Iterable[str] | None = None,
        by_alias: bool = True,
        exclude_unset: bool = False,
        exclude_defaults: bool = False,
        exclude_none: bool = False,
    ) -> None:
        self.owner = owner
        # None: the class's own default (200; RedirectResponse's 307, as FastAPI leaves it).
        self.status_code = status_code if status_code is not None else default_status(response_class)
        self.response_class = response_class
        checked = model
        kind = ""
        if streams:
            # Each item is checked (if its kind is JSON), not the generator.
            kind = stream_kind(response_class)
            checked = item_model(model) if kind in ("jsonl", "sse") else None
            model = None
        self.model = model  # what a whole result is checked against (None for a stream)
        # Only the exact class: a subclass may override media_type or render().
        self.json_fast = response_class is JSONResponse
        # Starlette's text classes: a str result is encoded here with a precomputed header.
        self.text_content_type: tuple[bytes, bytes] | None = None
        if response_class in (PlainTextResponse, HTMLResponse):
            media = f"{response_class.media_type}; charset={response_class.charset}"
            self.text_content_type = (b"content-type", media.encode("latin-1"))
        if checked is not None:
            try:
                msgspec.inspect.type_info(checked)
            except (TypeError, ValueError) as exc:
                raise RouteConfigError(
                    f"{owner}: response model {checked!r} is not supported: {exc}"
                ) from exc
            custom = undecodable_types(checked)
            if custom:
                raise RouteConfigError(
                    f"{owner}: the response model holds {', '.join(custom)}, which msgspec cannot check: "
                    "make it a msgspec.Struct (or a dataclass / TypedDict), or pass response_model=None"
                )
        # Lax, as FastAPI's output validation is: "1.5" or a Decimal for a float, 3.0 for an int.
        self.response_decoder = msgspec.json.Decoder(checked, strict=False) if checked is not None else None
        # PERF: only a plain scalar is provably of the declared type by its class alone.
        self.trusted_type = checked if checked in (str, int, float, bool) else None
        # How a result is checked into JSON (``_validated``): plainly, as the options shape it, or
        # with the defaults of dataclasses restored (msgspec decodes those without them).
        self.shaper = shaper(
            checked, owner, include, exclude, by_alias, exclude_unset, exclude_defaults, exclude_none
        )
        # PERF: the plain methods stay class attributes (called without a bound-method object);
        # the others are set on the instance, over them.
        if self.response_decoder is not None:
            if self.shaper is not None:
                self._validated = self._validated_shaped  # type: ignore[method-assign]
            elif needs_defaults_filled(checked):
                self._validated = self._validated_filled  # type: ignore[method-assign]
        # A JSON class that renders with ``json.dumps`` (Starlette's, ``fastapi.responses``'):
        # an unchecked result is handed over as plain data.
        self.jsonable_result = issubclass(response_class, StarletteJSONResponse) and not issubclass(
            response_class, JSONResponse
        )
        self.stream_builder: StreamBuilder | None = None
        if streams:
            check = self._validated if self.response_decoder is not None else None
            self.stream_builder = StreamBuilder(kind, response_class, check, self.trusted_type)
            self.build = self._build_stream  # type: ignore[method-assign]
        # Whether ``encode`` may answer: a JSON or text class sending a body.
        self.direct = (
            not streams
            and (self.json_fast or self.text_content_type is not None)
            and self.status_code >= 200
            and self.status_code not in _NO_BODY_STATUSES
        )

    def encode(self, result: Any, sub_response: Response | None = None) -> Encoded | None:
        """The status, headers and body of ``result``, for the endpoint to send itself, when it is
        plain data for a JSON or text route (the caller checks there are no background tasks);
        ``sub_response`` is an injected ``Response`` (its status and headers). ``None``: ``build``
        makes the response.

        PERF: no ``Response`` object and no call of it: the two ASGI messages are sent directly.
        """
        if not self.direct or isinstance(result, Response):
            return None
        status = self.status_code
        if sub_response is not None and sub_response.status_code:
            status = sub_response.status_code
            if status < 200 or status in _NO_BODY_STATUSES:
                return None
        if self.json_fast:
            if self.response_decoder is not None and type(result) is not self.trusted_type:
                body = self._validated(result)
            else:
                body = json_encoder.encode(result)
            content_type = JSON_CONTENT_TYPE
        elif (
            type(result) is str
            and self.text_content_type is not None
            and (self.response_decoder is None or self.trusted_type is str)
        ):
            body = result.encode()
            content_type = self.text_content_type
        else:
            return None
        headers = [(b"content-length", b"%d" % len(body)), content_type]
        if sub_response is not None:
            headers += extra_headers(sub_response)
        return status, headers, body

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
                # Another class renders it itself: the checked JSON as plain data, as FastAPI
                # hands it over (a NaN written as null stays null; the model is not rebuilt).
                result = _untyped_decoder.decode(encoded)
        elif self.jsonable_result:
            result = msgspec.to_builtins(result)  # Starlette's JSONResponse cannot dump a Struct
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
            value = self._read_by_attribute(result)
        return json_encoder.encode(value)

    def _read_by_attribute(self, result: Any) -> Any:
        """``result`` checked as the model, read by attribute: an object msgspec cannot encode (an
        ORM row, a generator), or a Struct of another class with other field names."""
        assert self.response_decoder is not None
        try:
            model = self.response_decoder.type
            # Checked field by field (no instance of the model passes through ``convert``
            # unchecked: ``_loosened`` took them apart). A NaN or an infinity (a lax float read
            # "nan") is written as ``null``, as FastAPI writes it, not refused as a mismatch.
            return msgspec.convert(_loosened(result), model, from_attributes=True, strict=False)
        except (msgspec.ValidationError, TypeError) as exc:
            raise ResponseValidationError(str(exc), self.owner) from exc

    def _validated_shaped(self, result: Any) -> bytes:
        """``_validated``, written as the ``response_model_*`` options ask."""
        assert self.response_decoder is not None
        assert self.shaper is not None
        raw: Any = ALL_SET
        try:
            encoded = json_encoder.encode(result)
            value = self.response_decoder.decode(encoded)
            if self.shaper.exclude_unset:
                raw = _untyped_decoder.decode(encoded)  # what the handler set
        except (TypeError, msgspec.ValidationError):
            value = self._read_by_attribute(result)
        return json_encoder.encode(self.shaper.shape(value, raw, True))

    def _validated_filled(self, result: Any) -> bytes:
        """``_validated`` for a model holding dataclasses: their defaults written too."""
        assert self.response_decoder is not None
        try:
            value = self.response_decoder.decode(json_encoder.encode(result))
        except (TypeError, msgspec.ValidationError):
            value = self._read_by_attribute(result)
        return json_encoder.encode(fill_defaults(value))

    def _build_stream(
        self, result: Any, background: BackgroundTasks | None, sub_response: Response | None
    ) -> Response:
        """``build`` for a handler that yields (``result`` is its generator): see ``StreamBuilder``."""
        assert self.stream_builder is not None
        status = self.status_code
        headers: list[tuple[bytes, bytes]] = []
        if sub_response is not None:
            if sub_response.status_code:
                status = sub_response.status_code
            headers = extra_headers(sub_response)
        return self.stream_builder.build(result, status, headers, background)


_untyped_decoder = msgspec.json.Decoder()


def default_status(response_class: type[Response]) -> int:
    """The status ``response_class`` sends unless told: 200, or its own (``RedirectResponse``: 307)."""
    try:
        default = inspect.signature(response_class.__init__).parameters["status_code"].default
    except (KeyError, TypeError, ValueError):
        return 200
    if isinstance(default, int) and not isinstance(default, bool) and 100 <= default <= 599:
        return default
    return 200


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
