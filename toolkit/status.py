"""HTTP and WebSocket status codes by name: Starlette's constants, re-exported.

``status.HTTP_404_NOT_FOUND``, ``status.WS_1008_POLICY_VIOLATION``... as ``fastapi.status``.
The names Starlette deprecated (``HTTP_422_UNPROCESSABLE_ENTITY``...) still resolve, with
Starlette's deprecation warning.
"""

from __future__ import annotations

import starlette.status as _starlette_status
from starlette.status import *  # noqa: F403

__all__ = list(_starlette_status.__all__)


def __getattr__(name: str) -> int:
    # Starlette's own module __getattr__: the deprecated names, with its warning.
    value: int = getattr(_starlette_status, name)
    return value
