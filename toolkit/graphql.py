"""GraphQL with strawberry on a toolkit ``App``: ``pip install 'toolkit[graphql]'``.

::

    async def get_context(user: Annotated[User, Depends(current_user)], db: DatabaseDep) -> dict[str, Any]:
        return {"user": user, "db": db}

    app.mount("/graphql", GraphQL(schema, context_getter=get_context))

``context_getter`` declares its parameters like a route's dependency (``Request``, ``Response``,
``BackgroundTasks``, ``Session``, headers and cookies, ``Depends(...)`` including app-scoped ones),
resolved by the toolkit's executor under the app's ``dependency_overrides``; generator
dependencies are closed after the response is sent (an exception a resolver raised is thrown into
them first, so a transaction rolls back). Resolvers read ``info.context["request"]``,
``["response"]``, ``["background_tasks"]`` and whatever the getter returned; lifespan state is
``info.context["request"].state``.

Safe defaults, decided per request from the mounting ``App``:

- POST bodies are read whole before any dependency runs (a client trickling one in holds no
  connection meanwhile), held to 1 MiB or the app's lower ``max_body_size`` (413; a mounted app
  is not a route, so the routes' limit does not cover it), and must be ``application/json``
  (415 otherwise): a browser
  cannot send that cross-origin without a CORS preflight, so a cookie-authenticated request
  cannot be forged by another site's form. Multipart uploads are off (strawberry's default).
- Only GET and POST (405); a mutation over GET is refused by strawberry (400).
- Query depth (10), aliases (15) and tokens (2,000) are limited; ``None`` lifts a limit.
- Introspection and the GraphiQL page only when ``App.debug`` (or ``introspection=True``).
- A resolver's unexpected exception is answered ``"Internal server error"`` unless
  ``App.debug`` (or ``mask_errors=False``); a ``GraphQLError`` it raises is shown as is, an
  ``HTTPException`` as its detail with ``extensions.code`` (``"FORBIDDEN"``...) and
  ``extensions.status``.
- An ``HTTPException`` from the context getter (a 401 of ``current_user``) answers that status
  and headers with ``{"errors": [{"message": detail, "extensions": {"code", "status"}}]}``,
  before the query is parsed; other exceptions go to the app's exception handlers (else a 500).
- Websocket subscriptions are not served (the handshake is refused).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

import msgspec
import strawberry.asgi
from graphql.validation import NoSchemaIntrospectionCustomRule
from starlette.background import BackgroundTasks
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.extensions import SchemaExtension
from strawberry.http import GraphQLHTTPResponse
from strawberry.http.ides import GraphQL_IDE
from strawberry.schema import BaseSchema
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from ._cleanup import CleanupStack
from ._executor import Resolution, run_steps
from ._graphql_limits import document_limits
from ._graphql_support import (
    ContextPlans,
    error_body,
    error_response,
    format_error,
    log_errors,
    plain_error,
    read_body,
    replay,
    unexpected,
)
from .di import Depends
from .exceptions import RequestBodyTooLarge, RequestValidationError

try:  # strawberry >= 0.28x raises cross_web's; older releases their own
    from cross_web import HTTPException as _ViewError
except ImportError:  # pragma: no cover - strawberry before cross_web
    from strawberry.http.exceptions import HTTPException as _ViewError  # type: ignore[attr-defined,no-redef]

__all__ = ["GraphQL"]

logger = logging.getLogger("toolkit.graphql")

DEFAULT_MAX_DEPTH = 10
DEFAULT_MAX_ALIASES = 15
DEFAULT_MAX_TOKENS = 2000
# A GraphQL view body is JSON text: a generous bound for a document and its variables, read whole
# (before any dependency runs, so before authentication) and held in memory meanwhile.
DEFAULT_MAX_BODY_SIZE = 1024 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class _Policy:
    """What one request may do, from the view's settings and the mounting App's ``debug``."""

    introspection: bool
    mask_errors: bool


class _Call:
    """One request through the view: its policy, its dependencies' cleanups, its resolver errors."""

    __slots__ = ("background", "early", "failure", "mutation", "policy", "stack", "view")

    def __init__(self, view: GraphQL, policy: _Policy) -> None:
        self.view = view
        self.policy = policy
        self.stack = CleanupStack()
        # ``scope="function"`` generator dependencies: closed when the operation has run, before
        # the response is sent (a commit that fails is the response, as on a route).
        self.early: CleanupStack | None = None
        self.background = BackgroundTasks()
        # The first unexpected exception a resolver raised (not a GraphQLError or HTTPException,
        # which are answers): thrown into the dependencies, so a transaction rolls back.
        self.failure: BaseException | None = None
        self.mutation = False


