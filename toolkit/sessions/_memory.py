"""An in-process store for development and tests: TTL per key, bounded, least recently used out."""

from __future__ import annotations

import time
from collections import OrderedDict

__all__ = ["MemoryStore"]


class MemoryStore:
    """Keeps at most ``max_entries`` keys; the least recently used one goes first when full.

    Data lives in one process: use ``RedisStore`` when several processes serve one app.
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._data: OrderedDict[str, tuple[bytes, float]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires <= time.monotonic():
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl: float, *, only_if_exists: bool = False) -> bool:
        now = time.monotonic()
        if only_if_exists:
            entry = self._data.get(key)
            if entry is None or entry[1] <= now:
                return False
        self._data[key] = (value, now + ttl)
        self._data.move_to_end(key)
        if len(self._data) > self.max_entries:
            # Expired entries go first, then the least recently used live ones.
            for stale in [k for k, (_, expires) in self._data.items() if expires <= now]:
                del self._data[stale]
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)
        return True

    async def incr(self, key: str, amount: int, ttl: float) -> int:
        # One event loop thread: no await between the read and the write, so this is atomic.
        now = time.monotonic()
        entry = self._data.get(key)
        if entry is None or entry[1] <= now:
            value, expires = 0, now + ttl
        else:
            value, expires = int(entry[0]), entry[1]
        value += amount
        self._data[key] = (str(value).encode(), expires)
        self._data.move_to_end(key)
        return value

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    def __len__(self) -> int:
        now = time.monotonic()
        return sum(1 for _, expires in self._data.values() if expires > now)
