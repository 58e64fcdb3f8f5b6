"""The outermost guard: uncaught errors become one clean 500, request ids, a body limit.

Pure ASGI: request state lives in local variables, headers change only at
``http.response.start`` and a second ``http.response.start`` is never sent.
"""

from __future__ import annotations

import inspect
import logging
import os
import re
import traceback
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._body import is_limited, limited_receive
from ..exceptions import RequestBodyTooLarge
from ..responses import JSONResponse

__all__ = ["ErrorMiddleware", "RequestBodyTooLarge", "get_request_id", "request_id_var"]

logger = logging.getLogger("toolkit.errors")

#: The current request's id: ``None`` outside a request. A guard issuing ids sets it for the
#: request and resets it after; a guard with ids off leaves it as it finds it (an outer app's id,
#: for an App mounted in another or called in-process from one of its requests).
request_id_var: ContextVar[str | None] = ContextVar("toolkit_request_id", default=None)

# An incoming id is echoed only when it is short and plain: no header or log injection.
_WELL_FORMED_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

ServerErrorHandler = Callable[[Request, Exception], Response | Awaitable[Response]]


#: The ASGI extension Starlette's ``TestClient`` (and ``AsyncTestClient``) put in every scope.
_TEST_CLIENT = "http.response.debug"


def get_request_id() -> str | None:
    """The id of the request being handled (for log records, outgoing calls...)."""
    return request_id_var.get()


class _ProblemJSONResponse(JSONResponse):
    media_type = "application/problem+json"


class ErrorMiddleware:
    """Catch everything below; answer a JSON 500 with the request id, log the traceback once.

    - Before the response started: a 500 (``{"detail": "Internal Server Error", "request_id": ...}``,
      or RFC 9457 ``application/problem+json`` with ``problem_json=True``); ``debug=True`` adds the
      traceback. After it started: log and re-raise, so the server aborts the connection.
    - ``request_id_header``: accept a well-formed incoming id or make one, echo it on every
      response, expose it through ``request_id_var`` / ``scope["request_id"]``. ``None`` turns it off.
    - ``max_body_size``: 413 for a larger ``Content-Length`` before reading, or as soon as a
      streamed body goes over.
    - ``handler_body_limit``: the body limit of the ``handler``'s ``Request`` only (an ``App``
      passes its ``max_body_size``; its routes keep their own limits).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        debug: bool = False,
        handler: ServerErrorHandler | None = None,
        request_id_header: str | None = "X-Request-ID",
        problem_json: bool = False,
        max_body_size: int | None = None,
        handler_body_limit: int | None = None,
    ) -> None:
        self.app = app
        self.debug = debug
        self.handler = handler
        self.header_name = request_id_header.lower().encode("latin-1") if request_id_header else None
        self.problem_json = problem_json
        self.max_body_size = max_body_size
        self.handler_body_limit = handler_body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header_name = self.header_name
        limit = self.max_body_size
        request_id: str | None = None
        extra_headers: list[tuple[bytes, bytes]] = []
        response_started = False
        token = None
        declared_length: int | None = None
        if header_name is None and limit is None:
            # PERF: no request id and no body limit (an App's default): the guard only needs to
            # know whether the response started, and the smallest wrapper tells it. The request
            # id variable is left as it is (an outer guard's id, or None).

            async def send_wrapper(message: Message) -> None:
                nonlocal response_started
                response_started = True  # a response's first message is its start
                await send(message)

        else:
            for key, value in scope["headers"]:
                if key == header_name:
                    text = value.decode("latin-1")
                    if _WELL_FORMED_ID.fullmatch(text):
                        request_id = text
                elif key == b"content-length" and value.isdigit():
                    declared_length = int(value)
            if header_name is not None:
                if request_id is None:
                    request_id = os.urandom(16).hex()  # PERF: 128 random bits, 10x cheaper than uuid4().hex
                scope["request_id"] = request_id
                extra_headers.append((header_name, request_id.encode("latin-1")))
            token = request_id_var.set(request_id)

            async def send_wrapper(message: Message) -> None:
                nonlocal response_started
                if message["type"] == "http.response.start":
                    response_started = True
                    if extra_headers:
                        headers = list(message.get("headers", ()))
                        for key, _ in headers:
                            # ASGI: "header names must be lowercased" (Starlette lowercases too).
                            if key == header_name:
                                break  # the app set its own
                        else:
                            headers.extend(extra_headers)
                        message["headers"] = headers
                await send(message)

        try:
            if limit is not None:
                if declared_length is not None and declared_length > limit:
                    raise RequestBodyTooLarge(limit)  # answered 413 below, before reading anything
                receive = limited_receive(receive, limit)
            await self.app(scope, receive, send_wrapper)
        except ClientDisconnect:
            # The client went away (mid-stream, or while we read its body): nobody to answer.
            logger.debug("client disconnected: %s %r", scope.get("method"), scope.get("path"))
        except Exception as exc:
            if response_started:
                logger.error(
                    "error after the response started: %s %r (request id %s): %s: %s",
                    scope.get("method"),
                    scope.get("path"),
                    request_id,
                    type(exc).__name__,
                    exc,
                )
                raise  # the server aborts the connection and logs the traceback (once)
            await self._send_error(scope, receive, send, exc, request_id, extra_headers)
        finally:
            if token is not None:
                request_id_var.reset(token)

    async def _send_error(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        exc: Exception,
        request_id: str | None,
        extra_headers: list[tuple[bytes, bytes]],
    ) -> None:
        """Answer ``exc`` (the response has not started); re-raise it under a test client."""
        response = await self._error_response(scope, receive, exc, request_id)
        response.raw_headers.extend(extra_headers)
        await response(scope, receive, send)
        if _TEST_CLIENT in scope.get("extensions", ()) and not isinstance(exc, RequestBodyTooLarge):
            # Under a test client, as Starlette's ServerErrorMiddleware does: the 500 is sent,
            # then the error reaches the test (TestClient(raise_server_exceptions=True), the
            # default, raises it; False returns the 500). Servers never set this extension.
            raise exc

    async def _error_response(
        self, scope: Scope, receive: Receive, exc: Exception, request_id: str | None
    ) -> Response:
        if isinstance(exc, RequestBodyTooLarge):
            return self._json(413, "Payload Too Large", exc.detail, request_id)
        logger.error(
            "unhandled error: %s %r (request id %s)",
            scope.get("method"),
            scope.get("path"),
            request_id,
            exc_info=exc,
        )
        if self.handler is not None and not self.debug:
            if self.handler_body_limit is not None and not is_limited(receive):
                receive = limited_receive(receive, self.handler_body_limit, scope)
            result = self.handler(Request(scope, receive), exc)
            return await result if inspect.isawaitable(result) else result
        response = self._json(500, "Internal Server Error", "Internal Server Error", request_id)
        if self.debug:
            body: dict[str, Any] = {
                "detail": "Internal Server Error",
                "request_id": request_id,
                "exception": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exception(exc),
            }
            response = JSONResponse(body, status_code=500)
        return response

    def _json(self, status: int, title: str, detail: str, request_id: str | None) -> Response:
        if self.problem_json:
            problem: dict[str, Any] = {
                "type": "about:blank",
                "title": title,
                "status": status,
                "detail": detail,
            }
            if request_id is not None:
                problem["request_id"] = request_id
            return _ProblemJSONResponse(problem, status_code=status)
        body: dict[str, Any] = {"detail": detail}
        if request_id is not None:
            body["request_id"] = request_id
        return JSONResponse(body, status_code=status)
