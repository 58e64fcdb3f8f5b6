"""FastAPI's docs page helpers, for serving Swagger UI or ReDoc yourself (self-hosted assets,
an OAuth2 redirect page, custom parameters)::

    from toolkit.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html

    app = App(docs_url=None)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=app.title + " - Swagger UI",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_js_url="/static/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui.css",
        )

Unlike FastAPI's, every value is escaped for where it goes (HTML text and attributes, JSON in a
script), so a title or URL from configuration cannot inject markup. No favicon or Google Fonts
are loaded unless asked for.
"""

from __future__ import annotations

import html
from typing import Any

from starlette.responses import HTMLResponse

from ._docs import REDOC_JS, SWAGGER_CSS, SWAGGER_JS, script_json

__all__ = [
    "get_redoc_html",
    "get_swagger_ui_html",
    "get_swagger_ui_oauth2_redirect_html",
    "swagger_ui_default_parameters",
]

#: FastAPI's default Swagger UI configuration (``swagger_ui_parameters`` update a copy of it).
swagger_ui_default_parameters: dict[str, Any] = {
    "dom_id": "#swagger-ui",
    "layout": "BaseLayout",
    "deepLinking": True,
    "showExtensions": True,
    "showCommonExtensions": True,
}


def _attr(value: str) -> str:
    return html.escape(value, quote=True)


def get_swagger_ui_html(
    *,
    openapi_url: str,
    title: str,
    swagger_js_url: str = SWAGGER_JS,
    swagger_css_url: str = SWAGGER_CSS,
    swagger_favicon_url: str | None = None,
    oauth2_redirect_url: str | None = None,
    init_oauth: dict[str, Any] | None = None,
    swagger_ui_parameters: dict[str, Any] | None = None,
) -> HTMLResponse:
    """The Swagger UI page for the document at ``openapi_url``; ``title`` is the page's whole title."""
    config: dict[str, Any] = {
        "url": openapi_url,
        **swagger_ui_default_parameters,
        **(swagger_ui_parameters or {}),
    }
    favicon = (
        f'<link rel="shortcut icon" href="{_attr(swagger_favicon_url)}">\n' if swagger_favicon_url else ""
    )
    script = [f"const config = {script_json(config)};"]
    if oauth2_redirect_url:
        script.append(
            f"config.oauth2RedirectUrl = window.location.origin + {script_json(oauth2_redirect_url)};"
        )
    script.append(
        "config.presets = [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset];"
    )
    script.append("const ui = SwaggerUIBundle(config);")
    if init_oauth:
        script.append(f"ui.initOAuth({script_json(init_oauth)});")
    script.append("window.ui = ui;")
    lines = "\n".join(script)
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="{_attr(swagger_css_url)}">
{favicon}<title>{html.escape(title)}</title>
</head>
<body>
<div id="swagger-ui"></div>
<script src="{_attr(swagger_js_url)}"></script>
<script>
{lines}
</script>
</body>
</html>"""
    return HTMLResponse(page)


def get_redoc_html(
    *,
    openapi_url: str,
    title: str,
    redoc_js_url: str = REDOC_JS,
    redoc_favicon_url: str | None = None,
    with_google_fonts: bool = False,
) -> HTMLResponse:
    """The ReDoc page for the document at ``openapi_url``; ``title`` is the page's whole title."""
    fonts = (
        '<link href="https://fonts.googleapis.com/css?family=Montserrat:300,400,700|Roboto:300,400,700" '
        'rel="stylesheet">\n'
        if with_google_fonts
        else ""
    )
    favicon = f'<link rel="shortcut icon" href="{_attr(redoc_favicon_url)}">\n' if redoc_favicon_url else ""
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
{fonts}{favicon}<style>body {{ margin: 0; padding: 0; }}</style>
</head>
<body>
<noscript>ReDoc requires JavaScript to function. Please enable it to browse the documentation.</noscript>
<redoc spec-url="{_attr(openapi_url)}"></redoc>
<script src="{_attr(redoc_js_url)}"></script>
</body>
</html>"""
    return HTMLResponse(page)


def get_swagger_ui_oauth2_redirect_html() -> HTMLResponse:
    """The page an OAuth2 provider redirects to after login from Swagger UI ("Authorize"): it hands
    the result back to the docs page (swagger-ui's ``oauth2-redirect.html``)."""
    return HTMLResponse(_OAUTH2_REDIRECT)


# swagger-ui's dist/oauth2-redirect.html (Apache-2.0), as FastAPI serves it.
_OAUTH2_REDIRECT = """<!doctype html>
<html lang="en-US">
<head>
    <title>Swagger UI: OAuth2 Redirect</title>
</head>
<body>
<script>
    'use strict';
    function run () {
        var oauth2 = window.opener.swaggerUIRedirectOauth2;
        var sentState = oauth2.state;
        var redirectUrl = oauth2.redirectUrl;
        var isValid, qp, arr;

        if (/code|token|error/.test(window.location.hash)) {
            qp = window.location.hash.substring(1).replace('?', '&');
        } else {
            qp = location.search.substring(1);
        }

        arr = qp.split("&");
        arr.forEach(function (v,i,_arr) { _arr[i] = '"' + v.replace('=', '":"') + '"';});
        qp = qp ? JSON.parse('{' + arr.join() + '}',
                function (key, value) {
                    return key === "" ? value : decodeURIComponent(value);
                }
        ) : {};

        isValid = qp.state === sentState;

        if ((
          oauth2.auth.schema.get("flow") === "accessCode" ||
          oauth2.auth.schema.get("flow") === "authorizationCode" ||
          oauth2.auth.schema.get("flow") === "authorization_code"
        ) && !oauth2.auth.code) {
            if (!isValid) {
                oauth2.errCb({
                    authId: oauth2.auth.name,
                    source: "auth",
                    level: "warning",
                    message: "Authorization may be unsafe, passed state was changed in server. " +
                        "The passed state wasn't returned from auth server."
                });
            }

            if (qp.code) {
                delete oauth2.state;
                oauth2.auth.code = qp.code;
                oauth2.callback({auth: oauth2.auth, redirectUrl: redirectUrl});
            } else {
                let oauthErrorMsg;
                if (qp.error) {
                    oauthErrorMsg = "["+qp.error+"]: " +
                        (qp.error_description ? qp.error_description+ ". " :
                            "no accessCode received from the server. ") +
                        (qp.error_uri ? "More info: "+qp.error_uri : "");
                }

                oauth2.errCb({
                    authId: oauth2.auth.name,
                    source: "auth",
                    level: "error",
                    message: oauthErrorMsg ||
                        "[Authorization failed]: no accessCode received from the server."
                });
            }
        } else {
            oauth2.callback({auth: oauth2.auth, token: qp, isValid: isValid, redirectUrl: redirectUrl});
        }
        window.close();
    }

    if (document.readyState !== 'loading') {
        run();
    } else {
        document.addEventListener('DOMContentLoaded', function () {
            run();
        });
    }
</script>
</body>
</html>
"""
