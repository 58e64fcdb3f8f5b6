"""Response caching and a store-backed cache object, on the same ``Store`` as sessions.

::

    cache = Cache(RedisStore(url=..., prefix="myapp:cache:"))
    app = App(cache=cache)

    @app.get("/items/{item_id}", cache=60)            # or: cache=CachePolicy(60, vary=["Accept-Language"])
    async def read_item(item_id: int) -> Item: ...

    await cache.invalidate(read_item, item_id=3)      # after an update
    await cache.set("rates", data, ttl=300, namespace="fx")

Responses are cached per route and per *validated* parameters (``?a=1&b=2`` and ``?b=2&a=1`` share an
entry), per origin (``Host``, scheme, ``root_path``) and per credentials the route passes to its
handler (see ``toolkit._route_cache``), for GET/HEAD and 200 only, never when the response sets a
cookie, says ``Cache-Control: private``/``no-store`` or ``Vary: *``. A ``Vary`` the response sets
is honoured: a hit needs the same values of those request headers. Cached responses carry
``ETag``, ``Cache-Control`` (``private`` for credentialed routes) and ``Age``; a matching
``If-None-Match`` gets a 304. A store failure degrades to "no cache" (logged), never to a 500.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
from starlette.responses import Response
from starlette.types import Scope

from ._body import header_lines
from .sessions._memory import MemoryStore
from .stores import Store, StoreError

__all__ = ["Cache", "CachePolicy", "RouteKey", "cached"]

logger = logging.getLogger("toolkit.cache")


@dataclasses.dataclass(frozen=True, slots=True)
class CachePolicy:
    """How a route's responses are cached: for ``expire`` seconds, varying on ``vary`` headers.

    The key always covers the validated parameters, the origin (``Host``, scheme, ``root_path``)
    and the credentials the route's security schemes and ``Session`` parameters pass on. A route
    whose handler reads the ``Request`` itself must say how to share: ``vary`` (the headers its
    response depends on) or ``shared=True`` (the same for every caller).
    """

    expire: int
    vary: tuple[str, ...] = ()
    statuses: frozenset[int] = frozenset({200})
    #: The response is the same for every caller, whatever the handler reads from the Request.
    shared: bool = False

    def __post_init__(self) -> None:
        if self.expire <= 0:
            raise ValueError("cache expire must be a positive number of seconds")
        object.__setattr__(self, "vary", tuple(h.lower() for h in self.vary))


def cached(expire: int, *, vary: Sequence[str] = (), shared: bool = False) -> Callable[[Any], Any]:
    """Mark a handler for response caching; put it *below* the route decorator::

    @app.get("/items")
    @cached(expire=60)
    async def list_items(): ...
    """

    def mark(func: Any) -> Any:
        func.__toolkit_cache__ = CachePolicy(expire, tuple(vary), shared=shared)
        return func

    return mark


class _Entry(msgspec.Struct, array_like=True):
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    etag: str
    stored: float
    expire: int
    generation: bytes  # the route's generation when the request began (see ``Cache.invalidate``)
    private: bool
    vary: list[tuple[str, str]]  # (header, the request's value) for each header the response varies on
    control: bytes = b""  # the handler's own Cache-Control (made private when it must be), if any


class RouteKey:
    """Where a cached route's response for one request lives."""

    __slots__ = ("entry", "generation", "resource", "route")

    def __init__(self, route: str, resource: bytes, entry: bytes) -> None:
        self.route = route
        self.resource = resource  # digest of the path parameters (what ``invalidate`` names)
        self.entry = entry  # digest of all parameters, origin, vary headers and credentials
        self.generation: bytes | None = None  # read by ``lookup``; ``None``: the store failed, do not save


_encode_entry = msgspec.msgpack.Encoder().encode
_decode_entry = msgspec.msgpack.Decoder(_Entry).decode
_value_encoder = msgspec.msgpack.Encoder()
# ``lookup`` keeps the entries a ``MemoryStore`` returns decoded: an immutable ``bytes`` object the
# store hands back again is the same entry. At most this many, of at most this size (a stored
# entry and its decoded body: under 16 MiB in all), so the store's own bounds still hold.
_DECODED_ENTRIES = 256
_DECODED_MAX_BYTES = 32 * 1024

