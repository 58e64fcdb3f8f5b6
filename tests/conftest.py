from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import postgres_server
import pytest
from redis_server import RedisServer, redis_binary, unavailable
from starlette.types import ASGIApp

from toolkit.sessions import CounterStore, MemoryStore, RedisStore
from toolkit.testing import TestClient

ClientFactory = Callable[..., TestClient]


@pytest.fixture
def anyio_backend() -> str:
    """``@pytest.mark.anyio`` tests run on asyncio (anyio 4.6's plugin would also try trio)."""
    return "asyncio"


@pytest.fixture
def client_factory() -> ClientFactory:
    """Build a ``TestClient`` for an app (one factory for every test module, as in Starlette)."""

    def factory(app: ASGIApp, **kwargs: object) -> TestClient:
        return TestClient(app, **kwargs)  # type: ignore[arg-type]

    return factory


# --- a real Redis: REDIS_URL, else a redis-server of our own; REQUIRE_REDIS=1 (CI) fails a skip ---


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``REDIS_URL`` if set; otherwise a ``redis-server`` of our own; otherwise a loud skip
    (a failure when ``REQUIRE_REDIS=1``)."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    binary = redis_binary()
    if binary is None:
        unavailable("REDIS_URL is not set and no redis-server binary is on PATH")
    server = RedisServer(binary, tmp_path_factory.mktemp("redis"))
    try:
        server.start()
    except RuntimeError as exc:
        unavailable(str(exc))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis_prefix(request: pytest.FixtureRequest) -> Iterator[str]:
    """A key prefix of each test's own, so tests sharing one Redis never see each other's data.

    On a Redis given by ``REDIS_URL`` (which outlives the run), the test's keys are deleted after it.
    """
    prefix = f"toolkit-test:{uuid.uuid4().hex}:"
    yield prefix
    url = os.environ.get("REDIS_URL")
    if url and "redis_url" in request.fixturenames:
        import redis

        with redis.Redis.from_url(url, socket_timeout=5) as client:
            keys = list(client.scan_iter(match=prefix + "*"))
            if keys:
                client.delete(*keys)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A ``redis-server`` of this test's own, which it may stop, pause and restart (same port)."""
    binary = redis_binary()
    if binary is None:
        unavailable("no redis-server binary on PATH to start a private server (stop/restart tests)")
    server = RedisServer(binary, tmp_path)
    try:
        server.start()
    except RuntimeError as exc:
        unavailable(str(exc))
    try:
        yield server
    finally:
        server.stop()


# --- a real PostgreSQL ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """``DATABASE_URL`` if it names PostgreSQL; else the server on 127.0.0.1:5432 with trust auth
    (``POSTGRES_PROBE_URL`` to probe another); else a throw-away server of our own; else a loud skip
    (a failure when ``REQUIRE_POSTGRES=1``)."""
    url = postgres_server.configured_url()
    if url:
        yield url
        return
    probed = postgres_server.probe_url()
    refused = postgres_server.probe(probed)
    if refused is None:
        yield probed
        return
    bindir = postgres_server.find_bindir()
    if bindir is None:
        postgres_server.unavailable(
            f"DATABASE_URL is not postgresql://..., {probed} refused ({refused}), and no initdb/postgres"
            f" in {postgres_server.bindir_searched()} to start a server of our own"
        )
    server = postgres_server.PostgresServer(bindir)
    try:
        server.start()
    except RuntimeError as exc:
        postgres_server.unavailable(f"{probed} refused ({refused}), and a server of our own failed: {exc}")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest, redis_prefix: str) -> CounterStore:
    """A fresh ``MemoryStore``, then a ``RedisStore`` on a real Redis. Close a Redis one on the
    event loop that used it (an app's lifespan: its client belongs to that loop)."""
    if request.param == "memory":
        return MemoryStore()
    return RedisStore(url=request.getfixturevalue("redis_url"), prefix=redis_prefix)
