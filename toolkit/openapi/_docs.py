"""What the documentation pages share: the default asset URLs and JSON safe inside a script."""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["REDOC_JS", "SWAGGER_CSS", "SWAGGER_JS", "script_json"]

SWAGGER_JS = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"
SWAGGER_CSS = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css"
REDOC_JS = "https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js"


def script_json(value: Any) -> str:
    """JSON safe to embed in a <script> element (no ``</script>`` or ``<!--`` break-out)."""
    encoded = msgspec.json.encode(value).decode()
    return encoded.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
