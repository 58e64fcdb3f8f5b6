"""A request-head limit for servers that have none: 431 before the app sees an oversized head.

``toolkit run`` enforces its head limit in the server (``toolkit.serve``), where it also saves the
parsing. Under another server (Hypercorn, Granian, a plain uvicorn), this middleware holds the
same limit at the edge of the app::

    app.add_middleware(HeaderLimitMiddleware, max_size=32 * 1024, max_count=100)

It counts what the server handed over: the request target (path and query) and every header
field as ``name: value`` plus the line break. An HTTP request over either limit is answered 431
``{"detail": ...}`` with ``Connection: close``; a websocket handshake is refused before it is
accepted (the server answers it 403). Nothing else changes.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from ..responses import JSONResponse

__all__ = ["HeaderLimitMiddleware"]


class HeaderLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_size: int = 32 * 1024, max_count: int = 100) -> None:
        if max_size < 1024:
            raise ValueError(f"max_size must be at least 1024 bytes, got {max_size}")
        if max_count < 1:
            raise ValueError(f"max_count must be at least 1, got {max_count}")
        self.app = app
        self.max_size = max_size
        self.max_count = max_count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            problem = self._problem(scope)
            if problem is not None:
                await self._refuse(scope, receive, send, problem)
                return
        await self.app(scope, receive, send)

    def _problem(self, scope: Scope) -> str | None:
        headers = scope["headers"]
        if len(headers) > self.max_count:
            return f"Too many header fields (at most {self.max_count})"
        size = len(scope.get("raw_path") or scope["path"].encode()) + len(scope.get("query_string", b""))
        for name, value in headers:
            size += len(name) + len(value) + 4
        if size > self.max_size:
            return f"Request header fields too large (at most {self.max_size} bytes)"
        return None

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, problem: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": problem})
            return
        response = JSONResponse({"detail": problem}, status_code=431, headers={"Connection": "close"})
        await response(scope, receive, send)
