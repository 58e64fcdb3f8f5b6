"""The benchmarked apps: one module per peer, each exposing the same names.

Every peer module defines:

- ``app``: the ASGI app serving the plain cases of ``benchmarks.spec``;
- ``session_app`` and ``stack_app``: the apps with middleware, for the cases naming them;
- ``store_app``: a cached route and rate-limited routes (``toolkit_stores.py``, ``fastapi_stores.py``
  with fastapi-cache2 and slowapi, ``starlette_stores.py`` by hand), and for the toolkit and
  FastAPI only, ``shop_app`` and ``shop_write_app``: ``apps/shop`` and its FastAPI twin on seeded
  temporary databases (``shop.py``). These are built on first access (a module ``__getattr__``),
  so the plain scenarios, the memory measurement and the other apps never import or build them;
  a case's ``peers`` (``benchmarks.spec``) says which peers have an app for it;
- ``LABEL``: the name shown in reports (also in ``LABELS`` below, for the runner);
- ``PACKAGES``: the distributions whose versions describe the peer.

Peer modules are only imported in the subprocess that measures them, never by the runner,
so one peer's imports cannot warm up or slow down another.
"""

from __future__ import annotations

# Report order: the toolkit first, then the peers it is compared with.
# ``fastapi_tuned`` is FastAPI written the way its best users write it (the headline peer);
# ``fastapi`` is FastAPI as commonly deployed: its defaults and the add-ons its docs point to.
PEERS: dict[str, str] = {
    "toolkit": "benchmarks.peers.toolkit_app",
    "fastapi_tuned": "benchmarks.peers.fastapi_tuned_app",
    "fastapi": "benchmarks.peers.fastapi_app",
    "litestar": "benchmarks.peers.litestar_app",
    "blacksheep": "benchmarks.peers.blacksheep_app",
    "starlette": "benchmarks.peers.starlette_app",
}

LABELS: dict[str, str] = {
    "toolkit": "toolkit",
    "fastapi_tuned": "FastAPI (tuned)",
    "fastapi": "FastAPI (as deployed)",
    "litestar": "Litestar",
    "blacksheep": "BlackSheep",
    "starlette": "Starlette",
}
