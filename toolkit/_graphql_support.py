"""The GraphQL view's helpers: its context getter's plans, its error answers, its body reading.

Private to ``toolkit.graphql`` (imported only with the ``graphql`` extra).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from graphql import GraphQLError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope

from ._analysis import analyze, describe
from ._app_scope import AppScope
from ._body import declared_size_check, header_value
from ._plan import Plan
from .di import Depends
from .exceptions import RequestBodyTooLarge, RouteConfigError

logger = logging.getLogger("toolkit.graphql")

#: The injectables a context getter may take (no WebSocket: subscriptions are not served).
ALLOWED = frozenset({"request", "connection", "response", "background", "session", "security_scopes"})
CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "BAD_USER_INPUT",
    429: "TOO_MANY_REQUESTS",
}
MASKED_MESSAGE = "Internal server error"


def code_for(status: int) -> str:
    return CODES.get(status, "INTERNAL_SERVER_ERROR" if status >= 500 else f"HTTP_{status}")


def error_body(message: str, status: int, **extensions: Any) -> dict[str, Any]:
    return {
        "errors": [
            {"message": message, "extensions": {"code": code_for(status), "status": status, **extensions}}
        ]
    }


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse(error_body(message, status), status_code=status, headers=headers)


def no_context() -> None:
    """The context getter of a view given none (its plan still runs the ``dependencies``)."""


class ContextPlans:
    """The context getter's plan per App (its app-scoped values, its overrides), as health checks'."""

    def __init__(self, getter: Callable[..., Any] | None, dependencies: Sequence[Depends]) -> None:
        self.getter = getter if getter is not None else no_context
        self.dependencies = list(dependencies)
        what = describe(getter) if getter is not None else "none"
        self.owner = f"GraphQL context_getter ({what})"
        self._plans: weakref.WeakKeyDictionary[AppScope, tuple[Any, Plan]] = weakref.WeakKeyDictionary()
        self._no_app: Plan | None = None
        self.compile(AppScope(), None, [])  # throwaway: refuses mistakes when the view is made

    def compile(
        self, app_scope: AppScope | None, overrides: Any, app_dependencies: Sequence[Depends]
    ) -> Plan:
        root = analyze(self.getter, {}, owner=self.owner, overrides=overrides)
        if root.is_gen or root.is_async_gen:
            raise RouteConfigError(
                f"{self.owner}: the context getter cannot be a generator; put the cleanup in a "
                "generator dependency it takes (closed after the response)"
            )
        # The App's own dependencies (``App(dependencies=[...])``) first, as on every route.
        extra = [*app_dependencies, *self.dependencies]
        plan = Plan(root, extra, self.owner, set(), app_scope=app_scope, overrides=overrides)
        refused = ["a body" if plan.has_body else "", "form fields" if plan.has_forms else ""]
        refused += [kwarg for step in plan.steps for kwarg, kind in step.special_args if kind not in ALLOWED]
        refused = [what for what in refused if what]
        if refused:
            raise RouteConfigError(
                f"{self.owner}: the request body is the GraphQL operation, and subscriptions are not "
                f"served, so a context getter cannot take {', '.join(refused)}"
            )
        return plan

    def for_app(self, app: Any) -> Plan:
        app_scope: AppScope | None = getattr(app, "app_scope", None)
        if app_scope is None:
            if self._no_app is None:
                self._no_app = self.compile(None, None, [])
            return self._no_app
        overrides = getattr(app, "dependency_overrides", None)
        app_dependencies = list(getattr(getattr(app, "router", None), "dependencies", None) or [])
        # A new lifespan re-registers the app's app-scoped values: the plan registers its own again.
        version = (getattr(overrides, "version", 0), app_scope.lifespans, len(app_dependencies))
        cached = self._plans.get(app_scope)
        if cached is not None and cached[0] == version:
            return cached[1]
        plan = self.compile(app_scope, overrides, app_dependencies)
        self._plans[app_scope] = (version, plan)
        return plan


def log_errors(errors: list[GraphQLError], execution_context: Any = None) -> None:
    for error in errors:
        if unexpected(error):
            logger.error("GraphQL resolver error at %s", error.path, exc_info=error.original_error)
        else:
            logger.debug("GraphQL error: %s", error.message)


def unexpected(error: GraphQLError) -> bool:
    """A resolver's exception that is not an answer (a ``GraphQLError``, an ``HTTPException``, a
    permission refused): a bug or a failure, which rolls the request's transaction back."""
    original = error.original_error
    return original is not None and not isinstance(original, (GraphQLError, StarletteHTTPException))


async def read_body(receive: Receive, scope: Scope, limit: int | None) -> bytes | None:
    """The request body, whole; ``RequestBodyTooLarge`` past ``limit`` (before reading anything
    when ``Content-Length`` says so); ``None`` when the client disconnected."""
    if limit is not None:
        declared_size_check(header_value(scope, b"content-length"), limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            raise RequestBodyTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` that gives ``body`` first, then what the server sends (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def format_error(error: GraphQLError, mask: bool) -> dict[str, Any]:
    original = error.original_error
    if isinstance(original, StarletteHTTPException):
        formatted = dict(error.formatted)
        formatted["message"] = str(original.detail)
        formatted["extensions"] = {
            **(error.extensions or {}),
            "code": code_for(original.status_code),
            "status": original.status_code,
        }
        return formatted
    if original is not None and mask and not isinstance(original, GraphQLError):
        masked = GraphQLError(MASKED_MESSAGE, error.nodes, error.source, error.positions, error.path)
        return dict(masked.formatted)
    return dict(error.formatted)


def plain_error(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A validation error without its ``ctx`` objects (an exception is not JSON)."""
    return {key: entry[key] for key in ("type", "loc", "msg") if key in entry}
