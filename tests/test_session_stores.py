"""The ``Store`` contract, checked directly on ``MemoryStore`` and on ``RedisStore`` with a real Redis."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
import redis
import redis.asyncio
from redis_server import RedisServer, free_port

import toolkit.sessions._memory as memory_module
from toolkit.sessions import MemoryStore, RedisStore, Store, StoreError


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["memory", "redis"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def open_store(
    kind: str, request: pytest.FixtureRequest, redis_prefix: str
) -> contextlib.AbstractAsyncContextManager[Store]:
    """An async context manager: the store, opened and closed on the test's own event loop."""
    url = request.getfixturevalue("redis_url") if kind == "redis" else None

    @contextlib.asynccontextmanager
    async def opened() -> AsyncIterator[Store]:
        if url is None:
            yield MemoryStore()
            return
        store = RedisStore(url=url, prefix=redis_prefix)
        try:
            yield store
        finally:
            await store.close()

    return opened()


class FakeMonotonic:
    """Stands in for the ``time`` module in ``toolkit.sessions._memory``."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


# --- the contract, on both stores ------------------------------------------------------------------


@pytest.mark.anyio
async def test_get_set_overwrite_delete(open_store: Any) -> None:
    async with open_store as store:
        assert isinstance(store, Store)
        assert await store.get("missing") is None
        await store.set("k", b"one", 60)
        assert await store.get("k") == b"one"
        await store.set("k", b"two", 60)
        assert await store.get("k") == b"two"
        await store.delete("k")
        assert await store.get("k") is None
        await store.delete("k")  # deleting a missing key is not an error


@pytest.mark.anyio
async def test_values_round_trip_byte_for_byte(open_store: Any) -> None:
    value = bytes(range(256)) * 4 + "é€日本".encode()
    async with open_store as store:
        await store.set("bin", value, 60)
        assert await store.get("bin") == value
        assert type(await store.get("bin")) is bytes


@pytest.mark.anyio
async def test_keys_are_independent(open_store: Any) -> None:
    async with open_store as store:
        await store.set("a", b"1", 60)
        await store.set("b", b"2", 60)
        await store.delete("a")
        assert await store.get("a") is None
        assert await store.get("b") == b"2"


@pytest.mark.anyio
async def test_a_key_expires_after_its_ttl(open_store: Any) -> None:
    async with open_store as store:
        await store.set("short", b"x", 0.1)
        await store.set("long", b"y", 60)
        assert await store.get("short") == b"x"
        await anyio.sleep(0.25)
        assert await store.get("short") is None
        assert await store.get("long") == b"y"


@pytest.mark.anyio
async def test_an_overwrite_replaces_the_ttl(open_store: Any) -> None:
    async with open_store as store:
        await store.set("k", b"old", 0.1)
        await store.set("k", b"new", 60)
        await anyio.sleep(0.25)
        assert await store.get("k") == b"new"
        await store.set("k", b"newer", 0.1)
        await anyio.sleep(0.25)
        assert await store.get("k") is None


# --- MemoryStore -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_memory_store_ttl_with_a_fake_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeMonotonic()
    monkeypatch.setattr(memory_module, "time", clock)
    store = MemoryStore()
    await store.set("a", b"1", 10)
    await store.set("b", b"2", 20)
    assert len(store) == 2
    clock.now += 10  # "a" expires at exactly its TTL
    assert len(store) == 1
    assert await store.get("a") is None
    assert await store.get("b") == b"2"
    clock.now += 9.9
    assert await store.get("b") == b"2"
    clock.now += 0.1
    assert await store.get("b") is None
    assert len(store) == 0


@pytest.mark.anyio
async def test_memory_store_is_bounded_least_recently_used_first() -> None:
    store = MemoryStore(max_entries=3, when_full="evict")  # the default refuses: test_memory_store.py
    for key in "abc":
        await store.set(key, key.encode(), 60)
    assert await store.get("a") == b"a"  # a read makes "a" the most recently used
    await store.set("d", b"d", 60)
    assert len(store) == 3
    assert await store.get("b") is None  # the least recently used went first
    await store.set("c", b"c2", 60)  # a write counts as use too, and an overwrite never evicts
    assert len(store) == 3
    await store.set("e", b"e", 60)
    assert await store.get("a") is None
    assert [await store.get(k) for k in "cde"] == [b"c2", b"d", b"e"]
    assert await store.get("missing") is None
    await store.set("f", b"f", 60)  # a miss did not count as use of anything
    assert await store.get("c") is None
    assert len(store) == 3


@pytest.mark.parametrize("max_entries", [0, -1])
def test_memory_store_needs_room_for_one_entry(max_entries: int) -> None:
    with pytest.raises(ValueError, match="max_entries"):
        MemoryStore(max_entries=max_entries)


# --- RedisStore ------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_redis_keys_live_under_the_prefix_with_a_ttl(redis_url: str, redis_prefix: str) -> None:
    store = RedisStore(url=redis_url, prefix=redis_prefix)
    other = RedisStore(url=redis_url, prefix=redis_prefix + "other:")
    raw = redis.asyncio.Redis.from_url(redis_url)
    try:
        await store.set("sid", b"data", 30)
        assert await raw.keys(redis_prefix + "*") == [(redis_prefix + "sid").encode()]
        assert await raw.get(redis_prefix + "sid") == b"data"
        assert 20_000 < await raw.pttl(redis_prefix + "sid") <= 30_000
        assert await other.get("sid") is None  # another prefix, another namespace
        await store.set("sid", b"data", 0.0001)  # under a millisecond: still a TTL, never "forever"
        assert await raw.pttl(redis_prefix + "sid") in (-2, 0, 1)
    finally:
        await raw.aclose()
        await store.close()
        await other.close()


@pytest.mark.anyio
async def test_redis_writes_value_and_ttl_in_one_command(private_redis: RedisServer) -> None:
    store = RedisStore(url=private_redis.url, prefix="p:")
    raw = redis.asyncio.Redis.from_url(private_redis.url)
    try:
        await raw.config_resetstat()
        await store.set("sid", b"data", 30)
        stats = await raw.info("commandstats")
        assert stats["cmdstat_set"]["calls"] == 1
        assert not {"cmdstat_expire", "cmdstat_pexpire", "cmdstat_multi"} & set(stats)
        assert await raw.pttl("p:sid") > 0
    finally:
        await raw.aclose()
        await store.close()


@pytest.mark.anyio
async def test_redis_store_accepts_a_client(redis_url: str, redis_prefix: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    store = RedisStore(client, prefix=redis_prefix)
    try:
        assert store.client is client
        assert await store.ping() is True
        await store.set("k", b"v", 10)
        assert await client.get(redis_prefix + "k") == b"v"
    finally:
        await store.close()


def test_redis_store_needs_a_client_or_a_url() -> None:
    with pytest.raises(ValueError, match="client or a url"):
        RedisStore()


def test_a_client_that_decodes_replies_is_refused_up_front() -> None:
    """Values are bytes (msgpack, signed records): a decoding client would turn every hit into
    a UnicodeDecodeError, or silently change the bytes with a lenient codec."""
    for options in ({"decode_responses": True}, {"decode_responses": True, "encoding": "latin-1"}):
        with pytest.raises(ValueError, match="decode_responses=False"):
            RedisStore(redis.asyncio.Redis(**options))


def test_a_client_without_one_connection_pool_is_refused_up_front() -> None:
    cluster = redis.asyncio.RedisCluster.__new__(redis.asyncio.RedisCluster)  # no connection needed
    with pytest.raises(TypeError, match=r"needs a redis\.asyncio\.Redis client, not RedisCluster"):
        RedisStore(cluster)


@pytest.mark.anyio
@pytest.mark.parametrize("protocol", [2, 3])
async def test_replies_have_the_store_types_on_both_protocols(
    redis_url: str, redis_prefix: str, protocol: int
) -> None:
    store = RedisStore(redis.asyncio.Redis.from_url(redis_url, protocol=protocol), prefix=redis_prefix)
    try:
        assert await store.ping() is True
        assert await store.get("missing") is None
        assert await store.set("k", b"\xff\x00bin", 10) is True
        assert await store.get("k") == b"\xff\x00bin"
        assert await store.set("gone", b"v", 10, only_if_exists=True) is False
        assert await store.incr("n", 2, 10) == 2
        await store.delete("k")
        assert await store.get("k") is None
        # A reply that is an error (a list where a string is expected) is a StoreError, not a 500.
        await store.client.rpush(redis_prefix + "list", b"x")
        with pytest.raises(StoreError, match="WRONGTYPE"):
            await store.get("list")
        assert await store.get("missing") is None  # the connection is usable afterwards
    finally:
        await store.close()


@pytest.mark.anyio
async def test_redis_command_timeout_is_a_store_error() -> None:
    # A server that accepts connections (the kernel's backlog) but never answers a command.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        store = RedisStore(url=f"redis://127.0.0.1:{port}/0", timeout=0.2)
        try:
            for operation in (store.get("k"), store.set("k", b"v", 10), store.delete("k")):
                started = time.monotonic()
                with pytest.raises(StoreError, match="timed out"):
                    await operation
                assert time.monotonic() - started < 2
        finally:
            with anyio.move_on_after(1):
                await store.close()


@pytest.mark.anyio
async def test_redis_refused_connection_is_a_store_error() -> None:
    store = RedisStore(url=f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    try:
        with pytest.raises(StoreError):
            await store.get("k")
        with pytest.raises(StoreError):
            await store.set("k", b"v", 10)
    finally:
        await store.close()


@pytest.mark.anyio
async def test_a_redis_error_is_a_store_error_never_a_miss(redis_url: str, redis_prefix: str) -> None:
    store = RedisStore(url=redis_url, prefix=redis_prefix)
    raw = redis.asyncio.Redis.from_url(redis_url)
    try:
        await raw.rpush(redis_prefix + "list", "x")  # GET on a list: WRONGTYPE
        with pytest.raises(StoreError, match="failed"):
            await store.get("list")
    finally:
        await raw.aclose()
        await store.close()


@pytest.mark.anyio
async def test_redis_stopped_then_restarted(private_redis: RedisServer) -> None:
    store = RedisStore(url=private_redis.url, prefix="p:", timeout=0.5)
    try:
        await store.set("k", b"v", 60)
        private_redis.stop(save=True)
        with pytest.raises(StoreError):
            await store.get("k")
        private_redis.start()  # same port: the store reconnects by itself
        assert await store.get("k") == b"v"
    finally:
        await store.close()


@pytest.mark.anyio
async def test_only_if_exists_never_recreates_a_key(open_store: Any) -> None:
    async with open_store as store:
        assert await store.set("gone", b"x", 60, only_if_exists=True) is False
        assert await store.get("gone") is None
        assert await store.set("k", b"one", 60) is True
        assert await store.set("k", b"two", 60, only_if_exists=True) is True
        assert await store.get("k") == b"two"
        await store.delete("k")
        assert await store.set("k", b"three", 60, only_if_exists=True) is False
        assert await store.get("k") is None


@pytest.mark.anyio
async def test_memory_store_evicts_expired_entries_before_live_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeMonotonic()
    monkeypatch.setattr(memory_module, "time", clock)
    store = MemoryStore(max_entries=2)
    await store.set("live", b"1", 100)
    await store.set("short", b"2", 1)  # most recently used, but about to expire
    clock.now += 2
    await store.set("new", b"3", 100)
    assert await store.get("live") == b"1"
    assert await store.get("new") == b"3"
