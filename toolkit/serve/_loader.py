"""The app factory every uvicorn worker calls (``toolkit.serve._loader:load``, ``factory=True``).

``serve`` put the app's import string, its ``sys.path`` entry and the mode in the environment, which
worker processes (and the reloader's child) inherit; the import happens here, in the worker.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys
from typing import Any

from ._discover import Target, load_target
from ._server import APP_ENV, FACTORY_ENV, MODE_ENV, PATH_ENV

__all__ = ["load"]


def load() -> Any:
    if multiprocessing.parent_process() is not None:  # a worker, or the reloader's child
        _end_with_parent()
    module, _, attr = os.environ[APP_ENV].partition(":")
    target = Target(module, attr or None, os.environ[PATH_ENV], factory=os.environ.get(FACTORY_ENV) == "1")
    app, _ = load_target(target)
    if os.environ.get(MODE_ENV) == "dev" and hasattr(app, "debug"):
        app.debug = True  # tracebacks in error responses while developing
    return app


_PR_SET_PDEATHSIG = 1


def _end_with_parent() -> None:
    """SIGTERM this worker when the process that started it dies, however it died.

    uvicorn's supervisor stops its workers when it is stopped, but a supervisor killed outright
    (SIGKILL, the OOM killer) would leave them serving the port, orphaned. Linux only (prctl)."""
    if not sys.platform.startswith("linux"):  # pragma: no cover
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    parent = multiprocessing.parent_process()
    armed = libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0
    if armed and parent is not None and parent.pid is not None and os.getppid() != parent.pid:
        os.kill(os.getpid(), signal.SIGTERM)  # it died before prctl took effect
