"""``get_openapi``: the document of a list of routes, for ``app.openapi`` overrides (FastAPI's).

FastAPI's "Extending OpenAPI" recipe works as written::

    from toolkit.openapi.utils import get_openapi

    def custom_openapi():
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title="Shop", version="2.5.0", routes=app.routes)
        schema["info"]["x-logo"] = {"url": "https://example.com/logo.png"}
        app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = custom_openapi  # /openapi.json serves it
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .._analysis import analyze, describe
from .._app_scope import AppScope
from .._plan import Plan
from .._responder import default_status, response_model_of
from .._route_options import RouteOptions
from ._builder import build_document
from ._operation import RouteLike, unique_id

__all__ = ["get_openapi"]

_PATH_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")


class _CompiledRoute:
    """What the document needs of a route declared by ``RouteOptions`` (``app.routes``' items):
    its plan, response model and status code, compiled as the App compiles its endpoints."""

    def __init__(self, options: RouteOptions) -> None:
        path_params = dict.fromkeys(_PATH_PARAM.findall(options.path))
        owner = describe(options.endpoint)
        root = analyze(options.endpoint, path_params, owner=owner)
        self.options = options
        # A throwaway scope: app-scoped dependencies are registered, never created.
        self.base_plan = Plan(
            root,
            options.dependencies,
            owner,
            set(path_params),
            app_scope=AppScope(),
            body_name="Body_" + unique_id(options),
        )
        # A handler that yields has no whole result to document (the operation documents the stream).
        streams = root.is_gen or root.is_async_gen
        self.response_model = None if streams else response_model_of(options.response_model, options.endpoint)
        self.status_code = options.status_code or default_status(options.response_class)


def _compiled(routes: Iterable[Any]) -> list[RouteLike]:
    """The documented routes among ``routes``: compiled endpoints as they are, ``RouteOptions``
    compiled; mounts, websockets and hidden routes left out (as FastAPI leaves out non-API routes)."""
    compiled: list[RouteLike] = []
    for route in routes:
        if isinstance(route, RouteOptions):
            if route.include_in_schema and not route.is_websocket:
                compiled.append(_CompiledRoute(route))
        elif isinstance(getattr(route, "options", None), RouteOptions) and hasattr(route, "base_plan"):
            compiled.append(route)  # an Endpoint (``app.endpoints``)
    return compiled


def get_openapi(
    *,
    title: str,
    version: str,
    openapi_version: str = "3.1.0",
    summary: str | None = None,
    description: str | None = None,
    routes: Iterable[Any],
    tags: list[dict[str, Any]] | None = None,
    servers: list[dict[str, Any]] | None = None,
    terms_of_service: str | None = None,
    contact: dict[str, Any] | None = None,
    license_info: dict[str, Any] | None = None,
    external_docs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The OpenAPI document of ``routes`` (``app.routes``, or ``app.endpoints``), with this ``info``.

    With the app's own title, version and other metadata it is the document ``app.openapi()``
    builds; a fresh dict each call, free to change before it is served.
    """
    return build_document(
        _compiled(routes),
        title=title,
        version=version,
        openapi_version=openapi_version,
        summary=summary,
        description=description,
        terms_of_service=terms_of_service,
        contact=contact,
        license_info=license_info,
        servers=servers,
        tags=tags,
        external_docs=external_docs,
    )
