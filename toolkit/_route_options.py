"""What a route is declared with: ``RouteOptions`` (one record per route, kept by routers and
compiled by the App), and the keyword options of the decorators, typed once
(``Unpack[RouteKwargs]``) so a misspelt option (``@app.get("/d", status=201)``) is a type error and
IDEs complete the rest."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypedDict

from starlette.responses import Response

from ._responder import INFER
from .cache import CachePolicy
from .di import Depends
from .responses import JSONResponse

__all__ = ["IncludeKwargs", "RouteKwargs", "RouteOptions", "WebSocketRouteKwargs"]


@dataclasses.dataclass(slots=True)
class RouteOptions:
    """What a route was declared with (kept for OpenAPI and for re-compiling under a prefix)."""

    path: str
    endpoint: Callable[..., Any]
    methods: frozenset[str]
    name: str
    status_code: int | None = None
    response_model: Any = INFER
    response_class: type[Response] = JSONResponse
    tags: list[str] = dataclasses.field(default_factory=list)
    dependencies: list[Depends] = dataclasses.field(default_factory=list)
    summary: str | None = None
    description: str | None = None
    deprecated: bool | None = None
    include_in_schema: bool = True
    operation_id: str | None = None
    responses: dict[int | str, Any] = dataclasses.field(default_factory=dict)
    response_description: str = "Successful Response"
    max_body_size: int | None = None
    is_websocket: bool = False
    cache: CachePolicy | int | None = None
    # How the result is written (FastAPI's response_model_* options).
    response_model_include: set[str] | None = None
    response_model_exclude: set[str] | None = None
    response_model_by_alias: bool = True
    response_model_exclude_unset: bool = False
    response_model_exclude_defaults: bool = False
    response_model_exclude_none: bool = False
    openapi_extra: dict[str, Any] | None = None
    strict: bool | None = None  # None: the app's choice (lax, as FastAPI, unless App(strict=True))


class RouteKwargs(TypedDict, total=False):
    """What ``add_api_route`` and the ``get``/``post``/... decorators accept besides the path."""

    name: str | None
    status_code: int | None
    response_model: Any
    response_class: type[Response] | None
    tags: Sequence[str] | None
    dependencies: Sequence[Depends] | None
    summary: str | None
    description: str | None
    deprecated: bool | None
    include_in_schema: bool
    operation_id: str | None
    responses: Mapping[int | str, Any] | None
    response_description: str
    max_body_size: int | None
    cache: CachePolicy | int | None
    response_model_include: set[str] | None
    response_model_exclude: set[str] | None
    response_model_by_alias: bool
    response_model_exclude_unset: bool
    response_model_exclude_defaults: bool
    response_model_exclude_none: bool
    openapi_extra: dict[str, Any] | None
    strict: bool | None


class WebSocketRouteKwargs(TypedDict, total=False):
    """What ``add_websocket_route`` and ``websocket`` accept besides the path."""

    name: str | None
    dependencies: Sequence[Depends] | None


class IncludeKwargs(TypedDict, total=False):
    """What ``include_router`` accepts besides the router."""

    prefix: str
    tags: Sequence[str] | None
    dependencies: Sequence[Depends] | None
    responses: Mapping[int | str, Any] | None
    deprecated: bool | None
    include_in_schema: bool
