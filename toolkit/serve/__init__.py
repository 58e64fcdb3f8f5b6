"""Serving an app: ``toolkit run`` / ``toolkit dev`` (``python -m toolkit``), and ``serve()``.

``toolkit run`` serves with production defaults on uvicorn (httptools, uvloop) plus the limits
uvicorn lacks (``GuardedHttpToolsProtocol``: head size, head and body timeouts); ``toolkit dev``
reloads on change with debug on. See ``_server`` for each default and why.
"""

from ._discover import DiscoveryError, Target, find_target
from ._protocol import GuardedHttpToolsProtocol, Limits
from ._server import ServeOptions, available_cpus, serve

__all__ = [
    "DiscoveryError",
    "GuardedHttpToolsProtocol",
    "Limits",
    "ServeOptions",
    "Target",
    "available_cpus",
    "find_target",
    "serve",
]
