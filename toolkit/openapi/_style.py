"""What makes the document read like FastAPI's: pydantic's titles, FastAPI's key order and merging.

msgspec's JSON Schemas are correct but plainer than pydantic's: no ``title`` on a field, enums
sorted and untyped. A ported app's docs and generated clients (which name their types after
titles) stay the same when the document matches, so the builder passes its schemas through here.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "VALIDATION_ERROR_SCHEMAS",
    "deep_update",
    "field_title",
    "ordered",
    "style_components",
    "titled",
    "unshared",
]

REF = "#/components/schemas/{name}"

# FastAPI's definitions, verbatim (in the key order its document has them).
VALIDATION_ERROR_SCHEMAS: dict[str, Any] = {
    "ValidationError": {
        "properties": {
            "loc": {
                "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                "type": "array",
                "title": "Location",
            },
            "msg": {"type": "string", "title": "Message"},
            "type": {"type": "string", "title": "Error Type"},
            "input": {"title": "Input"},
            "ctx": {"type": "object", "title": "Context"},
        },
        "type": "object",
        "required": ["loc", "msg", "type"],
        "title": "ValidationError",
    },
    "HTTPValidationError": {
        "properties": {
            "detail": {
                "items": {"$ref": REF.format(name="ValidationError")},
                "type": "array",
                "title": "Detail",
            },
        },
        "type": "object",
        "title": "HTTPValidationError",
    },
}

#: The order of a Schema Object's keys in FastAPI's document (its ``openapi.models.Schema``).
SCHEMA_KEYS = [
    "$schema",
    "$vocabulary",
    "$id",
    "$anchor",
    "$dynamicAnchor",
    "$ref",
    "$dynamicRef",
    "$defs",
    "$comment",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "dependentSchemas",
    "prefixItems",
    "items",
    "contains",
    "properties",
    "patternProperties",
    "additionalProperties",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
    "type",
    "enum",
    "const",
    "multipleOf",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "maxContains",
    "minContains",
    "maxProperties",
    "minProperties",
    "required",
    "dependentRequired",
    "format",
    "contentEncoding",
    "contentMediaType",
    "contentSchema",
    "title",
    "description",
    "default",
    "deprecated",
    "readOnly",
    "writeOnly",
    "examples",
    "discriminator",
    "xml",
    "externalDocs",
    "example",
]
INFO_KEYS = ("title", "summary", "description", "termsOfService", "contact", "license", "version")
DOCUMENT_KEYS = (
    "openapi",
    "info",
    "jsonSchemaDialect",
    "servers",
    "paths",
    "webhooks",
    "components",
    "security",
    "tags",
    "externalDocs",
)
OPERATION_KEYS = (
    "tags",
    "summary",
    "description",
    "externalDocs",
    "operationId",
    "deprecated",
    "security",
    "parameters",
    "requestBody",
    "responses",
    "callbacks",
    "servers",
)
_SCHEMA_RANK = {key: rank for rank, key in enumerate(SCHEMA_KEYS)}
# Keys whose value is a schema, a list of schemas or a map of schemas (others hold plain values).
_ONE = frozenset(
    [
        "not",
        "if",
        "then",
        "else",
        "items",
        "contains",
        "additionalProperties",
        "propertyNames",
        "unevaluatedItems",
        "unevaluatedProperties",
        "contentSchema",
    ]
)
_MANY = frozenset(("allOf", "anyOf", "oneOf", "prefixItems"))
_MAP = frozenset(("$defs", "properties", "patternProperties", "dependentSchemas"))


def field_title(name: str) -> str:
    """pydantic's default title: ``item_id`` -> ``Item Id``, ``x-token`` -> ``X-Token``."""
    return name.title().replace("_", " ")


def titled(schema: dict[str, Any], name: str) -> dict[str, Any]:
    """``schema`` with FastAPI's title for a field named ``name`` (a copy; ``schema`` is shared).

    A reference has its component's title; an explicit title (``Query(title=...)``,
    ``msgspec.Meta(title=...)``) is kept.
    """
    if "$ref" in schema or "title" in schema:
        return schema
    return {**schema, "title": field_title(name)}