# Headers never replayed from the cache (they are recomputed, or belong to one response only).
_NOT_STORED = {
    *(b"content-length", b"set-cookie", b"etag", b"cache-control", b"age", b"x-request-id"),
    # A rate limit's count belongs to the request that was counted, never to later hits.
    *(b"ratelimit-limit", b"ratelimit-remaining", b"ratelimit-reset", b"ratelimit-policy", b"retry-after"),
}


class Cache:
    """A namespaced cache on a ``Store``, used by handlers directly and by cached routes."""

    def __init__(self, store: Store, *, namespace: str = "cache", default_ttl: float = 60) -> None:
        self.store = store
        self.namespace = namespace
        self.default_ttl = default_ttl
        # The cached routes compiled on this cache: (handler, route name, route id, expire, the
        # function mapping path parameter values to the resource digest ``invalidate`` moves).
        self._routes: list[tuple[Callable[..., Any], str, str, float, Callable[[dict[str, Any]], bytes]]] = []
        # Store key -> (the stored bytes, their decoded entry): a ``MemoryStore`` hands back the
        # very bytes it was given, decoded once here instead of on every hit.
        self._decoded: dict[str, tuple[bytes, _Entry]] = {}

    def _key(self, key: str, namespace: str | None) -> str:
        return f"{namespace or self.namespace}:{key}"

    # --- values ----------------------------------------------------------------------------

    async def get(self, key: str, *, namespace: str | None = None, default: Any = None) -> Any:
        """The cached value, ``default`` on a miss, or ``default`` (logged) when the store fails."""
        try:
            raw = await self.store.get(self._key(key, namespace))
        except StoreError as exc:
            logger.warning("cache get failed, treating it as a miss: %s", exc)
            return default
        return default if raw is None else msgspec.msgpack.decode(raw)

    async def set(
        self, key: str, value: Any, *, ttl: float | None = None, namespace: str | None = None
    ) -> bool:
        """Store ``value`` (msgpack-encodable); ``False`` (logged) when the store fails."""
        try:
            await self.store.set(
                self._key(key, namespace), _value_encoder.encode(value), ttl or self.default_ttl
            )
        except StoreError as exc:
            logger.warning("cache set failed: %s", exc)
            return False
        return True

    async def delete(self, key: str, *, namespace: str | None = None) -> None:
        """Remove ``key``; a store failure is raised (an invalidation must not be lost silently)."""
        await self.store.delete(self._key(key, namespace))

    # --- cached routes -----------------------------------------------------------------------

    def _entry_key(self, key: RouteKey) -> str:
        return f"{self.namespace}:route:{key.route}:{key.entry.hex()}"

    def _generation_key(self, route: str, resource: bytes) -> str:
        return f"{self.namespace}:gen:{route}:{resource.hex()}"

    def register_route(
        self,
        handler: Callable[..., Any],
        name: str,
        route: str,
        expire: float,
        resource_key: Callable[[dict[str, Any]], bytes],
    ) -> None:
        """Called when an App compiles a route with ``cache=...`` on this cache, so ``invalidate``
        can find it by handler or name."""
        self._routes.append((handler, name, route, expire, resource_key))

    async def invalidate(self, handler: Callable[..., Any] | str, **params: Any) -> None:
        """Drop every cached response of ``handler`` for these path parameters: for every query,
        host, header variant and user (a route without path parameters: all its responses).
        Other parameters may be passed and are checked, but do not narrow it. A store failure is
        raised (an invalidation must not be lost silently).

        It moves the generation of those path parameters, so an entry saved by a request that
        began before the call is never served either.
        """
        if not self._routes:
            raise RuntimeError(
                "this Cache is not attached to an App: no route caches on it (App(cache=...), then "
                "cache=... on a route)"
            )
        routes = [entry for entry in self._routes if entry[0] is handler or entry[1] == handler]
        if not routes:
            name = handler if isinstance(handler, str) else getattr(handler, "__qualname__", repr(handler))
            raise ValueError(f"{name} is not a cached route of this app (cache=... on its route decorator)")
        for _, _, route, expire, resource_key in routes:
            resource = resource_key(params)
            # Outlives every entry saved under the previous generation (they expire first).
            await self.store.set(self._generation_key(route, resource), os.urandom(8), expire + 300)

    async def lookup(self, key: RouteKey, scope: Scope, expire: float) -> _Entry | None:
        """The entry to serve for this request, or ``None`` (then ``key.generation`` is what a
        response saved for this request must carry).

        A resource without a generation gets a new random one: an entry is only ever saved
        under a generation that exists, so losing the generation key (evicted by a full
        ``MemoryStore``, a Redis ``maxmemory`` policy) invalidates its entries instead of
        bringing back those an ``invalidate`` had dropped."""
        generation_key = self._generation_key(key.route, key.resource)
        entry_key = self._entry_key(key)
        store = self.store
        memory = store if type(store) is MemoryStore else None  # PERF: read without awaiting
        try:
            generation = (
                memory.get_now(generation_key) if memory is not None else await store.get(generation_key)
            )
            if generation is None:
                generation = os.urandom(8)
                await store.set(generation_key, generation, expire + 300)
            raw = memory.get_now(entry_key) if memory is not None else await store.get(entry_key)
        except StoreError as exc:
            logger.warning("response cache unavailable, serving uncached: %s", exc)
            return None
        key.generation = generation
        if raw is None:
            return None
        decoded = self._decoded.get(entry_key) if memory is not None else None
        if decoded is not None and decoded[0] is raw:
            entry = decoded[1]  # PERF: the very bytes object decoded last time
        else:
            try:
                entry = _decode_entry(raw)
            except (msgspec.DecodeError, msgspec.ValidationError):
                logger.warning("discarding an unreadable cache entry")
                return None
            if memory is not None and type(raw) is bytes and len(raw) <= _DECODED_MAX_BYTES:
                if len(self._decoded) >= _DECODED_ENTRIES:
                    self._decoded.clear()
                self._decoded[entry_key] = (raw, entry)
        if entry.generation != generation:
            return None  # invalidated
        if entry.vary:
            names = [name for name, _ in entry.vary]
            if vary_values(names, scope) != [value for _, value in entry.vary]:
                return None  # made for a request with other values of a header it varies on
        return entry

    async def _store(self, key: RouteKey, entry: _Entry, lifetime: int) -> None:
        try:
            await self.store.set(self._entry_key(key), _encode_entry(entry), lifetime)
        except StoreError as exc:
            logger.warning("response cache unavailable, not stored: %s", exc)

    async def save(
        self,
        key: RouteKey,
        response: Response,
        policy: CachePolicy,
        per_request: list[tuple[bytes, bytes]] | None,
        scope: Scope,
        *,
        private: bool = False,
        also_vary: Sequence[str] = (),
        route_vary: Sequence[str] | None = None,
    ) -> Response:
        """Store ``response`` if it may be cached; return it with ``ETag``/``Cache-Control`` added.

        ``per_request`` headers (set through an injected ``Response``) are sent but never stored;
        they still decide cacheability (a cookie, ``Cache-Control: private``, ``Vary: *``).
        ``also_vary`` names request headers the response depends on besides its own ``Vary``;
        ``route_vary`` (default: the policy's) those every response of the route says it varies on."""
        per_request = per_request or []
        varies = vary_names([*response.raw_headers, *per_request])
        if varies is None or not _cacheable(response, policy, per_request):
            response.raw_headers.extend(per_request)
            return response
        unsaid = [name for name in also_vary if name not in varies]
        varies += unsaid
        # The handler's own Cache-Control is kept (on hits too) instead of ours, made private
        # when the response is; it is sent once, however many layers set it.
        control = _own_control([*response.raw_headers, *per_request], private)
        lifetime = int(min(policy.expire, _declared_lifetime(control)))
        if lifetime <= 0:  # the handler's own Cache-Control says it is stale at once
            response.raw_headers.extend(per_request)
            return response
        if control:
            response.raw_headers = [h for h in response.raw_headers if h[0] != b"cache-control"]
            per_request = [h for h in per_request if h[0] != b"cache-control"]
        body = bytes(response.body)
        etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
        headers = [(k, v) for k, v in response.raw_headers if k not in _NOT_STORED]
        headers += [(k, v) for k, v in per_request if k == b"vary"]  # hits must say it too
        if unsaid:  # said by a middleware on this response; a hit must say it as well
            headers.append((b"vary", ", ".join(unsaid).encode("latin-1")))
        vary = list(zip(varies, vary_values(varies, scope), strict=True))
        if key.generation is not None:
            entry = _Entry(
                response.status_code,
                headers,
                body,
                etag,
                time.time(),
                lifetime,
                key.generation,
                private,
                vary,
                control,
            )
            await self._store(key, entry, lifetime)
        said = policy.vary if route_vary is None else route_vary
        response.raw_headers.extend(_freshness(etag, policy.expire, said, private, control))
        response.raw_headers.extend(per_request)
        return response


