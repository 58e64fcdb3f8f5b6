"""A compiled endpoint: the per-request steps of one route, run flat.

``Endpoint.__call__`` is the hot path. Everything it touches was prepared by ``Endpoint.__init__``.
"""

from __future__ import annotations

import functools
import inspect
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread
from starlette.background import BackgroundTasks
from starlette.convertors import FloatConvertor, IntegerConvertor, UUIDConvertor
from starlette.requests import ClientDisconnect, HTTPConnection, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ._analysis import analyze, describe, strip_optional
from ._app_scope import AppScope, DependencyOverrides
from ._body import (
    body_headers,
    declared_size_check,
    header_value,
    is_json_content_type,
    is_limited,
    limited_receive,
    read_chunks,
)
from ._cleanup import CleanupStack
from ._plan import (
    ASYNC,
    ASYNC_GEN,
    SYNC_GEN,
    SYNC_INLINE,
    PendingBodyErrors,
    Plan,
    Step,
)
from ._responder import Responder, extra_headers, response_model_of, sub_response_slot
from ._route_cache import KeySpec, key_spec, request_key, resource_key
from ._route_options import RouteOptions
from ._scope_keys import RESPONSE_HEADERS_SCOPE_KEY, TIMING_SCOPE_KEY
from .cache import Cache, CachePolicy, RouteKey, cached_response, vary_names
from .exceptions import HTTPException, RequestValidationError, RouteConfigError
from .sessions._session import Session

ErrorRenderer = Callable[[Scope, Receive, Send, Exception], Awaitable[Response | None]]

