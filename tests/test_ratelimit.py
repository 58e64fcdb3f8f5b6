"""Rate limiting: ``RateLimiter(store).limit(...)`` as a dependency, on ``MemoryStore`` and real Redis."""

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from _shared_app import uvicorn_pair
from fake_clock import BASE, FakeClock, patch_clock
from redis_server import RedisServer
from starlette.requests import Request

import toolkit.ratelimit as ratelimit_module
import toolkit.sessions._memory as memory_module
from toolkit import App, Depends, Router
from toolkit.ratelimit import RateLimiter, parse_rate
from toolkit.sessions import CounterStore, MemoryStore, RedisStore, StoreError
from toolkit.testing import TestClient


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    return patch_clock(monkeypatch, ratelimit_module)


class BrokenStore(MemoryStore):
    async def get(self, key: str) -> bytes | None:
        raise StoreError("store down")

    async def incr(self, key: str, amount: int, ttl: float) -> int:
        raise StoreError("store down")


def make_app(store: CounterStore, **options: Any) -> App:
    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        yield
        closer = getattr(store, "close", None)
        if closer is not None:  # a Redis client belongs to the client's event loop
            await closer()

    return App(lifespan=lifespan, **options)


def statuses(client: TestClient, path: str, count: int, **kwargs: Any) -> list[int]:
    return [client.get(path, **kwargs).status_code for _ in range(count)]


async def get_as(app: App, ip: str, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """A request from the peer ``ip`` (TestClient's peer is always "testclient")."""
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path, headers=headers)


# --- rates ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        ("10/minute", (10, 60)),
        ("1/second", (1, 1)),
        ("100 per 5 minutes", (100, 300)),
        (" 5 / Hour ", (5, 3600)),
        ("2 per day", (2, 86400)),
        ("7/2 hours", (7, 7200)),
    ],
)
def test_parse_rate(rate: str, expected: tuple[int, int]) -> None:
    assert parse_rate(rate) == expected


