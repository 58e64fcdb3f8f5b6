"""Liveness and readiness endpoints that run registered checks concurrently, each with a timeout.

::

    health = Health(timeout=1.0)
    health.add_check("redis", store.ping)

    async def database(pool: Annotated[Pool, Depends(create_pool, scope="app")]) -> None:
        await pool.execute("SELECT 1")

    health.add_check("database", database)      # dependencies are injected, as in a route
    app.include_router(health.router())          # GET /health/live, GET /health/ready

Liveness answers 200 as long as the process serves requests. Readiness answers 200
``{"status": "ready", "checks": {"redis": "ok", ...}}`` or 503 with ``"status": "unavailable"`` and
the failing checks as ``"error: ..."`` or ``"timeout"``.

A check may take dependencies (``Depends(...)``, app-scoped ones included, and the readiness
``Request``), resolved by the same executor as a route's, under the app's
``dependency_overrides``; its timeout covers them, and generator dependencies are closed after
it. It cannot take request parameters or a body: that is refused when the check is added.
"""

from __future__ import annotations

import logging
import math
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from starlette.requests import HTTPConnection, Request

from ._analysis import analyze, describe
from ._app_scope import AppScope
from ._cleanup import CleanupStack
from ._executor import Resolution, run_steps
from ._plan import Plan
from .di import Depends
from .exceptions import RouteConfigError
from .responses import JSONResponse
from .routing import Router

__all__ = ["Health"]

logger = logging.getLogger("toolkit.health")

Check = Callable[..., Awaitable[Any] | Any]
_MAX_THREADS_PER_CHECK = 4
_ALLOWED = frozenset({"request", "connection", "session"})  # the injectables a check may take


def _app_scoped(plan: Plan) -> list[Depends]:
    """``Depends(..., scope="app")`` for each app-scoped dependency of ``plan``."""
    return [Depends(dependant.key, scope="app") for dependant in plan.app_scoped]  # as declared


class _Threads:
    """The worker threads of one check's sync steps. A thread still blocked at the timeout is left
    behind (it cannot be interrupted), and at most ``_MAX_THREADS_PER_CHECK`` are: past that the
    check times out at once instead of starting another, so hung probes cannot pile up threads."""

    def __init__(self) -> None:
        self.running = 0
        self._lock = threading.Lock()

    async def run_sync(self, func: Callable[..., Any], *args: Any) -> Any:
        with self._lock:
            if self.running >= _MAX_THREADS_PER_CHECK:
                raise TimeoutError(f"{self.running} threads of this check are still blocked")
            self.running += 1

        state = {"started": False, "dropped": False}

        def call() -> Any:
            with self._lock:
                if state["dropped"]:  # cancelled before a worker picked it up
                    return None
                state["started"] = True
            try:
                return func(*args)
            finally:
                with self._lock:
                    self.running -= 1

        try:
            return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
        except BaseException:
            with self._lock:
                if not state["started"]:  # it never will: count it out here
                    state["dropped"] = True
                    self.running -= 1
            raise


class _CheckResolution(Resolution):
    __slots__ = ("threads",)

    def __init__(
        self, connection: HTTPConnection | None, plan: Plan, threads: _Threads, timeout: float
    ) -> None:
        # A cleanup cut by the timeout lets the older ones finish, within the timeout again.
        stack = CleanupStack(threads.run_sync, shield_timeout=timeout) if plan.uses_stack else None
        scope = connection.scope if connection is not None else {}
        super().__init__(scope, None, None, plan.size, stack)
        self.connection = connection
        self.threads = threads

    async def run_sync(self, func: Callable[..., Any], *args: Any) -> Any:
        return await self.threads.run_sync(func, *args)


async def _run_check(plan: Plan, res: Resolution, timeout: float) -> Any:
    """Run the check's steps, then close its generator dependencies; a cleanup gets the check's
    timeout again after a failure (shielded from the cancellation, but not forever)."""
    stack = res.stack
    try:
        outcome = await run_steps(plan.steps, res)
    except BaseException as exc:
        if stack is not None:
            with anyio.move_on_after(timeout, shield=True):
                await stack.unwind(exc)
        raise
    if stack is not None:
        await stack.close()
    return outcome


