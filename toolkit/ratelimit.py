"""Rate limiting as a dependency, with counters in a shared ``CounterStore``.

::

    limiter = RateLimiter(RedisStore(url=..., prefix="myapp:rl:"), trusted_proxies=["10.0.0.0/8"])

    @app.get("/search", dependencies=[Depends(limiter.limit("10/minute"))])
    async def search(q: str): ...

    app = App(dependencies=[Depends(limiter.limit("1000/hour", name="global"))])

Counters live in the store, so several app processes (or machines) sharing one Redis share one
limit. The sliding-window counter (default) weighs the previous window by how much of it still
overlaps, which smooths the burst a fixed window allows at its boundary. We do not use the
``limits`` package: its async Redis backend needs a second Redis client library (coredis), while
this needs one atomic increment our stores already provide.

A limited request gets 429 with ``Retry-After``; every response of a limited route carries
``RateLimit-Limit``, ``RateLimit-Remaining``, ``RateLimit-Reset`` and ``RateLimit-Policy``.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from typing import Literal

from starlette.requests import Request
from starlette.responses import Response

from .exceptions import HTTPException
from .routing import ROUTE_SCOPE_KEY
from .sessions._store import CounterStore, StoreError

__all__ = ["RateLimit", "RateLimiter", "parse_rate"]

logger = logging.getLogger("toolkit.ratelimit")

_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(r"\s*(\d+)\s*(?:/|per)\s*(\d+)?\s*(second|minute|hour|day)s?\s*", re.IGNORECASE)

KeyFunction = Callable[[Request], str]


def parse_rate(rate: str) -> tuple[int, int]:
    """``"10/minute"``, ``"100 per 5 minutes"`` -> ``(limit, window seconds)``."""
    match = _RATE.fullmatch(rate)
    if match is None:
        raise ValueError(f"cannot read the rate {rate!r}; write it like '10/minute' or '100 per 5 minutes'")
    limit, count, unit = int(match[1]), int(match[2] or 1), match[3].lower()
    if limit < 1 or count < 1:
        raise ValueError(f"rate {rate!r} must allow at least 1 request per period")
    return limit, count * _UNITS[unit]


class RateLimiter:
    """Shared settings (store, client identification) for the limits of one app."""

    def __init__(
        self,
        store: CounterStore,
        *,
        trusted_proxies: Sequence[str] = (),
        algorithm: Literal["sliding", "fixed"] = "sliding",
        prefix: str = "ratelimit",
        fail_open: bool = True,
    ) -> None:
        if algorithm not in ("sliding", "fixed"):
            raise ValueError("algorithm must be 'sliding' or 'fixed'")
        self.store = store
        self.trusted = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]
        self.algorithm = algorithm
        self.prefix = prefix
        self.fail_open = fail_open

    def limit(self, rate: str, *, key: KeyFunction | None = None, name: str | None = None) -> RateLimit:
        """A dependency enforcing ``rate`` per client (``key``), per route unless ``name`` is shared."""
        limit, window = parse_rate(rate)
        return RateLimit(self, limit, window, key=key, name=name)

    def client_address(self, request: Request) -> str:
        """The peer address; behind a trusted proxy, the nearest untrusted ``X-Forwarded-For`` hop."""
        peer = request.client.host if request.client else "unknown"
        if not self.trusted or not self._is_trusted(peer):
            return peer
        forwarded = request.headers.get("x-forwarded-for", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self._is_trusted(hop):
                return hop if _is_ip(hop) else peer
        return hops[0] if hops and _is_ip(hops[0]) else peer

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class RateLimit:
    """One limit, used as ``Depends(limiter.limit("10/minute"))``."""

    #: A cached route may use it as a gate: it refuses or adds headers; the body never depends on it.
    cache_neutral = True

    def __init__(
        self, limiter: RateLimiter, limit: int, window: int, *, key: KeyFunction | None, name: str | None
    ) -> None:
        self.limiter = limiter
        self.limit = limit
        self.window = window
        self.key = key
        self.name = name
        self.policy = f"{limit};w={window}".encode("latin-1")
        self.limit_bytes = b"%d" % limit

    async def __call__(self, request: Request, response: Response) -> None:
        limiter = self.limiter
        client = self.key(request) if self.key is not None else limiter.client_address(request)
        scope_name = self.name or request.scope.get(ROUTE_SCOPE_KEY) or request.url.path
        now = time.time()
        index = int(now // self.window)
        base = f"{limiter.prefix}:{scope_name}:{client}"
        try:
            current = await limiter.store.incr(f"{base}:{index}", 1, self.window * 2)
            count: float = current
            previous = 0
            if limiter.algorithm == "sliding":
                previous = int(await limiter.store.get(f"{base}:{index - 1}") or 0)
                elapsed = (now % self.window) / self.window
                count += previous * (1 - elapsed)
        except StoreError as exc:
            if limiter.fail_open:
                logger.warning("rate limit store unavailable, allowing the request: %s", exc)
                return
            raise HTTPException(503, "Rate limit store unavailable", headers={"Retry-After": "1"}) from exc
        reset = max(1, math.ceil((index + 1) * self.window - now))
        remaining = max(0, self.limit - math.ceil(count))
        if count > self.limit:
            sliding = limiter.algorithm == "sliding"
            retry = self._sliding_retry(now, index, current, previous) if sliding else reset
            headers = {
                "RateLimit-Limit": str(self.limit),
                "RateLimit-Remaining": str(remaining),
                "RateLimit-Reset": str(reset),
                "RateLimit-Policy": self.policy.decode("latin-1"),
                "Retry-After": str(retry),
            }
            raise HTTPException(429, "Too Many Requests", headers=headers)
        # PERF: raw headers, not response.headers[...] (a MutableHeaders scan per assignment).
        response.raw_headers.extend(
            (
                (b"ratelimit-limit", self.limit_bytes),
                (b"ratelimit-remaining", b"%d" % remaining),
                (b"ratelimit-reset", b"%d" % reset),
                (b"ratelimit-policy", self.policy),
            )
        )

    def _sliding_retry(self, now: float, index: int, current: int, previous: int) -> int:
        """Seconds until one more request fits under the weighted count (refused ones count too)."""
        limit, window = self.limit, self.window
        if current < limit and previous:  # later in this window, as the previous one weighs less
            at = index * window + window * (1 - (limit - current - 1) / previous)
        else:  # in the next window, as this one weighs less
            at = index * window + window * (2 - (limit - 1) / current)
        return max(1, math.ceil(at - now))
