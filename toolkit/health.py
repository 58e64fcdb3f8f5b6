"""Liveness and readiness endpoints that run registered checks concurrently, each with a timeout.

::

    health = Health(timeout=1.0)
    health.add_check("redis", store.ping)
    health.add_check("database", db.ping)
    app.include_router(health.router())          # GET /health/live, GET /health/ready

Liveness answers 200 as long as the process serves requests. Readiness answers 200
``{"status": "ready", "checks": {"redis": "ok", ...}}`` or 503 with ``"status": "unavailable"`` and
the failing checks as ``"error: ..."`` or ``"timeout"``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.to_thread

from .responses import JSONResponse
from .routing import Router

__all__ = ["Health"]

logger = logging.getLogger("toolkit.health")

Check = Callable[[], Awaitable[Any] | Any]


class Health:
    def __init__(self, *, timeout: float = 2.0) -> None:
        self.timeout = timeout
        self.checks: dict[str, tuple[Check, float]] = {}

    def add_check(self, name: str, check: Check, *, timeout: float | None = None) -> None:
        """``check`` passes when it returns (anything but ``False``) and fails when it raises."""
        self.checks[name] = (check, timeout if timeout is not None else self.timeout)

    async def run(self) -> tuple[bool, dict[str, str]]:
        results: dict[str, str] = {}

        async def one(name: str, check: Check, timeout: float) -> None:
            try:
                with anyio.fail_after(timeout):
                    if inspect.iscoroutinefunction(check):
                        outcome = await check()
                    else:
                        # Abandoned at the timeout: a thread cannot be interrupted, only left behind.
                        outcome = await anyio.to_thread.run_sync(check, abandon_on_cancel=True)
                        if inspect.isawaitable(outcome):
                            outcome = await outcome
                results[name] = "error: check returned False" if outcome is False else "ok"
            except TimeoutError:
                results[name] = "timeout"
            except Exception as exc:  # a failing check is a result, not an error
                logger.warning("readiness check %s failed: %s", name, exc)
                results[name] = f"error: {type(exc).__name__}"

        async with anyio.create_task_group() as tg:
            for name, (check, timeout) in self.checks.items():
                tg.start_soon(one, name, check, timeout)
        return all(v == "ok" for v in results.values()), dict(sorted(results.items()))

    def router(self, *, live_path: str = "/health/live", ready_path: str = "/health/ready") -> Router:
        router = Router(tags=["health"])

        async def live() -> dict[str, str]:
            return {"status": "ok"}

        async def ready() -> JSONResponse:
            ok, checks = await self.run()
            body = {"status": "ready" if ok else "unavailable", "checks": checks}
            return JSONResponse(body, status_code=200 if ok else 503)

        router.add_api_route(live_path, live, name="health_live")
        router.add_api_route(ready_path, ready, name="health_ready")
        return router
