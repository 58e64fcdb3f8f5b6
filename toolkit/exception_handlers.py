"""The default exception handlers, importable to call from your own (as in FastAPI)::

from toolkit.exception_handlers import http_exception_handler

@app.exception_handler(HTTPException)
async def logged(request: Request, exc: HTTPException) -> Response:
    logger.warning("HTTP %s: %s", exc.status_code, exc.detail)
    return await http_exception_handler(request, exc)
"""

from __future__ import annotations

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from .exceptions import RequestValidationError, WebSocketException
from .responses import JSONResponse

__all__ = [
    "http_exception_handler",
    "request_validation_exception_handler",
    "websocket_request_validation_exception_handler",
]


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    """``{"detail": exc.detail}`` with the exception's status and headers (no body for 1xx/204/304)."""
    if not isinstance(exc, StarletteHTTPException):
        raise TypeError(f"http_exception_handler handles HTTPException, not {type(exc).__name__}")
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code in (204, 304) or exc.status_code < 200:
        return Response(status_code=exc.status_code, headers=headers)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


async def request_validation_exception_handler(request: Request, exc: Exception) -> Response:
    """A 422 with ``{"detail": exc.errors()}``."""
    if not isinstance(exc, RequestValidationError):
        raise TypeError(
            f"request_validation_exception_handler handles RequestValidationError, not {type(exc).__name__}"
        )
    return JSONResponse({"detail": exc.errors()}, status_code=422)


async def websocket_request_validation_exception_handler(websocket: WebSocket, exc: Exception) -> None:
    """Close the websocket with 1008 (policy violation) and the errors as the reason."""
    if not isinstance(exc, RequestValidationError):
        raise TypeError(
            "websocket_request_validation_exception_handler handles RequestValidationError, "
            f"not {type(exc).__name__}"
        )
    raise WebSocketException(code=1008, reason=validation_close_reason(exc))


def validation_close_reason(exc: RequestValidationError) -> str:
    """The failing fields, within a close frame's 123-byte reason."""
    fields = ", ".join(".".join(str(part) for part in error["loc"]) for error in exc.errors())
    reason = f"Invalid parameters: {fields}"
    encoded = reason.encode()
    return reason if len(encoded) <= 123 else encoded[:120].decode(errors="ignore") + "..."
