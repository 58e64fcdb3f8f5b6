"""The benchmarked apps: one module per peer, each exposing the same names.

Every peer module defines:

- ``app``: the ASGI app serving every timed case of ``benchmarks.spec``;
- ``LABEL``: the name shown in reports;
- ``PACKAGES``: the distributions whose versions describe the peer.

Peer modules are only imported in the subprocess that measures them, never by the runner,
so one peer's imports cannot warm up or slow down another.
"""

from __future__ import annotations

# Report order: the toolkit first, then the peers it is compared with.
PEERS: dict[str, str] = {
    "toolkit": "benchmarks.peers.toolkit_app",
    "fastapi": "benchmarks.peers.fastapi_app",
    "starlette": "benchmarks.peers.starlette_app",
}
