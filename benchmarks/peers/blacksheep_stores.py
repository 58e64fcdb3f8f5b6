"""BlackSheep's ``store_app``: a response cache and a rate limiter, written by hand.

BlackSheep has neither: its ``cache_control`` decorator only writes a ``Cache-Control`` header
(no stored responses, no ``ETag``), and its only limiter (guardpost's ``RateLimiter``) counts
failed authentication attempts, not requests. So, as a BlackSheep user would, and as the
Starlette floor does: the same observable work as the toolkit's ``cache=60`` and
``RateLimiter(MemoryStore())``.

- cached: a dict from the route to (encoded body, ``ETag``, stored at), filled by the first
  request; a hit replays the bytes with ``ETag``, ``Cache-Control`` and ``Age`` (a 304 for a
  matching ``If-None-Match``).
- ratelimited: the toolkit's sliding-window counter per client address, in a dict, applied by a
  handler decorator (BlackSheep's docs: a decorator, not a middleware, for logic on some routes
  only), with ``RateLimit-Limit/Remaining/Reset/Policy`` on every response and ``Retry-After``
  on a 429.

Imported only when the ``cached``/``ratelimited`` cases ask for ``store_app`` (see ``blacksheep_app``).
No ``from __future__ import annotations``, as there (BlackSheep reads return annotations as written).
"""

import hashlib
import time
from collections.abc import Awaitable, Callable
from functools import wraps

from blacksheep import Content, Request, Response, json
from blacksheep.settings.json import json_settings

from ..spec import CACHE_SECONDS, RATE_LIMIT, TIGHT_LIMIT
from ._common import SlidingWindow
from ._fakes import CATALOG
from .blacksheep_app import new_app

Handler = Callable[[Request], Awaitable[Response]]

# --- the response cache: route key -> (body, etag, stored at) ----------------------------------

_cache: dict[str, tuple[bytes, bytes, float]] = {}


def _cached_response(request: Request, body: bytes, etag: bytes, stored: float, now: float) -> Response:
    age = int(now - stored)
    headers = [
        (b"ETag", etag),
        (b"Cache-Control", b"max-age=%d" % max(0, CACHE_SECONDS - age)),
        (b"Age", b"%d" % age),
    ]
    if request.if_none_match == etag:
        return Response(304, headers)
    return Response(200, headers, Content(b"application/json", body))


# --- the rate limiter: a sliding-window counter, as the toolkit's default --------------------------


def rate_limited(limit: int, window: int) -> Callable[[Handler], Handler]:
    """Decorate a handler with a per-client limit: 429 over it, the headers on every response."""
    counter = SlidingWindow(limit, window)

    def decorate(handler: Handler) -> Handler:
        @wraps(handler)
        async def limited(request: Request) -> Response:
            allowed, headers = counter.hit(request.client_ip)
            if not allowed:
                response = json({"detail": "Too Many Requests"}, 429)
            else:
                response = await handler(request)
            for name, value in headers:
                response.add_header(name, value)
            return response

        return limited

    return decorate


app = new_app()
get = app.router.get


@get("/cached")
async def cached(request: Request) -> Response:
    now = time.time()
    entry = _cache.get("/cached")
    if entry is None or now - entry[2] >= CACHE_SECONDS:
        body = json_settings.dumps(CATALOG.build()).encode()  # what json() would send
        etag = b'"' + hashlib.blake2b(body, digest_size=16).hexdigest().encode() + b'"'
        entry = _cache["/cached"] = (body, etag, now)
    return _cached_response(request, *entry, now)


@get("/ratelimited")
@rate_limited(RATE_LIMIT, 60)
async def ratelimited(request: Request) -> Response:
    return json({"message": "Hello, World!"})


# --- untimed routes: registered last, so they add nothing to the timed requests' routing ------


@get("/cached/calls")
async def cached_calls(request: Request) -> Response:
    return json({"calls": CATALOG.calls})


@get("/ratelimited/tight")
@rate_limited(TIGHT_LIMIT, 60)
async def ratelimited_tight(request: Request) -> Response:
    return json({"message": "Hello, World!"})
