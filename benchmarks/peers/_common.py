"""What several peers do by hand, written once: no framework imports, so a peer importing it
loads nothing of another peer's.

- ``SlidingWindow``: the toolkit's default rate-limit algorithm (a sliding-window counter in a
  dict), for the peers without a limiter of their own that can express it (Starlette, FastAPI
  tuned, Litestar, BlackSheep).
- ``RequestIdTimingMiddleware``: a pure-ASGI middleware echoing a well-formed ``X-Request-ID``
  (or making one) and stamping ``X-Process-Time``, with the toolkit's two shortcuts:
  ``os.urandom(16).hex()`` ids and raw header appends (Starlette, FastAPI tuned, Litestar).
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["RawHeaders", "RequestIdTimingMiddleware", "SlidingWindow"]

RawHeaders = tuple[tuple[bytes, bytes], ...]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


class SlidingWindow:
    """``limit`` requests per ``window`` seconds per client; counters keyed by (client, window)."""

    def __init__(self, limit: int, window: int) -> None:
        self.limit, self.window = limit, window
        self.counts: dict[tuple[str, int], int] = {}
        # PERF: the constant header values encoded once (the toolkit's RateLimit does the same).
        self.limit_bytes = b"%d" % limit
        self.policy = b"%d;w=%d" % (limit, window)

    def hit(self, client: str) -> tuple[bool, RawHeaders]:
        """Count one request; whether it is allowed, and the (raw) headers that say how many remain."""
        now = time.time()
        index = int(now // self.window)
        current = self.counts.get((client, index), 0) + 1
        self.counts[(client, index)] = current
        if current == 1:  # a new window: the one before the previous is no longer needed
            self.counts.pop((client, index - 2), None)
        previous = self.counts.get((client, index - 1), 0)
        count = current + previous * (1 - (now % self.window) / self.window)
        reset = b"%d" % max(1, math.ceil((index + 1) * self.window - now))
        headers = (
            (b"ratelimit-limit", self.limit_bytes),
            (b"ratelimit-remaining", b"%d" % max(0, self.limit - math.ceil(count))),
            (b"ratelimit-reset", reset),
            (b"ratelimit-policy", self.policy),
        )
        if count > self.limit:
            return False, (*headers, (b"retry-after", reset))
        return True, headers


_WELL_FORMED_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")


class RequestIdTimingMiddleware:
    """Echo a well-formed ``X-Request-ID`` or make one; stamp ``X-Process-Time`` at response start.

    The headers are appended raw to the response start message (no ``MutableHeaders``).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = None
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                request_id = value if _WELL_FORMED_ID.fullmatch(value) else None
        if request_id is None:
            request_id = os.urandom(16).hex().encode("latin-1")  # PERF: the toolkit's: cheaper than uuid4

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", ()),
                    (b"x-process-time", b"%.6f" % (time.perf_counter() - start)),
                    (b"x-request-id", request_id),
                ]
            await send(message)

        await self.app(scope, receive, send_wrapper)
