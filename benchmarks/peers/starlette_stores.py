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
import time
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..spec import CACHE_SECONDS, RATE_LIMIT, TIGHT_LIMIT
from ._common import SlidingWindow
from ._fakes import CATALOG
from .starlette_app import JSONResponse, encoder

Endpoint = Callable[[Request], Awaitable[Response]]

# --- the response cache: route key -> (body, etag, stored at) in a dict -------------------------


class ResponseCache:
    """Whole JSON responses kept as bytes for ``seconds``: key -> (body, etag, etag bytes, stored at).

    A hit replays the stored body with ``ETag``, ``Cache-Control`` and ``Age`` (a 304 for a matching
    ``If-None-Match``); nothing is decoded or encoded again. Also the tuned FastAPI peer's cache
    (``fastapi_tuned_stores.py``), so that the two do the same work.
    """

    __slots__ = ("entries", "seconds")

    def __init__(self, seconds: int) -> None:
        self.seconds = seconds
        self.entries: dict[str, tuple[bytes, str, bytes, float]] = {}

    def get(self, key: str, now: float) -> tuple[bytes, str, bytes, float] | None:
        """The fresh entry under ``key`` (body, etag, etag bytes, stored at), if there is one."""
        entry = self.entries.get(key)
        return entry if entry is not None and now - entry[3] < self.seconds else None

    def put(self, key: str, body: bytes, now: float) -> tuple[bytes, str, bytes, float]:
        """Store ``body`` under ``key``, with its ETag; the entry."""
        etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
        entry = self.entries[key] = (body, etag, etag.encode("latin-1"), now)
        return entry

    def respond(
        self, entry: tuple[bytes, str, bytes, float], now: float, if_none_match: str | None
    ) -> Response:
        """The entry as a response (a 304 if the client has it), with the cache headers."""
        body, etag, etag_bytes, stored = entry
        age = int(now - stored)
        if if_none_match == etag:
            response = Response(status_code=304)
        else:
            response = Response(body, media_type="application/json")
        response.raw_headers += [
            (b"etag", etag_bytes),
            (b"cache-control", b"max-age=%d" % max(0, self.seconds - age)),
            (b"age", b"%d" % age),
        ]
        return response


_cache = ResponseCache(CACHE_SECONDS)


async def cached(request: Request) -> Response:
    now = time.time()
    entry = _cache.get("/cached", now) or _cache.put("/cached", encoder.encode(CATALOG.build()), now)
    return _cache.respond(entry, now, request.headers.get("if-none-match"))


# --- the rate limiter: a sliding-window counter, as the toolkit's default --------------------------


def rate_limited(limit: int, window: int) -> Callable[[Endpoint], Endpoint]:
    """Decorate an endpoint with a per-client limit: 429 over it, the headers on every response."""
    counter = SlidingWindow(limit, window)

    def decorate(endpoint: Endpoint) -> Endpoint:
        async def limited(request: Request) -> Response:
            allowed, headers = counter.hit(request.client.host if request.client else "unknown")
            if not allowed:
                response = JSONResponse({"detail": "Too Many Requests"}, status_code=429)
            else:
                response = await endpoint(request)
            # PERF: raw headers, not response.headers.update(...) (a MutableHeaders scan per header).
            response.raw_headers.extend(headers)
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
