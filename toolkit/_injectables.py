"""Values a handler or dependency receives by annotation alone: ``Request``, ``WebSocket``,
``BackgroundTasks``, ``Response``, ``Session``...

Each is one ``Injectable``: the class a parameter is annotated with, the extractor that produces
it from a ``Resolution``, and the connections that have one. Registration looks the class up here
once; a route asking for one its connection does not have is refused then, naming the route.
Adding an injectable type is one entry in ``INJECTABLES``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from starlette.background import BackgroundTasks
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from ._executor import Extractor, Resolution, Step
from .di import SecurityScopes
from .sessions._session import Session

__all__ = ["INJECTABLES", "Injectable", "injectable_for", "injectable_named"]

HTTP, WEBSOCKET = "http", "websocket"


@dataclasses.dataclass(frozen=True, slots=True)
class Injectable:
    cls: type
    kind: str  # the name registration errors and the cache key use
    extract: Extractor | None  # the same for every step; None: ``per_step`` makes each step's
    available: frozenset[str]  # the connections that have one: "http", "websocket"
    awaited: bool = False  # the extractor returns an awaitable
    reads_request: bool = False  # may read anything of the request (the cache cannot key it)
    per_step: Callable[[Step], Extractor] | None = None  # from what the plan knows of the step

    def extractor_for(self, step: Step) -> Extractor:
        """The extractor of a parameter of ``step`` (bound once, when the plan is compiled)."""
        if self.per_step is not None:
            return self.per_step(step)
        assert self.extract is not None
        return self.extract


def _connection(res: Resolution) -> Any:
    return res.connection


def _background(res: Resolution) -> BackgroundTasks:
    if res.background is None:
        res.background = BackgroundTasks()
    background: BackgroundTasks = res.background
    return background


def _response(res: Resolution) -> Response:
    response: Response | None = res.response
    if response is None:
        # PERF: what ``Response()`` would set, without its header building (it has no body).
        response = Response.__new__(Response)
        response.status_code = 0  # 0: not set by the handler; the route's status code applies
        response.background = None
        response.body = b""
        response.raw_headers = []
        res.response = response
    return response


async def loaded_session(res: Resolution) -> Session:
    session = res.scope.get("session")
    if not isinstance(session, Session):
        raise RuntimeError("a `Session` parameter needs toolkit.middleware.sessions.SessionMiddleware")
    return await session.load()


def _scopes_of(step: Step) -> Extractor:
    """A ``SecurityScopes`` parameter receives the scopes of the ``Security`` markers above its
    step (``Step.security_scopes``; none outside them)."""
    scopes = step.security_scopes

    def extract(res: Resolution) -> SecurityScopes:
        return SecurityScopes(scopes)  # a new one per request: a dependency may change its list

    return extract


_BOTH = frozenset({HTTP, WEBSOCKET})

#: Most specific first: a parameter takes the first entry its annotation is a subclass of.
INJECTABLES: tuple[Injectable, ...] = (
    Injectable(WebSocket, "websocket", _connection, frozenset({WEBSOCKET}), reads_request=True),
    Injectable(Request, "request", _connection, frozenset({HTTP}), reads_request=True),
    Injectable(HTTPConnection, "connection", _connection, _BOTH, reads_request=True),
    Injectable(BackgroundTasks, "background", _background, frozenset({HTTP})),
    Injectable(Response, "response", _response, frozenset({HTTP})),
    Injectable(Session, "session", loaded_session, _BOTH, awaited=True),
    Injectable(SecurityScopes, "security_scopes", None, _BOTH, per_step=_scopes_of),
)
_BY_KIND = {injectable.kind: injectable for injectable in INJECTABLES}


def injectable_for(annotation: Any) -> Injectable | None:
    """The injectable a parameter annotated ``annotation`` receives, if any."""
    if not isinstance(annotation, type):
        return None
    for injectable in INJECTABLES:
        if issubclass(annotation, injectable.cls):
            return injectable
    return None


def injectable_named(kind: str) -> Injectable:
    return _BY_KIND[kind]
