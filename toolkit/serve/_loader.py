"""The app factory every uvicorn worker calls (``toolkit.serve._loader:load``, ``factory=True``).

``serve`` put the app's import string, its ``sys.path`` entry and the mode in the environment, which
worker processes (and the reloader's child) inherit; the import happens here, in the worker.
"""

from __future__ import annotations

import os
from typing import Any

from ._discover import Target, load_target
from ._server import APP_ENV, FACTORY_ENV, MODE_ENV, PATH_ENV

__all__ = ["load"]


def load() -> Any:
    module, _, attr = os.environ[APP_ENV].partition(":")
    target = Target(module, attr or None, os.environ[PATH_ENV], factory=os.environ.get(FACTORY_ENV) == "1")
    app, _ = load_target(target)
    if os.environ.get(MODE_ENV) == "dev" and hasattr(app, "debug"):
        app.debug = True  # tracebacks in error responses while developing
    return app
