"""Parameter markers: where a handler argument comes from and how it is constrained.

Use them inside ``Annotated`` (preferred) or as the default value, as in FastAPI::

    async def list_items(limit: Annotated[int, Query(ge=1, le=100)] = 20): ...
    async def read(x_token: str = Header()): ...
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

import msgspec

__all__ = ["Body", "Cookie", "File", "Form", "Header", "Param", "Path", "Query"]


class _Unset:
    _instance: ClassVar[_Unset | None] = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final = _Unset()


class Param:
    """Base marker. ``source`` names the part of the request the value is read from."""

    source: ClassVar[str] = ""

    __slots__ = (
        "alias",
        "default",
        "deprecated",
        "description",
        "examples",
        "include_in_schema",
        "json_schema_extra",
        "meta_kwargs",
        "openapi_examples",
        "title",
    )

    def __init__(
        self,
        default: Any = UNSET,
        *,
        alias: str | None = None,
        title: str | None = None,
        description: str | None = None,
        examples: list[Any] | None = None,
        deprecated: bool | None = None,
        include_in_schema: bool = True,
        gt: int | float | None = None,
        ge: int | float | None = None,
        lt: int | float | None = None,
        le: int | float | None = None,
        multiple_of: int | float | None = None,
        min_length: int | None = None,
        max_length: int | None = None,
        pattern: str | None = None,
        regex: str | None = None,
        example: Any = UNSET,
        openapi_examples: dict[str, dict[str, Any]] | None = None,
        json_schema_extra: dict[str, Any] | None = None,
    ) -> None:
        if default is Ellipsis:  # FastAPI's spelling of "required"
            default = UNSET
        if regex is not None:  # FastAPI's older name of ``pattern``
            if pattern is not None and pattern != regex:
                raise TypeError("pass pattern= or regex= (its older name), not both")
            pattern = regex
        if example is not UNSET:  # FastAPI's deprecated singular form
            examples = [*(examples or []), example]
        self.default = default
        self.alias = alias
        self.title = title
        self.description = description
        self.examples = examples
        self.deprecated = deprecated
        self.include_in_schema = include_in_schema
        # OpenAPI only: named examples ({"name": {"summary", "description", "value"}}) shown by
        # the docs' example picker, and keys merged into the parameter's schema.
        self.openapi_examples = openapi_examples
        self.json_schema_extra = json_schema_extra
        constraints = {
            "gt": gt,
            "ge": ge,
            "lt": lt,
            "le": le,
            "multiple_of": multiple_of,
            "min_length": min_length,
            "max_length": max_length,
            "pattern": pattern,
        }
        self.meta_kwargs = {k: v for k, v in constraints.items() if v is not None}

    def meta(self) -> msgspec.Meta | None:
        """The constraints and docs as a ``msgspec.Meta`` (``None`` when there are none)."""
        kwargs: dict[str, Any] = dict(self.meta_kwargs)
        if self.title is not None:
            kwargs["title"] = self.title
        if self.description is not None:
            kwargs["description"] = self.description
        if self.examples is not None:
            kwargs["examples"] = self.examples
        if self.json_schema_extra:
            kwargs["extra_json_schema"] = self.json_schema_extra
        return msgspec.Meta(**kwargs) if kwargs else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(default={self.default!r}, alias={self.alias!r})"


class Path(Param):
    """A path parameter (``/items/{item_id}``); always required."""

    source = "path"
    __slots__ = ()


class Query(Param):
    """A query-string parameter; lists read repeated keys (``?tag=a&tag=b``)."""

    source = "query"
    __slots__ = ()


class Header(Param):
    """A request header; ``x_token`` reads ``x-token`` unless ``convert_underscores=False``."""

    source = "header"
    __slots__ = ("convert_underscores",)

    def __init__(self, default: Any = UNSET, *, convert_underscores: bool = True, **kwargs: Any) -> None:
        super().__init__(default, **kwargs)
        self.convert_underscores = convert_underscores


class Cookie(Param):
    """A cookie value."""

    source = "cookie"
    __slots__ = ()


class Body(Param):
    """A JSON body value. ``embed=True`` reads it from a key named after the parameter."""

    source = "body"
    __slots__ = ("embed", "media_type")

    def __init__(
        self,
        default: Any = UNSET,
        *,
        embed: bool = False,
        media_type: str = "application/json",
        **kwargs: Any,
    ) -> None:
        super().__init__(default, **kwargs)
        self.embed = embed
        self.media_type = media_type


class Form(Param):
    """A field of a urlencoded or multipart form (needs ``python-multipart``)."""

    source = "form"
    __slots__ = ("media_type",)

    def __init__(
        self, default: Any = UNSET, *, media_type: str = "application/x-www-form-urlencoded", **kwargs: Any
    ) -> None:
        super().__init__(default, **kwargs)
        self.media_type = media_type


class File(Form):
    """An uploaded file of a multipart form, as ``UploadFile`` or ``bytes``."""

    __slots__ = ()

    def __init__(
        self, default: Any = UNSET, *, media_type: str = "multipart/form-data", **kwargs: Any
    ) -> None:
        super().__init__(default, media_type=media_type, **kwargs)
