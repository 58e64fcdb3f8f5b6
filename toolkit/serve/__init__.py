"""Serving an app: ``toolkit run`` / ``toolkit dev`` (``python -m toolkit``), and ``serve()``.

``toolkit run`` serves with production defaults on uvicorn (httptools, uvloop) plus the limits
uvicorn lacks (``GuardedHttpToolsProtocol``: head size, head and body timeouts); ``toolkit dev``
reloads on change with debug on. See ``_server`` for each default and why.
"""

from typing import TYPE_CHECKING, Any

from ._discover import DiscoveryError, Target, find_target
from ._limits import Limits
from ._server import ServeOptions, available_cpus, serve

if TYPE_CHECKING:
    from ._protocol import GuardedHttpToolsProtocol


def __getattr__(name: str) -> Any:
    # Imported on use: loading it checks $TOOLKIT_SERVE_LIMITS, which `toolkit run` sets first.
    if name == "GuardedHttpToolsProtocol":
        from ._protocol import GuardedHttpToolsProtocol

        return GuardedHttpToolsProtocol
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
