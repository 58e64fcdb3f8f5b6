"""toolkit: a lean, fast ASGI toolkit on Starlette and msgspec."""

from starlette.background import BackgroundTasks
from starlette.datastructures import UploadFile
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.websockets import WebSocket, WebSocketDisconnect

from . import status
from .app import App
from .di import Depends, Security, SecurityScopes
from .exceptions import (
    HTTPException,
    RequestValidationError,
    ResponseValidationError,
    RouteConfigError,
    WebSocketException,
)
from .params import Body, Cookie, File, Form, Header, Path, Query
from .responses import (
    EventSourceResponse,
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    ServerSentEvent,
    StreamingResponse,
)
from .routing import Router

APIRouter = Router  # FastAPI's name: code ported by renaming imports keeps working

__version__ = "0.1.0"

__all__ = [
    "APIRouter",
    "App",
    "BackgroundTasks",
    "Body",
    "Cookie",
    "Depends",
    "EventSourceResponse",
    "File",
    "FileResponse",
    "Form",
    "HTMLResponse",
    "HTTPException",
    "Header",
    "JSONResponse",
    "Middleware",
    "Path",
    "PlainTextResponse",
    "Query",
    "RedirectResponse",
    "Request",
    "RequestValidationError",
    "Response",
    "ResponseValidationError",
    "RouteConfigError",
    "Router",
    "Security",
    "SecurityScopes",
    "ServerSentEvent",
    "StreamingResponse",
    "UploadFile",
    "WebSocket",
    "WebSocketDisconnect",
    "WebSocketException",
    "__version__",
    "status",
]
