"""What an attacker (and an unlucky operator) found in the executor, health checks, app scope and
response cache after the executor rewrite; each test failed before its fix."""

import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import anyio
import msgspec
import pytest

from toolkit import App, Body, Depends, Form, Header, HTTPException
from toolkit.cache import Cache
from toolkit.health import Health
from toolkit.sessions import MemoryStore
from toolkit.testing import AsyncTestClient, TestClient

# --- a failed body or form never reaches a step that reads it ----------------------------------


class Item(msgspec.Struct):
    name: str


class Login(msgspec.Struct):
    username: str
    password: str


def test_a_dependency_reading_part_of_a_body_that_failed_is_not_run() -> None:
    async def audit(note: Annotated[str | None, Body()] = None) -> str | None:
        return note

    app = App()

    @app.post("/items")
    async def create(item: Annotated[Item, Body()], note: Annotated[str | None, Depends(audit)]) -> Any:
        return {"item": item, "note": note}

    client = TestClient(app, raise_server_exceptions=False)
    assert client.post("/items", json={"item": {"name": "a"}, "note": "n"}).status_code == 200
    for body in (b'{"item": {"name": "a"}', b'{"item": x}', b""):
        response = client.post("/items", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 422, body


def test_a_dependency_reading_a_form_that_failed_is_not_run() -> None:
    async def credentials(login: Annotated[Login, Form()]) -> str:
        return login.username

    app = App()

    @app.post("/login")
    async def login(
        username: Annotated[str, Depends(credentials)], remember: Annotated[bool, Form()] = False
    ) -> dict[str, Any]:
        return {"user": username, "remember": remember}

    client = TestClient(app, raise_server_exceptions=False)
    ok = client.post("/login", data={"username": "a", "password": "p", "remember": "true"})
    assert ok.status_code == 200
    assert client.post("/login", data={"username": "a"}).status_code == 422
    assert (
        client.post("/login", data={"username": "a", "password": "p", "remember": "maybe"}).status_code == 422
    )


# --- health checks cannot hang the probe or the app ------------------------------------------------


def test_a_hung_sync_generator_dependency_of_a_check_times_out_and_threads_stay_bounded() -> None:
    release = threading.Event()
    blocked: list[int] = []

    def connection() -> Iterator[str]:
        blocked.append(threading.get_ident())
        release.wait(30)  # a driver call that hangs
        yield "conn"

    def check(conn: Annotated[str, Depends(connection)]) -> bool:
        return True

    health = Health(timeout=0.1)
    health.add_check("db", check)
    app = App()
    app.include_router(health.router())

    @app.get("/sync")
    def sync_route() -> str:
        return "fine"

    try:
        with TestClient(app) as client:
            for _ in range(12):
                assert client.get("/health/ready").json()["checks"] == {"db": "timeout"}
            assert client.get("/sync").json() == "fine"  # anyio's thread pool is not used up
            assert 1 <= len(blocked) <= 4  # then the check times out without starting another
    finally:
        release.set()


def probe_once(check: Any, timeout: float) -> Any:
    """One readiness probe of an app with ``check``, failing the test if it never answers."""
    health = Health(timeout=timeout)
    health.add_check("db", check)
    app = App()
    app.include_router(health.router())

    async def probe() -> Any:
        async with AsyncTestClient(app) as client:
            with anyio.fail_after(10):  # hung forever before the fixes
                return (await client.get("/health/ready")).json()

    return anyio.run(probe)


def test_a_failed_check_whose_cleanup_hangs_still_answers() -> None:
    async def connection() -> AsyncIterator[str]:
        try:
            yield "conn"
        finally:
            await anyio.sleep(30)  # a close that never returns

    async def check(conn: Annotated[str, Depends(connection)]) -> None:
        raise ConnectionError("db down")

    assert probe_once(check, timeout=0.2)["checks"] == {"db": "error: ConnectionError"}


def test_a_check_raising_a_cancellation_of_its_own_is_not_ready() -> None:
    async def cancelled_elsewhere() -> None:
        raise anyio.get_cancelled_exc_class()()

    health = Health(timeout=1)
    health.add_check("db", cancelled_elsewhere)
    health.add_check("ok", lambda: True)
    app = App()
    app.include_router(health.router())
    with TestClient(app) as client:
        response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["db"] == "error: cancelled"


# --- app-scoped values follow the current overrides, lifespan after lifespan ---------------------


def settings() -> str:
    return "postgres://prod"


created: list[str] = []


async def create_pool(dsn: Annotated[str, Depends(settings)]) -> AsyncIterator[str]:
    created.append(dsn)
    yield dsn


def pool_app() -> App:
    app = App()

    @app.get("/pool")
    async def pool(value: Annotated[str, Depends(create_pool, scope="app")]) -> str:
        return value

    return app


def test_an_override_under_an_app_scoped_dependency_does_not_outlive_clear() -> None:
    created.clear()
    app = pool_app()
    app.dependency_overrides[settings] = lambda: "sqlite://test"
    with TestClient(app) as client:
        assert client.get("/pool").json() == "sqlite://test"
    app.dependency_overrides.clear()
    with TestClient(app) as client:
        assert client.get("/pool").json() == "postgres://prod"
    assert created == ["sqlite://test", "postgres://prod"]


def test_an_overridden_app_scoped_dependency_is_not_created_after_clear() -> None:
    created.clear()
    fakes: list[str] = []

    async def fake_pool() -> AsyncIterator[str]:
        fakes.append("fake")
        yield "fake"

    app = pool_app()
    app.dependency_overrides[create_pool] = fake_pool
    with TestClient(app) as client:
        assert client.get("/pool").json() == "fake"
    app.dependency_overrides.clear()
    with TestClient(app) as client:
        assert client.get("/pool").json() == "postgres://prod"
    assert fakes == ["fake"]
    assert created == ["postgres://prod"]


# --- cleanups still finish when a timeout cancels them ---------------------------------------------


class RequestTimeout:
    """A request-timeout middleware, as services add: cancels the request after ``seconds``."""

    def __init__(self, app: Any, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        with anyio.move_on_after(self.seconds if scope["type"] == "http" else None):
            await self.app(scope, receive, send)


def timed_app(connection: Any, audit: Any, seconds: float) -> App:
    """``GET /x`` holding a connection (older) and an audit flush (newer), under a timeout."""
    app = App()
    app.add_middleware(RequestTimeout, seconds=seconds)

    @app.get("/x")
    async def x(conn: Annotated[str, Depends(connection)], _: Annotated[None, Depends(audit)]) -> str:
        return str(conn)

    return app


def test_a_cancellation_during_cleanup_lets_the_older_cleanups_finish() -> None:
    log: list[str] = []

    async def connection() -> AsyncIterator[str]:
        log.append("acquired")
        try:
            yield "conn"
        finally:
            await anyio.sleep(0.01)  # returning it to the pool takes a round trip
            log.append("released")

    async def audit() -> AsyncIterator[None]:
        yield
        await anyio.sleep(5)  # a slow flush, cut by the timeout

    app = timed_app(connection, audit, 0.2)

    async def main() -> None:
        async with AsyncTestClient(app) as client:
            assert (await client.get("/x")).status_code == 200

    anyio.run(main)
    assert log == ["acquired", "released"]


# --- the response cache ---------------------------------------------------------------------------


def test_a_cached_response_keyed_on_a_header_parameter_says_it_varies_on_it() -> None:
    app = App(cache=Cache(MemoryStore()))

    @app.get("/balance", cache=60)
    async def balance(x_api_key: Annotated[str, Header()]) -> dict[str, str]:
        return {"owner": x_api_key}

    with TestClient(app) as client:
        miss = client.get("/balance", headers={"X-API-Key": "alice"})
        hit = client.get("/balance", headers={"X-API-Key": "alice"})
        bob = client.get("/balance", headers={"X-API-Key": "bob"})
    for response in (miss, hit):
        assert response.headers["vary"].lower() == "x-api-key"  # a shared cache in front must key on it
    assert bob.json() == {"owner": "bob"}


def test_an_invalidation_survives_the_eviction_of_its_generation() -> None:
    items = {1: "v1", 2: "b", 3: "c", 4: "d"}
    cache = Cache(MemoryStore(max_entries=4, when_full="evict"))
    app = App(cache=cache)

    @app.get("/items/{item_id}", cache=300)
    async def read_item(item_id: int) -> dict[str, str]:
        if item_id not in items:
            raise HTTPException(404)
        return {"item": items[item_id]}

    async def main() -> None:
        async with AsyncTestClient(app) as client:
            assert (await client.get("/items/1")).json() == {"item": "v1"}
            del items[1]
            await cache.invalidate(read_item, item_id=1)
            assert (await client.get("/items/1")).status_code == 404
            for item_id in (2, 3, 4):  # ordinary traffic evicts the generation key
                await client.get(f"/items/{item_id}")
            assert (await client.get("/items/1")).status_code == 404

    anyio.run(main)


def test_a_request_with_credentials_the_key_does_not_cover_is_served_uncached() -> None:
    """Identity can reach a handler without a Request parameter (a middleware and a context
    variable); a response to an ``Authorization`` request is only stored when keyed on it."""
    import contextvars

    user: contextvars.ContextVar[str] = contextvars.ContextVar("user", default="anonymous")

    class Auth:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            headers = dict(scope.get("headers", []))
            token = user.set(headers.get(b"authorization", b"anonymous").decode())
            try:
                await self.app(scope, receive, send)
            finally:
                user.reset(token)

    app = App(cache=Cache(MemoryStore()))
    app.add_middleware(Auth)

    @app.get("/dashboard", cache=60)
    async def dashboard() -> dict[str, str]:
        return {"user": user.get()}

    with TestClient(app) as client:
        assert client.get("/dashboard", headers={"Authorization": "alice"}).json() == {"user": "alice"}
        bob = client.get("/dashboard", headers={"Authorization": "bob"})
        assert bob.json() == {"user": "bob"}
        assert "age" not in bob.headers
        client.get("/dashboard")
        anonymous = client.get("/dashboard")
        assert "age" in anonymous.headers  # without credentials it is cached as before


@pytest.fixture(autouse=True)
def _reset_pools() -> None:
    created.clear()


# --- second round: what the first fixes let through ------------------------------------------------


def test_a_checks_overridden_app_scoped_fake_serves_every_lifespan() -> None:
    async def get_conn() -> str:
        return "real"

    async def fake_pool() -> str:
        return "fake pool"

    async def fake_conn(pool: Annotated[str, Depends(fake_pool, scope="app")]) -> str:
        return f"conn from {pool}"

    async def db(conn: Annotated[str, Depends(get_conn)]) -> bool:
        return conn == "conn from fake pool"

    health = Health(timeout=1)
    health.add_check("db", db)
    app = App()
    app.include_router(health.router())
    app.dependency_overrides[get_conn] = fake_conn  # set once, for a whole test module
    for _ in range(3):  # one lifespan per test
        with TestClient(app) as client:
            assert client.get("/health/ready").json()["checks"] == {"db": "ok"}


def test_a_hung_older_cleanup_of_a_check_still_answers_within_its_timeout() -> None:
    async def older() -> AsyncIterator[str]:
        try:
            yield "conn"
        finally:
            await anyio.sleep(30)  # a close that never returns

    async def newer() -> AsyncIterator[None]:
        yield
        await anyio.sleep(30)  # cut by the timeout

    async def check(conn: Annotated[str, Depends(older)], _: Annotated[None, Depends(newer)]) -> bool:
        return True

    assert probe_once(check, timeout=0.2)["checks"] == {"db": "timeout"}


@pytest.mark.parametrize("newer_kind", ["sync", "converts"])
def test_a_cancellation_outside_an_await_still_lets_older_cleanups_finish(newer_kind: str) -> None:
    import time

    log: list[str] = []

    async def connection() -> AsyncIterator[str]:
        try:
            yield "conn"
        finally:
            await anyio.sleep(0.01)
            log.append("released")

    def audit_sync() -> Iterator[None]:
        yield
        time.sleep(0.3)  # in a worker thread: the cancellation waits for the next await

    async def audit_converts() -> AsyncIterator[None]:
        yield
        try:
            await anyio.sleep(5)
        except BaseException as exc:
            raise RuntimeError("flush interrupted") from exc  # hides the cancellation

    audit: Any = audit_sync if newer_kind == "sync" else audit_converts

    app = timed_app(connection, audit, 0.15)

    async def main() -> None:
        async with AsyncTestClient(app) as client:
            with contextlib.suppress(Exception):
                await client.get("/x")

    anyio.run(main)
    assert log == ["released"]


@pytest.mark.parametrize(("header", "value"), [("Cookie", "jwt={user}"), ("Proxy-Authorization", "{user}")])
def test_identity_from_a_middleware_in_a_cookie_or_proxy_credentials_is_not_shared(
    header: str, value: str
) -> None:
    import contextvars
    from http.cookies import SimpleCookie

    user: contextvars.ContextVar[str | None] = contextvars.ContextVar("user", default=None)

    class Auth:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            headers = dict(scope.get("headers", []))
            jar = SimpleCookie(headers.get(b"cookie", b"").decode())
            who = jar["jwt"].value if "jwt" in jar else headers.get(b"proxy-authorization", b"").decode()
            token = user.set(who or None)
            try:
                await self.app(scope, receive, send)
            finally:
                user.reset(token)

    app = App(cache=Cache(MemoryStore()))
    app.add_middleware(Auth)

    @app.get("/dashboard", cache=60)
    async def dashboard() -> dict[str, str | None]:
        return {"user": user.get()}

    with TestClient(app) as client:
        for name in ("alice", "bob"):
            response = client.get("/dashboard", headers={header: value.format(user=name)})
            assert response.json() == {"user": name}


def test_one_check_raising_a_cancellation_does_not_cancel_its_neighbours() -> None:
    async def cancelled_elsewhere() -> None:
        raise anyio.get_cancelled_exc_class()()

    async def slow_but_fine() -> bool:
        await anyio.sleep(0.1)
        return True

    health = Health(timeout=2)
    health.add_check("a", cancelled_elsewhere)
    health.add_check("b", slow_but_fine)
    app = App()
    app.include_router(health.router())
    with TestClient(app) as client:
        assert client.get("/health/ready").json()["checks"] == {"a": "error: cancelled", "b": "ok"}
