"""``RedisStore`` across event loops: one store (as a module-level one is) used by one
``TestClient`` after another, by ``asyncio.run`` after ``asyncio.run``, and by two threads at once,
each with a loop of its own; ``aclose()``, or else the loop's end, closes that loop's connections."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio

from toolkit import App, Depends, Middleware
from toolkit.cache import Cache, CachePolicy
from toolkit.middleware.sessions import SessionMiddleware
from toolkit.ratelimit import RateLimiter
from toolkit.sessions import RedisStore, Session, StoreError
from toolkit.testing import TestClient

SECRET = "event-loops-session-secret-0123456789"

Count = Callable[[], int]


@pytest.fixture
def client_name() -> str:
    """A name of this test's own for the store's connections: ``CLIENT LIST`` counts only them."""
    return f"toolkit-loops-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def connections(redis_url: str, client_name: str) -> Iterator[Count]:
    """``connections()``: how many connections named ``client_name`` the server has open."""
    with redis.Redis.from_url(redis_url, socket_timeout=5) as admin:

        def count() -> int:
            return sum(1 for entry in admin.client_list() if entry.get("name") == client_name)

        yield count


def settles_at(count: Count, expected: int) -> bool:
    """The server sees a closed socket a moment later: wait (a little) for the count."""
    deadline = time.monotonic() + 5
    while count() != expected:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def named_store(redis_url: str, redis_prefix: str, client_name: str, **options: Any) -> RedisStore:
    client = redis.asyncio.Redis.from_url(redis_url, client_name=client_name, **options)
    return RedisStore(client, prefix=redis_prefix)


def full_app(store: RedisStore, *, close_at_shutdown: bool) -> App:
    """A cached route, a rate-limited route and a server-side session, all on ``store``."""

    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        yield
        if close_at_shutdown:
            await store.aclose()

    limiter = RateLimiter(store)
    app = App(
        cache=Cache(store),
        lifespan=lifespan,
        middleware=[Middleware(SessionMiddleware, secret_key=SECRET, store=store)],
    )
    calls: list[int] = []

    @app.get("/cached", cache=CachePolicy(60))
    async def cached() -> dict[str, int]:
        calls.append(1)
        return {"calls": len(calls)}

    @app.get("/limited", dependencies=[Depends(limiter.limit("100/minute"))])
    async def limited() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/login")
    async def login(session: Session, user: str) -> dict[str, bool]:
        session.regenerate()
        session["user"] = user
        return {"ok": True}

    @app.get("/me")
    async def me(session: Session) -> dict[str, Any]:
        return {"user": session.get("user")}

    return app


async def use(store: RedisStore, key: str, tasks: int = 1) -> bytes | None:
    """A few commands of each kind, from ``tasks`` tasks at once (so as many connections)."""

    async def one(n: int) -> None:
        await store.set(f"{key}:{n}", b"value", 30)
        assert await store.incr(key + ":n", 1, 30) >= 1
        assert await store.ping() is True
        assert await store.get(f"{key}:{n}") == b"value"

    await asyncio.gather(*(one(n) for n in range(tasks)))
    return await store.get(f"{key}:0")


# --- one store, one event loop after another --------------------------------------------------------


@pytest.mark.parametrize("close_at_shutdown", [True, False], ids=["aclose-at-shutdown", "loop-end"])
@pytest.mark.parametrize("given", ["url", "client"])
def test_one_store_serves_two_test_clients_in_turn(
    redis_url: str,
    redis_prefix: str,
    client_name: str,
    connections: Count,
    given: str,
    close_at_shutdown: bool,
) -> None:
    if given == "url":
        store = RedisStore(url=f"{redis_url}?client_name={client_name}", prefix=redis_prefix)
    else:
        store = named_store(redis_url, redis_prefix, client_name)
    app = full_app(store, close_at_shutdown=close_at_shutdown)
    for user in ("alice", "bob"):  # each TestClient runs the app on an event loop of its own
        with TestClient(app) as client:
            cached = [client.get("/cached") for _ in range(2)]
            assert [r.status_code for r in cached] == [200, 200]
            assert cached[0].json() == cached[1].json() == {"calls": 1}  # the second from the cache
            limited = client.get("/limited")
            assert limited.status_code == 200
            assert int(limited.headers["ratelimit-remaining"]) < 100
            assert client.post("/login", params={"user": user}).status_code == 200
            assert client.get("/me").json() == {"user": user}
            assert connections() >= 1
        assert settles_at(connections, 0)  # closed with the session, nothing left for the next


def test_two_asyncio_runs_in_turn(
    redis_url: str, redis_prefix: str, client_name: str, connections: Count
) -> None:
    store = named_store(redis_url, redis_prefix, client_name)
    assert asyncio.run(use(store, "first", tasks=3)) == b"value"
    assert settles_at(connections, 0)  # the loop's end closed its pool
    assert asyncio.run(use(store, "second", tasks=3)) == b"value"
    assert asyncio.run(store.get("first:0")) == b"value"
    assert settles_at(connections, 0)


def assert_used_and_collected(store: RedisStore) -> None:
    assert asyncio.run(use(store, "k")) == b"value"
    gc.collect()


def test_a_loop_closed_by_hand_is_let_go_of(
    redis_url: str, redis_prefix: str, client_name: str, connections: Count
) -> None:
    """A loop closed without ``shutdown_asyncgens()``: its sockets cannot be closed through it any
    more; the next use of the store lets go of them and the garbage collector closes them."""
    store = named_store(redis_url, redis_prefix, client_name)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(use(store, "k", tasks=2))
    loop.close()
    assert connections() == 2
    with pytest.warns(ResourceWarning):  # from asyncio: "unclosed transport", "loop is closed"
        assert_used_and_collected(store)
    assert settles_at(connections, 0)


# --- aclose ---------------------------------------------------------------------------------------


def test_aclose_closes_the_connections(
    redis_url: str, redis_prefix: str, client_name: str, connections: Count
) -> None:
    store = named_store(redis_url, redis_prefix, client_name)

    async def main() -> None:
        await use(store, "k", tasks=4)
        assert await asyncio.to_thread(connections) == 4
        await store.aclose()
        assert await asyncio.to_thread(settles_at, connections, 0)
        await store.aclose()  # twice: nothing left to do
        assert await use(store, "k") == b"value"  # still usable: a new pool
        assert await asyncio.to_thread(connections) == 1
        await store.aclose()
        assert await asyncio.to_thread(settles_at, connections, 0)

    asyncio.run(main())


def test_aclose_on_a_store_never_used(redis_url: str) -> None:
    store = RedisStore(url=redis_url)
    asyncio.run(store.aclose())
    asyncio.run(store.aclose())
    asyncio.run(store.close())


def test_aclose_on_another_loop_leaves_a_running_loop_alone(
    redis_url: str, redis_prefix: str, client_name: str, connections: Count
) -> None:
    store = named_store(redis_url, redis_prefix, client_name)
    with asyncio.Runner() as runner:  # one loop, kept across calls
        runner.run(use(store, "k", tasks=2))
        asyncio.run(store.aclose())  # another loop: it never used the store
        assert connections() == 2
        assert runner.run(use(store, "k")) == b"value"  # the first loop's pool is intact
        runner.run(store.aclose())
        assert settles_at(connections, 0)


def test_close_also_closes_a_client_the_store_made(redis_url: str, redis_prefix: str) -> None:
    store = RedisStore(url=redis_url, prefix=redis_prefix)

    async def main() -> None:
        await use(store, "k")
        await store.client.ping()  # the client's pool is the one this loop's commands use
        await store.close()
        assert not any(c.is_connected for c in store.client.connection_pool._available_connections)

    asyncio.run(main())
    asyncio.run(store.close())  # on another loop: closes that loop's pool, not the client's


# --- the client's pool, and pools made from its settings -------------------------------------------


def test_a_blocking_pool_is_copied_for_another_loop(
    redis_url: str, redis_prefix: str, client_name: str, connections: Count
) -> None:
    """The client's pool serves the first loop; another loop gets a pool with its settings."""
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        redis_url, max_connections=1, timeout=5, client_name=client_name
    )
    store = RedisStore(redis.asyncio.Redis(connection_pool=pool), prefix=redis_prefix)

    async def main(first: bool) -> None:
        assert await use(store, "k", tasks=5) == b"value"  # five tasks wait for the one connection
        if first:
            await store.client.ping()  # the same pool: still the one connection
        assert await asyncio.to_thread(connections) == 1

    asyncio.run(main(first=True))
    asyncio.run(main(first=False))
    assert settles_at(connections, 0)


