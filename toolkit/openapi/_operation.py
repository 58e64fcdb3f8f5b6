"""One operation of the document: its parameters, request body, responses and security.

Rendered as FastAPI renders it (``fastapi/openapi/utils.py``), from what registration compiled:
the endpoint's plan, its response model and its route options.
"""

from __future__ import annotations

import contextlib
import copy
import http.client
import inspect
import re
import typing
from typing import Any, Protocol

import msgspec
from starlette.responses import JSONResponse as StarletteJSONResponse
from starlette.responses import Response

from .._analysis import FormSpec, ScalarSpec
from .._route_options import RouteOptions
from ..params import UNSET
from ..responses import EventSourceResponse
from ..responses import JSONResponse as ToolkitJSONResponse
from ._style import OPERATION_KEYS, deep_update, ordered, titled, unshared

__all__ = ["Operation", "RouteLike", "path_format"]

REF = "#/components/schemas/{name}"
_PARAM_IN_TEMPLATE = re.compile(r"\{([^}:]+)(:[^}]*)?\}")
_SOURCES = ("path", "query", "header", "cookie")  # FastAPI lists parameters in this order
# FastAPI's descriptions of the response code ranges.
_RANGES = {
    "1XX": "Information",
    "2XX": "Success",
    "3XX": "Redirection",
    "4XX": "Client Error",
    "5XX": "Server Error",
    "DEFAULT": "Default Response",
}
_VALIDATION_RESPONSE = {
    "description": "Validation Error",
    "content": {"application/json": {"schema": {"$ref": REF.format(name="HTTPValidationError")}}},
}
_BINARY = {"type": "string", "format": "binary", "contentMediaType": "application/octet-stream"}


class RouteLike(Protocol):
    """What an operation is built from: an ``Endpoint`` (or a route compiled for ``get_openapi``)."""

    options: RouteOptions
    response_model: Any
    status_code: int

    @property
    def base_plan(self) -> Any: ...


class Schemas(Protocol):
    def add(self, tp: Any) -> int: ...


def path_format(template: str) -> str:
    """``/items/{item_id:int}`` -> ``/items/{item_id}``."""
    return _PARAM_IN_TEMPLATE.sub(lambda m: "{" + m[1] + "}", template)


def unique_id(options: RouteOptions) -> str:
    """FastAPI's ``generate_unique_id``: the default operation id, and what inline schemas are named after."""
    return (
        re.sub(r"\W", "_", f"{options.name}{path_format(options.path)}") + f"_{min(options.methods).lower()}"
    )


def _builtins(value: Any) -> Any:
    """``value`` as JSON-able data (examples, defaults); as given when msgspec cannot convert it."""
    try:
        return msgspec.to_builtins(value)
    except TypeError:
        return copy.deepcopy(value)


def _is_json(cls: type[Response]) -> bool:
    return issubclass(cls, (ToolkitJSONResponse, StarletteJSONResponse))


def _body_allowed(status: int) -> bool:
    return status >= 200 and status not in (204, 205, 304)


