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

Who a client is (the policy, safe by default):

- The peer address, unless the peer is in ``trusted_proxies``. Behind one, the forwarded chain is
  read from the right and the first hop that is not a trusted proxy is the client (uvicorn's
  ``ProxyHeadersMiddleware`` does the same). Every line of the header counts, as one comma list:
  a proxy that adds a line of its own (HAProxy ``option forwardfor``) leaves the client's line in
  front, where it is never believed.
- Only the header the proxy writes is read: ``proxy_header="x-forwarded-for"`` (default) or
  ``"forwarded"`` (RFC 7239, ``for=`` values such as ``"[2001:db8::1]:4711"``). The other one is
  ignored even when present: a proxy passes on unchanged whatever the client put in a header it
  does not manage, so reading it would let the client choose its bucket.
- A hop that is not an address (``unknown``, an obfuscated id, garbage, a malformed ``Forwarded``
  line) ends the walk and the request counts as the peer's: nothing to its left, which the client
  wrote, is believed. Ports are dropped (a client picks its source port).
- IPv6 clients are counted per /64 (``ipv6_prefix=64``): one host commonly owns a whole /64, and
  would otherwise have 2^64 buckets. IPv4-mapped IPv6 addresses (``::ffff:192.0.2.1``) count as
  their IPv4 address. ``client_address()`` is the address; ``client_key()`` the bucket.

How requests are counted:

- A refused request does not count (as nginx ``limit_req`` and ``limits``): a client retrying
  without pause still gets its limit's worth in each window. The counters are read first and
  only a request that fits increments; the increment's result is checked again, and a request
  that lost a race with another process for the last slot takes its increment back
  (``incr`` by -1). So races across processes can only refuse a request, never admit one too many,
  and a flood of refused requests writes nothing.
- The sliding count is ``current + floor(previous * overlap)`` against the limit (as in
  ``limits``). A sliding window is ``(start, end]``: a request exactly on a boundary closes the
  window before it. With that, ``Retry-After`` is exact (a request that many seconds later is
  admitted, if nothing else arrived) and never more than the window.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from typing import Literal

import anyio
from starlette.requests import Request
from starlette.responses import Response

from ._scope_keys import RESPONSE_HEADERS_SCOPE_KEY, ROUTE_SCOPE_KEY
from .exceptions import HTTPException
from .sessions._memory import MemoryStore
from .stores import CounterStore, StoreError

__all__ = ["RateLimit", "RateLimiter", "parse_rate"]

logger = logging.getLogger("toolkit.ratelimit")

_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(r"\s*(\d+)\s*(?:/|per)\s*(\d+)?\s*(second|minute|hour|day)s?\s*", re.IGNORECASE)

KeyFunction = Callable[[Request], str]
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
# One RFC 7239 pair, then the separator after it. Unquoted values also take ":" "[" "]" (some
# proxies leave them unquoted): none of them can move where an element or a pair ends.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PAIR = re.compile(rf'[ \t]*({_TOKEN})=("(?:[^"\\]|\\.)*"|[!#$%&\'*+.^_`|~0-9A-Za-z:\[\]-]+)[ \t]*([;,]|$)')
_ESCAPED = re.compile(r"\\(.)")


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
        proxy_header: Literal["x-forwarded-for", "forwarded"] = "x-forwarded-for",
        ipv6_prefix: int = 64,
        algorithm: Literal["sliding", "fixed"] = "sliding",
        prefix: str = "ratelimit",
        fail_open: bool = True,
    ) -> None:
        if algorithm not in ("sliding", "fixed"):
            raise ValueError("algorithm must be 'sliding' or 'fixed'")
        if proxy_header not in ("x-forwarded-for", "forwarded"):
            raise ValueError("proxy_header must be 'x-forwarded-for' or 'forwarded'")
        if isinstance(ipv6_prefix, bool) or not 1 <= ipv6_prefix <= 128:
            raise ValueError("ipv6_prefix must be a prefix length from 1 to 128")
        self.store = store
        self.trusted = [_canonical_network(ipaddress.ip_network(p, strict=False)) for p in trusted_proxies]
        self.proxy_header = proxy_header
        self.ipv6_prefix = ipv6_prefix
        self._ipv6_mask = ((1 << ipv6_prefix) - 1) << (128 - ipv6_prefix)
        self.algorithm = algorithm
        self.prefix = prefix
        self.fail_open = fail_open

    def limit(self, rate: str, *, key: KeyFunction | None = None, name: str | None = None) -> RateLimit:
        """A dependency enforcing ``rate`` per client (``key``), per route unless ``name`` is shared."""
        limit, window = parse_rate(rate)
        return RateLimit(self, limit, window, key=key, name=name)

    def client_address(self, request: Request) -> str:
        """The client's address: the peer, or behind a trusted proxy the nearest untrusted hop."""
        return str(self._client(request))

    def client_key(self, request: Request) -> str:
        """The bucket the client is counted in: its IPv4 address, or its IPv6 /``ipv6_prefix``."""
        client = self._client(request)
        if isinstance(client, ipaddress.IPv6Address):
            network = ipaddress.IPv6Address(int(client) & self._ipv6_mask)
            return f"{network}/{self.ipv6_prefix}"
        return str(client)

    def _client(self, request: Request) -> Address | str:
        server_peer = request.scope.get("client")  # PERF: not request.client (a new tuple per read)
        peer = server_peer[0] if server_peer else "unknown"
        if not self.trusted and ":" not in peer:
            return peer  # PERF: an IPv4 peer (or a name) is its own key; nothing to parse
        address = _parse_address(peer)
        if address is None:
            return peer  # not an address (a Unix socket, a test client): as the server gave it
        if not self._is_trusted(address):
            return address
        hops: Sequence[str | None]
        if self.proxy_header == "forwarded":
            hops = _forwarded_hops(request.headers.getlist("forwarded"))
        else:
            hops = [hop for line in request.headers.getlist("x-forwarded-for") for hop in line.split(",")]
        client: Address | None = None
        for hop in reversed(hops):
            client = _parse_address(hop) if hop is not None else None
            if client is None:
                return address  # not an address: what lies left of it was written by the client
            if not self._is_trusted(client):
                return client
        # Every hop is a trusted proxy (or there is none): the left-most, as uvicorn does.
        return client if client is not None else address

    def _is_trusted(self, address: Address) -> bool:
        return any(address in network for network in self.trusted)


