"""The toolkit's ``store_app``: a cached route and rate-limited routes, both on a ``MemoryStore``.

Imported only when the ``cached``/``ratelimited`` cases ask for ``store_app`` (see ``toolkit_app``).
"""

from __future__ import annotations

from toolkit import App, Depends
from toolkit.cache import Cache
from toolkit.ratelimit import RateLimiter
from toolkit.sessions import MemoryStore

from ..spec import CACHE_SECONDS, RATE, TIGHT_RATE
from ._fakes import CATALOG
from ._structs import Catalog

cache = Cache(MemoryStore())
limiter = RateLimiter(MemoryStore())  # the sliding-window counter, per client address (the defaults)

app = App(cache=cache)


@app.get("/cached", cache=CACHE_SECONDS, response_model=Catalog)  # a model, as for FastAPI
async def cached():
    return CATALOG.build()


@app.get("/ratelimited", dependencies=[Depends(limiter.limit(RATE))])
async def ratelimited():
    return {"message": "Hello, World!"}


# --- untimed routes: registered last, so they add nothing to the timed requests' routing ------


@app.get("/cached/calls")
async def cached_calls():
    return {"calls": CATALOG.calls}


@app.get("/ratelimited/tight", dependencies=[Depends(limiter.limit(TIGHT_RATE))])
async def ratelimited_tight():
    return {"message": "Hello, World!"}
