"""Response caching and the ``Cache`` object, on ``MemoryStore`` and on ``RedisStore`` with a real Redis."""

import functools
import logging
from typing import Annotated, Any

import anyio
import pytest
from cache_support import cache_app, close, portal
from redis_server import RedisServer

import toolkit.cache as cache_module
import toolkit.sessions._memory as memory_module
from toolkit import App, Depends, Header, HTTPException, JSONResponse, Request, Response, RouteConfigError
from toolkit.cache import Cache, CachePolicy, cached
from toolkit.sessions import MemoryStore, RedisStore, Store, StoreError
from toolkit.testing import TestClient


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class BrokenStore(MemoryStore):
    """Every operation fails as a store that is down does."""

    async def get(self, key: str) -> bytes | None:
        raise StoreError("store down")

    async def set(self, key: str, value: bytes, ttl: float, *, only_if_exists: bool = False) -> bool:
        raise StoreError("store down")

    async def delete(self, key: str) -> None:
        raise StoreError("store down")


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now


# --- one handler run for repeated GETs ---------------------------------------------------------


@pytest.mark.parametrize("style", ["option", "decorator", "policy"])
def test_repeated_gets_run_the_handler_once(store: Store, style: str) -> None:
    app, _ = cache_app(store)
    calls: list[int] = []

    async def read_item(item_id: int) -> dict[str, int]:
        calls.append(item_id)
        return {"item_id": item_id, "call": len(calls)}

    if style == "option":
        app.get("/items/{item_id}", cache=60)(read_item)
    elif style == "decorator":
        app.get("/items/{item_id}")(cached(expire=60)(read_item))
    else:
        app.get("/items/{item_id}", cache=CachePolicy(60))(read_item)
    with TestClient(app) as client:
        first = client.get("/items/1")
        again = [client.get("/items/1") for _ in range(3)]
        other = client.get("/items/2")
    assert first.json() == {"item_id": 1, "call": 1}
    assert all(r.status_code == 200 and r.content == first.content for r in again)
    assert all(r.headers["content-type"] == "application/json" for r in again)
    assert other.json() == {"item_id": 2, "call": 2}
    assert calls == [1, 2]


def test_the_key_is_built_from_the_validated_parameters(store: Store) -> None:
    app, _ = cache_app(store)
    calls: list[tuple[int, int]] = []

    @app.get("/sum", cache=60)
    async def total(a: int, b: int = 0) -> dict[str, int]:
        calls.append((a, b))
        return {"sum": a + b, "call": len(calls)}

    with TestClient(app) as client:
        first = client.get("/sum?a=1&b=2").json()
        assert client.get("/sum?b=2&a=1").json() == first  # query order
        assert client.get("/sum?a=1.0&b=2").json() == first  # the validated int, not the text
        assert client.get("/sum?a=1&b=2&unknown=x").json() == first  # undeclared parameters
        assert client.get("/sum?a=1").json() == client.get("/sum?a=1&b=0").json()  # defaults
        assert client.get("/sum?a=2&b=1").json()["call"] == 3  # other values: another entry
    assert calls == [(1, 2), (1, 0), (2, 1)]


def test_a_leading_zero_int_shares_the_entry() -> None:
    app, _ = cache_app(MemoryStore())

    @app.get("/n", cache=60)
    async def number(a: int) -> dict[str, int]:
        return {"a": a}

    with TestClient(app) as client:
        assert client.get("/n?a=1").json() == {"a": 1}
        assert client.get("/n?a=01").json() == {"a": 1}


def test_routes_sharing_a_name_do_not_share_entries() -> None:
    app, _ = cache_app(MemoryStore())

    @app.get("/users", cache=60, name="index")
    async def users() -> dict[str, str]:
        return {"list": "users"}

    @app.get("/items", cache=60, name="index")
    async def items() -> dict[str, str]:
        return {"list": "items"}

    with TestClient(app) as client:
        assert client.get("/users").json() == {"list": "users"}
        assert client.get("/items").json() == {"list": "items"}


