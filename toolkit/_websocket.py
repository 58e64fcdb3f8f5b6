"""Websocket routes: the same parameter plan and executor; the handler talks to the ``WebSocket``."""

from __future__ import annotations

from typing import Any

from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketState

from ._cleanup import CleanupStack
from ._endpoint import Endpoint
from ._executor import Resolution, run_steps
from ._injectables import WEBSOCKET
from ._plan import Plan
from ._scope_keys import WEBSOCKET_UNACCEPTED_KEY
from .exceptions import RouteConfigError

__all__ = ["WebSocketEndpoint"]


class WebSocketEndpoint(Endpoint):
    """A websocket route: same parameter plan; the handler talks to the ``WebSocket`` itself."""

    connection = WEBSOCKET

    def check_plan(self, plan: Plan) -> None:
        """Refused for the base plan and for every override plan (an override asking for a
        ``Request`` would otherwise get ``None``)."""
        for step in plan.steps:
            if step.body_args or step.form_args:
                raise RouteConfigError(
                    f"{self.route_label}: {step.name}: websocket routes cannot read a body or form fields"
                )
        super().check_plan(plan)

    async def __call__(self, scope: Scope, receive: Receive, send: Send, path_params: dict[str, Any]) -> None:
        plan = self.plan if self.plan_version == self.overrides.version else self.current_plan()
        stack = CleanupStack() if plan.uses_stack else None
        res = Resolution(scope, receive, send, plan.size, stack)
        res.connection = WebSocket(scope, receive, send)
        try:
            if plan.has_params:
                res.params = plan.extract_params(scope, path_params)
            await run_steps(plan.steps, res)
        except Exception as exc:
            if res.connection.application_state is WebSocketState.CONNECTING:
                scope[WEBSOCKET_UNACCEPTED_KEY] = True  # an HTTPException may deny the handshake
            await self._fail(scope, receive, send, exc, stack)
            return
        except BaseException as exc:  # cancelled: every cleanup still runs
            if stack is not None:
                await stack.unwind_shielded(exc)
            raise
        if stack is not None:
            await stack.close()
