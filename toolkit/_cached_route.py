"""A cached route: the endpoint's handler stage, wrapped in a cache lookup and save.

The endpoint runs its inputs and dependencies as usual (an auth check still runs on a hit), then
calls ``CachedRoute.respond`` instead of the handler: a hit is served from the store; a miss runs
the handler and saves its response. What the key covers is decided by ``_route_cache``.
"""

from __future__ import annotations

import inspect
from typing import Any

import msgspec
from starlette.responses import Response
from starlette.types import Scope

from ._body import header_value
from ._executor import Resolution, run_steps
from ._plan import Plan
from ._responder import Responder, extra_headers
from ._route_cache import KeySpec, key_spec, request_key, resource_key
from ._route_options import RouteOptions
from ._validation import split_error
from .cache import Cache, CachePolicy, RouteKey, cached_response, vary_names
from .exceptions import RouteConfigError
from .sessions._session import Session

__all__ = ["CachedRoute", "cache_policy_of"]

_MAX_LEARNED_VARY = 16
_BODY_HEADERS = (b"content-length", b"content-type")


def cache_policy_of(options: RouteOptions, owner: str, cache: Cache | None) -> CachePolicy | None:
    """The route's ``cache=`` (or ``@cached`` policy), checked; ``None`` when it is not cached."""
    policy = (
        options.cache if options.cache is not None else getattr(options.endpoint, "__toolkit_cache__", None)
    )
    if policy is None:
        return None
    if isinstance(policy, int):
        policy = CachePolicy(policy)
    if not options.methods <= {"GET", "HEAD"}:
        raise RouteConfigError(f"{owner}: only GET routes can cache their responses")
    if inspect.isasyncgenfunction(options.endpoint) or inspect.isgeneratorfunction(options.endpoint):
        raise RouteConfigError(
            f"{owner}: a handler that yields streams its response, which a cache cannot keep"
        )
    if cache is None:
        raise RouteConfigError(f"{owner}: response caching needs a cache: App(cache=Cache(store))")
    return policy


def path_values_from(plan: Plan, kwargs: dict[str, Any]) -> list[Any]:
    """The path parameters' values as a request would carry them, from values given by parameter
    name (``Cache.invalidate``); a wrong call is reported in the handler's terms."""
    names = {spec.name: spec for spec in plan.scalar_specs()}
    unknown = sorted(set(kwargs) - set(names))
    if unknown:
        known = ", ".join(names) or "none"
        raise TypeError(
            f"{plan.owner}: no parameter named {', '.join(map(repr, unknown))} (its parameters: {known})"
        )
    values: list[Any] = []
    for spec in [
        *plan.path_specs(),
        *(s for s in names.values() if s.source != "path" and s.name in kwargs),
    ]:
        if spec.name not in kwargs:
            raise TypeError(f"{plan.owner}: parameter {spec.name!r} is required (it is in the path)")
        try:
            value = msgspec.convert(kwargs[spec.name], spec.annotation, strict=False)
        except msgspec.ValidationError as exc:
            message, _ = split_error(exc)
            raise TypeError(f"{plan.owner}: parameter {spec.name!r}: {message}") from None
        if spec.source == "path":
            values.append(value)
    return values