def vary_names(headers: Sequence[tuple[bytes, bytes]]) -> list[str] | None:
    """The header names the ``Vary`` headers list (lower-case); ``None`` for ``Vary: *``."""
    names: list[str] = []
    for key, value in headers:
        if key == b"vary":
            for name in value.decode("latin-1").split(","):
                name = name.strip().lower()
                if name == "*":
                    return None
                if name and name not in names:
                    names.append(name)
    return names


def vary_values(names: Sequence[str], scope: Scope) -> list[str]:
    """The request's value of each header in ``names`` (repeated lines joined, so they count too)."""
    return [header_lines(scope, name.encode("latin-1")).decode("latin-1") for name in names]


def _cacheable(response: Response, policy: CachePolicy, per_request: list[tuple[bytes, bytes]]) -> bool:
    if response.status_code not in policy.statuses or not hasattr(response, "body"):
        return False
    for key, value in [*response.raw_headers, *per_request]:
        if key == b"set-cookie":
            return False
        if key == b"cache-control" and (b"private" in value.lower() or b"no-store" in value.lower()):
            return False
    return True


def _own_control(headers: Sequence[tuple[bytes, bytes]], private: bool) -> bytes:
    """The Cache-Control a handler set (``b""``: none), with ``private`` first when it must be."""
    values = [value for key, value in headers if key == b"cache-control"]
    if not values:
        return b""
    directives = [d.strip() for value in values for d in value.split(b",") if d.strip()]
    if private:
        directives = [b"private", *(d for d in directives if d.lower() not in (b"public", b"private"))]
    return b", ".join(dict.fromkeys(directives))


