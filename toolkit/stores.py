"""The ``Store`` protocol: async key/value with TTL (and atomic counters), shared by sessions, the
response cache and rate limits. ``MemoryStore`` and ``RedisStore`` (``toolkit.sessions``) implement it."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["CounterStore", "Store", "StoreError"]


class StoreError(Exception):
    """The store could not answer (down, slow, refused). Never treated as "no data"."""


@runtime_checkable
class Store(Protocol):
    """An async key/value store with per-key expiry. Implement it to plug in another backend.

    Every method raises ``StoreError`` when the backend fails; ``get`` returns ``None`` only for
    a key that does not exist (or has expired).
    """

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: float, *, only_if_exists: bool = False) -> bool:
        """Write ``value`` and its time to live (seconds) in one atomic step; return whether it was written.

        With ``only_if_exists=True`` a key that is gone (deleted or expired) is not recreated, so a
        request finishing after a concurrent logout cannot resurrect the session.
        """
        ...

    async def delete(self, key: str) -> None: ...


@runtime_checkable
class CounterStore(Store, Protocol):
    """A ``Store`` that can also count atomically (rate limits share counters across processes)."""

    async def incr(self, key: str, amount: int, ttl: float) -> int:
        """Add ``amount`` to the counter at ``key`` and return the new value, in one atomic step.

        A counter that did not exist starts at 0 and expires ``ttl`` seconds after its creation;
        later increments do not extend it (a fixed window). ``amount`` may be negative: the rate
        limiter takes back the increment of a request it refused after all (it lost a race for
        the last slot), so refused requests never count.
        """
        ...
