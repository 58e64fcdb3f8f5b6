"""A compiled endpoint: the per-request steps of one route, run flat.

``Endpoint.__call__`` is the hot path. Everything it touches was prepared by ``Endpoint.__init__``.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.convertors import FloatConvertor, IntegerConvertor, UUIDConvertor
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ._analysis import analyze, describe
from ._app_scope import AppScope, DependencyOverrides
from ._body import (
    body_headers,
    declared_size_check,
    is_json_content_type,
    is_limited,
    limited_receive,
    read_chunks,
)
from ._cached_route import CachedRoute, cache_policy_of
from ._cleanup import CleanupStack
from ._executor import Resolution, run_steps
from ._injectables import HTTP, injectable_named
from ._json_body import PendingBodyErrors
from ._plan import Plan
from ._responder import Encoded, Responder, response_model_of
from ._route_options import RouteOptions
from ._scope_keys import RESPONSE_HEADERS_SCOPE_KEY, TIMING_SCOPE_KEY
from ._types import refuse_pydantic, strip_optional
from ._validation import ErrorEntry
from .cache import Cache
from .exceptions import HTTPException, RequestValidationError, RouteConfigError

ErrorRenderer = Callable[[Scope, Receive, Send, Exception], Awaitable[Response | None]]


class Endpoint:
    """One route's compiled plan; called with the matched path parameters."""

    def __init__(
        self,
        options: RouteOptions,
        path_params: dict[str, Any],
        *,
        render_error: ErrorRenderer,
        max_body_size: int | None,
        app_scope: AppScope | None = None,
        overrides: DependencyOverrides | None = None,
        response_cache: Cache | None = None,
        strict: bool = False,
    ) -> None:
        self.options = options
        self.strict = options.strict if options.strict is not None else strict
        self.name = describe(options.endpoint)
        self.route_label = f"{' '.join(sorted(options.methods))} {options.path} ({self.name})"
        self.path_params = path_params
        self.app_scope = app_scope
        self.overrides = overrides if overrides is not None else DependencyOverrides()
        self.base_plan = self._compile(None)
        _check_path_types(self.base_plan, path_params, self.route_label)
        self.plan = self.base_plan
        # -1: the first request checks the overrides already set (tests often set them first).
        self.plan_version = -1
        self.render_error = render_error
        self.max_body_size = options.max_body_size if options.max_body_size is not None else max_body_size
        status = options.status_code
        if status is not None and (
            not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599
        ):
            raise RouteConfigError(
                f"{self.route_label}: status_code must be an int from 100 to 599, not {status!r}"
            )
        model = response_model_of(options.response_model, options.endpoint)
        refuse_pydantic(model, f"{self.route_label}: response model")
        self.responder = Responder(
            model,
            options.response_class,
            options.status_code,
            self.route_label,
            streams=self.base_plan.streams,
            include=options.response_model_include,
            exclude=options.response_model_exclude,
            by_alias=options.response_model_by_alias,
            exclude_unset=options.response_model_exclude_unset,
            exclude_defaults=options.response_model_exclude_defaults,
            exclude_none=options.response_model_exclude_none,
        )
        self.response_model = self.responder.model
        self.status_code = self.responder.status_code
        # A cached route's handler stage is wrapped in the cache's lookup and save.
        self.cached: CachedRoute | None = None
        self.cache_policy = cache_policy_of(options, self.route_label, response_cache)
        if self.cache_policy is not None:
            assert response_cache is not None
            self.cached = CachedRoute(
                response_cache, self.cache_policy, options, self.base_plan, self.responder, self.route_label
            )

    def _compile(self, overrides: DependencyOverrides | None) -> Plan:
        """The route's plan (under ``overrides``); every misconfiguration is refused here, for the
        base plan at registration and for an override plan when it is made, naming the route."""
        try:
            root = analyze(self.options.endpoint, self.path_params, owner=self.name, overrides=overrides)
            plan = Plan(
                root,
                self.options.dependencies,
                self.name,
                set(self.path_params),
                app_scope=self.app_scope,
                overrides=overrides,
                body_name=self._body_name(),
                strict=self.strict,
            )
        except RouteConfigError as exc:
            message = str(exc)
            if message.startswith(self.name + ": "):
                message = message[len(self.name) + 2 :]  # the route label names the handler
            raise RouteConfigError(f"{self.route_label}: {message}") from None
        self.check_plan(plan)
        return plan

    connection = HTTP  # what ``check_plan`` holds injectable parameters to

    def check_plan(self, plan: Plan) -> None:
        """Refuse what could only fail per request, naming the route and the step."""
        for step in plan.steps:
            for kwarg, kind in step.special_args:
                injectable = injectable_named(kind)
                if self.connection not in injectable.available:
                    raise RouteConfigError(
                        f"{self.route_label}: {step.name} takes a {injectable.cls.__name__} "
                        f"(parameter {kwarg!r}), which {self.connection} routes do not have"
                        f"{_INSTEAD.get(kind, '')}"
                    )

    def _body_name(self) -> str:
        """``Body_<operation>`` as FastAPI names it: unique per route in an app, and stable."""
        options = self.options
        path = re.sub(r"\{([^}:]+)(:[^}]*)?\}", r"{\1}", options.path)
        method = min(options.methods).lower()
        return "Body_" + re.sub(r"\W", "_", f"{options.name}{path}_{method}")

    def current_plan(self) -> Plan:
        """The plan for the current ``dependency_overrides`` (re-compiled only when they changed)."""
        overrides = self.overrides
        if self.plan_version != overrides.version:
            if overrides and not overrides.keys().isdisjoint(self.base_plan.dependency_keys):
                self.plan = self._compile(overrides)
            else:
                self.plan = self.base_plan
            self.plan_version = overrides.version
        return self.plan

    # --- request time --------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send, path_params: dict[str, Any]) -> None:
        # PERF: one integer comparison when no override changed since the last request.
        plan = self.plan if self.plan_version == self.overrides.version else self.current_plan()
        if plan.lean and self.cached is None and TIMING_SCOPE_KEY not in scope:
            await self._call_lean(plan, scope, receive, send, path_params)
            return
        stack = CleanupStack() if plan.uses_stack else None
        if plan.needs_request and self.max_body_size is not None:
            # Whatever reads the body through the Request (the form parser, request.body() or
            # .stream() in a handler or dependency, an exception handler) counts against one
            # limit: 413 past it, and before reading anything when Content-Length says so.
            # Urlencoded forms (typed, or ``await request.form()`` by hand) get a small limit
            # unless the route sets one; the headers are read only if the body is.
            receive = limited_receive(
                receive, self.max_body_size, scope, forms=self.options.max_body_size is None
            )
        res = Resolution(scope, receive, send, plan.size, stack)
        if plan.has_early_cleanup:
            res.early = CleanupStack()
        try:
            timing: dict[str, float] | None = scope.get(TIMING_SCOPE_KEY)
            if timing is None:
                response = await self._solve(plan, res, path_params)
            else:
                response = await self._solve_timed(plan, res, path_params, timing)
            if res.early is not None:  # the handler returned: before the response is sent
                early, res.early = res.early, None
                await early.close(check_first=True)
        except ClientDisconnect:
            await _unwind_shielded(res, ClientDisconnect())
            return
        except Exception as exc:
            if res.early is not None:
                raised = await res.early.unwind(exc)
                if not isinstance(raised, Exception):
                    await _unwind_shielded(res, raised)
                    raise raised from None
                exc = raised
            await self._fail(scope, receive, send, exc, stack)
            return
        except BaseException as exc:  # cancelled (client gone, server shutting down)
            await _unwind_shielded(res, exc)
            raise
        if stack is None:
            await _deliver(response, scope, receive, send)
            return
        # Generator dependencies stay open until the response (a stream included) is sent.
        try:
            await _deliver(response, scope, receive, send)
        except BaseException as exc:
            await stack.unwind_shielded(exc)
            raise
        await stack.close(check_first=plan.uses_threads)

    async def _call_lean(
        self, plan: Plan, scope: Scope, receive: Receive, send: Send, path_params: dict[str, Any]
    ) -> None:
        """``__call__`` for a plan with nothing to clean up, no cache and no stage timings: a
        plain result of a JSON or text route is sent without a ``Response`` object."""
        if plan.needs_request and self.max_body_size is not None:
            receive = limited_receive(
                receive, self.max_body_size, scope, forms=self.options.max_body_size is None
            )
        try:
            if plan.bare is not None:  # PERF: a handler taking nothing
                result = await plan.bare()
                reply = self.responder.encode(result) or self.responder.build(result, None, None)
            else:
                res = Resolution(scope, receive, send, plan.size, None)
                if plan.has_inputs:
                    errors = self._read_head(plan, res, path_params)
                    if plan.reads_body or errors:
                        await self._read_body(plan, res, errors)
                reply = self._reply(await run_steps(plan.steps, res), res)
        except ClientDisconnect:
            return
        except Exception as exc:
            await self._fail(scope, receive, send, exc, None)
            return
        if isinstance(reply, tuple):  # PERF: ``_deliver``, inlined
            status, headers, body = reply
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        else:
            await reply(scope, receive, send)

    async def _solve(self, plan: Plan, res: Resolution, path_params: dict[str, Any]) -> Reply:
        """Read and validate the inputs, run the dependencies and the handler into a response."""
        if plan.has_inputs:
            errors = self._read_head(plan, res, path_params)
            if plan.reads_body or errors:
                await self._read_body(plan, res, errors)
        if self.cached is None:
            # PERF: one run for the dependencies and the handler.
            return self._reply(await run_steps(plan.steps, res), res)
        if plan.dependency_steps:
            await run_steps(plan.dependency_steps, res)
        return await self.cached.respond(plan, res)  # the handler, unless the cache has the response

    async def _solve_timed(
        self, plan: Plan, res: Resolution, path_params: dict[str, Any], timing: dict[str, float]
    ) -> Reply:
        """``_solve`` with stage timings for Server-Timing (``TimingMiddleware`` asked for them)."""
        started = time.perf_counter()
        if plan.has_inputs:
            errors = self._read_head(plan, res, path_params)
            if plan.reads_body or errors:
                await self._read_body(plan, res, errors)
        if plan.dependency_steps:
            await run_steps(plan.dependency_steps, res)
        handler_started = time.perf_counter()
        timing["deps"] = handler_started - started
        if self.cached is not None:  # the cache's lookup, handler and save: one stage
            response = await self.cached.respond(plan, res)
            timing["handler"] = time.perf_counter() - handler_started
            return response
        result = await run_steps(plan.handler_steps, res)
        encode_started = time.perf_counter()
        timing["handler"] = encode_started - handler_started
        reply = self._reply(result, res)
        timing["encode"] = time.perf_counter() - encode_started
        return reply

    def _reply(self, result: Any, res: Resolution) -> Reply:
        """The response to send: encoded here when it can be (``Responder.encode``), else built."""
        if res.background is None:
            encoded = self.responder.encode(result, res.response)
            if encoded is not None:
                return encoded
        return self.responder.build(result, res.background, res.response)

    def _read_head(self, plan: Plan, res: Resolution, path_params: dict[str, Any]) -> list[ErrorEntry]:
        """The validated parameters (and the ``Request``); the parameters' errors, if any."""
        errors: list[ErrorEntry] = []
        if plan.has_params:
            try:
                res.params = plan.extract_params(res.scope, path_params)
            except RequestValidationError as exc:
                errors = exc.errors()
                res.params = exc.valid_params
        if plan.needs_request:
            res.connection = Request(res.scope, res.receive, res.send)
        return errors

    async def _read_body(self, plan: Plan, res: Resolution, errors: list[ErrorEntry]) -> None:
        """The validated body or form; then, if anything failed, the 422.

        Errors are collected across parameters, body and form, so one 422 lists every failing
        field. Before it is raised, in FastAPI's order, the dependencies whose own inputs are
        valid still run (an auth check's 401 wins over the handler's 422).
        """
        errors = list(errors)
        pending: PendingBodyErrors | None = None
        body_read = form_read = True
        raw: bytes | None = None
        if plan.has_body:
            try:
                raw = await self._read_json(res)
                res.body = plan.decode_body(raw)
            except PendingBodyErrors as exc:
                errors += exc.errors()
                pending = exc
                body_read = False
            except RequestValidationError as exc:
                errors += exc.errors()
                body_read = False
        if plan.has_forms:
            try:
                res.form = await self._read_form(plan, res)
            except RequestValidationError as exc:
                errors += exc.errors()
                form_read = False
        if errors:
            gates = plan.steps_to_run_despite(errors, body_read=body_read, form_read=form_read)
            await run_steps(gates, res)
            invalid = RequestValidationError(errors if pending is None else pending.complete(errors))
            invalid.raw_body = raw  # ``exc.body``, parsed if a handler asks (FastAPI's recipe does)
            raise invalid

    async def _read_json(self, res: Resolution) -> bytes:
        """The raw body: 413 past the limit (before reading when ``Content-Length`` says so), 415
        when it is not JSON."""
        content_length, content_type = body_headers(res.scope)
        limit = self.max_body_size
        if limit is not None:
            declared_size_check(content_length, limit)
        message = await res.receive()
        if message["type"] == "http.request" and not message.get("more_body", False):
            # PERF: most bodies arrive in one message.
            body: bytes = message.get("body", b"")
            if limit is not None and len(body) > limit:
                raise HTTPException(413, f"Request body is larger than {limit} bytes")
        else:
            body = await read_chunks(message, res.receive, limit)
        if res.connection is not None:
            # Let an injected Request still read the body it shares the receive channel with.
            res.connection._body = body
        # PERF: the common exact value first; the full media-type parse only otherwise.
        if body and content_type != "application/json" and not is_json_content_type(content_type):
            raise HTTPException(
                415, "Unsupported Media Type: send the body as JSON with Content-Type: application/json"
            )
        return body

    @staticmethod
    async def _read_form(plan: Plan, res: Resolution) -> dict[str, Any]:
        request = res.connection
        assert isinstance(request, Request)
        assert res.stack is not None
        form = await request.form(max_files=1000, max_fields=1000, max_part_size=1024 * 1024)
        res.stack.push_async_callback(form.close)
        return await plan.extract_form(form)

    async def _fail(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        exc: Exception,
        stack: CleanupStack | None,
    ) -> None:
        """Let generator dependencies see ``exc``, then render what they leave (or re-raise)."""
        if stack is not None:
            raised = await stack.unwind(exc)
            if not isinstance(raised, Exception):
                raise raised
            exc = raised
        if self.max_body_size is not None and not is_limited(receive):
            # An exception handler reading the body (request.body()) is held to the limit too.
            receive = limited_receive(receive, self.max_body_size, scope)
        error_response = await self.render_error(scope, receive, send, exc)
        if error_response is not None:
            extra = scope.get(RESPONSE_HEADERS_SCOPE_KEY)
            if extra:
                have = {key for key, _ in error_response.raw_headers}
                error_response.raw_headers.extend(h for h in extra if h[0] not in have)
            await error_response(scope, receive, send)


