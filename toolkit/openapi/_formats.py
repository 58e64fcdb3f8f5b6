"""What pydantic says of a type that msgspec's JSON Schema leaves unsaid.

msgspec writes ``{"type": "string"}`` for a ``datetime`` or ``time`` that may be naive (RFC 3339's
``date-time`` requires an offset), and an untyped ``enum`` for a ``Literal``. Pydantic (so FastAPI)
says ``"format": "date-time"`` / ``"time"`` and ``"type": "string"``, which client generators
read to make datetime and enum types; a ported app keeps them. Each schema is refined along the
``msgspec.inspect`` description of the type it was rendered from (in place: msgspec's output is
fresh).
"""

from __future__ import annotations

from typing import Any

import msgspec.inspect as mi

__all__ = ["enum_type", "refine", "refine_component"]

_FORMATS = ((mi.DateTimeType, "date-time"), (mi.TimeType, "time"))
_MODELS = (mi.StructType, mi.TypedDictType, mi.DataclassType)
_MAPPINGS = tuple(t for t in (mi.DictType, getattr(mi, "FrozenDictType", None)) if t is not None)


def enum_type(values: Any) -> str | None:
    """The JSON type all of ``values`` share (``string``/``integer``), if they share one."""
    if not isinstance(values, list | tuple) or not values:
        return None
    if all(isinstance(v, str) for v in values):
        return "string"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "integer"
    return None


def refine(info: Any, schema: Any) -> None:
    """Add to ``schema`` (rendered from ``info``) the formats and types pydantic would give."""
    if not isinstance(schema, dict):
        return
    while isinstance(info, mi.Metadata):  # Meta()'s keys are merged into the same schema
        info = info.type
    for kind, format_ in _FORMATS:
        if isinstance(info, kind):
            if schema.get("type") == "string":
                schema.setdefault("format", format_)
            return
    if isinstance(info, mi.LiteralType):
        type_ = enum_type(schema.get("enum"))
        if type_ is not None:
            schema.setdefault("type", type_)
    elif isinstance(info, mi.CollectionType):
        refine(info.item_type, schema.get("items"))
    elif isinstance(info, mi.TupleType):
        for item, item_schema in zip(info.item_types, schema.get("prefixItems") or (), strict=False):
            refine(item, item_schema)
    elif isinstance(info, _MAPPINGS):
        refine(info.value_type, schema.get("additionalProperties"))
    elif isinstance(info, mi.UnionType):
        _refine_union(info, schema.get("anyOf"))


def _refine_union(info: Any, members: Any) -> None:
    """A union's members are rendered as ``anyOf`` entries; msgspec allows one member of each JSON
    type (one str-like, one array...), so the entry of a member is the one of its JSON type."""
    if not isinstance(members, list):
        return
    for member in info.types:
        kind = _member_kind(member)
        found = [entry for entry in members if isinstance(entry, dict) and _entry_kind(entry) == kind]
        if kind is not None and len(found) == 1:
            refine(member, found[0])


def _member_kind(info: Any) -> str | None:
    while isinstance(info, mi.Metadata):
        info = info.type
    if isinstance(info, mi.DateTimeType | mi.TimeType):
        return "string"
    if isinstance(info, mi.LiteralType):
        return "enum"
    if isinstance(info, mi.CollectionType | mi.TupleType):
        return "array"
    if isinstance(info, _MAPPINGS):
        return "map"
    return None


def _entry_kind(schema: dict[str, Any]) -> str | None:
    if "enum" in schema:
        return "enum"
    if schema.get("type") == "object" and "additionalProperties" in schema:
        return "map"
    type_ = schema.get("type")
    return type_ if type_ in ("string", "array") else None


def refine_component(info: Any, schema: dict[str, Any]) -> None:
    """Refine a model's component: each field's property (a model elsewhere is only a ``$ref``)."""
    if isinstance(info, _MODELS):
        properties = schema.get("properties")
        if isinstance(properties, dict):
            for field in info.fields:
                refine(field.type, properties.get(field.encode_name))
    elif isinstance(info, mi.NamedTupleType):
        for field, item_schema in zip(info.fields, schema.get("prefixItems") or (), strict=False):
            refine(field.type, item_schema)
