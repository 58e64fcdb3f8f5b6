"""The tuned FastAPI peer's ``store_app``: a dict-of-bytes response cache and a sliding-window limiter.

What a FastAPI user who measures writes instead of fastapi-cache2 and slowapi: the same work as
the Starlette peer's store app, with its helpers (``starlette_stores.ResponseCache`` and
``_common.SlidingWindow``, so the two do exactly the same), in FastAPI's idioms:

- ``@cached(seconds)``: a small decorator under the route. A miss runs the handler, validates its
  result against the return annotation and serializes it with pydantic-core, as FastAPI would,
  and keeps the bytes; a hit replays them with ``ETag``, ``Cache-Control`` and ``Age`` (a 304 for
  a matching ``If-None-Match``), with no decoding, validation or encoding.
- ``Depends(rate_limit(limit, window))``: the counter per client address as a dependency, its
  four ``RateLimit-*`` headers appended raw to the response FastAPI merges into the endpoint's;
  over the limit, an ``HTTPException`` 429 with them and ``Retry-After``.

Imported only when the ``cached``/``ratelimited`` cases ask for ``store_app`` (``fastapi_tuned_app``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, get_type_hints

from fastapi import Depends, HTTPException, Request, Response
from pydantic import TypeAdapter

from ..spec import CACHE_SECONDS, RATE_LIMIT, TIGHT_LIMIT
from ._common import SlidingWindow
from ._fakes import CATALOG
from .fastapi_app import Catalog
from .fastapi_tuned_app import new_app
from .starlette_stores import ResponseCache

Handler = Callable[[], Awaitable[Any]]
Endpoint = Callable[[Request], Awaitable[Response]]


def cached(seconds: int) -> Callable[[Handler], Endpoint]:
    """Serve the decorated endpoint's JSON from memory for ``seconds`` (one entry per endpoint)."""
    cache = ResponseCache(seconds)

    def decorate(endpoint: Handler) -> Endpoint:
        adapter: TypeAdapter[Any] = TypeAdapter(get_type_hints(endpoint)["return"])
        key = endpoint.__qualname__

        async def serve(request: Request) -> Response:
            now = time.time()
            entry = cache.get(key, now)
            if entry is None:
                body = adapter.dump_json(adapter.validate_python(await endpoint()))
                entry = cache.put(key, body, now)
            return cache.respond(entry, now, request.headers.get("if-none-match"))

        serve.__name__, serve.__doc__ = endpoint.__name__, endpoint.__doc__
        return serve

    return decorate


def rate_limit(limit: int, window: int) -> Callable[[Request, Response], Awaitable[None]]:
    """A dependency: ``limit`` requests per ``window`` seconds per client address."""
    counter = SlidingWindow(limit, window)

    async def limited(request: Request, response: Response) -> None:
        allowed, headers = counter.hit(request.client.host if request.client else "unknown")
        if not allowed:
            text = {name.decode("latin-1"): value.decode("latin-1") for name, value in headers}
            raise HTTPException(429, "Too Many Requests", headers=text)
        # PERF: raw headers, not response.headers[...] (a MutableHeaders scan per assignment).
        response.raw_headers.extend(headers)

    return limited


app = new_app()


# ``response_model`` documents the body: the endpoint FastAPI sees returns a ``Response``.
@app.get("/cached", response_model=Catalog)
@cached(CACHE_SECONDS)
async def read_catalog() -> Catalog:
    return CATALOG.build()  # a dict: validated into a Catalog (on a miss), as FastAPI does


@app.get("/ratelimited", dependencies=[Depends(rate_limit(RATE_LIMIT, 60))])
async def ratelimited() -> dict[str, str]:
    return {"message": "Hello, World!"}


# --- untimed routes: registered last, so they add nothing to the timed requests' routing ------


@app.get("/cached/calls")
async def cached_calls() -> dict[str, int]:
    return {"calls": CATALOG.calls}


@app.get("/ratelimited/tight", dependencies=[Depends(rate_limit(TIGHT_LIMIT, 60))])
async def ratelimited_tight() -> dict[str, str]:
    return {"message": "Hello, World!"}