def _canonical(address: Address) -> Address:
    """IPv4-mapped IPv6 as IPv4; an IPv6 zone (``%eth0``) dropped: one spelling per host."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id is not None:
            return ipaddress.IPv6Address(int(address))
    return address


def _canonical_network(network: Network) -> Network:
    """A trusted ``::ffff:10.0.0.0/104`` as ``10.0.0.0/8``: addresses are compared as IPv4."""
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_MAPPED) and network.prefixlen >= 96:
        return ipaddress.IPv4Network((int(network.network_address) & 0xFFFFFFFF, network.prefixlen - 96))
    return network


def _parse_address(text: str) -> Address | None:
    """``ip``, ``ipv4:port``, ``[ipv6]`` or ``[ipv6]:port``, canonical; ``None`` for anything else."""
    text = text.strip()
    bracketed = text.startswith("[")
    port: str | None = None
    if bracketed:
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and rest[0] != ":"):
            return None
        port = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host = text
    if port is not None and not (port.isascii() and port.isdigit()):
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if bracketed and address.version != 6:
        return None  # "[192.0.2.1]" is not a way to write an IPv4 address
    return _canonical(address)


def _forwarded_hops(lines: list[str]) -> list[str | None]:
    """The ``for=`` value of each RFC 7239 element, left to right: ``None`` for an element without
    exactly one, and a single ``None`` for a line that does not parse (an unterminated quote). Each
    line is parsed alone, so a client's malformed line cannot swallow a line a proxy added."""
    hops: list[str | None] = []
    for line in lines:
        elements = _forwarded_elements(line)
        hops.extend([None] if elements is None else elements)
    return hops


