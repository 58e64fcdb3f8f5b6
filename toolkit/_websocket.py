"""Websocket routes: the same parameter plan; the handler talks to the ``WebSocket`` itself."""

from __future__ import annotations

from typing import Any

from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from ._cleanup import CleanupStack
from ._endpoint import Endpoint, call_step, loaded_session
from ._plan import Plan
from .exceptions import RouteConfigError

__all__ = ["WebSocketEndpoint"]


class WebSocketEndpoint(Endpoint):
    """A websocket route: same parameter plan; the handler talks to the ``WebSocket`` itself."""

    def check_plan(self, plan: Plan) -> None:
        """Refused for the base plan and for every override plan (an override asking for a
        ``Request`` would otherwise get ``None``)."""
        for step in plan.steps:
            if step.body_args or step.form_args:
                raise RouteConfigError(
                    f"{self.route_label}: {step.name}: websocket routes cannot read a body or form fields"
                )
            for _, kind in step.special_args:
                if kind in ("request", "background", "response"):
                    raise RouteConfigError(
                        f"{self.route_label}: {step.name}: {kind} cannot be injected in a websocket route"
                    )

    async def __call__(self, scope: Scope, receive: Receive, send: Send, path_params: dict[str, Any]) -> None:
        websocket = WebSocket(scope, receive, send)
        plan = self.plan if self.plan_version == self.overrides.version else self.current_plan()
        stack = CleanupStack() if plan.uses_stack else None
        try:
            params = plan.extract_params(scope, path_params) if plan.has_params else None
            values: list[Any] = [None] * len(plan.steps)
            for index, step in enumerate(plan.steps):
                kwargs: dict[str, Any] = {kw: getattr(params, f) for kw, f in step.scalar_args}
                for kwarg, kind in step.special_args:
                    if kind == "session":
                        kwargs[kwarg] = await loaded_session(scope)
                    else:
                        kwargs[kwarg] = websocket if kind in ("websocket", "connection") else None
                for kwarg, dep_index in step.dep_args:
                    kwargs[kwarg] = values[dep_index]
                values[index] = await call_step(step, kwargs, stack)
        except Exception as exc:
            await self._fail(scope, receive, send, exc, stack)
            return
        except BaseException as exc:  # cancelled: every cleanup still runs
            if stack is not None:
                await stack.unwind_shielded(exc)
            raise
        if stack is not None:
            await stack.close()

