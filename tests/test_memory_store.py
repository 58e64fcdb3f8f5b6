"""``MemoryStore`` under pressure: counters bounded and freed, a full store that never pushes a live
session (or cache entry) out for a new key, and counters that cannot push values out either."""

from __future__ import annotations

import logging
import tracemalloc
from collections.abc import Sequence

import httpx
import pytest
from _session_app import call, issued, session_app
from cache_support import cache_app
from fake_clock import BASE, FakeClock, patch_clock

import toolkit.ratelimit as ratelimit_module
import toolkit.sessions._memory as memory_module
from toolkit import App, Depends, Middleware
from toolkit.middleware.sessions import SessionMiddleware
from toolkit.ratelimit import RateLimiter
from toolkit.sessions import MemoryStore, Session, StoreError
from toolkit.testing import TestClient


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    return patch_clock(monkeypatch, ratelimit_module, memory_module, now=BASE + 1)


def limited_app(store: MemoryStore, rate: str = "3/hour") -> App:
    limiter = RateLimiter(store, trusted_proxies=["10.0.0.0/8"])
    app = App()

    @app.get("/r", dependencies=[Depends(limiter.limit(rate))])
    async def route() -> None:
        return None

    return app


async def from_clients(app: App, clients: Sequence[str]) -> list[int]:
    """One request per client address, through a trusted proxy (one connection for all)."""
    transport = httpx.ASGITransport(app=app, client=("10.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        return [(await http.get("/r", headers={"X-Forwarded-For": c})).status_code for c in clients]


def addresses(count: int, net: int = 10) -> list[str]:
    return [f"{net}.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in range(count)]


# --- 4. counters: bounded, and freed once expired ---------------------------------------------------


@pytest.mark.anyio
async def test_many_clients_stay_within_max_counters(clock: FakeClock) -> None:
    """The attack review's 20,000 clients, scaled down: 5,000 clients, room for 500 counters."""
    store = MemoryStore(max_counters=500)
    app = limited_app(store)
    assert await from_clients(app, addresses(5_000, net=11)) == [200] * 5_000
    assert len(store) <= 500
    # The newest counts survive: the last clients are still limited.
    latest = addresses(5_000, net=11)[-1]
    assert await from_clients(app, [latest] * 3) == [200, 200, 429]
    clock.now += 2 * 3600  # every window over: nothing is held for them any more
    assert len(store) == 0
    assert await from_clients(app, [latest] * 4) == [200, 200, 200, 429]


@pytest.mark.anyio
async def test_expired_counters_are_freed_by_later_writes(clock: FakeClock) -> None:
    """Memory comes back without anyone counting the store: each new key drops a few expired ones."""
    store = MemoryStore()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(5_000):
            await store.incr(f"ratelimit:/r:198.51.{i // 256}.{i % 256}:1", 1, 120)
        grown = tracemalloc.get_traced_memory()[0] - before
        clock.now += 121
        for i in range(1_000):  # new keys (a new window), 8 expired ones dropped per key
            await store.incr(f"ratelimit:/r:203.0.113.{i % 256}:{i}", 1, 120)
        for i in range(1_000):
            await store.delete(f"ratelimit:/r:203.0.113.{i % 256}:{i}")
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown > 5_000 * 100
    assert held < grown / 3  # what remains is the dict's table, not 5,000 entries


@pytest.mark.anyio
async def test_counters_never_push_values_out(clock: FakeClock) -> None:
    store = MemoryStore(max_entries=10, max_counters=10)
    for i in range(10):
        await store.set(f"session-{i}", b"user %d" % i, 3600)
    for i in range(1_000):
        assert await store.incr(f"counter-{i}", 1, 60) == 1
    assert [await store.get(f"session-{i}") for i in range(10)] == [b"user %d" % i for i in range(10)]
    assert len(store) == 20
    assert await store.get("counter-999") == b"1"  # the newest counters are kept
    assert await store.get("counter-0") is None  # the oldest went first


@pytest.mark.anyio
async def test_sessions_survive_a_flood_of_rate_limited_clients() -> None:
    """One MemoryStore for sessions and rate limits: 5,000 clients' counters log nobody out."""
    store = MemoryStore(max_entries=100, max_counters=500)
    limiter = RateLimiter(store, trusted_proxies=["10.0.0.0/8"])
    app = App(middleware=[Middleware(SessionMiddleware, secret_key="s" * 32, store=store)])

    @app.post("/login")
    async def login(session: Session, user: str) -> None:
        session["user"] = user

    @app.get("/me")
    async def me(session: Session) -> dict[str, str | None]:
        return {"user": session.get("user")}

    @app.get("/r", dependencies=[Depends(limiter.limit("3/hour"))])
    async def route() -> None:
        return None

    transport = httpx.ASGITransport(app=app, client=("10.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        cookie = issued(await http.post("/login", params={"user": "alice"}))
        http.cookies.clear()
        for client in addresses(5_000, net=12):
            assert (await http.get("/r", headers={"X-Forwarded-For": client})).status_code == 200
        issued(await http.post("/login", params={"user": "bob"}))  # a write after the flood
        http.cookies.clear()
        me = await http.get("/me", headers={"cookie": f"session={cookie}"})
    assert me.json() == {"user": "alice"}


@pytest.mark.parametrize(
    ("options", "message"),
    [({"max_counters": 0}, "max_counters"), ({"when_full": "drop"}, "when_full")],
)
def test_memory_store_options_are_checked(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MemoryStore(**options)  # type: ignore[arg-type]


# --- 5. a full store refuses new keys; it never evicts a live one -------------------------------------


@pytest.mark.anyio
async def test_a_full_store_refuses_a_new_key_and_keeps_every_live_one(clock: FakeClock) -> None:
    store = MemoryStore(max_entries=3)
    for key in "abc":
        await store.set(key, key.encode(), 60 if key != "c" else 10)
    with pytest.raises(StoreError, match="store full"):
        await store.set("d", b"d", 60)
    assert [await store.get(k) for k in "abcd"] == [b"a", b"b", b"c", None]
    assert await store.set("a", b"a2", 60) is True  # an existing key: always written
    assert await store.set("d", b"d", 60, only_if_exists=True) is False  # not created, not an error
    await store.delete("b")
    await store.set("d", b"d", 60)  # a freed slot is taken
    clock.now += 10  # "c" expires: room, without deleting anything
    await store.set("e", b"e", 60)
    assert [await store.get(k) for k in "abcde"] == [b"a2", None, None, b"d", b"e"]
    assert len(store) == 3


def test_fresh_sessions_never_log_a_user_out() -> None:
    store = MemoryStore(max_entries=50)
    with TestClient(session_app(store)) as client:
        alice = issued(call(client, "POST", "/login", params={"user": "alice"}))
        anonymous = [call(client, "POST", "/set", json={"cart": i}).status_code for i in range(200)]
        assert anonymous == [200] * 49 + [503] * 151  # a new session when full: 503, that one only
        assert call(client, "GET", "/get", alice).json() == {"user": "alice"}
        # Her session is still written to (an existing key), and her logout frees a slot.
        assert call(client, "POST", "/set", alice, json={"theme": "dark"}).status_code == 200
        assert call(client, "GET", "/get", alice).json() == {"user": "alice", "theme": "dark"}
        assert call(client, "POST", "/logout", alice).status_code == 200
        assert call(client, "POST", "/set", json={"cart": 1}).status_code == 200


def test_a_full_cache_serves_uncached_and_keeps_its_entries(caplog: pytest.LogCaptureFixture) -> None:
    app, _ = cache_app(MemoryStore(max_entries=6))
    calls: list[int] = []

    @app.get("/items/{item_id}", cache=60)
    async def read_item(item_id: int) -> dict[str, int]:
        calls.append(item_id)
        return {"item_id": item_id}

    with caplog.at_level(logging.WARNING, logger="toolkit.cache"), TestClient(app) as client:
        # Each item is two keys, its entry and its path parameters' generation: 3 items fit.
        responses = [client.get(f"/items/{i}") for i in (1, 2, 3, 4, 5, 1, 2, 3, 4)]
    assert [r.status_code for r in responses] == [200] * 9
    assert [r.json()["item_id"] for r in responses] == [1, 2, 3, 4, 5, 1, 2, 3, 4]
    assert calls == [1, 2, 3, 4, 5, 4]  # 1-3 stay cached; 4 and 5 are computed each time
    assert any("store full" in r.getMessage() for r in caplog.records)


@pytest.mark.anyio
async def test_evict_mode_is_a_least_recently_used_cache(clock: FakeClock) -> None:
    store = MemoryStore(max_entries=2, when_full="evict")
    await store.set("a", b"a", 60)
    await store.set("b", b"b", 60)
    assert await store.get("a") == b"a"
    await store.set("c", b"c", 60)  # "b" is the least recently used
    assert [await store.get(k) for k in "abc"] == [b"a", None, b"c"]
