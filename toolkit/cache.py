"""Response caching and a store-backed cache object, on the same ``Store`` as sessions.

::

    cache = Cache(RedisStore(url=..., prefix="myapp:cache:"))
    app = App(cache=cache)

    @app.get("/items/{item_id}", cache=60)            # or: cache=CachePolicy(60, vary=["Accept-Language"])
    async def read_item(item_id: int) -> Item: ...

    await cache.invalidate(read_item, item_id=3)      # after an update
    await cache.set("rates", data, ttl=300, namespace="fx")

Responses are cached per route and per *validated* parameters (``?a=1&b=2`` and ``?b=2&a=1`` share an
entry), for GET/HEAD and 200 only, never when the response sets a cookie or says
``Cache-Control: private``/``no-store``. Cached responses carry ``ETag``, ``Cache-Control`` and
``Age``; a matching ``If-None-Match`` gets a 304. A store failure degrades to "no cache" (logged),
never to a 500.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.responses import Response

from .sessions._store import Store, StoreError

if TYPE_CHECKING:
    from .app import App

__all__ = ["Cache", "CachePolicy", "cached"]

logger = logging.getLogger("toolkit.cache")


@dataclasses.dataclass(frozen=True, slots=True)
class CachePolicy:
    """How a route's responses are cached: for ``expire`` seconds, varying on ``vary`` headers."""

    expire: int
    vary: tuple[str, ...] = ()
    statuses: frozenset[int] = frozenset({200})

    def __post_init__(self) -> None:
        if self.expire <= 0:
            raise ValueError("cache expire must be a positive number of seconds")
        object.__setattr__(self, "vary", tuple(h.lower() for h in self.vary))


def cached(expire: int, *, vary: Sequence[str] = ()) -> Callable[[Any], Any]:
    """Mark a handler for response caching; put it *below* the route decorator::

    @app.get("/items")
    @cached(expire=60)
    async def list_items(): ...
    """

    def mark(func: Any) -> Any:
        func.__toolkit_cache__ = CachePolicy(expire, tuple(vary))
        return func

    return mark


class _Entry(msgspec.Struct, array_like=True):
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    etag: str
    stored: float
    expire: int


_encode_entry = msgspec.msgpack.Encoder().encode
_decode_entry = msgspec.msgpack.Decoder(_Entry).decode
_value_encoder = msgspec.msgpack.Encoder()

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
        self._app: App | None = None

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

    def response_key(self, route: str, params: Any, headers: Sequence[str]) -> str:
        digest = hashlib.blake2b(msgspec.json.encode(params), digest_size=16)
        for value in headers:
            digest.update(b"\x00" + value.encode("latin-1"))
        return f"route:{route}:{digest.hexdigest()}"

    async def invalidate(self, handler: Callable[..., Any] | str, **params: Any) -> None:
        """Drop the cached response of ``handler`` for these parameters (and no ``vary`` headers)."""
        if self._app is None:
            raise RuntimeError("this Cache is not attached to an App (App(cache=...))")
        for endpoint in self._app.endpoints:
            if endpoint.cache_policy is not None and (
                endpoint.options.endpoint is handler or endpoint.options.name == handler
            ):
                await self.delete(endpoint.cache_key_for(params, ()))

    async def lookup(self, key: str) -> _Entry | None:
        try:
            raw = await self.store.get(self._key(key, None))
        except StoreError as exc:
            logger.warning("response cache unavailable, serving uncached: %s", exc)
            return None
        if raw is None:
            return None
        try:
            return _decode_entry(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            logger.warning("discarding an unreadable cache entry")
            return None

    async def save(
        self,
        key: str,
        response: Response,
        policy: CachePolicy,
        per_request: list[tuple[bytes, bytes]] | None = None,
    ) -> Response:
        """Store ``response`` if it may be cached; return it with ``ETag``/``Cache-Control`` added.

        ``per_request`` headers (set through an injected ``Response``) are sent but never stored;
        they still decide cacheability (a cookie or ``Cache-Control: private`` among them)."""
        per_request = per_request or []
        if not _cacheable(response, policy, per_request):
            response.raw_headers.extend(per_request)
            return response
        body = bytes(response.body)
        etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
        headers = [(k, v) for k, v in response.raw_headers if k not in _NOT_STORED]
        entry = _Entry(response.status_code, headers, body, etag, time.time(), policy.expire)
        try:
            await self.store.set(self._key(key, None), _encode_entry(entry), policy.expire)
        except StoreError as exc:
            logger.warning("response cache unavailable, not stored: %s", exc)
        response.raw_headers.extend(_freshness(etag, policy.expire, 0, policy.vary))
        response.raw_headers.extend(per_request)
        return response


def _cacheable(response: Response, policy: CachePolicy, per_request: list[tuple[bytes, bytes]]) -> bool:
    if response.status_code not in policy.statuses or not hasattr(response, "body"):
        return False
    for key, value in [*response.raw_headers, *per_request]:
        if key == b"set-cookie":
            return False
        if key == b"cache-control" and (b"private" in value.lower() or b"no-store" in value.lower()):
            return False
    return True


def _freshness(etag: str, expire: int, age: int, vary: Sequence[str]) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"etag", etag.encode("latin-1")),
        (b"cache-control", b"max-age=%d" % max(0, expire - age)),
    ]
    if vary:
        headers.append((b"vary", ", ".join(vary).encode("latin-1")))
    return headers


def cached_response(entry: _Entry, if_none_match: str | None, vary: Sequence[str]) -> Response:
    """The response for a cache hit: the stored one, or a 304 for a matching ``If-None-Match``."""
    age = max(0, int(time.time() - entry.stored))
    fresh = [*_freshness(entry.etag, entry.expire, age, vary), (b"age", b"%d" % age)]
    if if_none_match is not None and _etag_matches(if_none_match, entry.etag):
        response = Response(status_code=304)
        response.raw_headers = fresh
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
