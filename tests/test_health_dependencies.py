"""Readiness checks take dependencies like a route does (``toolkit.health``): app-scoped values,
generator dependencies closed after the check, ``dependency_overrides``, the probe's Request;
misconfigured checks are refused when added."""

from collections.abc import AsyncIterator, Iterator
from typing import Annotated

import anyio
import pytest

from toolkit import App, Depends, Header, Query, Request, RouteConfigError
from toolkit.health import Health
from toolkit.testing import TestClient


class Pool:
    def __init__(self) -> None:
        self.closed = False
        self.queries = 0

    async def ping(self) -> bool:
        self.queries += 1
        return not self.closed


pools: list[Pool] = []


async def create_pool() -> AsyncIterator[Pool]:
    pool = Pool()
    pools.append(pool)
    yield pool
    pool.closed = True


PoolDep = Annotated[Pool, Depends(create_pool, scope="app")]


def app_with(health: Health) -> App:
    app = App()

    @app.get("/count")
    async def count(pool: PoolDep) -> dict[str, int]:
        return {"queries": pool.queries}

    app.include_router(health.router())
    return app


def test_a_check_gets_the_app_scoped_value_routes_get() -> None:
    pools.clear()
    health = Health()

    async def database(pool: PoolDep) -> bool:
        return await pool.ping()

    health.add_check("database", database)
    with TestClient(app_with(health)) as client:
        assert client.get("/health/ready").json() == {"status": "ready", "checks": {"database": "ok"}}
        assert client.get("/count").json() == {"queries": 1}  # the same pool
    assert len(pools) == 1
    assert pools[0].closed  # torn down with the app, once


def test_a_checks_generator_dependency_is_closed_after_it_even_on_timeout() -> None:
    events: list[str] = []
    health = Health(timeout=0.2)

    async def connection() -> AsyncIterator[str]:
        events.append("open")
        try:
            yield "conn"
        finally:
            events.append("closed")

    async def quick(conn: Annotated[str, Depends(connection)]) -> None:
        assert conn == "conn"

    async def hanging(conn: Annotated[str, Depends(connection)]) -> None:
        await anyio.sleep(5)

    health.add_check("quick", quick)
    health.add_check("hanging", hanging)
    with TestClient(app_with(health)) as client:
        response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"] == {"hanging": "timeout", "quick": "ok"}
    assert events.count("open") == 2
    assert events.count("closed") == 2


def test_a_dependency_that_fails_or_hangs_is_the_checks_result() -> None:
    health = Health(timeout=0.2)

    def broken() -> str:
        raise ConnectionRefusedError("no database")

    async def stuck() -> str:
        await anyio.sleep(5)
        return "never"

    async def uses_broken(value: Annotated[str, Depends(broken)]) -> None: ...

    async def uses_stuck(value: Annotated[str, Depends(stuck)]) -> None: ...

    health.add_check("broken", uses_broken)
    health.add_check("stuck", uses_stuck)
    with TestClient(app_with(health)) as client:
        response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"] == {"broken": "error: ConnectionRefusedError", "stuck": "timeout"}


def test_overrides_apply_to_checks() -> None:
    health = Health()

    def real_database() -> str:
        raise ConnectionError("the real database is not reachable in tests")

    async def database(name: Annotated[str, Depends(real_database)]) -> bool:
        return name == "fake"

    health.add_check("database", database)
    app = app_with(health)
    with TestClient(app) as client:
        assert client.get("/health/ready").json()["checks"] == {"database": "error: ConnectionError"}
        app.dependency_overrides[real_database] = lambda: "fake"
        assert client.get("/health/ready").json()["checks"] == {"database": "ok"}
        app.dependency_overrides.clear()
        assert client.get("/health/ready").status_code == 503


def test_a_check_can_read_the_probe_request() -> None:
    health = Health()

    def from_probe(request: Request) -> bool:
        return request.url.path == "/health/ready"

    health.add_check("probe", from_probe)
    with TestClient(app_with(health)) as client:
        assert client.get("/health/ready").json()["checks"] == {"probe": "ok"}


def test_sync_dependencies_and_generators_work_in_checks() -> None:
    health = Health()
    closed: list[bool] = []

    def settings() -> Iterator[dict[str, str]]:
        yield {"dsn": "x"}
        closed.append(True)

    def check(config: Annotated[dict[str, str], Depends(settings)]) -> bool:
        return config["dsn"] == "x"

    health.add_check("config", check)
    with TestClient(app_with(health)) as client:
        assert client.get("/health/ready").json()["checks"] == {"config": "ok"}
    assert closed == [True]


def query_check(limit: int = Query(1)) -> bool:
    return True


def header_check(token: Annotated[str, Header()]) -> bool:
    return True


def body_check(payload: dict[str, int]) -> bool:
    return True


def dependency_reading_a_query(q: str) -> str:
    return q


def nested_check(value: Annotated[str, Depends(dependency_reading_a_query)]) -> bool:
    return True


@pytest.mark.parametrize("check", [query_check, header_check, body_check, nested_check])
def test_a_check_reading_request_data_is_refused_when_added(check: object) -> None:
    with pytest.raises(RouteConfigError, match=r"health check 'bad' .*not request parameters, a body"):
        Health().add_check("bad", check)  # type: ignore[arg-type]


def test_an_app_scoped_dependency_of_a_check_taking_request_data_is_refused_when_added() -> None:
    def per_request(request: Request) -> str:
        return "x"

    async def check(value: Annotated[str, Depends(per_request, scope="app")]) -> None: ...

    with pytest.raises(RouteConfigError, match="app-scoped dependency"):
        Health().add_check("bad", check)


def test_an_app_scoped_dependency_used_only_by_a_check_is_created_at_start_up() -> None:
    """Created in the lifespan like a route's, not lazily inside the check's timeout (a slow pool
    would then time out on every probe and never be ready)."""
    created: list[str] = []

    async def slow_pool() -> AsyncIterator[str]:
        await anyio.sleep(0.3)
        created.append("pool")
        yield "pool"
        created.append("closed")

    async def database(pool: Annotated[str, Depends(slow_pool, scope="app")]) -> bool:
        return pool == "pool"

    health = Health(timeout=0.2)
    health.add_check("database", database)
    app = App()
    app.include_router(health.router())
    with TestClient(app) as client:
        assert created == ["pool"]  # before the first probe
        for _ in range(3):
            assert client.get("/health/ready").json()["checks"] == {"database": "ok"}
    assert created == ["pool", "closed"]


def test_a_check_name_is_added_once_and_timeouts_are_positive() -> None:
    health = Health()
    health.add_check("database", lambda: True)
    with pytest.raises(RouteConfigError, match="'database' is already added"):
        health.add_check("database", lambda: False)
    for timeout in (0, -1):
        with pytest.raises(ValueError, match="positive"):
            health.add_check("other", lambda: True, timeout=timeout)


def test_the_refusal_names_what_the_check_asks_for() -> None:
    from toolkit import BackgroundTasks

    def check(tasks: BackgroundTasks, verbose: bool = False) -> bool:
        return True

    with pytest.raises(RouteConfigError) as raised:
        Health().add_check("bg", check)
    message = str(raised.value)
    assert message.startswith("health check 'bg' (")
    assert message.count("health check 'bg'") == 1
    assert "it asks for verbose, tasks" in message


def test_a_memory_store_answers_the_readiness_check_written_for_redis() -> None:
    from toolkit.sessions import MemoryStore

    health = Health()
    health.add_check("store", MemoryStore().ping)
    with TestClient(app_with(health)) as client:
        assert client.get("/health/ready").json()["checks"] == {"store": "ok"}
