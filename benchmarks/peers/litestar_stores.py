"""Litestar's ``store_app``: its built-in response cache on a ``MemoryStore``, and a sliding-window
rate limit as a route-level middleware.

Imported only when the ``cached``/``ratelimited`` cases ask for ``store_app`` (see ``litestar_app``).

- cached: ``@get(..., cache=60)`` with Litestar's ``ResponseCacheConfig`` on a ``MemoryStore``: a hit
  replays the ASGI messages stored on the miss (msgpack), headers included, without calling the
  handler. Litestar's cache adds no header of its own, so the route sets ``Cache-Control`` with
  its ``cache_control=CacheControlHeader(max_age=60)`` and the handler an ``ETag`` (a hash of the
  encoded catalog, computed on the miss only); both are stored and replayed with the body, as they
  were on the miss (no ``Age``, and ``max-age`` does not count down, unlike the toolkit's cache).
  The handler validates the catalog into Structs (``msgspec.convert``), the response model: Litestar
  does not validate what a handler returns.
- ratelimited: Litestar's ``RateLimitConfig`` cannot express it. Its middleware keeps a fixed window
  (reset a minute after the first request) of *every* request's timestamp, JSON-decoded and encoded
  again in the store on each request, so at the spec's limit of 100,000,000 a minute each request
  costs more than the last; and its 429 has no ``Retry-After``. So this peer runs the same
  sliding-window counter as the Starlette peer (a dict per route), the toolkit's default algorithm,
  as a Litestar ``ASGIMiddleware`` on the route (the shape of Litestar's own ``RateLimitMiddleware``):
  the ``RateLimit-Limit/Remaining/Reset/Policy`` headers on every response, and over the limit
  Litestar's ``TooManyRequestsException`` with those and ``Retry-After`` (429).
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
from litestar import Litestar, Response, get
from litestar.config.response_cache import ResponseCacheConfig
from litestar.datastructures import CacheControlHeader
from litestar.enums import ScopeType
from litestar.exceptions import TooManyRequestsException
from litestar.middleware import ASGIMiddleware
from litestar.stores.memory import MemoryStore
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from ..spec import CACHE_SECONDS, RATE_LIMIT, TIGHT_LIMIT
from ._common import SlidingWindow
from ._fakes import CATALOG
from ._structs import Catalog
from .litestar_app import EXCEPTION_HANDLERS

# --- the response cache: Litestar's, in a memory store --------------------------------------------


@get("/cached", cache=CACHE_SECONDS, cache_control=CacheControlHeader(max_age=CACHE_SECONDS))
async def cached() -> Response[Catalog]:
    catalog = msgspec.convert(CATALOG.build(), Catalog)
    etag = hashlib.blake2b(msgspec.json.encode(catalog), digest_size=16).hexdigest()
    return Response(catalog, headers={"ETag": f'"{etag}"'})


# --- the rate limiter: a sliding-window counter, as the toolkit's default ------------------------


class RateLimit(ASGIMiddleware):
    """A per-client limit on the routes it is given to: 429 over it, the headers on every response."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, limit: int, window: int) -> None:
        self.counter = SlidingWindow(limit, window)  # shared by the route's requests, by design

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        client = scope.get("client")
        allowed, headers = self.counter.hit(client[0] if client else "unknown")
        if not allowed:
            raise TooManyRequestsException(headers={k.decode(): v.decode() for k, v in headers})

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await next_app(scope, receive, send_with_headers)


@get("/ratelimited", middleware=[RateLimit(RATE_LIMIT, 60)])
async def ratelimited() -> dict[str, str]:
    return {"message": "Hello, World!"}


# --- untimed routes: registered last, so they add nothing to the timed requests' routing ------


@get("/cached/calls")
async def cached_calls() -> dict[str, Any]:
    return {"calls": CATALOG.calls}


@get("/ratelimited/tight", middleware=[RateLimit(TIGHT_LIMIT, 60)])
async def ratelimited_tight() -> dict[str, str]:
    return {"message": "Hello, World!"}


app = Litestar(
    route_handlers=[cached, ratelimited, cached_calls, ratelimited_tight],
    stores={"response_cache": MemoryStore()},
    response_cache_config=ResponseCacheConfig(store="response_cache"),
    exception_handlers=EXCEPTION_HANDLERS,
    openapi_config=None,
)