def test_head_is_served_from_the_get_entry(store: Store) -> None:
    app, _ = cache_app(store)
    calls: list[int] = []

    @app.get("/items/{item_id}", cache=60)
    async def read_item(item_id: int) -> dict[str, int]:
        calls.append(item_id)
        return {"item_id": item_id}

    with TestClient(app) as client:
        get = client.get("/items/1")
        head = client.head("/items/1")
        head_first = client.head("/items/2")  # a HEAD miss fills the entry GET then uses
        get_after = client.get("/items/2")
    assert calls == [1, 2]
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["etag"] == get.headers["etag"]
    assert head.headers["content-length"] == str(len(get.content))
    assert head_first.content == b""
    assert get_after.json() == {"item_id": 2}


# --- what is not cached -------------------------------------------------------------------------


def test_only_200_responses_are_cached(store: Store) -> None:
    app, _ = cache_app(store)
    calls: list[str] = []

    @app.get("/items/{item_id}", cache=60)
    async def read_item(item_id: int) -> dict[str, int]:
        calls.append("item")
        if item_id == 0:
            raise HTTPException(404, "no such item")
        return {"item_id": item_id}

    @app.get("/created", cache=60, status_code=201)
    async def created() -> dict[str, bool]:
        calls.append("created")
        return {"ok": True}

    with TestClient(app) as client:
        assert [client.get("/items/0").status_code for _ in range(2)] == [404, 404]
        assert [client.get("/items/x").status_code for _ in range(2)] == [422, 422]
        assert [client.get("/created").status_code for _ in range(2)] == [201, 201]
        missed = client.get("/items/0")
    assert calls == ["item", "item", "created", "created", "item"]
    assert "etag" not in missed.headers
    assert "cache-control" not in missed.headers


def test_only_get_routes_may_cache() -> None:
    app = App(cache=Cache(MemoryStore()))

    async def handler() -> dict[str, bool]:
        return {"ok": True}

    with pytest.raises(RouteConfigError, match="only GET routes"):
        app.post("/p", cache=60)(handler)
    with pytest.raises(RouteConfigError, match="only GET routes"):
        app.api_route("/q", methods=["GET", "POST"], cache=60)(handler)
    with pytest.raises(RouteConfigError, match="only GET routes"):
        app.put("/r")(cached(expire=60)(handler))
    with pytest.raises(RouteConfigError, match="needs a cache"):
        App().get("/s", cache=60)(handler)
    with pytest.raises(ValueError, match="positive"):
        CachePolicy(0)


@pytest.mark.parametrize(
    "kind", ["cookie", "returned-cookie", "private", "no-store", "no-store-upper", "streaming"]
)
def test_personal_or_uncacheable_responses_are_not_cached(store: Store, kind: str) -> None:
    app, _ = cache_app(store)
    calls: list[int] = []

    @app.get("/me", cache=60)
    async def me(response: Response) -> Any:
        calls.append(1)
        if kind == "cookie":
            response.set_cookie("seen", "1")
        elif kind == "returned-cookie":
            returned = JSONResponse({"call": len(calls)})
            returned.set_cookie("seen", "1")
            return returned
        elif kind == "private":
            response.headers["Cache-Control"] = "private, max-age=10"
        elif kind == "no-store":
            response.headers["Cache-Control"] = "no-store"
        elif kind == "no-store-upper":
            return JSONResponse({"call": len(calls)}, headers={"Cache-Control": "NO-STORE"})
        else:
            from toolkit import StreamingResponse

            return StreamingResponse(iter([b"a", b"b"]))
        return {"call": len(calls)}

    with TestClient(app) as client:
        responses = [client.get("/me") for _ in range(2)]
    assert len(calls) == 2
    assert all(r.status_code == 200 and "age" not in r.headers and "etag" not in r.headers for r in responses)


# --- vary, headers, conditional requests ---------------------------------------------------------