class Health:
    def __init__(self, *, timeout: float = 2.0) -> None:
        self.timeout = timeout
        self.checks: dict[str, tuple[Check, float]] = {}
        # The checks' plans per app (its app-scoped values and overrides), made on first use.
        self._plans: weakref.WeakKeyDictionary[AppScope, tuple[int, Any, dict[str, Plan]]] = (
            weakref.WeakKeyDictionary()
        )
        self._no_app: tuple[int, Any, dict[str, Plan]] | None = None
        self._generation = 0  # bumped by add_check
        self._threads: dict[str, _Threads] = {}
        # The checks' app-scoped dependencies: declared on the readiness route, so the app
        # creates them at start-up (and tears them down) like any route's.
        self._app_scoped: list[Depends] = []

    def add_check(self, name: str, check: Check, *, timeout: float | None = None) -> None:
        """``check`` passes when it returns (anything but ``False``) and fails when it raises.

        Its dependencies are checked now: a check asking for request parameters, a body or a
        dependency that cannot be built is refused here, not at the first probe."""
        if name in self.checks:
            raise RouteConfigError(f"health check {name!r} is already added")
        timeout = self.timeout if timeout is None else timeout
        if not timeout > 0:
            raise ValueError(f"health check {name!r}: the timeout must be a positive number of seconds")
        plan = self._compile(name, check, AppScope(), None)  # throwaway: only to refuse mistakes
        self.checks[name] = (check, timeout)
        self._threads[name] = _Threads()
        self._app_scoped += _app_scoped(plan)
        self._generation += 1

    def _compile(self, name: str, check: Check, app_scope: AppScope | None, overrides: Any) -> Plan:
        owner = f"health check {name!r} ({describe(check)})"
        root = analyze(check, {}, owner=owner, overrides=overrides)
        plan = Plan(root, [], owner, set(), app_scope=app_scope, overrides=overrides)
        refused = [spec.name for spec in plan.scalar_specs()]
        refused += ["a body" if plan.has_body else "", "form fields" if plan.has_forms else ""]
        refused += [kwarg for step in plan.steps for kwarg, kind in step.special_args if kind not in _ALLOWED]
        refused = [what for what in refused if what]
        if refused:
            raise RouteConfigError(
                f"{owner}: a check may take dependencies, the Request and the Session, not request "
                f"parameters, a body, BackgroundTasks or a Response (it asks for {', '.join(refused)})"
            )
        return plan

    def _plans_for(self, connection: HTTPConnection | None) -> dict[str, Plan]:
        app = connection.scope.get("app") if connection is not None else None
        app_scope: AppScope | None = getattr(app, "app_scope", None)
        overrides = getattr(app, "dependency_overrides", None)
        # A new lifespan re-registers the app's app-scoped values: the plans register theirs again.
        version = (getattr(overrides, "version", 0), app_scope.lifespans if app_scope is not None else 0)
        cached = self._plans.get(app_scope) if app_scope is not None else self._no_app
        if cached is not None and cached[:2] == (self._generation, version):
            return cached[2]
        plans = {
            name: self._compile(name, check, app_scope, overrides) for name, (check, _) in self.checks.items()
        }
        entry = (self._generation, version, plans)
        if app_scope is not None:
            self._plans[app_scope] = entry
        else:
            self._no_app = entry
        return plans

    async def run(self, connection: HTTPConnection | None = None) -> tuple[bool, dict[str, str]]:
        """Run every check concurrently; ``(all passed, {name: "ok" | "error: ..." | "timeout"})``.

        ``connection``: the request of the readiness probe (its app's app-scoped values and
        overrides serve the checks' dependencies)."""
        plans = self._plans_for(connection)
        results: dict[str, str] = {}
        async with anyio.create_task_group() as tg:
            for name, (_, timeout) in self.checks.items():
                tg.start_soon(self._run_one, name, plans[name], timeout, connection, results)
        passed = len(results) == len(self.checks) and all(v == "ok" for v in results.values())
        return passed, dict(sorted(results.items()))

    async def _run_one(
        self,
        name: str,
        plan: Plan,
        timeout: float,
        connection: HTTPConnection | None,
        results: dict[str, str],
    ) -> None:
        res = _CheckResolution(connection, plan, self._threads[name], timeout)
        try:
            with anyio.fail_after(timeout):
                outcome = await _run_check(plan, res, timeout)
            results[name] = "error: check returned False" if outcome is False else "ok"
        except TimeoutError:
            results[name] = "timeout"
        except anyio.get_cancelled_exc_class():
            # The probe itself was cancelled (passed on), or the check raised a cancellation of
            # its own (a result: it did not pass, and its neighbours go on).
            results[name] = "error: cancelled"
            if anyio.current_effective_deadline() == -math.inf:
                raise
        except Exception as exc:  # a failing check is a result, not an error
            logger.warning("readiness check %s failed: %s", name, exc)
            results[name] = f"error: {type(exc).__name__}"

    def router(self, *, live_path: str = "/health/live", ready_path: str = "/health/ready") -> Router:
        router = Router(tags=["health"])

        async def live() -> dict[str, str]:
            return {"status": "ok"}

        async def ready(request: Request) -> JSONResponse:
            ok, checks = await self.run(request)
            body = {"status": "ready" if ok else "unavailable", "checks": checks}
            return JSONResponse(body, status_code=200 if ok else 503)

        router.add_api_route(live_path, live, name="health_live")
        router.add_api_route(ready_path, ready, name="health_ready", dependencies=self._app_scoped)
        return router
