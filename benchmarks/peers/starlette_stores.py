"""Bare Starlette's ``store_app``: a response cache and a rate limiter written by hand, with dicts.

The floor for the toolkit's ``cache=60`` and ``RateLimiter(MemoryStore())``: the same observable
work (the cached body replayed with ``ETag``, ``Cache-Control`` and ``Age``, and a 304 for a
matching ``If-None-Match``; the toolkit's sliding-window counter per client address, with its
``RateLimit-*`` headers on every response and ``Retry-After`` on a 429), and nothing generic:
one key per route, no store protocol, no serialization of cache entries.

Imported only when the ``cached``/``ratelimited`` cases ask for ``store_app`` (see ``starlette_app``).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..spec import CACHE_SECONDS, RATE_LIMIT, TIGHT_LIMIT
from ._fakes import CATALOG
from .starlette_app import JSONResponse, encoder

Endpoint = Callable[[Request], Awaitable[Response]]

# --- the response cache: route key -> (body, etag, stored at) ----------------------------------

_cache: dict[str, tuple[bytes, str, float]] = {}


async def cached(request: Request) -> Response:
    now = time.time()
    entry = _cache.get("/cached")
    if entry is None or now - entry[2] >= CACHE_SECONDS:
        body = encoder.encode(CATALOG.build())
        etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
        entry = _cache["/cached"] = (body, etag, now)
    body, etag, stored = entry
    age = int(now - stored)
    if request.headers.get("if-none-match") == etag:
        response = Response(status_code=304)
    else:
        response = Response(body, media_type="application/json")
    response.raw_headers += [
        (b"etag", etag.encode("latin-1")),
        (b"cache-control", b"max-age=%d" % max(0, CACHE_SECONDS - age)),
        (b"age", b"%d" % age),
    ]
    return response


# --- the rate limiter: a sliding-window counter, as the toolkit's default --------------------------


class SlidingWindow:
    """``limit`` requests per ``window`` seconds per client; counters keyed by (client, window)."""

    def __init__(self, limit: int, window: int) -> None:
        self.limit, self.window = limit, window
        self.policy = f"{limit};w={window}"
        self.counts: dict[tuple[str, int], int] = {}

    def hit(self, client: str) -> tuple[bool, dict[str, str]]:
        """Count one request; whether it is allowed, and the headers that say how many remain."""
        now = time.time()
        index = int(now // self.window)
        current = self.counts.get((client, index), 0) + 1
        self.counts[(client, index)] = current
        if current == 1:  # a new window: the one before the previous is no longer needed
            self.counts.pop((client, index - 2), None)
        previous = self.counts.get((client, index - 1), 0)
        count = current + previous * (1 - (now % self.window) / self.window)
        reset = max(1, math.ceil((index + 1) * self.window - now))
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(0, self.limit - math.ceil(count))),
            "RateLimit-Reset": str(reset),
            "RateLimit-Policy": self.policy,
        }
        if count > self.limit:
            return False, {**headers, "Retry-After": str(reset)}
        return True, headers


def rate_limited(limit: int, window: int) -> Callable[[Endpoint], Endpoint]:
    """Decorate an endpoint with a per-client limit: 429 over it, the headers on every response."""
    counter = SlidingWindow(limit, window)

    def decorate(endpoint: Endpoint) -> Endpoint:
        async def limited(request: Request) -> Response:
            allowed, headers = counter.hit(request.client.host if request.client else "unknown")
            if not allowed:
                return JSONResponse({"detail": "Too Many Requests"}, status_code=429, headers=headers)
            response = await endpoint(request)
            response.headers.update(headers)
            return response

        return limited

    return decorate


@rate_limited(RATE_LIMIT, 60)
async def ratelimited(request: Request) -> Response:
    return JSONResponse({"message": "Hello, World!"})


# --- untimed routes: registered last, so they add nothing to the timed requests' routing ------


async def cached_calls(request: Request) -> Response:
    return JSONResponse({"calls": CATALOG.calls})


@rate_limited(TIGHT_LIMIT, 60)
async def ratelimited_tight(request: Request) -> Response:
    return JSONResponse({"message": "Hello, World!"})


app = Starlette(
    routes=[
        Route("/cached", cached),
        Route("/ratelimited", ratelimited),
        Route("/cached/calls", cached_calls),
        Route("/ratelimited/tight", ratelimited_tight),
    ]
)
