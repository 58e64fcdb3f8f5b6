"""The keyword options of route decorators, typed once (``Unpack[RouteKwargs]``), so a misspelt
option (``@app.get("/d", status=201)``) is a type error and IDEs complete the rest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from starlette.responses import Response

from .cache import CachePolicy
from .di import Depends

__all__ = ["IncludeKwargs", "RouteKwargs", "WebSocketRouteKwargs"]


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