class Operation:
    """One (path, method) operation; schemas are placeholders into the rendered schema list."""

    def __init__(self, endpoint: RouteLike, method: str, schemas: Schemas) -> None:
        self.endpoint = endpoint
        self.options = options = endpoint.options
        self.method = method
        self.unique_id = unique_id(options)
        plan = endpoint.base_plan
        specs = [spec for spec in plan.scalar_specs() if spec.marker.include_in_schema]
        specs.sort(key=lambda spec: _SOURCES.index(spec.source) if spec.source in _SOURCES else len(_SOURCES))
        self.params: list[tuple[ScalarSpec, int]] = [(spec, schemas.add(spec.annotation)) for spec in specs]
        self.body: int | None = schemas.add(plan.body_type) if plan.has_body else None
        self.body_required: bool = plan.body_required
        self.body_markers = [spec.marker for spec, _ in plan.body_specs] if plan.has_body else []
        self.body_single = plan.has_body and not plan.body_embedded
        self.body_key = plan.body_specs[0][0].key if self.body_single else ""
        self.body_default = plan.body_specs[0][0].default if self.body_single else UNSET
        self.body_name: str = plan.body_name
        self.forms: list[tuple[FormSpec, int | None]] = [
            (spec, None if spec.file_kind is not None else schemas.add(spec.annotation))
            for spec in plan.form_specs()
            if spec.marker.include_in_schema
        ]
        # A parameter left out of the schema still fails validation with a 422.
        self.validates: bool = plan.validates
        # A handler that yields streams its items (JSON Lines, events, or chunks as they are).
        self.streams = bool(getattr(plan, "streams", False))
        model = None if self.streams else endpoint.response_model
        self.response: int | None = schemas.add(model) if model is not None else None
        self.extra_responses: list[tuple[int | str, dict[str, Any], int | None]] = []
        for code, spec in options.responses.items():
            spec = dict(spec)
            extra_model = spec.pop("model", None)
            index = schemas.add(extra_model) if extra_model is not None else None
            self.extra_responses.append((code, spec, index))
        # Each scheme once, with the union of the scopes asked for it on the way (FastAPI's merge).
        self.security: dict[str, tuple[dict[str, Any], list[str]]] = {}
        for step in plan.steps:
            scheme = getattr(step.call, "openapi_security", None)
            if not isinstance(scheme, tuple):  # none, or a class's property (Depends(SomeScheme))
                continue
            name, definition = scheme
            scopes = self.security.setdefault(name, (definition, []))[1]
            for scope in getattr(step, "security_scopes", ()):
                if scope not in scopes:
                    scopes.append(scope)

    # --- the operation object ----------------------------------------------------------------

    def render(self, schemas: list[dict[str, Any]]) -> dict[str, Any]:
        options = self.options
        operation: dict[str, Any] = {}
        if options.tags:
            operation["tags"] = list(dict.fromkeys(options.tags))  # a router's and its include's
        operation["summary"] = options.summary or options.name.replace("_", " ").title()
        doc = inspect.getdoc(options.endpoint)
        description = options.description or (doc.split("\f")[0] if doc else None)
        if description:
            operation["description"] = description
        operation["operationId"] = self._operation_id()
        if options.deprecated:
            operation["deprecated"] = True
        if self.security:
            operation["security"] = [{name: list(scopes)} for name, (_, scopes) in self.security.items()]
        parameters = [self._parameter(spec, schemas[index]) for spec, index in self.params]
        if parameters:
            operation["parameters"] = parameters
        body = self._request_body(schemas)
        if body is not None:
            operation["requestBody"] = body
        operation["responses"] = self._responses(schemas)
        extra = getattr(options, "openapi_extra", None)
        if extra:
            operation = unshared(operation)  # its schemas are shared with other operations
            deep_update(operation, extra)
        return ordered(operation, OPERATION_KEYS)

    def _operation_id(self) -> str:
        options = self.options
        if options.operation_id:
            return options.operation_id
        return re.sub(r"\W", "_", f"{options.name}{path_format(options.path)}") + f"_{self.method.lower()}"

    @staticmethod
    def _parameter(spec: ScalarSpec, schema: dict[str, Any]) -> dict[str, Any]:
        marker = spec.marker
        if spec.default is not UNSET and spec.default is not None and "default" not in schema:
            with contextlib.suppress(TypeError):
                schema = {**schema, "default": msgspec.to_builtins(spec.default)}
        parameter: dict[str, Any] = {
            "name": spec.key,
            "in": spec.source,
            "required": spec.source == "path" or spec.default is UNSET,
            "schema": titled(schema, spec.key),
        }
        if marker.description:
            parameter["description"] = marker.description
        named_examples = getattr(marker, "openapi_examples", None)
        if named_examples:
            parameter["examples"] = _builtins(named_examples)
        elif marker.examples:  # also in the schema; listed here for the docs' example picker
            parameter["examples"] = {str(i): {"value": v} for i, v in enumerate(marker.examples)}
        if marker.deprecated:
            parameter["deprecated"] = True
        return parameter

    # --- the request body --------------------------------------------------------------------

    def _request_body(self, schemas: list[dict[str, Any]]) -> dict[str, Any] | None:
        if self.body is not None:
            schema = schemas[self.body]
            media_types = {getattr(m, "media_type", "application/json") for m in self.body_markers}
            media = media_types.pop() if len(media_types) == 1 else "application/json"
            content: dict[str, Any] = {"schema": schema}
            if self.body_single:  # several bodies make one model, with no examples of its own
                if (
                    self.body_default is not UNSET
                    and self.body_default is not None
                    and "default" not in schema
                ):
                    with contextlib.suppress(TypeError):
                        schema = {**schema, "default": msgspec.to_builtins(self.body_default)}
                content["schema"] = titled(schema, self.body_key)
                named_examples = getattr(self.body_markers[0], "openapi_examples", None)
                if named_examples:
                    content["examples"] = _builtins(named_examples)
            return self._with_required({"content": {media: content}}, self.body_required)
        if not self.forms:
            return None
        model = next(((spec, index) for spec, index in self.forms if spec.whole_form), None)
        if model is not None:  # a model filled from every field is the form's schema
            spec, index = model
            assert index is not None
            content = {"schema": schemas[index]}
            named_examples = getattr(spec.marker, "openapi_examples", None)
            if named_examples:
                content["examples"] = _builtins(named_examples)
            body = {"content": {self._form_media_type(): content}}
            return self._with_required(body, spec.default is UNSET)
        body = {"content": {self._form_media_type(): {"schema": {"$ref": REF.format(name=self.body_name)}}}}
        return self._with_required(body, any(spec.default is UNSET for spec, _ in self.forms))

    @staticmethod
    def _with_required(body: dict[str, Any], required: bool) -> dict[str, Any]:
        if required:  # FastAPI says nothing of a body that may be left out
            body["required"] = True
        return body

    def _form_media_type(self) -> str:
        if any(spec.file_kind is not None for spec, _ in self.forms):
            return "multipart/form-data"
        media_types = {spec.marker.media_type for spec, _ in self.forms}
        if "multipart/form-data" in media_types:
            return "multipart/form-data"
        return media_types.pop() if len(media_types) == 1 else "application/x-www-form-urlencoded"

    def form_component(self, schemas: list[dict[str, Any]]) -> tuple[str, dict[str, Any]] | None:
        """``Body_<operation>``: the form fields as one object, FastAPI's component of a form body."""
        if not self.forms or any(spec.whole_form for spec, _ in self.forms):
            return None
        properties: dict[str, Any] = {}
        required: list[str] = []
        for spec, index in self.forms:
            if index is None:
                many = spec.file_kind in ("uploads", "bytes_list")
                prop = {"type": "array", "items": dict(_BINARY)} if many else dict(_BINARY)
            else:
                prop = schemas[index]
            if spec.marker.title and "title" not in prop:
                prop = {**prop, "title": spec.marker.title}
            if spec.default is not UNSET and spec.default is not None and "default" not in prop:
                with contextlib.suppress(TypeError):
                    prop = {**prop, "default": msgspec.to_builtins(spec.default)}
            properties[spec.key] = titled(prop, spec.key)
            if spec.default is UNSET:
                required.append(spec.key)
        component: dict[str, Any] = {"properties": properties, "type": "object"}
        if required:
            component["required"] = required
        component["title"] = self.body_name
        return self.body_name, component

    # --- responses ---------------------------------------------------------------------------

    def _success_content(self, schemas: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The success response's content: the model's schema under a JSON class's media type, a
        string under another class's; none when the media type is only known when sending (files)."""
        options = self.options
        cls = options.response_class
        if self.streams:
            # FastAPI 0.165 describes the items with OpenAPI 3.2's ``itemSchema``, which 3.1 refuses:
            # the stream is documented as what it is on the wire, a string of that media type.
            if issubclass(cls, EventSourceResponse):
                return {"text/event-stream": {"schema": {"type": "string"}}}
            if _is_json(cls):
                return {"application/jsonl": {"schema": {"type": "string"}}}
            return {cls.media_type: {"schema": {"type": "string"}}} if cls.media_type else None
        try:
            returned = typing.get_type_hints(options.endpoint).get("return")
        except (NameError, TypeError):
            returned = None
        if isinstance(returned, type) and issubclass(returned, Response) and returned is not Response:
            cls = returned  # ``-> EventSourceResponse``: what the handler really sends
        media = cls.media_type
        if media is None:
            return None
        schema: dict[str, Any] = {"type": "string"}
        if _is_json(cls) and not issubclass(cls, EventSourceResponse):
            schema = {}
            if self.response is not None:
                schema = titled(schemas[self.response], "Response_" + self.unique_id)
        return {media: {"schema": schema}}

    def _responses(self, schemas: list[dict[str, Any]]) -> dict[str, Any]:
        options = self.options
        status = self.endpoint.status_code
        success: dict[str, Any] = {"description": options.response_description}
        if _body_allowed(status):
            content = self._success_content(schemas)
            if content is not None:
                success["content"] = content
        responses: dict[str, Any] = {str(status): success}
        for code, spec, index in self.extra_responses:
            key = str(code).upper()
            key = "default" if key == "DEFAULT" else key
            # Merged into what is there (the main response gets more media types, as in FastAPI).
            entry = responses[key] = unshared(responses.get(key, {}))
            extra = copy.deepcopy(spec)
            if index is not None:
                media = options.response_class.media_type or "application/json"
                target = extra.setdefault("content", {}).setdefault(media, {}).setdefault("schema", {})
                deep_update(target, titled(schemas[index], f"Response_{code}_{self.unique_id}"))
            phrase = _RANGES.get(str(code).upper())
            if phrase is None and str(code).isdigit():
                phrase = http.client.responses.get(int(code))
            description = extra.get("description") or entry.get("description") or phrase
            deep_update(entry, extra)
            entry["description"] = description or "Additional Response"
        if self.validates and not any(key in responses for key in ("422", "4XX", "default")):
            responses["422"] = copy.deepcopy(_VALIDATION_RESPONSE)
        return responses