_NO_BODY_STATUSES = frozenset({204, 304})
_MAX_LEARNED_VARY = 16
#: The body limit of typed urlencoded forms on routes without their own ``max_body_size``.
URLENCODED_FORM_LIMIT = 256 * 1024
_BODY_HEADERS = (b"content-length", b"content-type")


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
    ) -> None:
        self.options = options
        self.name = describe(options.endpoint)
        self.route_label = f"{' '.join(sorted(options.methods))} {options.path} ({self.name})"
        self.path_params = path_params
        self.app_scope = app_scope
        self.overrides = overrides if overrides is not None else DependencyOverrides()
        self.base_plan = self._compile(None)
        _check_path_types(self.base_plan, path_params, self.name)
        self.plan = self.base_plan
        # -1: the first request checks the overrides already set (tests often set them first).
        self.plan_version = -1
        self.render_error = render_error
        self.max_body_size = options.max_body_size if options.max_body_size is not None else max_body_size
        self.responder = Responder(
            response_model_of(options.response_model, options.endpoint),
            options.response_class,
            options.status_code or 200,
            self.name,
        )
        self.response_model = self.responder.model
        self.status_code = self.responder.status_code
        self.response_cache = response_cache
        self.cache_policy = _cache_policy(options, self.name, response_cache)
        self.cache_route = f"{options.path}#{options.name}"  # route names may repeat; paths do not
        self._key_spec_plan: Plan | None = None
        self._key_spec_value = KeySpec()
        self._learned_vary: tuple[str, ...] = ()  # header names this route's responses vary on
        if self.cache_policy is not None:
            self._key_spec(self.base_plan)  # refuse a route that cannot be keyed safely, now

    def _compile(self, overrides: DependencyOverrides | None) -> Plan:
        root = analyze(self.options.endpoint, self.path_params, owner=self.name, overrides=overrides)
        plan = Plan(
            root,
            self.options.dependencies,
            self.name,
            set(self.path_params),
            app_scope=self.app_scope,
            overrides=overrides,
            body_name=self._body_name(),
        )
        self.check_plan(plan)  # the base plan at registration, an override plan when it is made
        return plan

    def check_plan(self, plan: Plan) -> None:
        """Refuse what could only fail per request, naming the route and the step."""
        for step in plan.steps:
            if any(kind == "websocket" for _, kind in step.special_args):
                raise RouteConfigError(
                    f"{self.route_label}: {step.name} takes a WebSocket, which only websocket routes "
                    "have (use Request or HTTPConnection here)"
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
        stack = CleanupStack() if plan.uses_stack else None
        if plan.needs_request and self.max_body_size is not None:
            # Whatever reads the body through the Request (the form parser, request.body() or
            # .stream() in a handler or dependency, an exception handler) counts against one
            # limit: 413 past it, and before reading anything when Content-Length says so.
            receive = limited_receive(receive, self._request_body_limit(plan, scope), scope)
        try:
            response = await self._solve(plan, scope, receive, send, path_params, stack)
        except ClientDisconnect:
            if stack is not None:
                await stack.unwind_shielded(ClientDisconnect())
            return
        except Exception as exc:
            await self._fail(scope, receive, send, exc, stack)
            return
        except BaseException as exc:  # cancelled (client gone, server shutting down)
            if stack is not None:
                await stack.unwind_shielded(exc)
            raise
        if stack is None:
            await response(scope, receive, send)
            return
        # Generator dependencies stay open until the response (a stream included) is sent.
        try:
            await response(scope, receive, send)
        except BaseException as exc:
            await stack.unwind_shielded(exc)
            raise
        await stack.close()

    def _request_body_limit(self, plan: Plan, scope: Scope) -> int:
        assert self.max_body_size is not None
        if plan.has_forms and self.options.max_body_size is None:
            # python-multipart parses a urlencoded body byte by byte in Python (10 MB of "&" is
            # seconds of CPU): typed urlencoded forms get a small limit unless the route sets one.
            kind = body_headers(scope)[1]
            if (
                kind is not None
                and kind.split(";", 1)[0].strip().lower() == "application/x-www-form-urlencoded"
            ):
                return min(self.max_body_size, URLENCODED_FORM_LIMIT)
        return self.max_body_size

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

    async def _solve(
        self,
        plan: Plan,
        scope: Scope,
        receive: Receive,
        send: Send,
        path_params: dict[str, Any],
        stack: CleanupStack | None,
    ) -> Response:
        # Stage timings for Server-Timing, only when TimingMiddleware asked for them.
        timing: dict[str, float] | None = scope.get(TIMING_SCOPE_KEY)
        last = len(plan.steps) - 1
        if timing is not None:
            solve_started = time.perf_counter()
        use_cache = self.cache_policy is not None and scope["method"] in ("GET", "HEAD")
        params: Any = None
        # Errors are collected across parameters, body and form, so one 422 lists every
        # failing field of the request.
        errors: list[dict[str, Any]] = []
        if plan.has_params:
            try:
                params = plan.extract_params(scope, path_params)
            except RequestValidationError as exc:
                errors += exc.errors
                params = exc.valid_params
        request: Request | None = None
        body: Any = None
        pending: PendingBodyErrors | None = None
        if plan.needs_request:
            request = Request(scope, receive, send)
        if plan.has_body:
            content_length, content_type = body_headers(scope)
            raw = await self._read_body(receive, request, content_length)
            # PERF: the common exact value first; the full media-type parse only otherwise.
            if raw and content_type != "application/json" and not is_json_content_type(content_type):
                raise HTTPException(
                    415, "Unsupported Media Type: send the body as JSON with Content-Type: application/json"
                )
            try:
                body = plan.decode_body(raw)
            except PendingBodyErrors as exc:
                errors += exc.errors
                pending = exc
            except RequestValidationError as exc:
                errors += exc.errors
        form_values: dict[str, Any] | None = None
        if plan.has_forms:
            assert request is not None
            assert stack is not None
            form = await request.form(max_files=1000, max_fields=1000, max_part_size=1024 * 1024)
            stack.push_async_callback(form.close)
            try:
                form_values = await plan.extract_form(form)
            except RequestValidationError as exc:
                errors += exc.errors
        only: frozenset[int] | None = None
        if errors:
            # FastAPI's order: dependencies whose own inputs are valid still run (an auth check's
            # 401 wins over the handler's 422); then the 422 lists every error.
            only = plan.steps_to_run_despite(errors)
            if not only:
                raise _validation_error(errors, pending)

        values: list[Any] = [None] * len(plan.steps)
        background: BackgroundTasks | None = None
        sub_response: Response | None = None
        for index, step in enumerate(plan.steps):
            if only is not None and index not in only:
                continue
            kwargs: dict[str, Any] = {}
            for kwarg, field in step.scalar_args:
                kwargs[kwarg] = getattr(params, field)
            if step.body_args:
                kwargs.update(plan.body_args_for(step, body))
            if form_values is not None:
                for kwarg, key in step.form_args:
                    kwargs[kwarg] = form_values[key]
            for kwarg, kind in step.special_args:
                if kind == "request" or kind == "connection":
                    kwargs[kwarg] = request if request is not None else HTTPConnection(scope)
                elif kind == "background":
                    if background is None:
                        background = BackgroundTasks()
                    kwargs[kwarg] = background
                elif kind == "response":
                    if sub_response is None:
                        sub_response = sub_response_slot()
                    kwargs[kwarg] = sub_response
                elif kind == "session":
                    kwargs[kwarg] = await loaded_session(scope)
            for kwarg, dep_index in step.dep_args:
                kwargs[kwarg] = values[dep_index]
            if timing is not None and index == last:
                handler_started = time.perf_counter()
                timing["deps"] = handler_started - solve_started
            if use_cache and index == last:
                # After the dependencies (an auth check still runs), before the handler.
                route_key = self._route_key(plan, params, scope)
                # Headers set on an injected Response after this point are the handler's: stored.
                handler_mark = len(sub_response.raw_headers) if sub_response is not None else 0
                hit = await self._cached_response(route_key, scope)
                if hit is not None:
                    if sub_response is not None:  # what the dependencies set is per request
                        hit.raw_headers.extend(extra_headers(sub_response))
                    hit.background = background
                    return hit
            if step.kind == ASYNC:  # PERF: the common case without a call to call_step
                values[index] = await step.call(**kwargs)
            else:
                values[index] = await call_step(step, kwargs, stack)
        if only is not None:
            raise _validation_error(errors, pending)

        if use_cache:
            return await self._build_and_cache(
                values[-1], background, sub_response, handler_mark, route_key, plan, params, scope
            )
        if timing is None:
            return self.responder.build(values[-1], background, sub_response)
        encode_started = time.perf_counter()
        timing["handler"] = encode_started - handler_started
        response = self.responder.build(values[-1], background, sub_response)
        timing["encode"] = time.perf_counter() - encode_started
        return response

    async def _build_and_cache(
        self,
        result: Any,
        background: BackgroundTasks | None,
        sub_response: Response | None,
        handler_mark: int,
        key: RouteKey,
        plan: Plan,
        params: Any,
        scope: Scope,
    ) -> Response:
        """Cache the handler's own response, with the headers the handler set on an injected
        ``Response``; those the dependencies set belong to this request only (the dependencies
        run again on a hit) and are added after saving."""
        assert self.response_cache is not None
        policy = self.cache_policy
        assert policy is not None
        if sub_response is not None and sub_response.status_code:
            return self.responder.build(result, background, sub_response)  # a custom status: not cached
        per_request = None
        own = self.responder.build(result, background, None)
        if sub_response is not None:
            raw = sub_response.raw_headers
            per_request = [h for h in raw[:handler_mark] if h[0] not in _BODY_HEADERS]
            own.raw_headers.extend(h for h in raw[handler_mark:] if h[0] not in _BODY_HEADERS)
        spec = self._key_spec(plan)
        private = spec.private
        also_vary: tuple[str, ...] = ("cookie",) if spec.session else ()
        session = scope.get("session")
        if isinstance(session, Session) and session.accessed:
            # Read by code the key does not cover (a dependency using request.session): the
            # response may differ per session cookie, as the middleware's Vary: Cookie says.
            private = True
            if not spec.reads_session and not policy.shared:
                also_vary = ("cookie",)
        varies = vary_names([*own.raw_headers, *(per_request or ())])
        if varies is not None:
            learned = tuple(sorted({*self._learned_vary, *varies, *also_vary}))
            if learned != self._learned_vary and len(learned) <= _MAX_LEARNED_VARY:
                # Later requests key on these headers too, so each variant gets its own entry.
                self._learned_vary = learned
                key.entry = self._route_key(plan, params, scope).entry
        return await self.response_cache.save(
            key, own, policy, per_request, scope, private=private, also_vary=also_vary
        )

    # --- response cache ------------------------------------------------------------------

    def _key_spec(self, plan: Plan) -> KeySpec:
        if self._key_spec_plan is not plan:
            assert self.cache_policy is not None
            self._key_spec_value = key_spec(plan, self.cache_policy, self.name)
            self._key_spec_plan = plan
        return self._key_spec_value

    def _route_key(self, plan: Plan, params: Any, scope: Scope) -> RouteKey:
        path_values = [getattr(params, field) for _, field in plan.path_fields]
        resource, entry = request_key(self._key_spec(plan), params, path_values, scope, self._learned_vary)
        return RouteKey(self.cache_route, resource, entry)

    def cache_resource_key(self, kwargs: dict[str, Any]) -> bytes:
        """The resource digest of requests whose path parameters had these values (invalidation)."""
        return resource_key(self.base_plan.path_values_from(kwargs))

    async def _cached_response(self, key: RouteKey, scope: Scope) -> Response | None:
        assert self.response_cache is not None
        assert self.cache_policy is not None
        entry = await self.response_cache.lookup(key, scope)
        if entry is None:
            return None
        return cached_response(entry, header_value(scope, b"if-none-match"), self.cache_policy.vary)

    async def _read_body(
        self, receive: Receive, request: Request | None, content_length: str | None
    ) -> bytes:
        limit = self.max_body_size
        if limit is not None:
            declared_size_check(content_length, limit)
        message = await receive()
        if message["type"] == "http.request" and not message.get("more_body", False):
            # PERF: most bodies arrive in one message.
            body: bytes = message.get("body", b"")
            if limit is not None and len(body) > limit:
                raise HTTPException(413, f"Request body is larger than {limit} bytes")
        else:
            body = await read_chunks(message, receive, limit)
        if request is not None:
            # Let an injected Request still read the body it shares the receive channel with.
            request._body = body
        return body


def _validation_error(
    errors: list[dict[str, Any]], pending: PendingBodyErrors | None
) -> RequestValidationError:
    return RequestValidationError(errors if pending is None else pending.complete(errors))


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


async def call_step(step: Step, kwargs: dict[str, Any], stack: CleanupStack | None) -> Any:
    kind = step.kind
    if kind == ASYNC:
        return await step.call(**kwargs)
    if kind == SYNC_INLINE:
        return step.call(**kwargs)
    if kind == ASYNC_GEN:
        assert stack is not None
        return await stack.enter_async_gen(step.call(**kwargs))
    if kind == SYNC_GEN:
        assert stack is not None
        return await stack.enter_sync_gen(step.call(**kwargs))
    result = await anyio.to_thread.run_sync(functools.partial(step.call, **kwargs))
    if inspect.isawaitable(result):  # a sync callable that returned a coroutine (e.g. a wrapper)
        result = await result
    return result


async def loaded_session(scope: Scope) -> Session:
    session = scope.get("session")
    if not isinstance(session, Session):
        raise RuntimeError("a `Session` parameter needs toolkit.middleware.sessions.SessionMiddleware")
    return await session.load()


def _cache_policy(options: RouteOptions, owner: str, cache: Cache | None) -> CachePolicy | None:
    policy = (
        options.cache if options.cache is not None else getattr(options.endpoint, "__toolkit_cache__", None)
    )
    if policy is None:
        return None
    if isinstance(policy, int):
        policy = CachePolicy(policy)
    if not options.methods <= {"GET", "HEAD"}:
        raise RouteConfigError(f"{owner}: only GET routes can cache their responses")
    if cache is None:
        raise RouteConfigError(f"{owner}: response caching needs a cache: App(cache=Cache(store))")
    return policy