class _Limits(SchemaExtension):
    """Added to the schema by ``GraphQL``: the depth, alias and token limits and the introspection
    switch of the view serving the request (nothing for a request that did not come through one)."""

    def on_operation(self) -> Iterator[None]:
        # The view's own record of the request, not the context the user's getter returned (which
        # may carry a "request" of its own: the limits must not depend on it).
        call = _CURRENT_CALL.get()
        if call is not None:
            view = call.view
            if view.max_tokens is not None:
                self.execution_context.parse_options["max_tokens"] = view.max_tokens
            rules = view._rules[call.policy.introspection]
            self.execution_context.validation_rules = (*self.execution_context.validation_rules, *rules)
        yield
        if call is not None:
            with contextlib.suppress(Exception):  # no operation (a syntax error): not a mutation
                call.mutation = self.execution_context.operation_type is OperationType.MUTATION


# The request the view is running, set around strawberry's ``run``: how its hooks and its schema
# extension find it (never through the context, which the user's getter makes).
_CURRENT_CALL: ContextVar[_Call | None] = ContextVar("toolkit.graphql.call", default=None)


class GraphQL(strawberry.asgi.GraphQL[dict[str, Any], Any]):
    """strawberry's ASGI app for ``app.mount(path, GraphQL(schema, context_getter=...))``.

    ``context_getter``: a callable declared like a toolkit dependency, returning a mapping merged
    into the context (``request``, ``response``, ``background_tasks``). ``introspection`` and
    ``mask_errors``: ``None`` follows the mounting ``App.debug`` (introspection and the
    ``graphql_ide`` page in debug only; errors masked unless debug). ``max_body_size``: 1 MiB
    (never more than the App's limit; ``None``: the App's). ``dependencies``: run before the
    context getter, after the App's own. ``max_depth``, ``max_aliases``, ``max_tokens``:
    ``None`` lifts one.

    The schema gets one extension (the limits), which does nothing outside this view.
    """

    def __init__(
        self,
        schema: BaseSchema,
        *,
        context_getter: Callable[..., Any] | None = None,
        dependencies: Sequence[Depends] | None = None,
        graphql_ide: GraphQL_IDE | None = "graphiql",
        introspection: bool | None = None,
        mask_errors: bool | None = None,
        max_body_size: int | None = DEFAULT_MAX_BODY_SIZE,
        max_depth: int | None = DEFAULT_MAX_DEPTH,
        max_aliases: int | None = DEFAULT_MAX_ALIASES,
        max_tokens: int | None = DEFAULT_MAX_TOKENS,
        allow_queries_via_get: bool = True,
        multipart_uploads_enabled: bool = False,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide=graphql_ide,
            allow_queries_via_get=allow_queries_via_get,
            multipart_uploads_enabled=multipart_uploads_enabled,
        )
        for name, limit in (
            ("max_depth", max_depth),
            ("max_aliases", max_aliases),
            ("max_tokens", max_tokens),
        ):
            if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
                raise ValueError(f"{name} must be a positive int or None, not {limit!r}")
        self.context_getter = context_getter
        self._context_plans = ContextPlans(context_getter, dependencies or ())
        self.introspection = introspection
        self.mask_errors = mask_errors
        self.max_body_size = max_body_size
        self.max_depth = max_depth
        self.max_aliases = max_aliases
        self.max_tokens = max_tokens
        # Linear in the document: a fragment is measured once, however often it is spread.
        limits = document_limits(max_depth, max_aliases)
        # The validation rules added per operation, by whether introspection is allowed (made once).
        self._rules = {True: limits, False: (*limits, NoSchemaIntrospectionCustomRule)}
        extensions = getattr(schema, "extensions", None)
        if extensions is None:
            raise TypeError(f"GraphQL takes a strawberry.Schema, not {type(schema).__name__}")
        # strawberry logs every error of an operation at ERROR, with its traceback and the query
        # (a refused input, a 403 included: a client can fill the log): the unexpected ones only.
        schema.process_errors = log_errors  # type: ignore[method-assign]
        if _Limits not in extensions:
            # A class: strawberry makes an instance per operation (older releases one per schema).
            schema.extensions = (*extensions, _Limits)  # type: ignore[attr-defined]
            vars(schema).pop("_async_extensions", None)  # older strawberry caches the instances

    def _policy(self, app: Any) -> _Policy:
        debug = bool(getattr(app, "debug", False))
        return _Policy(
            introspection=debug if self.introspection is None else self.introspection,
            mask_errors=not debug if self.mask_errors is None else self.mask_errors,
        )

    # --- ASGI ----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await WebSocket(scope, receive, send).close(code=1008)  # before accept: HTTP 403
            return
        if scope["type"] != "http":  # pragma: no cover - a mount only sees http and websocket
            raise ValueError(f"unsupported scope type {scope['type']!r}")
        app = scope.get("app")
        policy = self._policy(app)
        refusal = self._refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        limit = self.max_body_size
        app_limit = getattr(app, "max_body_size", None)
        if isinstance(app_limit, int) and (limit is None or app_limit < limit):
            limit = app_limit  # never more than the App allows its routes
        if scope["method"] == "POST":
            # The whole body first (within the limit), before any dependency runs: a client
            # trickling it in must not hold a database connection or a write lock meanwhile.
            try:
                body = await read_body(receive, scope, limit)
            except RequestBodyTooLarge as exc:
                await error_response(413, str(exc.detail))(scope, receive, send)
                return
            if body is None:
                return  # the client left before sending it
            receive = replay(body, receive)
        request = Request(scope, receive, send)
        if self.should_render_graphql_ide(self.request_adapter_class(request)):
            # Before the context getter: the page itself needs no credentials.
            page = HTMLResponse(self.graphql_ide_html) if policy.introspection and self.graphql_ide else None
            await (page or error_response(404, "Not Found"))(scope, receive, send)
            return
        call = _Call(self, policy)
        token = _CURRENT_CALL.set(call)
        try:
            response = await self.run(request)
            if call.early is not None:  # the operation has run: before the response is sent
                early, call.early = call.early, None
                if call.failure is None:
                    await early.close(check_first=True)  # a commit that fails is the response
                else:
                    raised = await early.unwind(call.failure)  # a transaction rolls back
                    if raised is not call.failure:
                        raise raised
        except Exception as exc:
            if call.early is not None:
                unwound = await call.early.unwind(exc)
                if not isinstance(unwound, Exception):  # cancelled meanwhile
                    await call.stack.unwind_shielded(unwound)
                    raise unwound from None
                exc = unwound
            raised = await call.stack.unwind(exc)  # a generator dependency may translate it
            if not isinstance(raised, Exception):
                raise raised from None
            answer = await self._render(raised, app, scope, receive, send)
            if answer is not None:
                await answer(scope, receive, send)
            return
        except BaseException as exc:  # cancelled: every cleanup still runs
            if call.early is not None:
                await call.early.unwind_shielded(exc)
            await call.stack.unwind_shielded(exc)
            raise
        finally:
            _CURRENT_CALL.reset(token)
        if call.failure is not None:
            call.background.tasks.clear()  # rolled back: no side effects of work not written
        try:
            await response(scope, receive, send)
        except BaseException as exc:
            await call.stack.unwind_shielded(exc)
            raise
        if call.failure is None:
            await call.stack.close()
            return
        # A resolver failed: its dependencies see it (a transaction rolls back what it did not commit).
        raised = await call.stack.unwind(call.failure)
        if raised is not call.failure:
            raise raised

    def _refusal(self, scope: Scope) -> Response | None:
        """405 for methods other than GET and POST; 415 for a POST that is not JSON (nor, when
        uploads are on, multipart): a cross-site form or ``fetch`` without CORS cannot send it."""
        method = scope["method"]
        if method not in ("GET", "POST"):
            return error_response(405, "GraphQL only supports GET and POST requests", {"Allow": "GET, POST"})
        if method == "GET":
            return None
        accepted = {"application/json"}
        if self.multipart_uploads_enabled:
            accepted.add("multipart/form-data")
        kinds = [
            value.decode("latin-1").split(";", 1)[0].strip().lower()
            for name, value in scope["headers"]
            if name == b"content-type"
        ]
        if not kinds or any(kind not in accepted for kind in kinds):
            return error_response(415, "Send the GraphQL operation as JSON (Content-Type: application/json)")
        return None

    async def _render(
        self, exc: Exception, app: Any, scope: Scope, receive: Receive, send: Send
    ) -> Response | None:
        """The response to an exception raised before the operation ran (or strawberry's refusal)."""
        if isinstance(exc, _ViewError):
            return error_response(exc.status_code, exc.reason)
        if isinstance(exc, StarletteHTTPException):
            return error_response(exc.status_code, str(exc.detail), exc.headers)
        if isinstance(exc, RequestValidationError):
            body = error_body("Invalid request", 422, errors=[plain_error(error) for error in exc.errors()])
            return JSONResponse(body, status_code=422)
        render = getattr(app, "_render_error", None)
        if render is None:
            raise exc
        # The app's exception handlers (a 503 for an unreachable database); none: a 500.
        result: Response | None = await render(scope, receive, send, exc)
        return result

    # --- strawberry's hooks --------------------------------------------------------------------

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> dict[str, Any]:
        call = _CURRENT_CALL.get()
        assert call is not None
        assert isinstance(request, Request)
        assert isinstance(response, Response)
        response.background = call.background
        context: dict[str, Any] = {
            "request": request,
            "response": response,
            "background_tasks": call.background,
        }
        plan = self._context_plans.for_app(request.scope.get("app"))
        res = Resolution(request.scope, request.receive, None, plan.size, call.stack)
        if plan.has_early_cleanup:
            res.early = call.early = CleanupStack()
        res.connection = request
        res.response = response
        res.background = call.background
        if plan.has_params:
            try:
                res.params = plan.extract_params(request.scope, {})
            except RequestValidationError as exc:
                # As on a route: the dependencies whose inputs are valid run first (a 401 wins).
                res.params = exc.valid_params
                await run_steps(plan.steps_to_run_despite(exc.errors()), res)
                raise
        value = await run_steps(plan.steps, res)
        if value is None:
            return context
        if isinstance(value, Mapping):
            return {**context, **value}
        # An object (strawberry's ``BaseContext`` pattern): it gets what it does not set itself.
        for name, default in context.items():
            if getattr(value, name, None) is None:
                try:
                    setattr(value, name, default)
                except AttributeError:
                    raise TypeError(
                        f"{self._context_plans.owner} returned a {type(value).__name__} without a "
                        f"settable {name!r} attribute: return a mapping, or an object with "
                        "request, response and background_tasks attributes"
                    ) from None
        return value  # type: ignore[no-any-return]

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        data = await super().process_result(request, result)
        call = _CURRENT_CALL.get()
        if not result.errors or call is None:
            return data
        for error in result.errors:
            if call.failure is None and error.path is not None and unexpected(error):
                call.failure = error.original_error
        if call.failure is not None and call.mutation:
            # The transaction rolls back: what the mutation's fields answered was not written.
            data["data"] = None
        data["errors"] = [format_error(error, call.policy.mask_errors) for error in result.errors]
        return data

    async def parse_http_body(self, request: Any) -> Any:
        try:
            return await super().parse_http_body(request)
        except (AttributeError, TypeError) as exc:
            # JSON that is not an operation ("1", null, [1]): strawberry would fail with a 500.
            raise _ViewError(400, "The body must be a JSON object: a GraphQL operation") from exc

    def decode_json(self, data: str | bytes) -> object:
        try:
            return msgspec.json.decode(data)
        except (msgspec.DecodeError, RecursionError) as exc:
            # strawberry answers a JSONDecodeError 400; a nesting too deep is one too, not a 500.
            raise json.JSONDecodeError(str(exc)[:200], "", 0) from None

    def encode_json(self, data: object) -> bytes:
        return msgspec.json.encode(data)