def test_a_pool_of_another_class_serves_its_first_loop_only(redis_url: str, redis_prefix: str) -> None:
    class OwnPool(redis.asyncio.ConnectionPool):
        pass

    store = RedisStore(redis.asyncio.Redis(connection_pool=OwnPool.from_url(redis_url)), prefix=redis_prefix)
    assert asyncio.run(use(store, "k")) == b"value"
    with pytest.raises(StoreError, match="cannot open a OwnPool for a second event loop"):
        asyncio.run(store.get("k"))


# --- threads, each with a loop of its own, at the same time --------------------------------------


def test_two_threads_with_loops_of_their_own(
    redis_url: str, redis_prefix: str, client_name: str, connections: Count
) -> None:
    store = named_store(redis_url, redis_prefix, client_name)
    start = threading.Barrier(2)
    results: dict[str, Any] = {}

    def worker(name: str) -> None:
        async def main() -> list[bytes | None]:
            start.wait()  # both loops run their commands at the same time
            return [await use(store, f"{name}:{round}", tasks=10) for round in range(5)]

        try:
            results[name] = asyncio.run(main())
        except BaseException as exc:  # reported below
            results[name] = exc

    threads = [threading.Thread(target=worker, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == {"a": [b"value"] * 5, "b": [b"value"] * 5}
    assert settles_at(connections, 0)
    assert store._pools == {}