class CachedRoute:
    """The handler stage of one cached route (``Endpoint.respond``)."""

    def __init__(
        self,
        cache: Cache,
        policy: CachePolicy,
        options: RouteOptions,
        base_plan: Plan,
        responder: Responder,
        owner: str,
    ) -> None:
        self.cache = cache
        self.policy = policy
        self.responder = responder
        self.owner = owner
        self.route = f"{options.path}#{options.name}"  # route names may repeat; paths do not
        self.base_plan = base_plan
        self._spec_plan: Plan | None = None
        self._spec = KeySpec()
        self._learned_vary: tuple[str, ...] = ()  # header names this route's responses vary on
        self.key_spec(base_plan)  # refuse a route that cannot be keyed safely, now
        cache.register_route(options.endpoint, options.name, self.route, policy.expire, self.invalidation_key)

    def key_spec(self, plan: Plan) -> KeySpec:
        if self._spec_plan is not plan:  # the base plan, or one compiled under overrides
            self._spec = key_spec(plan, self.policy, self.owner)
            self._spec_plan = plan
        return self._spec

    def invalidation_key(self, kwargs: dict[str, Any]) -> bytes:
        """The resource digest of requests whose path parameters had these values."""
        return resource_key(path_values_from(self.base_plan, kwargs))

    def route_key(self, plan: Plan, params: Any, scope: Scope) -> RouteKey:
        path_values = [getattr(params, field) for _, field in plan.path_fields]
        resource, entry = request_key(self.key_spec(plan), params, path_values, scope, self._learned_vary)
        return RouteKey(self.route, resource, entry)

    async def respond(self, plan: Plan, res: Resolution) -> Response:
        """After the dependencies, before the handler: serve a hit, or run the handler and save."""
        scope = res.scope
        spec = self.key_spec(plan)
        unkeyed = spec.unkeyed_credentials
        if unkeyed:
            for name, _ in scope["headers"]:  # PERF: a loop, not any() over a generator
                if name in unkeyed:
                    # Credentials the key does not cover may still decide the response (a
                    # middleware can put the caller in a context variable): served uncached
                    # (RFC 9111 3.5).
                    result = await run_steps(plan.handler_steps, res)
                    return self.responder.build(result, res.background, res.response)
        key = self.route_key(plan, res.params, scope)
        # Headers set on an injected Response after this point are the handler's: stored.
        handler_mark = len(res.response.raw_headers) if res.response is not None else 0
        entry = await self.cache.lookup(key, scope, self.policy.expire)
        if entry is not None:
            hit = cached_response(entry, header_value(scope, b"if-none-match"), spec.route_vary)
            if res.response is not None:  # what the dependencies set is per request
                hit.raw_headers.extend(extra_headers(res.response))
            hit.background = res.background
            return hit
        result = await run_steps(plan.handler_steps, res)
        return await self._save(result, res, handler_mark, key, plan)

    async def _save(
        self, result: Any, res: Resolution, handler_mark: int, key: RouteKey, plan: Plan
    ) -> Response:
        """Cache the handler's own response, with the headers the handler set on an injected
        ``Response``; those the dependencies set belong to this request only (the dependencies
        run again on a hit) and are added after saving."""
        sub_response: Response | None = res.response
        if sub_response is not None and sub_response.status_code:
            return self.responder.build(result, res.background, sub_response)  # a custom status: not cached
        per_request = None
        own = self.responder.build(result, res.background, None)
        if sub_response is not None:
            raw = sub_response.raw_headers
            per_request = [h for h in raw[:handler_mark] if h[0] not in _BODY_HEADERS]
            own.raw_headers.extend(h for h in raw[handler_mark:] if h[0] not in _BODY_HEADERS)
        private, also_vary = self._sharing(plan, res.scope)
        varies = vary_names([*own.raw_headers, *(per_request or ())])
        if varies is not None:
            learned = tuple(sorted({*self._learned_vary, *varies, *also_vary}))
            if learned != self._learned_vary and len(learned) <= _MAX_LEARNED_VARY:
                # Later requests key on these headers too, so each variant gets its own entry.
                self._learned_vary = learned
                key.entry = self.route_key(plan, res.params, res.scope).entry
        return await self.cache.save(
            key,
            own,
            self.policy,
            per_request,
            res.scope,
            private=private,
            also_vary=also_vary,
            route_vary=self.key_spec(plan).route_vary,
        )

    def _sharing(self, plan: Plan, scope: Scope) -> tuple[bool, tuple[str, ...]]:
        """``(private, extra Vary names)`` of a response about to be saved."""
        spec = self.key_spec(plan)
        private = spec.private
        cookie = spec.session
        session = scope.get("session")
        if isinstance(session, Session) and session.accessed:
            # Read by code the key does not cover (a dependency using request.session): the
            # response may differ per session cookie, as the middleware's Vary: Cookie says.
            private = True
            cookie = cookie or (not spec.reads_session and not self.policy.shared)
        return private, ("cookie",) if cookie else ()