@pytest.mark.parametrize(
    "rate", ["", "10", "ten/minute", "10/fortnight", "0/minute", "5/0 minutes", "-1/day"]
)
def test_parse_rate_refuses_nonsense(rate: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        parse_rate(rate)


def test_limiter_options_are_checked() -> None:
    with pytest.raises(ValueError, match="algorithm"):
        RateLimiter(MemoryStore(), algorithm="leaky")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot read the rate"):
        RateLimiter(MemoryStore()).limit("often")


# --- windows (a fake clock crosses them) ------------------------------------------------------


def test_fixed_window_headers_and_reset(store: CounterStore, clock: FakeClock) -> None:
    limiter = RateLimiter(store, algorithm="fixed")
    app = make_app(store)

    @app.get("/search", dependencies=[Depends(limiter.limit("3/minute"))])
    async def search() -> dict[str, bool]:
        return {"ok": True}

    clock.now = BASE + 5
    with TestClient(app) as client:
        allowed = [client.get("/search") for _ in range(3)]
        limited = client.get("/search")
        clock.now = BASE + 59.5
        assert client.get("/search").status_code == 429
        clock.now = BASE + 60  # a new window
        fresh = client.get("/search")
    assert [r.headers["ratelimit-remaining"] for r in allowed] == ["2", "1", "0"]
    for response in allowed:
        assert response.status_code == 200
        assert response.headers["ratelimit-limit"] == "3"
        assert response.headers["ratelimit-reset"] == "55"
        assert response.headers["ratelimit-policy"] == "3;w=60"
        assert "retry-after" not in response.headers
    assert limited.status_code == 429
    assert limited.json() == {"detail": "Too Many Requests"}
    assert limited.headers["retry-after"] == limited.headers["ratelimit-reset"] == "55"
    assert limited.headers["ratelimit-remaining"] == "0"
    assert limited.headers["ratelimit-limit"] == "3"
    assert fresh.status_code == 200
    assert fresh.headers["ratelimit-remaining"] == "2"
    assert fresh.headers["ratelimit-reset"] == "60"


def test_sliding_window_weighs_the_previous_window(store: CounterStore, clock: FakeClock) -> None:
    sliding, fixed = RateLimiter(store), RateLimiter(store, algorithm="fixed", prefix="fixed")
    app = make_app(store)

    @app.get("/sliding", dependencies=[Depends(sliding.limit("10/minute"))])
    async def slide() -> None:
        return None

    @app.get("/fixed", dependencies=[Depends(fixed.limit("10/minute"))])
    async def fix() -> None:
        return None

    # A sliding window is (start, end]: a request exactly on BASE would close the window before it.
    clock.now = BASE + 1
    with TestClient(app) as client:
        assert statuses(client, "/sliding", 10) == [200] * 10
        assert statuses(client, "/fixed", 10) == [200] * 10
        clock.now = BASE + 60 + 30  # half of the previous window still counts: 5 of its 10
        first = client.get("/sliding")
        assert first.headers["ratelimit-remaining"] == "4"  # 1 + 10 * 0.5 = 6 of 10
        assert statuses(client, "/sliding", 5) == [200] * 4 + [429]
        assert statuses(client, "/fixed", 11) == [200] * 10 + [429]  # the burst a fixed window allows
        clock.now = BASE + 60 + 54  # 5 counted here (not the refused one) + 10 * 0.1 = 6, +1
        later = client.get("/sliding")
    assert later.status_code == 200
    assert later.headers["ratelimit-remaining"] == "3"


@pytest.mark.parametrize("algorithm", ["fixed", "sliding"])
@pytest.mark.parametrize(
    ("limit", "before", "offset", "now"),
    [
        (2, 0, 0, 0),
        (5, 0, 10, 20),
        (10, 4, 5, 30),
        (3, 3, 40, 50),
        (1, 0, 59, 59),
        (4, 4, 0, 1),
        (6, 5, 20, 45),
    ],
)
def test_retry_after_is_when_a_request_is_allowed_again(
    clock: FakeClock, algorithm: str, limit: int, before: int, offset: int, now: int
) -> None:
    """``before`` requests in the previous window, then requests at ``offset`` seconds into this one
    and at ``now`` until refused: one more request ``Retry-After`` seconds later passes, one a second
    earlier does not."""
    outcomes = []
    for wait_less in (1, 0):
        limiter = RateLimiter(MemoryStore(), algorithm=algorithm)  # type: ignore[arg-type]
        app = App()

        @app.get("/r", dependencies=[Depends(limiter.limit(f"{limit}/minute"))])
        async def route() -> None:
            return None

        with TestClient(app) as client:
            clock.now = BASE - 60 + 1
            statuses(client, "/r", before)
            clock.now = BASE + offset
            while client.get("/r").status_code == 200:
                pass
            clock.now = BASE + now
            while (refused := client.get("/r")).status_code == 200:
                pass
            clock.now += int(refused.headers["retry-after"]) - wait_less
            outcomes.append(client.get("/r").status_code)
    assert outcomes == [429, 200]


# --- where a limit applies ------------------------------------------------------------------------


def test_route_limits_are_per_route_template(store: CounterStore) -> None:
    limiter = RateLimiter(store)
    app = make_app(store)

    @app.get("/items/{item_id}", dependencies=[Depends(limiter.limit("2/hour"))])
    async def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    @app.get("/other", dependencies=[Depends(limiter.limit("2/hour"))])
    async def other() -> None:
        return None

    with TestClient(app) as client:
        # Other path parameters do not escape the limit: it counts the route, not the path.
        assert [client.get(f"/items/{i}").status_code for i in (1, 2, 3)] == [200, 200, 429]
        assert statuses(client, "/other", 3) == [200, 200, 429]


def test_router_dependency_limits_each_route(store: CounterStore) -> None:
    limiter = RateLimiter(store)
    app = make_app(store)
    router = Router(dependencies=[Depends(limiter.limit("2/hour"))])

    @router.get("/a")
    async def a() -> None:
        return None

    @router.get("/b")
    async def b() -> None:
        return None

    app.include_router(router, prefix="/v1")

    @app.get("/free")
    async def free() -> None:
        return None

    with TestClient(app) as client:
        assert statuses(client, "/v1/a", 3) == [200, 200, 429]
        assert statuses(client, "/v1/b", 3) == [200, 200, 429]
        assert statuses(client, "/free", 5) == [200] * 5
        assert "ratelimit-limit" not in client.get("/free").headers


@pytest.mark.parametrize("name", ["global", None])
def test_app_dependency(store: CounterStore, name: str | None) -> None:
    limiter = RateLimiter(store)
    app = make_app(store, dependencies=[Depends(limiter.limit("3/hour", name=name))])

    @app.get("/a")
    async def a() -> None:
        return None

    @app.get("/b")
    async def b() -> None:
        return None

    with TestClient(app) as client:
        assert statuses(client, "/a", 2) == [200, 200]
        if name is not None:  # one budget shared by every route
            assert statuses(client, "/b", 2) == [200, 429]
            assert client.get("/a").status_code == 429
        else:  # the same limit, counted per route
            assert statuses(client, "/b", 4) == [200, 200, 200, 429]
            assert statuses(client, "/a", 2) == [200, 429]


# --- who is counted ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_each_peer_address_has_its_own_budget(store: CounterStore) -> None:
    limiter = RateLimiter(store)
    app = App()

    @app.get("/r", dependencies=[Depends(limiter.limit("2/hour"))])
    async def route() -> None:
        return None

    try:
        first = [(await get_as(app, "203.0.113.1", "/r")).status_code for _ in range(3)]
        second = [(await get_as(app, "203.0.113.2", "/r")).status_code for _ in range(2)]
        # A forwarded-for header from an untrusted peer is ignored, whatever it claims.
        spoofed = [
            (await get_as(app, "203.0.113.1", "/r", {"X-Forwarded-For": f"198.51.100.{i}"})).status_code
            for i in range(3)
        ]
    finally:
        await close(store)
    assert first == [200, 200, 429]
    assert second == [200, 200]
    assert spoofed == [429, 429, 429]


@pytest.mark.anyio
async def test_forwarded_for_is_used_behind_a_trusted_proxy(store: CounterStore) -> None:
    limiter = RateLimiter(store, trusted_proxies=["10.0.0.0/8"])
    app = App()

    @app.get("/r", dependencies=[Depends(limiter.limit("1/hour"))])
    async def route() -> None:
        return None

    async def via_proxy(forwarded: str) -> int:
        return (await get_as(app, "10.0.0.1", "/r", {"X-Forwarded-For": forwarded})).status_code

    try:
        assert await via_proxy("198.51.100.7") == 200
        assert await via_proxy("198.51.100.7") == 429
        assert await via_proxy("198.51.100.8") == 200  # another client behind the same proxy
        # The client may prepend anything: the hop the trusted proxy appended counts.
        assert await via_proxy("198.51.100.99, 198.51.100.8") == 429
        assert await via_proxy("198.51.100.8, 198.51.100.9, 10.0.0.2") == 200
    finally:
        await close(store)


async def close(store: CounterStore) -> None:
    closer = getattr(store, "close", None)
    if closer is not None:
        await closer()


def address(limiter: RateLimiter, peer: str | None, forwarded: str | None = None) -> str:
    headers = [] if forwarded is None else [(b"x-forwarded-for", forwarded.encode())]
    scope: dict[str, Any] = {"type": "http", "headers": headers}
    if peer is not None:
        scope["client"] = (peer, 1234)
    return limiter.client_address(Request(scope))


def test_client_address_choice() -> None:
    untrusted = RateLimiter(MemoryStore())
    assert address(untrusted, "203.0.113.5") == "203.0.113.5"
    assert address(untrusted, "203.0.113.5", "198.51.100.1") == "203.0.113.5"
    assert address(untrusted, None) == "unknown"
    behind = RateLimiter(MemoryStore(), trusted_proxies=["10.0.0.0/8", "2001:db8::/32", "192.0.2.1"])
    assert address(behind, "10.1.2.3") == "10.1.2.3"  # no header: the proxy itself
    assert address(behind, "10.1.2.3", "198.51.100.1") == "198.51.100.1"
    assert address(behind, "10.1.2.3", "1.1.1.1, 198.51.100.1, 192.0.2.1, 10.9.9.9") == "198.51.100.1"
    assert address(behind, "2001:db8::1", "2001:db8::2, 2606:4700::1111") == "2606:4700::1111"
    assert address(behind, "10.1.2.3", "10.0.0.5, 10.0.0.6") == "10.0.0.5"  # every hop trusted
    assert address(behind, "10.1.2.3", "garbage") == "10.1.2.3"  # not an address: the peer
    assert address(behind, "10.1.2.3", "198.51.100.1, unknown") == "10.1.2.3"
    assert address(behind, "203.0.113.5", "198.51.100.1") == "203.0.113.5"  # untrusted peer


def test_custom_key(store: CounterStore) -> None:
    limiter = RateLimiter(store)
    app = make_app(store)

    def by_api_key(request: Request) -> str:
        return request.headers.get("x-api-key", "anonymous")

    @app.get("/r", dependencies=[Depends(limiter.limit("2/hour", key=by_api_key))])
    async def route() -> None:
        return None

    with TestClient(app) as client:
        assert statuses(client, "/r", 3, headers={"X-API-Key": "alpha"}) == [200, 200, 429]
        assert statuses(client, "/r", 2, headers={"X-API-Key": "beta"}) == [200, 200]
        assert statuses(client, "/r", 3) == [200, 200, 429]


# --- store failures -------------------------------------------------------------------------------


@pytest.mark.parametrize("fail_open", [True, False])
def test_a_failing_store(fail_open: bool, caplog: pytest.LogCaptureFixture) -> None:
    limiter = RateLimiter(BrokenStore(), fail_open=fail_open)
    app = App()

    @app.get("/r", dependencies=[Depends(limiter.limit("1/hour"))])
    async def route() -> None:
        return None

    with caplog.at_level(logging.WARNING, logger="toolkit.ratelimit"), TestClient(app) as client:
        responses = [client.get("/r") for _ in range(3)]
    if fail_open:
        assert [r.status_code for r in responses] == [200] * 3
        assert "ratelimit-limit" not in responses[0].headers
        assert any("allowing the request" in r.getMessage() for r in caplog.records)
    else:
        assert [r.status_code for r in responses] == [503] * 3
        assert responses[0].headers["retry-after"] == "1"


def test_a_stopped_redis(
    private_redis: RedisServer, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisStore(url=private_redis.url, prefix=redis_prefix, timeout=1.0)
    opened, closed = RateLimiter(store), RateLimiter(store, fail_open=False)
    app = make_app(store)

    @app.get("/open", dependencies=[Depends(opened.limit("1/hour"))])
    async def open_route() -> None:
        return None

    @app.get("/closed", dependencies=[Depends(closed.limit("1/hour"))])
    async def closed_route() -> None:
        return None

    with TestClient(app) as client:
        assert statuses(client, "/open", 2) == [200, 429]
        private_redis.stop()
        with caplog.at_level(logging.WARNING, logger="toolkit.ratelimit"):
            assert statuses(client, "/open", 2) == [200, 200]  # fail open
        assert any("rate limit store unavailable" in r.getMessage() for r in caplog.records)
        assert statuses(client, "/closed", 2) == [503, 503]
        private_redis.start()  # back, empty: counting starts again
        assert statuses(client, "/closed", 2) == [200, 429]


# --- the counter itself -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_incr_is_atomic_under_concurrency(store: CounterStore) -> None:
    results: list[int] = []

    async def hit() -> None:
        results.append(await store.incr("hits", 1, 60))

    try:
        async with anyio.create_task_group() as tg:
            for _ in range(100):
                tg.start_soon(hit)
        assert sorted(results) == list(range(1, 101))
        assert await store.get("hits") == b"100"
        assert await store.incr("hits", 5, 60) == 105
        if isinstance(store, RedisStore):
            ttl = await store.client.pttl(store.prefix + "hits")
            assert 0 < ttl <= 60_000  # set once by the first increment
    finally:
        await close(store)


@pytest.mark.anyio
async def test_incr_expiry_is_not_extended(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(1000.0)
    monkeypatch.setattr(memory_module, "time", clock)
    store = MemoryStore()
    assert await store.incr("c", 1, 10) == 1
    clock.now += 6
    assert await store.incr("c", 1, 10) == 2
    clock.now += 6  # 12 s after the first increment: expired although incremented at 6 s
    assert await store.incr("c", 1, 10) == 1


# --- two app processes, one Redis --------------------------------------------------------------------


def test_two_processes_share_a_limit_and_a_cache(redis_url: str, redis_prefix: str, tmp_path: Path) -> None:
    with uvicorn_pair(tmp_path, redis_url, redis_prefix) as (a, b), httpx.Client(timeout=10) as http:
        pid_a, pid_b = (http.get(f"{url}/health").json()["pid"] for url in (a, b))
        assert pid_a != pid_b  # really two processes
        # 3/hour, counted in Redis: 2 on A and 2 on B make 4, and the 4th is refused.
        codes = [http.get(f"{url}/limited").status_code for url in (a, a, b, b)]
        assert codes == [200, 200, 200, 429]
        assert http.get(f"{a}/limited").status_code == 429
        # A computes and caches; B serves A's answer (A's pid, A's count) without computing.
        # Behind one load balancer both see the same Host (the cache keys on it).
        host = {"Host": "shop.example"}
        on_a = http.get(f"{a}/cached/7", params={"lang": "fr"}, headers=host)
        on_b = http.get(f"{b}/cached/7", params={"lang": "fr"}, headers=host)
        assert on_a.json() == {"item_id": 7, "lang": "fr", "pid": pid_a, "computed": 1}
        assert on_b.json() == on_a.json()
        assert on_b.headers["etag"] == on_a.headers["etag"]
        assert "age" in on_b.headers
        other = http.get(f"{b}/cached/8", headers=host).json()  # not cached yet: B computes it itself
        assert other["pid"] == pid_b
        assert other["computed"] == 1
        assert http.get(f"{a}/cached/8", headers=host).json() == other