@pytest.mark.parametrize("style", ["policy", "decorator"])
def test_vary_separates_entries(store: Store, style: str) -> None:
    app, _ = cache_app(store)
    calls: list[str | None] = []

    async def greet(accept_language: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        calls.append(accept_language)
        return {"lang": accept_language, "call": len(calls)}

    if style == "policy":
        app.get("/greet", cache=CachePolicy(60, vary=("Accept-Language",)))(greet)
    else:
        app.get("/greet")(cached(expire=60, vary=["Accept-Language"])(greet))
    with TestClient(app) as client:
        fr = client.get("/greet", headers={"Accept-Language": "fr"})
        de = client.get("/greet", headers={"Accept-Language": "de"})
        none = client.get("/greet")
        fr_again = client.get("/greet", headers={"Accept-Language": "fr"})
        none_again = client.get("/greet")
    assert calls == ["fr", "de", None]
    assert fr_again.json() == fr.json() == {"lang": "fr", "call": 1}
    assert de.json()["call"] == 2
    assert none_again.json() == none.json()
    assert fr.headers["vary"].lower() == fr_again.headers["vary"].lower() == "accept-language"


def test_etag_cache_control_and_age(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(cache_module, "time", clock)
    app, _ = cache_app(store)

    @app.get("/page", cache=60)
    async def page() -> dict[str, str]:
        return {"page": "content"}

    with TestClient(app) as client:
        miss = client.get("/page")
        clock.now += 10
        hit = client.get("/page")
    assert miss.headers["cache-control"] == "max-age=60"
    assert miss.headers["etag"].startswith('"')
    assert miss.headers["etag"].endswith('"')
    assert "age" not in miss.headers
    assert hit.headers["etag"] == miss.headers["etag"]
    assert hit.headers["age"] == "10"
    # RFC 9111 4.2.3: max-age counts from when the response was made, Age says how long ago.
    assert hit.headers["cache-control"] == "max-age=60"
    assert hit.headers.get_list("etag") == [miss.headers["etag"]]  # not stored twice
    assert hit.headers["content-length"] == str(len(hit.content)) == str(len(miss.content))


def test_if_none_match_gets_a_304_without_body(store: Store) -> None:
    app, _ = cache_app(store)
    calls: list[int] = []

    @app.get("/page", cache=60)
    async def page() -> dict[str, str]:
        calls.append(1)
        return {"page": "content"}

    with TestClient(app) as client:
        etag = client.get("/page").headers["etag"]
        exact = client.get("/page", headers={"If-None-Match": etag})
        listed = client.get("/page", headers={"If-None-Match": f'"other", W/{etag}'})
        star = client.get("/page", headers={"If-None-Match": "*"})
        head = client.head("/page", headers={"If-None-Match": etag})
        stale = client.get("/page", headers={"If-None-Match": '"stale"'})
    for response in (exact, listed, star, head):
        assert response.status_code == 304
        assert response.content == b""
        assert response.headers["etag"] == etag
        assert "content-type" not in response.headers
    assert stale.status_code == 200
    assert stale.json() == {"page": "content"}
    assert calls == [1]


# --- invalidation ----------------------------------------------------------------------------------


def test_invalidate_drops_the_entries_of_its_path_parameters(store: Store) -> None:
    app, cache = cache_app(store)
    calls: list[tuple[int, str]] = []

    @app.get("/items/{item_id}", cache=60)
    async def read_item(item_id: int, fields: str = "all") -> dict[str, Any]:
        calls.append((item_id, fields))
        return {"item_id": item_id, "call": len(calls)}

    with TestClient(app) as client:
        client.get("/items/1")
        client.get("/items/2")
        client.get("/items/1?fields=name")
        portal(client).call(functools.partial(cache.invalidate, read_item, item_id=1))
        assert client.get("/items/1").json()["call"] == 4  # recomputed
        assert client.get("/items/2").json()["call"] == 2  # untouched
        assert client.get("/items/1?fields=name").json()["call"] == 5  # every query of item 1
        # By route name, with the values as text: converted like a request's parameters.
        portal(client).call(functools.partial(cache.invalidate, "read_item", item_id="2"))
        assert client.get("/items/2").json()["call"] == 6
        # Other parameters are checked, but do not narrow it.
        portal(client).call(functools.partial(cache.invalidate, read_item, item_id=1, fields="name"))
        assert client.get("/items/1").json()["call"] == 7
        with pytest.raises(RuntimeError, match="not attached"):
            portal(client).call(Cache(store).invalidate, "read_item")


# --- dependencies still run on hits ------------------------------------------------------------


def test_dependencies_run_on_every_hit(store: Store) -> None:
    app, _ = cache_app(store)
    checks: list[str | None] = []

    def require_token(authorization: Annotated[str | None, Header()] = None) -> str:
        checks.append(authorization)
        if authorization != "Bearer good":
            raise HTTPException(401, "Not authenticated")
        return "alice"

    @app.get("/report", cache=60, dependencies=[Depends(require_token)])
    async def report() -> dict[str, str]:
        return {"report": "secret"}

    good = {"Authorization": "Bearer good"}
    with TestClient(app) as client:
        assert client.get("/report", headers=good).status_code == 200
        assert client.get("/report", headers=good).headers["age"] == "0"  # a hit
        assert client.get("/report").status_code == 401
        assert client.get("/report", headers={"Authorization": "Bearer bad"}).status_code == 401
        etag = client.get("/report", headers=good).headers["etag"]
        assert client.get("/report", headers={"If-None-Match": etag}).status_code == 401
    assert checks == ["Bearer good", "Bearer good", None, "Bearer bad", "Bearer good", None]


# --- store failures ----------------------------------------------------------------------------------


def test_a_failing_store_means_no_cache(caplog: pytest.LogCaptureFixture) -> None:
    app, _ = cache_app(BrokenStore())
    calls: list[int] = []

    @app.get("/page", cache=60)
    async def page() -> dict[str, int]:
        calls.append(1)
        return {"call": len(calls)}

    with caplog.at_level(logging.WARNING, logger="toolkit.cache"), TestClient(app) as client:
        responses = [client.get("/page") for _ in range(2)]
    assert [r.status_code for r in responses] == [200, 200]
    assert [r.json()["call"] for r in responses] == [1, 2]
    messages = [r.getMessage() for r in caplog.records if r.name == "toolkit.cache"]
    assert any("serving uncached" in m for m in messages)


def test_a_stopped_redis_means_no_cache(
    private_redis: RedisServer, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    app, _ = cache_app(RedisStore(url=private_redis.url, prefix=redis_prefix, timeout=1.0))
    calls: list[int] = []

    @app.get("/page", cache=60)
    async def page() -> dict[str, int]:
        calls.append(1)
        return {"call": len(calls)}

    with TestClient(app) as client:
        assert client.get("/page").json() == {"call": 1}
        assert client.get("/page").json() == {"call": 1}  # cached
        private_redis.stop()
        with caplog.at_level(logging.WARNING, logger="toolkit.cache"):
            down = client.get("/page")
        assert down.status_code == 200
        assert down.json() == {"call": 2}
        assert any("response cache unavailable" in r.getMessage() for r in caplog.records)
        private_redis.start()  # back, empty (no persistence): filled again
        assert client.get("/page").json() == {"call": 3}
        assert client.get("/page").json() == {"call": 3}


def test_an_unreadable_entry_is_discarded(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    app, _ = cache_app(store)
    calls: list[int] = []

    @app.get("/items/{item_id}", cache=60)
    async def read_item(item_id: int) -> dict[str, int]:
        calls.append(item_id)
        return {"item_id": item_id}

    written: list[str] = []
    real_set = store.set

    async def recording_set(key: str, value: bytes, ttl: float, *, only_if_exists: bool = False) -> bool:
        written.append(key)
        return await real_set(key, value, ttl, only_if_exists=only_if_exists)

    store.set = recording_set  # type: ignore[method-assign]
    with TestClient(app) as client:
        assert client.get("/items/1").json() == {"item_id": 1}
        [key] = [key for key in written if ":route:" in key]  # the entry (not its generation)
        portal(client).call(real_set, key, b"not an entry", 60)
        with caplog.at_level(logging.WARNING, logger="toolkit.cache"):
            assert client.get("/items/1").json() == {"item_id": 1}
        assert client.get("/items/1").json() == {"item_id": 1}
    assert calls == [1, 1]  # the unreadable entry was replaced by a good one
    assert any("unreadable" in r.getMessage() for r in caplog.records)


# --- the cache object ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_cache_object_get_set_delete_and_namespaces(store: Store) -> None:
    cache = Cache(store, namespace="app")
    try:
        assert await cache.get("rates") is None
        assert await cache.get("rates", default="none") == "none"
        value = {"eur": 1.08, "list": [1, "two", None], "nested": {"ok": True}}
        assert await cache.set("rates", value, ttl=60) is True
        assert await cache.get("rates") == value
        assert await cache.get("rates", namespace="other") is None  # namespaces are separate
        await cache.set("rates", "other's", namespace="other")
        assert await cache.get("rates", namespace="other") == "other's"
        assert await cache.get("rates") == value
        assert await Cache(store, namespace="elsewhere").get("rates") is None
        await cache.delete("rates")
        assert await cache.get("rates") is None
        assert await cache.get("rates", namespace="other") == "other's"
        await cache.delete("never-set")  # deleting a missing key is fine
    finally:
        await close(store)


@pytest.mark.anyio
async def test_cache_object_ttl(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = Cache(store, default_ttl=0.3)
    clock = FakeClock()
    if isinstance(store, MemoryStore):
        monkeypatch.setattr(memory_module, "time", clock)
    try:
        await cache.set("short", 1)  # the default TTL
        await cache.set("long", 2, ttl=60)
        if isinstance(store, MemoryStore):
            clock.now += 0.5
        else:
            await anyio.sleep(0.5)  # Redis expires on its own clock
        assert await cache.get("short") is None
        assert await cache.get("long") == 2
    finally:
        await close(store)


@pytest.mark.anyio
async def test_cache_object_on_a_failing_store(caplog: pytest.LogCaptureFixture) -> None:
    cache = Cache(BrokenStore())
    with caplog.at_level(logging.WARNING, logger="toolkit.cache"):
        assert await cache.get("k", default=7) == 7
        assert await cache.set("k", 1) is False
    assert len([r for r in caplog.records if r.name == "toolkit.cache"]) == 2
    with pytest.raises(StoreError):  # an invalidation must not be lost silently
        await cache.delete("k")


def test_memory_store_is_a_bounded_lru_cache() -> None:
    # Each cached item is two keys: its entry and its path parameters' generation.
    store = MemoryStore(max_entries=4, when_full="evict")
    app, _ = cache_app(store)
    calls: list[int] = []

    @app.get("/items/{item_id}", cache=60)
    async def read_item(item_id: int) -> dict[str, int]:
        calls.append(item_id)
        return {"item_id": item_id}

    with TestClient(app) as client:
        for item_id in (1, 2, 1, 3):  # 1 was used after 2: 2 is the least recently used
            client.get(f"/items/{item_id}")
        assert len(store) == 4
        client.get("/items/1")  # still cached
        client.get("/items/2")  # evicted: computed again
    assert calls == [1, 2, 3, 2]


def test_rate_limit_headers_are_not_replayed_from_the_cache(store: Store) -> None:
    from toolkit.ratelimit import RateLimiter

    app, _ = cache_app(store)
    limiter = RateLimiter(MemoryStore(), algorithm="fixed")

    @app.get("/page", cache=60, dependencies=[Depends(limiter.limit("3/hour"))])
    async def page() -> dict[str, bool]:
        return {"ok": True}

    with TestClient(app) as client:
        responses = [client.get("/page") for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert responses[0].headers["ratelimit-remaining"] == "2"
    for expected, response in zip(("1", "0"), responses[1:3], strict=True):
        # A hit carries the current count or none at all, never the first response's.
        assert response.headers.get("ratelimit-remaining") in (None, expected)


def test_headers_set_by_dependencies_are_per_request_not_cached() -> None:
    app, _ = cache_app(MemoryStore())
    seen: list[str] = []

    def who(response: Response, request: Request) -> None:
        user = request.headers.get("x-user", "anonymous")
        seen.append(user)
        response.headers["X-User"] = user

    @app.get("/page", cache=CachePolicy(60, shared=True), dependencies=[Depends(who)])
    async def page() -> dict[str, str]:
        return {"page": "same for everyone"}

    with TestClient(app) as client:
        first = client.get("/page", headers={"x-user": "alice"})
        second = client.get("/page", headers={"x-user": "bob"})
    assert first.json() == second.json()
    assert first.headers["x-user"] == "alice"
    assert second.headers.get_list("x-user") == ["bob"]
    assert seen == ["alice", "bob"]
