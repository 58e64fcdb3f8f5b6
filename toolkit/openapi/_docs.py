"""The interactive documentation pages: Swagger UI and ReDoc."""

from __future__ import annotations

import html
from typing import Any

import msgspec
from starlette.responses import HTMLResponse

__all__ = ["redoc_html", "swagger_ui_html"]

SWAGGER_JS = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"
SWAGGER_CSS = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css"
REDOC_JS = "https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js"


def script_json(value: Any) -> str:
    """JSON safe to embed in a <script> element (no ``</script>`` or ``<!--`` break-out)."""
    encoded = msgspec.json.encode(value).decode()
    return encoded.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def swagger_ui_html(
    *,
    openapi_url: str,
    title: str,
    js_url: str = SWAGGER_JS,
    css_url: str = SWAGGER_CSS,
    parameters: dict[str, Any] | None = None,
) -> HTMLResponse:
    config = {"url": openapi_url, "dom_id": "#swagger-ui", "deepLinking": True, **(parameters or {})}
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} - Swagger UI</title>
<link rel="stylesheet" href="{html.escape(css_url)}">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{html.escape(js_url)}"></script>
<script>
const config = {script_json(config)};
config.presets = [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset];
config.layout = "BaseLayout";
window.ui = SwaggerUIBundle(config);
</script>
</body>
</html>"""
    return HTMLResponse(page)


def redoc_html(*, openapi_url: str, title: str, js_url: str = REDOC_JS) -> HTMLResponse:
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} - ReDoc</title>
</head>
<body>
<redoc spec-url="{html.escape(openapi_url)}"></redoc>
<script src="{html.escape(js_url)}"></script>
</body>
</html>"""
    return HTMLResponse(page)
