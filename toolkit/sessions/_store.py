"""Where sessions meet the ``Store`` protocol (``toolkit.stores``): the 503 a store failure becomes."""

from __future__ import annotations

from ..exceptions import HTTPException
from ..stores import CounterStore, Store, StoreError

__all__ = ["CounterStore", "SessionStoreUnavailable", "Store", "StoreError"]


class SessionStoreUnavailable(HTTPException):
    """Rendered as a 503: the session could not be read or written, so nothing was guessed."""

    def __init__(self, detail: str = "Session store unavailable") -> None:
        super().__init__(503, detail, headers={"Retry-After": "1"})
