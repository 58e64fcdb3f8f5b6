"""A route's JSON body: decoded and validated in one msgspec call per request; on failure, every
failing field reported (after the dependencies that do not read the body ran), within bounds."""

from __future__ import annotations

from typing import Any

import msgspec

from ._analysis import BodySpec
from ._error_walk import collect_errors
from ._shaping import fill_defaults, needs_defaults_filled
from ._validation import ErrorEntry, entry_from_exception, json_invalid_entry, missing_entry
from .exceptions import RequestValidationError
from .params import UNSET

__all__ = ["MAX_WALKED_BODY", "JsonBody", "PendingBodyErrors"]

#: A body larger than this that fails validation reports msgspec's first error only (see
#: ``JsonBody.errors``): the every-field walk would decode all of it again, untyped.
MAX_WALKED_BODY = 256 * 1024


class JsonBody:
    """The decoder of one route's body type (lax unless ``strict``), made at registration.

    ``embedded``: several body parameters (or ``Body(embed=True)``) read one JSON object keyed by
    their names (``body_type`` is then the Struct the plan made of them).
    """

    def __init__(
        self, body_type: Any, specs: list[tuple[BodySpec, str]], *, embedded: bool, strict: bool
    ) -> None:
        self.body_type = body_type
        self.embedded = embedded
        self.strict = strict
        self.required_keys = [spec.key for spec, _ in specs if spec.default is UNSET]
        self.required = bool(self.required_keys)
        self.default = None if embedded else specs[0][0].default
        self.decoder = msgspec.json.Decoder(body_type, strict=strict)
        # Dataclasses with plain defaults: msgspec leaves the fields a body did not send unset.
        self.fills_defaults = needs_defaults_filled(body_type)

    def decode(self, raw: bytes) -> Any:
        """Decode and validate the JSON body; raise ``RequestValidationError`` (``PendingBodyErrors``
        when the body parsed but does not fit: the endpoint completes it after the gates ran)."""
        if not raw:
            if self.required:
                if self.embedded:
                    raise RequestValidationError([missing_entry(("body", key)) for key in self.required_keys])
                raise RequestValidationError([missing_entry(("body",))])
            if not self.embedded:
                return self.default
            value = self.decoder.decode(b"{}")
            return fill_defaults(value) if self.fills_defaults else value
        try:
            value = self.decoder.decode(raw)
        except msgspec.ValidationError as exc:
            # The walk for every failing field waits until the dependencies that do not read
            # the body (authentication) have run: an anonymous request buys only the decode.
            raise PendingBodyErrors(self, raw, exc) from None
        except msgspec.DecodeError as exc:
            raise RequestValidationError([json_invalid_entry(str(exc), len(raw))]) from None
        except UnicodeDecodeError:
            raise RequestValidationError([json_invalid_entry("Invalid UTF-8 in JSON string")]) from None
        except RecursionError:
            raise RequestValidationError([json_invalid_entry("JSON is nested too deeply")]) from None
        return fill_defaults(value) if self.fills_defaults else value

    def errors(self, raw: bytes, first: msgspec.ValidationError | None = None) -> list[ErrorEntry]:
        """Every failing field of a body that failed validation with ``first``.

        The walk needs the body decoded without its type (every value, undeclared ones too):
        over ``MAX_WALKED_BODY`` bytes that alone could cost a hostile client's worth of time and
        memory, so such a body reports msgspec's first error and a marker saying so."""
        if first is not None and len(raw) > MAX_WALKED_BODY:
            return [
                entry_from_exception(first, ("body",), None),
                {
                    "type": "too_many_errors",
                    "loc": ["body"],
                    "msg": f"Only the first error is reported for a body over {MAX_WALKED_BODY} bytes",
                    "input": None,
                    "ctx": {"max_body_walked": MAX_WALKED_BODY},
                },
            ]
        try:
            value = msgspec.json.decode(raw)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
            return [json_invalid_entry(str(exc), len(raw))]

        strict = self.strict

        def convert(v: Any, t: Any) -> Any:
            # JSON object keys are strings: ``dict[int, X]`` reads "1" as the decoder does.
            return msgspec.convert(v, t, str_keys=True, strict=strict)

        return collect_errors(value, self.body_type, ("body",), convert)


class PendingBodyErrors(RequestValidationError):
    """The body failed validation; its one entry (``loc: ["body"]``) stands for all of them until
    ``complete()`` walks the body for every failing field."""

    def __init__(self, body: JsonBody, raw: bytes, first: msgspec.ValidationError) -> None:
        super().__init__([{"type": "pending", "loc": ["body"], "msg": "", "input": None}])
        self.json_body = body
        self.raw = raw
        self.first = first

    def complete(self, errors: list[ErrorEntry]) -> list[ErrorEntry]:
        """``errors`` with this placeholder replaced by the body's own errors."""
        placeholder = self.errors()[0]
        found = self.json_body.errors(self.raw, self.first)
        return [entry for error in errors for entry in (found if error is placeholder else [error])]