def _forwarded_elements(line: str) -> list[str | None] | None:
    if not line.strip():
        return None
    elements: list[str | None] = []
    pairs: dict[str, str] = {}
    position = 0
    while position < len(line):
        match = _PAIR.match(line, position)
        if match is None:
            return None
        name, value = match[1].lower(), match[2]
        if name in pairs:
            return None  # two for= in one element: which one would be the client?
        pairs[name] = _ESCAPED.sub(r"\1", value[1:-1]) if value.startswith('"') else value
        position = match.end()
        if match[3] != ";":  # "," or the end of the line: the element is complete
            elements.append(pairs.get("for"))
            pairs = {}
    if pairs:  # the line ended with ";"
        elements.append(pairs.get("for"))
    return elements


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
        self.policy_text = f"{limit};w={window}"
        self._names: dict[tuple[str, str], str] = {}  # (route template, method) -> counter scope
        self.policy = self.policy_text.encode("latin-1")
        self.limit_bytes = b"%d" % limit

    async def __call__(self, request: Request, response: Response) -> None:
        limiter = self.limiter
        store = limiter.store
        client = self.key(request) if self.key is not None else limiter.client_key(request)
        scope_name = self.name
        if scope_name is None:
            # Unnamed: per route, method and rate, so two limits on one route (an app-wide one and
            # the route's own) never share a counter.
            method = request.scope["method"]
            route = request.scope.get(ROUTE_SCOPE_KEY)
            scope_name = self._names.get((route, method)) if route is not None else None
            if scope_name is None:
                verb = "GET" if method == "HEAD" else method
                scope_name = f"{route or request.url.path}|{verb}|{self.policy_text}"
                if route is not None and len(self._names) < 1024:  # templates: a bounded set
                    self._names[route, method] = scope_name
        now = time.time()
        window, limit = self.window, self.limit
        sliding = limiter.algorithm == "sliding"
        # Sliding windows are (start, end]: a boundary closes the window before it. Fixed: [start, end).
        index = math.ceil(now / window) - 1 if sliding else int(now // window)
        left = (index + 1) * window - now  # seconds until this window ends
        base = f"{limiter.prefix}:{scope_name}:{client}"
        key = f"{base}:{index}"
        previous = 0
        try:
            if type(store) is MemoryStore:
                # PERF: an in-process store is read and counted without awaiting; with nothing
                # running in between, no other request can take the last slot meanwhile.
                if sliding:
                    previous = store.count_now(f"{base}:{index - 1}")
                weighed = _weighed(previous, left, window)
                current = store.count_now(key)
                admitted = current + weighed < limit
                if admitted:
                    current = store.incr_now(key, 1, window * 2)
            else:
                # Read before writing: a refused request (most of a flood) writes nothing, at the
                # cost of one more round trip for an admitted one.
                if sliding:
                    previous = _count(await store.get(f"{base}:{index - 1}"))
                weighed = _weighed(previous, left, window)
                current = _count(await store.get(key))
                admitted = current + weighed < limit
                if admitted:
                    current = await store.incr(key, 1, window * 2)
                    if current + weighed > limit:  # another process took the last slot meanwhile
                        admitted = False
                        current -= 1
                        await self._take_back(key)
        except StoreError as exc:
            if limiter.fail_open:
                logger.warning("rate limit store unavailable, allowing the request: %s", exc)
                return
            raise HTTPException(503, "Rate limit store unavailable", headers={"Retry-After": "1"}) from exc
        reset = max(1, math.ceil(left))
        if not admitted:
            # In-flight increments of other requests may show above the limit; they are taken back.
            current = min(current, limit)
            retry = self._sliding_retry(now, index, current, previous) if sliding else reset
            headers = {
                "RateLimit-Limit": str(limit),
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(reset),
                "RateLimit-Policy": self.policy.decode("latin-1"),
                "Retry-After": str(retry),
            }
            raise HTTPException(429, "Too Many Requests", headers=headers)
        remaining = max(0, limit - current - weighed)
        # PERF: raw headers, not response.headers[...] (a MutableHeaders scan per assignment).
        sent = (
            (b"ratelimit-limit", self.limit_bytes),
            (b"ratelimit-remaining", b"%d" % remaining),
            (b"ratelimit-reset", b"%d" % reset),
            (b"ratelimit-policy", self.policy),
        )
        response.raw_headers.extend(sent)
        # Also on an error response (a wrong password's 401: when the count matters most).
        request.scope[RESPONSE_HEADERS_SCOPE_KEY] = sent

    async def _take_back(self, key: str) -> None:
        """Undo this request's increment: shielded, so a cancelled request cannot leave it behind."""
        with anyio.CancelScope(shield=True):
            try:
                await self.limiter.store.incr(key, -1, self.window * 2)
            except StoreError as exc:  # the request is refused all the same
                logger.warning("rate limit store failed while taking back a refused request: %s", exc)

    def _admits(self, at: float, index: int, current: int, previous: int) -> bool:
        """Whether a request at ``at`` would pass (sliding), if no other request arrives before.

        It computes what ``__call__`` will compute then, the same way, so ``Retry-After`` is exact.
        """
        window = self.window
        later = math.ceil(at / window) - 1
        if later == index:
            count = current + _weighed(previous, (index + 1) * window - at, window)
        elif later == index + 1:  # this window has become the previous one
            count = _weighed(current, (later + 1) * window - at, window)
        else:
            count = 0
        return count < self.limit

    def _sliding_retry(self, now: float, index: int, current: int, previous: int) -> int:
        """Whole seconds until a request is admitted: at most the window, as ``current <= limit``."""
        limit, window = self.limit, self.window
        if current < limit and previous:  # later in this window, as the previous one weighs less
            at = (index + 1) * window - (limit - current) * window / previous
        elif current < limit:
            at = now
        else:  # in the next window, as this one weighs less
            at = (index + 2) * window - limit * window / current
        retry = max(1, math.floor(at - now) + 1)
        # The weight is rounded down, so admission begins just after ``at``; float rounding right at
        # that point is settled by asking _admits, the rule itself.
        while not self._admits(now + retry, index, current, previous):
            retry += 1
        while retry > 1 and self._admits(now + retry - 1, index, current, previous):
            retry -= 1
        return retry


def _count(raw: bytes | None) -> int:
    return 0 if raw is None else max(0, int(raw))


def _weighed(previous: int, left: float, window: int) -> int:
    """The previous window's count still weighing, rounded down (as ``limits`` does)."""
    return math.floor(previous * left / window) if previous else 0
