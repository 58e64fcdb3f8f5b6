"""FastAPI's ``store_app``: fastapi-cache2 (``@cache(expire=60)``, ``InMemoryBackend``) and slowapi
(``@limiter.limit(...)``, in-memory storage), set up as their READMEs show.

Imported only when the ``cached``/``ratelimited`` cases ask for ``store_app`` (see ``fastapi_app``).
No ``from __future__ import annotations`` here: both libraries wrap the endpoint, and FastAPI
resolves string annotations in the wrapper's module, not this one.

- fastapi-cache2: a hit skips the handler, decodes the cached JSON and returns it, which FastAPI
  then validates against the response model and serializes again; it sets ``Cache-Control``,
  ``ETag`` and ``X-FastAPI-Cache``. Its wrapper hides the handler's return annotation from
  FastAPI, so the model is given to the route (``response_model=``): without one, FastAPI would
  fall back to ``jsonable_encoder``, about 4x slower on this 50-item list. FastAPI gets its fast
  path (pydantic-core) here.
- slowapi: the same algorithm as the toolkit's default (limits' sliding-window counter), per
  client address; ``headers_enabled=True`` so that, like the toolkit, every response carries the
  limit's state (``X-RateLimit-Limit/Remaining/Reset`` and ``Retry-After``, slowapi's names).
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi_cache import FastAPICache
from fastapi_cache.backends.inmemory import InMemoryBackend
from fastapi_cache.decorator import cache
from slowapi import Limiter, _rate_limit_exceeded_handler
from slowapi.errors import RateLimitExceeded
from slowapi.util import get_remote_address

from ..spec import CACHE_SECONDS, RATE, TIGHT_RATE
from ._fakes import CATALOG
from .fastapi_app import Catalog

limiter = Limiter(
    key_func=get_remote_address,
    strategy="sliding-window-counter",
    storage_uri="memory://",
    headers_enabled=True,
)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    FastAPICache.init(InMemoryBackend(), prefix="fastapi-cache")
    yield


app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, lifespan=lifespan)
app.state.limiter = limiter
app.add_exception_handler(RateLimitExceeded, _rate_limit_exceeded_handler)


@app.get("/cached", response_model=Catalog)
@cache(expire=CACHE_SECONDS)
async def cached():
    return CATALOG.build()


@app.get("/ratelimited")
@limiter.limit(RATE)
async def ratelimited(request: Request, response: Response):
    return {"message": "Hello, World!"}


# --- untimed routes: registered last, so they add nothing to the timed requests' routing ------


@app.get("/cached/calls")
async def cached_calls():
    return {"calls": CATALOG.calls}


@app.get("/ratelimited/tight")
@limiter.limit(TIGHT_RATE)
async def ratelimited_tight(request: Request, response: Response):
    return {"message": "Hello, World!"}
