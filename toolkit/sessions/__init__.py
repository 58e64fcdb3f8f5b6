"""Session data and the stores it lives in (``toolkit.middleware.sessions`` uses them)."""

from ._memory import MemoryStore
from ._redis import RedisStore
from ._session import Session, SessionNotLoaded
from ._store import CounterStore, SessionStoreUnavailable, Store, StoreError

__all__ = [
    "CounterStore",
    "MemoryStore",
    "RedisStore",
    "Session",
    "SessionNotLoaded",
    "SessionStoreUnavailable",
    "Store",
    "StoreError",
]
