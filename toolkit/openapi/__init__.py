"""OpenAPI 3.1 document and interactive docs (Swagger UI, ReDoc).

FastAPI's helpers are in ``toolkit.openapi.utils`` (``get_openapi``) and ``toolkit.openapi.docs``
(``get_swagger_ui_html``, ``get_redoc_html``, ``get_swagger_ui_oauth2_redirect_html``).
"""

from ._builder import build_openapi
from ._docs import REDOC_JS, SWAGGER_CSS, SWAGGER_JS

__all__ = ["REDOC_JS", "SWAGGER_CSS", "SWAGGER_JS", "build_openapi"]
