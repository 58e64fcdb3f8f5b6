"""An in-process store for development, tests and one-process apps: TTL per key, bounded.

Values (``set``: sessions, cache entries) and counters (``incr``: rate limits) are kept apart, each
with its own bound, so neither can push the other out:

- A full value space never evicts a live value to make room for a new key (``when_full="refuse"``,
  the default): after dropping expired entries, ``set`` of a new key raises ``StoreError("store
  full")``. Otherwise 10,000 anonymous sessions would log every real user out. The session
  middleware answers that one new session with a 503 and the cache serves uncached; existing keys
  can still be read, overwritten and deleted. ``when_full="evict"`` drops the least recently used
  value instead: for a store that holds only a cache.
- A full counter space drops the counter closest to expiring (a past window's, as a rule). It never
  refuses: a rate limiter failing open on an error would drop the limit just when under pressure.
  Size ``max_counters`` over what two windows of distinct clients need (each client makes one
  counter per limit and window): a flood of more clients than that resets the oldest counts.

Expired entries are dropped a few at a time by each write that adds a key, soonest expiry first
(a heap: no scan of the whole store, ever); a full space drops an expired entry, if it holds one,
before it refuses or evicts anything live.

Sizing (measured on CPython 3.11): a counter costs about 300 bytes (key, count, expiry, heap
entry), so the default 100,000 counters take about 30 MB; a value costs about 300 bytes plus its
data (a session of a few hundred bytes: ~0.5 KB, so the default 10,000 take about 5 MB). Size
``max_entries`` for the sessions (and cache entries) live at once, with room to spare: when it is
reached, new visitors get 503s until entries expire or are deleted.

Data lives in one process: use ``RedisStore`` when several processes serve one app.
"""

from __future__ import annotations

import heapq
import time
import weakref
from collections import OrderedDict
from typing import Literal, TypeVar

from ..stores import StoreError

__all__ = ["MemoryStore"]

_PURGE_BATCH = 8  # expired entries dropped per added key: more than one, so a backlog drains
_SLACK = 64  # stale heap entries allowed beyond the live ones before the heap is rebuilt

V = TypeVar("V")