def ordered(mapping: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """``mapping`` with ``keys`` first, in that order, then the rest as they were."""
    first = {key: mapping[key] for key in keys if key in mapping}
    return {**first, **{key: value for key, value in mapping.items() if key not in first}}


def unshared(value: Any) -> Any:
    """A copy of a JSON-like value in which no two places share a dict or list (``deepcopy`` keeps
    the sharing: the one schema object of a type used twice would change in both places)."""
    if isinstance(value, dict):
        return {key: unshared(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unshared(item) for item in value]
    return value


def deep_update(target: dict[str, Any], update: Mapping[str, Any]) -> None:
    """FastAPI's ``deep_dict_update``: maps merge key by key, lists are extended, the rest replaced.

    What is taken from ``update`` is copied, so the document never shares a value with it.
    """
    for key, value in update.items():
        current = target.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            deep_update(current, value)
        elif isinstance(current, list) and isinstance(value, list):
            target[key] = current + copy.deepcopy(value)
        else:
            target[key] = copy.deepcopy(value)


def _is_reference(schema: Any) -> bool:
    """A property pydantic leaves untitled: a model or enum, possibly ``| None``."""
    if not isinstance(schema, dict):
        return False
    if "$ref" in schema:
        return True
    members = schema.get("anyOf")
    if not isinstance(members, list) or len(members) != 2 or {"type": "null"} not in members:
        return False
    other = members[0] if members[1] == {"type": "null"} else members[1]
    return isinstance(other, dict) and set(other) == {"$ref"}


def _title_properties(schema: dict[str, Any]) -> None:
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return
    for name, prop in properties.items():
        if isinstance(prop, dict) and "title" not in prop and not _is_reference(prop):
            properties[name] = {**prop, "title": field_title(name)}


def _enum_schema(schema: dict[str, Any], cls: type[enum.Enum]) -> None:
    """Values in declaration order (msgspec sorts them) and their type when they share one."""
    values = [member.value for member in cls]
    if sorted(map(repr, values)) != sorted(map(repr, schema.get("enum", ()))):
        return  # not the plain enum schema msgspec renders: leave it alone
    schema["enum"] = values
    if "type" not in schema:
        if all(isinstance(v, str) for v in values):
            schema["type"] = "string"
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            schema["type"] = "integer"


def order_schema(schema: Any) -> Any:
    """``schema`` (and the schemas in it) with its keys in FastAPI's order and without a ``null``
    default (FastAPI's document has none); values are not copied."""
    if not isinstance(schema, dict):
        return schema
    result: dict[str, Any] = {}
    for key in sorted(schema, key=lambda k: _SCHEMA_RANK.get(k, len(_SCHEMA_RANK))):
        value = schema[key]
        if key == "default" and value is None:
            continue  # FastAPI's document leaves out every null (``exclude_none``)
        if key == "required" and value == []:
            continue  # and pydantic an empty ``required``
        if key in _ONE:
            value = order_schema(value)
        elif key in _MANY and isinstance(value, list):
            value = [order_schema(item) for item in value]
        elif key in _MAP and isinstance(value, dict):
            value = {name: order_schema(item) for name, item in value.items()}
        result[key] = value
    return result


def style_components(components: dict[str, Any], named: Mapping[str, Any]) -> dict[str, Any]:
    """The component schemas as pydantic would render them: titled properties, enums in order,
    keys in FastAPI's order. ``named`` maps component names to the types they were made from."""
    styled: dict[str, Any] = {}
    for name, schema in components.items():  # fresh from msgspec: changed in place
        cls = named.get(name)
        if isinstance(cls, type) and issubclass(cls, enum.Enum):
            _enum_schema(schema, cls)
        _title_properties(schema)
        styled[name] = order_schema(schema)
    return styled