def _declared_lifetime(control: bytes) -> float:
    """How long the handler's own ``Cache-Control`` lets a shared cache keep the response
    (``s-maxage``, else ``max-age``); ``inf`` when it does not say. A hit older than that would
    reach the client already stale."""
    found: dict[bytes, float] = {}
    for directive in control.lower().split(b","):
        name, _, value = directive.strip().partition(b"=")
        if name in (b"s-maxage", b"max-age"):
            try:
                found[name] = max(0, int(value.strip(b'" ')))
            except ValueError:
                return 0  # unreadable: do not keep it longer than it may mean
    return found.get(b"s-maxage", found.get(b"max-age", float("inf")))


def _freshness(
    etag: str, expire: int, vary: Sequence[str], private: bool, control: bytes = b""
) -> list[tuple[bytes, bytes]]:
    # ``max-age`` counts from when the response was made; a hit says how long ago in ``Age``
    # (RFC 9111 4.2.3: a client subtracts it, so it must not be subtracted here too).
    if not control:
        control = (b"private, max-age=%d" if private else b"max-age=%d") % expire
    headers = [(b"etag", etag.encode("latin-1")), (b"cache-control", control)]
    if vary:
        headers.append((b"vary", ", ".join(vary).encode("latin-1")))
    return headers


def cached_response(entry: _Entry, if_none_match: str | None, vary: Sequence[str]) -> Response:
    """The response for a cache hit: the stored one, or a 304 for a matching ``If-None-Match``."""
    age = max(0, int(time.time() - entry.stored))
    fresh = [
        *_freshness(entry.etag, entry.expire, vary, entry.private, entry.control),
        (b"age", b"%d" % age),
    ]
    if if_none_match is not None and _etag_matches(if_none_match, entry.etag):
        response = Response(status_code=304)
        response.raw_headers = [*(h for h in entry.headers if h[0] == b"vary"), *fresh]
        return response
    response = Response.__new__(Response)
    response.status_code = entry.status
    response.body = entry.body
    response.background = None
    response.raw_headers = [(b"content-length", b"%d" % len(entry.body)), *entry.headers, *fresh]
    return response


def _etag_matches(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    candidates = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return etag in candidates
