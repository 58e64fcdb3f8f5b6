"""The documentation's own routes: ``/openapi.json``, Swagger UI (and its OAuth2 redirect page),
ReDoc. An ``App`` serves them without listing them among its routes or in the document."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response

from ..responses import json_encoder
from ._docs import REDOC_JS, SWAGGER_CSS, SWAGGER_JS
from .docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html

__all__ = ["DocsPages", "DocsSource"]

Handler = Callable[[Request], Awaitable[Response]]


class DocsSource(Protocol):
    """What the pages read from the app (structural: this module does not import ``App``)."""

    title: str
    servers: list[dict[str, Any]]
    root_path_in_servers: bool

    def openapi(self) -> dict[str, Any]: ...


@dataclasses.dataclass
class DocsPages:
    """Where the pages are (``None``: not served) and how Swagger UI and ReDoc are set up."""

    openapi_url: str | None = "/openapi.json"
    docs_url: str | None = "/docs"
    redoc_url: str | None = "/redoc"
    swagger_js_url: str = SWAGGER_JS
    swagger_css_url: str = SWAGGER_CSS
    redoc_js_url: str = REDOC_JS
    swagger_ui_parameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    swagger_ui_oauth2_redirect_url: str | None = "/docs/oauth2-redirect"
    swagger_ui_init_oauth: dict[str, Any] | None = None

    def routes(self, app: DocsSource) -> list[tuple[str, Handler, str]]:
        """``(path, handler, name)`` of each page to serve; none without an ``openapi_url``."""
        openapi_url = self.openapi_url
        if openapi_url is None:
            return []
        encoded: list[Any] = [None, b""]  # the document last served, and its JSON

        async def openapi_document(request: Request) -> Response:
            root_path = request.scope.get("root_path", "")
            if root_path and not app.servers and app.root_path_in_servers:
                # Mounted under a prefix (or behind a proxy): "Try it out" must call the prefix.
                document = {**app.openapi(), "servers": [{"url": root_path}]}
                return Response(json_encoder.encode(document), media_type="application/json")
            document = app.openapi()  # may be replaced (``app.openapi = custom_openapi``)
            if encoded[0] is not document:
                encoded[:] = [document, json_encoder.encode(document)]
            return Response(encoded[1], media_type="application/json")

        routes: list[tuple[str, Handler, str]] = [(openapi_url, openapi_document, "openapi")]
        if self.docs_url is not None:
            redirect_url = self.swagger_ui_oauth2_redirect_url

            async def swagger_ui(request: Request) -> Response:
                root_path = request.scope.get("root_path", "")
                return get_swagger_ui_html(
                    openapi_url=root_path + openapi_url,
                    title=f"{app.title} - Swagger UI",
                    swagger_js_url=self.swagger_js_url,
                    swagger_css_url=self.swagger_css_url,
                    oauth2_redirect_url=root_path + redirect_url if redirect_url else None,
                    init_oauth=self.swagger_ui_init_oauth,
                    swagger_ui_parameters=self.swagger_ui_parameters,
                )

            routes.append((self.docs_url, swagger_ui, "swagger_ui"))
            if redirect_url:

                async def swagger_ui_redirect(request: Request) -> Response:
                    return get_swagger_ui_oauth2_redirect_html()

                routes.append((redirect_url, swagger_ui_redirect, "swagger_ui_redirect"))
        if self.redoc_url is not None:

            async def redoc(request: Request) -> Response:
                return get_redoc_html(
                    openapi_url=request.scope.get("root_path", "") + openapi_url,
                    title=f"{app.title} - ReDoc",
                    redoc_js_url=self.redoc_js_url,
                )

            routes.append((self.redoc_url, redoc, "redoc"))
        return routes