class MemoryStore:
    """At most ``max_entries`` values and ``max_counters`` counters, each with its time to live.

    See the module docstring for what happens when full (``when_full``) and for sizing.
    """

    _live: weakref.WeakSet[MemoryStore] = weakref.WeakSet()

    def __init__(
        self,
        max_entries: int = 10_000,
        *,
        max_counters: int = 100_000,
        when_full: Literal["refuse", "evict"] = "refuse",
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        if max_counters < 1:
            raise ValueError("max_counters must be at least 1")
        if when_full not in ("refuse", "evict"):
            raise ValueError("when_full must be 'refuse' or 'evict'")
        self.max_entries = max_entries
        self.max_counters = max_counters
        self.when_full = when_full
        self._lru = when_full == "evict"
        self._values: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._counters: dict[str, tuple[int, float]] = {}
        # (expires, key) per write; an entry is stale once its key is rewritten or deleted.
        self._value_expiry: list[tuple[float, str]] = []
        self._counter_expiry: list[tuple[float, str]] = []
        MemoryStore._live.add(self)

    @classmethod
    def instances(cls) -> list[MemoryStore]:
        """The stores alive in this process (``toolkit run --workers N`` warns that they are per
        process)."""
        return list(cls._live)

    async def ping(self) -> bool:
        """Always reachable (it is this process): a readiness check written for ``RedisStore``
        (``health.add_check("store", store.ping)``) works on either."""
        return True

    async def get(self, key: str) -> bytes | None:
        return self.get_now(key)

    def get_now(self, key: str) -> bytes | None:
        """``get`` without awaiting: the response cache reads this store synchronously."""
        now = time.monotonic()
        entry = self._values.get(key)
        if entry is not None:
            if entry[1] <= now:
                del self._values[key]
                return None
            if self._lru:
                self._values.move_to_end(key)
            return entry[0]
        counter = self._counters.get(key)
        if counter is None:
            return None
        if counter[1] <= now:
            del self._counters[key]
            return None
        return b"%d" % counter[0]

    async def set(self, key: str, value: bytes, ttl: float, *, only_if_exists: bool = False) -> bool:
        now = time.monotonic()
        values = self._values
        entry = values.get(key)
        if only_if_exists and (entry is None or entry[1] <= now):
            return False
        if entry is None:
            self._counters.pop(key, None)  # one namespace: a value replaces a counter (as in Redis)
            _purge(values, self._value_expiry, now, _PURGE_BATCH)
            if len(values) >= self.max_entries and not _make_room(values, self._value_expiry, now):
                if not self._lru:
                    raise StoreError(f"store full ({self.max_entries} live entries)")
                values.popitem(last=False)
        expires = now + ttl
        values[key] = (value, expires)
        if self._lru:
            values.move_to_end(key)
        _push(self._value_expiry, expires, key, values)
        return True

    async def incr(self, key: str, amount: int, ttl: float) -> int:
        return self.incr_now(key, amount, ttl)

    def count_now(self, key: str) -> int:
        """The counter at ``key`` (0 if absent or expired), read without awaiting: a rate limiter
        on this store checks and counts a request in one step (nothing can run in between)."""
        counter = self._counters.get(key)
        if counter is not None:
            return max(0, counter[0]) if counter[1] > time.monotonic() else 0
        entry = self._values.get(key)
        if entry is None or entry[1] <= time.monotonic():
            return 0
        try:
            return max(0, int(entry[0]))  # a value that holds a number counts (as ``get`` reads it)
        except ValueError:
            return 0

    def incr_now(self, key: str, amount: int, ttl: float) -> int:
        """``incr`` without awaiting (see ``count_now``)."""
        # One event loop thread: no await between the read and the write, so this is atomic.
        now = time.monotonic()
        counters = self._counters
        counter = counters.get(key)
        if counter is not None and counter[1] > now:
            value = counter[0] + amount
            counters[key] = (value, counter[1])  # later increments do not extend it
            return value
        start, expires = 0, now + ttl
        entry = self._values.get(key)
        if entry is not None and entry[1] > now:  # a value that holds a number (as in Redis)
            try:
                start = int(entry[0])
            except ValueError:
                raise StoreError(f"the value at {key!r} is not an integer") from None
            expires = entry[1]
        self._values.pop(key, None)
        if counter is None:
            _purge(counters, self._counter_expiry, now, _PURGE_BATCH)
            if len(counters) >= self.max_counters and not _make_room(counters, self._counter_expiry, now):
                _evict_soonest(counters, self._counter_expiry)
        value = start + amount
        counters[key] = (value, expires)
        _push(self._counter_expiry, expires, key, counters)
        return value

    async def delete(self, key: str) -> None:
        self._values.pop(key, None)
        self._counters.pop(key, None)

    def __len__(self) -> int:
        """Live values and counters (a count over every entry: for tests and introspection)."""
        now = time.monotonic()
        live = sum(1 for _, expires in self._values.values() if expires > now)
        return live + sum(1 for _, expires in self._counters.values() if expires > now)


def _push(heap: list[tuple[float, str]], expires: float, key: str, data: dict[str, tuple[V, float]]) -> None:
    heapq.heappush(heap, (expires, key))
    if len(heap) > 2 * len(data) + _SLACK:
        # PERF: rewrites (a session saved on every request) leave stale entries; rebuilding once
        # they outnumber the live ones costs O(n) per n writes.
        heap[:] = [(entry[1], name) for name, entry in data.items()]
        heapq.heapify(heap)


def _purge(data: dict[str, tuple[V, float]], heap: list[tuple[float, str]], now: float, budget: int) -> None:
    """Drop up to ``budget`` expired entries, soonest first (stale heap entries count too)."""
    while budget and heap and heap[0][0] <= now:
        _, key = heapq.heappop(heap)
        entry = data.get(key)
        if entry is not None and entry[1] <= now:
            del data[key]
        budget -= 1


def _make_room(data: dict[str, tuple[V, float]], heap: list[tuple[float, str]], now: float) -> bool:
    """Drop expired entries until one is gone; ``False`` if none is expired (the heap's first
    entry is the soonest expiry of all: when it is live, every entry is)."""
    while heap and heap[0][0] <= now:
        _, key = heapq.heappop(heap)
        entry = data.get(key)
        if entry is not None and entry[1] <= now:
            del data[key]
            return True
    return False


def _evict_soonest(data: dict[str, tuple[V, float]], heap: list[tuple[float, str]]) -> None:
    """Drop the live entry that expires first (skipping heap entries of rewritten keys)."""
    while heap:
        expires, key = heapq.heappop(heap)
        entry = data.get(key)
        if entry is not None and entry[1] == expires:
            del data[key]
            return