# What an endpoint sends: a response, or (``Responder.encode``) a plain result's status, headers
# and body, sent as two ASGI messages.
Reply = Response | Encoded


async def _deliver(reply: Reply, scope: Scope, receive: Receive, send: Send) -> None:
    if isinstance(reply, tuple):
        status, headers, body = reply
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    else:
        await reply(scope, receive, send)


async def _unwind_shielded(res: Resolution, exc: BaseException) -> None:
    """Run what is left of the cleanups (the function-scoped first), shielded from cancellation."""
    if res.early is not None:
        await res.early.unwind_shielded(exc)
    if res.stack is not None:
        await res.stack.unwind_shielded(exc)


_INSTEAD = {
    "websocket": " (use Request or HTTPConnection here)",
    "request": " (use WebSocket or HTTPConnection here)",
}

_CONVERTOR_OUTPUT = {IntegerConvertor: int, FloatConvertor: float, UUIDConvertor: uuid.UUID}


def _check_path_types(plan: Plan, convertors: dict[str, Any], owner: str) -> None:
    """``{x:int}`` with ``x: str`` (or ``{x:float}`` with ``x: int``) could never validate: refuse it."""
    for spec in plan.path_specs():
        produced = _CONVERTOR_OUTPUT.get(type(convertors.get(spec.key)))
        if produced is None:
            continue
        declared = strip_optional(spec.annotation)
        if (
            declared is str
            or (declared is int and produced is not int)
            or (declared is uuid.UUID and produced is not uuid.UUID)
        ):
            raise RouteConfigError(
                f"{owner}: path parameter {spec.key!r} is converted to {produced.__name__} by the route "
                f"template but annotated {declared!r}"
            )
