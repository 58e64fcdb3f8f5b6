"""Exceptions that handlers raise and the toolkit renders as HTTP errors."""

from __future__ import annotations

import http
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.exceptions import WebSocketException

__all__ = [
    "HTTPException",
    "RequestBodyTooLarge",
    "RequestValidationError",
    "ResponseValidationError",
    "RouteConfigError",
    "WebSocketException",
]


class HTTPException(StarletteHTTPException):
    """An error with a status code and any JSON-able ``detail``, rendered as ``{"detail": ...}``.

    A subclass of Starlette's, so code (and Starlette internals such as form parsing) raising
    either kind gets the same rendering and the same exception handlers.
    """

    def __init__(
        self,
        status_code: int,
        detail: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if detail is None:
            detail = http.HTTPStatus(status_code).phrase
        super().__init__(status_code=status_code, detail="", headers=headers)
        self.detail: Any = detail

    def __str__(self) -> str:
        return f"{self.status_code}: {self.detail}"


class RequestBodyTooLarge(HTTPException):
    """A 413: the body is (or says it is) larger than the limit.

    An ``HTTPException``, so whichever layer reads the body (an endpoint, Starlette's
    ``ExceptionMiddleware``, the error guard) answers 413, never a 500.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request body is larger than {limit} bytes")
        self.limit = limit


class RequestValidationError(Exception):
    """Request data failed validation; rendered as a 422 with FastAPI's error shape.

    ``errors()`` is a list of ``{"type", "loc", "msg", "input"}`` dicts, one per failing field (a
    method, as in FastAPI); ``body`` is the request body when one was read, else ``None``.
    """

    def __init__(self, errors: Sequence[dict[str, Any]], *, body: Any = None) -> None:
        super().__init__(errors)
        self._errors = list(errors)
        self._body = body
        self.raw_body: bytes | None = None  # set by the toolkit: the JSON body as it came
        self.valid_params: Any = None  # set by the toolkit: the parameters that did validate

    def errors(self) -> list[dict[str, Any]]:
        return self._errors

    @property
    def body(self) -> Any:
        """The request's JSON body, parsed (its bytes if it is not JSON); ``None`` without one.
        Parsed on first use: a handler that does not look costs nothing."""
        if self._body is None and self.raw_body:
            try:
                self._body = msgspec.json.decode(self.raw_body)
            except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
                self._body = self.raw_body
        return self._body

    def __str__(self) -> str:
        return f"{len(self._errors)} validation error(s): {self._errors}"


class ResponseValidationError(Exception):
    """A handler's return value does not match its response model: a server bug, rendered as 500."""

    def __init__(self, message: str, endpoint: str) -> None:
        super().__init__(f"{endpoint}: return value does not match the response model: {message}")
        self.endpoint = endpoint


class RouteConfigError(TypeError):
    """A route or handler is misconfigured; raised at registration, never per request."""
