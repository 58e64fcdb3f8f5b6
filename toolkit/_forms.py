"""Form fields and uploaded files of an endpoint (urlencoded or multipart, via python-multipart)."""

from __future__ import annotations

import importlib.util
import typing
from typing import Any

import msgspec
from starlette.datastructures import FormData, UploadFile

from ._analysis import FormSpec
from ._error_walk import collect_errors
from ._types import make_struct, strip_optional
from ._validation import ErrorEntry, missing_entry
from .exceptions import RequestValidationError, RouteConfigError
from .params import UNSET

__all__ = ["FormPlan"]


def _lax(value: Any, tp: Any) -> Any:
    """Form values are strings: convert them the way query parameters are."""
    return msgspec.convert(value, tp, strict=False)


class FormPlan:
    """Plain fields converted in one msgspec call; models filled from every field; files checked."""

    def __init__(self, specs: dict[str, FormSpec], owner: str) -> None:
        if importlib.util.find_spec("python_multipart") is None:  # pragma: no cover - environment
            raise RouteConfigError(
                f"{owner}: form and file parameters need python-multipart: pip install 'toolkit[forms]'"
            )
        plain = [s for s in specs.values() if s.file_kind is None and not s.whole_form]
        # Fields named f0, f1...: a key on the wire need not be an identifier (``alias="the-note"``).
        self.field_keys = [(f"f{index}", s.key) for index, s in enumerate(plain)]
        self.fields_type: Any = (
            make_struct(
                "Form",
                [(f"f{index}", s.annotation, s.default) for index, s in enumerate(plain)],
                rename=dict(self.field_keys),
            )
            if plain
            else None
        )
        self.sequences = {
            s.key
            for s in plain
            if typing.get_origin(strip_optional(s.annotation)) in (list, set, frozenset, tuple)
        }
        self.files = [s for s in specs.values() if s.file_kind is not None]
        self.models = [s for s in specs.values() if s.whole_form]

    async def extract(self, form: FormData) -> dict[str, Any]:
        """The value of every form parameter, or ``RequestValidationError`` listing every error."""
        values: dict[str, Any] = {}
        errors: list[ErrorEntry] = []
        raw = {
            key: (form.getlist(key) if key in self.sequences else value)
            for key, value in form.multi_items()
            if not isinstance(value, UploadFile)
        }
        if self.fields_type is not None:
            try:
                converted = _lax(raw, self.fields_type)
                values.update({key: getattr(converted, field) for field, key in self.field_keys})
            except msgspec.ValidationError:
                errors.extend(collect_errors(raw, self.fields_type, ("body",), _lax))
        for spec in self.models:
            try:
                values[spec.key] = _lax(raw, spec.annotation)
            except msgspec.ValidationError:
                errors.extend(collect_errors(raw, spec.annotation, ("body",), _lax))
        for spec in self.files:
            uploads = [v for v in form.getlist(spec.key) if isinstance(v, UploadFile)]
            if not uploads:
                if spec.default is UNSET:
                    errors.append(missing_entry(("body", spec.key)))
                else:
                    values[spec.key] = spec.default
            elif spec.file_kind == "upload":
                values[spec.key] = uploads[0]
            elif spec.file_kind == "uploads":
                values[spec.key] = uploads
            elif spec.file_kind == "bytes":
                values[spec.key] = await uploads[0].read()
            else:
                values[spec.key] = [await upload.read() for upload in uploads]
        if errors:
            raise RequestValidationError(errors)
        return values
