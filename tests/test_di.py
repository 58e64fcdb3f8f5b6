"""Dependency injection (issue 3): Depends, sub-dependencies, cleanup, app scope, overrides."""

import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Annotated, Any

import anyio
import anyio.lowlevel
import msgspec
import pytest

from toolkit import (
    App,
    Cookie,
    Depends,
    Header,
    HTTPException,
    Request,
    RouteConfigError,
    Router,
    StreamingResponse,
)
from toolkit.testing import TestClient

ClientFactory = Callable[..., TestClient]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Item(msgspec.Struct):
    name: str
    price: float


class CommonQueryParams:
    def __init__(self, q: str | None = None, skip: int = 0, limit: int = 100) -> None:
        self.q, self.skip, self.limit = q, skip, limit


class RoleChecker:
    def __init__(self, allowed: list[str]) -> None:
        self.allowed = allowed

    def __call__(self, x_role: Annotated[str, Header()]) -> str:
        if x_role not in self.allowed:
            raise HTTPException(403, f"role {x_role} is not allowed")
        return x_role


def verify_token(x_token: Annotated[str, Header()]) -> str:
    if x_token != "secret":
        raise HTTPException(401, "Invalid token", headers={"WWW-Authenticate": "Bearer"})
    return x_token


def error_locs(response: Any) -> list[tuple[Any, ...]]:
    assert response.status_code == 422, response.text
    return sorted(tuple(e["loc"]) for e in response.json()["detail"])


def http_scope(path: str, query: bytes = b"") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }


# --- 1. declaring dependencies -----------------------------------------------------------------


def test_depends_as_default_annotated_and_nested(client_factory: ClientFactory) -> None:
    app = App()

    def level1(n: int) -> int:
        return n

    async def level2(v: Annotated[int, Depends(level1)]) -> int:
        return v * 10

    def level3(v: Annotated[int, Depends(level2)], extra: int = 0) -> int:
        return v + extra

    async def level4(v: Annotated[int, Depends(level3)]) -> list[int]:
        return [v]

    @app.get("/")
    async def handler(v: Annotated[list[int], Depends(level4)], n=Depends(level1)) -> list[int]:
        return [*v, n]

    client = client_factory(app)
    assert client.get("/?n=3&extra=2").json() == [32, 3]
    assert error_locs(client.get("/?n=x")) == [("query", "n")]


@pytest.mark.parametrize("level", ["route", "router", "include", "app"])
def test_auth_dependencies_at_every_level(client_factory: ClientFactory, level: str) -> None:
    auth = [Depends(verify_token)]
    calls: list[str] = []
    app = App(dependencies=auth if level == "app" else None)
    router = Router(prefix="/r", dependencies=auth if level == "router" else None)

    @router.get("/", dependencies=auth if level == "route" else None)
    async def handler() -> str:
        calls.append("handler")
        return "ok"

    app.include_router(router, dependencies=auth if level == "include" else None)
    client = client_factory(app)
    response = client.get("/r/", headers={"x-token": "wrong"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"detail": "Invalid token"}
    assert error_locs(client.get("/r/")) == [("header", "x-token")]
    assert calls == []
    assert client.get("/r/", headers={"x-token": "secret"}).json() == "ok"
    assert calls == ["handler"]


def test_dependency_lists_run_outermost_first(client_factory: ClientFactory) -> None:
    events: list[str] = []

    def record(name: str) -> Depends:
        async def dep() -> None:
            events.append(name)

        return Depends(dep)

    app = App(dependencies=[record("app")])
    router = Router(dependencies=[record("router")])

    @router.get("/x", dependencies=[record("route")])
    async def handler() -> None:
        events.append("handler")

    app.include_router(router, dependencies=[record("include")])
    assert client_factory(app).get("/x").status_code == 200
    assert events == ["app", "include", "router", "route", "handler"]


# --- 2. kinds --------------------------------------------------------------------------------


def test_sync_dependencies_run_in_a_worker_thread_unless_told_not_to(client_factory: ClientFactory) -> None:
    app = App()

    def in_thread() -> int:
        return threading.get_ident()

    def inline() -> int:
        return threading.get_ident()

    @app.get("/")
    async def handler(
        worker: Annotated[int, Depends(in_thread)],
        loop: Annotated[int, Depends(inline, sync_to_thread=False)],
    ) -> dict[str, bool]:
        here = threading.get_ident()
        return {"worker_differs": worker != here, "inline_same": loop == here}

    with client_factory(app) as client:
        assert client.get("/").json() == {"worker_differs": True, "inline_same": True}


def test_class_and_callable_instance_dependencies(client_factory: ClientFactory) -> None:
    app = App()

    @app.get("/items")
    async def items(commons: Annotated[CommonQueryParams, Depends()]) -> dict[str, Any]:
        return {"q": commons.q, "skip": commons.skip, "limit": commons.limit}

    @app.get("/legacy")
    async def legacy(commons: CommonQueryParams = Depends(CommonQueryParams)) -> int:
        return commons.limit

    @app.get("/admin")
    async def admin(role: Annotated[str, Depends(RoleChecker(["admin"]))]) -> str:
        return role

    client = client_factory(app)
    assert client.get("/items?q=x&skip=5").json() == {"q": "x", "skip": 5, "limit": 100}
    assert error_locs(client.get("/items?limit=many")) == [("query", "limit")]
    assert client.get("/legacy?limit=7").json() == 7
    assert client.get("/admin", headers={"x-role": "admin"}).json() == "admin"
    forbidden = client.get("/admin", headers={"x-role": "guest"})
    assert (forbidden.status_code, forbidden.json()) == (403, {"detail": "role guest is not allowed"})
    assert error_locs(client.get("/admin")) == [("header", "x-role")]


# --- 3. parameters of dependencies -------------------------------------------------------------


def test_dependencies_declare_every_kind_of_parameter(client_factory: ClientFactory) -> None:
    app = App()

    async def everything(
        request: Request,
        item_id: int,
        q: str,
        x_token: Annotated[str, Header()],
        session: Annotated[str, Cookie()],
        item: Item,
    ) -> list[Any]:
        return [request.url.path, item_id, q, x_token, session, item.name, item.price]

    @app.post("/items/{item_id}")
    async def handler(data: Annotated[list[Any], Depends(everything)]) -> list[Any]:
        return data

    client = client_factory(app)
    headers = {"x-token": "t", "cookie": "session=abc"}
    response = client.post("/items/5?q=find", headers=headers, json={"name": "pen", "price": 1.5})
    assert response.json() == ["/items/5", 5, "find", "t", "abc", "pen", 1.5]
    locs = error_locs(client.post("/items/x", json={"name": "pen"}))
    assert locs == [
        ("body", "price"),
        ("cookie", "session"),
        ("header", "x-token"),
        ("path", "item_id"),
        ("query", "q"),
    ]


def test_dependency_and_handler_errors_share_one_422(client_factory: ClientFactory) -> None:
    app = App()

    def paging(limit: int, offset: int = 0) -> tuple[int, int]:
        return limit, offset

    def nested(p: Annotated[tuple[int, int], Depends(paging)], x_tenant: Annotated[str, Header()]) -> str:
        return x_tenant

    @app.post("/")
    async def handler(item: Item, tenant: Annotated[str, Depends(nested)]) -> str:
        return tenant

    client = client_factory(app)
    response = client.post("/?limit=abc&offset=1", json={"name": "pen", "price": "cheap"})
    assert error_locs(response) == [("body", "price"), ("header", "x-tenant"), ("query", "limit")]
    ok = client.post("/?limit=1", headers={"x-tenant": "acme"}, json={"name": "pen", "price": 1})
    assert ok.json() == "acme"


# --- 4. per-request cache ----------------------------------------------------------------------


def test_shared_dependency_runs_once_per_request(client_factory: ClientFactory) -> None:
    app = App()
    calls: list[int] = []

    def common() -> int:
        calls.append(1)
        return len(calls)

    async def left(c: Annotated[int, Depends(common)]) -> int:
        return c

    def right(c: Annotated[int, Depends(common)]) -> int:
        return c

    @app.get("/")
    async def handler(
        a: Annotated[int, Depends(left)],
        b: Annotated[int, Depends(right)],
        c: Annotated[int, Depends(common)],
    ) -> list[int]:
        return [a, b, c]

    @app.get("/uncached")
    async def uncached(
        a: Annotated[int, Depends(common, use_cache=False)],
        b: Annotated[int, Depends(common, use_cache=False)],
    ) -> list[int]:
        return [a, b]

    client = client_factory(app)
    assert client.get("/").json() == [1, 1, 1]
    assert client.get("/").json() == [2, 2, 2]
    assert len(calls) == 2
    assert client.get("/uncached").json() == [3, 4]
    assert len(calls) == 4


# --- 5. cleanup --------------------------------------------------------------------------------


def test_generators_yield_values_and_close_in_reverse_order(client_factory: ClientFactory) -> None:
    app = App()
    events: list[str] = []

    async def first() -> AsyncIterator[str]:
        events.append("+1")
        yield "1"
        events.append("-1")

    def second(f: Annotated[str, Depends(first)]) -> Iterator[str]:
        events.append("+2")
        yield f + "2"
        events.append("-2")

    async def third(s: Annotated[str, Depends(second)]) -> AsyncIterator[str]:
        events.append("+3")
        yield s + "3"
        events.append("-3")

    @app.get("/")
    async def handler(t: Annotated[str, Depends(third)]) -> str:
        events.append("handler")
        return t

    assert client_factory(app).get("/").json() == "123"
    assert events == ["+1", "+2", "+3", "handler", "-3", "-2", "-1"]


def test_handler_errors_are_thrown_into_generators(client_factory: ClientFactory) -> None:
    app = App()
    events: list[str] = []

    async def session() -> AsyncIterator[str]:
        try:
            yield "db"
        except ValueError as exc:
            events.append(f"rollback: {exc}")
            raise HTTPException(409, "conflict") from exc
        except HTTPException as exc:
            events.append(f"saw http {exc.status_code}")
            raise
        else:
            events.append("commit")
        finally:
            events.append("finally")

    def outer(db: Annotated[str, Depends(session)]) -> Iterator[str]:
        try:
            yield db
        except Exception as exc:
            events.append(f"outer saw {type(exc).__name__}")
            raise

    @app.get("/fail")
    async def fail(db: Annotated[str, Depends(outer)]) -> None:
        raise ValueError("duplicate key")

    @app.get("/teapot")
    async def teapot(db: Annotated[str, Depends(outer)]) -> None:
        raise HTTPException(418, "short and stout")

    def later(db: Annotated[str, Depends(outer)]) -> None:
        raise ValueError("from a later dependency")

    @app.get("/later", dependencies=[Depends(later)])
    async def never() -> None:
        raise AssertionError("unreachable")  # pragma: no cover

    @app.get("/ok")
    async def ok(db: Annotated[str, Depends(outer)]) -> str:
        return db

    client = client_factory(app)
    response = client.get("/fail")
    assert (response.status_code, response.json()) == (409, {"detail": "conflict"})
    assert events == ["outer saw ValueError", "rollback: duplicate key", "finally"]
    events.clear()
    response = client.get("/teapot")
    assert (response.status_code, response.json()) == (418, {"detail": "short and stout"})
    assert events == ["outer saw HTTPException", "saw http 418", "finally"]
    events.clear()
    assert client.get("/later").status_code == 409
    assert events == ["outer saw ValueError", "rollback: from a later dependency", "finally"]
    events.clear()
    assert client.get("/ok").json() == "db"
    assert events == ["commit", "finally"]


def test_every_cleanup_runs_when_one_fails(client_factory: ClientFactory) -> None:
    app = App()
    events: list[str] = []

    async def first() -> AsyncIterator[None]:
        try:
            yield
        finally:
            events.append("first closed")

    def broken(f: Annotated[None, Depends(first)]) -> Iterator[None]:
        yield
        events.append("broken closing")
        raise RuntimeError("cleanup failed")

    async def last(b: Annotated[None, Depends(broken)]) -> AsyncIterator[None]:
        try:
            yield
        finally:
            events.append("last closed")

    @app.get("/")
    async def handler(x: Annotated[None, Depends(last)]) -> str:
        return "ok"

    with pytest.raises(RuntimeError, match="cleanup failed"):
        client_factory(app).get("/")
    assert events == ["last closed", "broken closing", "first closed"]


def _streaming_app(events: list[str], started: anyio.Event | None = None) -> App:
    app = App()

    async def resource() -> AsyncIterator[str]:
        events.append("open")
        try:
            yield "conn"
        finally:
            await anyio.lowlevel.checkpoint()  # e.g. an awaited connection close
            events.append("async cleanup")

    def sync_resource() -> Iterator[None]:
        try:
            yield
        finally:
            events.append("sync cleanup")

    @app.get("/stream")
    async def stream(
        conn: Annotated[str, Depends(resource)],
        s: Annotated[None, Depends(sync_resource)],
        hang: bool = False,
    ) -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            for chunk in "abc":
                events.append(f"{chunk} from {conn}")
                yield chunk.encode()
                if hang:
                    try:
                        await anyio.sleep_forever()
                    finally:
                        events.append("stream stopped")

        return StreamingResponse(body())

    @app.get("/slow")
    async def slow(
        conn: Annotated[str, Depends(resource)], s: Annotated[None, Depends(sync_resource)]
    ) -> None:
        events.append("handler started")
        assert started is not None
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            events.append("handler stopped")

    return app


def test_streaming_response_keeps_dependencies_open(client_factory: ClientFactory) -> None:
    events: list[str] = []
    assert client_factory(_streaming_app(events)).get("/stream").text == "abc"
    assert events == ["open", "a from conn", "b from conn", "c from conn", "sync cleanup", "async cleanup"]


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["disconnect", "cancel"])
async def test_interrupted_stream_runs_every_cleanup(how: str) -> None:
    events: list[str] = []
    app = _streaming_app(events)
    chunk_sent = anyio.Event()
    messages = iter([{"type": "http.request", "body": b"", "more_body": False}])

    async def receive() -> dict[str, Any]:
        with contextlib.suppress(StopIteration):
            return next(messages)
        await chunk_sent.wait()
        if how == "cancel":
            await anyio.sleep_forever()
        return {"type": "http.disconnect"}

    with anyio.CancelScope() as scope:

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body" and message.get("body"):
                events.append("sent " + message["body"].decode())
                chunk_sent.set()
                if how == "cancel":
                    scope.cancel()  # the server cancels the request task

        await app(http_scope("/stream", b"hang=true"), receive, send)
    assert scope.cancelled_caught is (how == "cancel")
    assert events == ["open", "a from conn", "sent a", "stream stopped", "sync cleanup", "async cleanup"]


@pytest.mark.anyio
async def test_cancellation_during_the_handler_runs_every_cleanup() -> None:
    events: list[str] = []
    started = anyio.Event()
    app = _streaming_app(events, started)

    async def receive() -> dict[str, Any]:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    async def send(message: dict[str, Any]) -> None:
        raise AssertionError(f"nothing is sent: {message}")  # pragma: no cover

    async with anyio.create_task_group() as tg:
        tg.start_soon(app, http_scope("/slow"), receive, send)
        await started.wait()
        tg.cancel_scope.cancel()
    assert events == ["open", "handler started", "handler stopped", "sync cleanup", "async cleanup"]


# --- 6. app scope ------------------------------------------------------------------------------


def test_app_scoped_dependency_lives_for_the_lifespan(client_factory: ClientFactory) -> None:
    events: list[str] = []

    def settings() -> Iterator[dict[str, str]]:  # a sync generator, torn down in a worker thread
        events.append("settings")
        yield {"dsn": "db://"}
        events.append("settings closed")

    async def pool(conf: Annotated[dict[str, str], Depends(settings)]) -> AsyncIterator[dict[str, str]]:
        events.append("pool open")
        yield {"pool": conf["dsn"]}
        events.append("pool closed")

    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        events.append("lifespan start")
        yield
        events.append("lifespan end")

    app = App(lifespan=lifespan)
    seen: list[int] = []

    @app.get("/a")
    async def a(p: Annotated[dict[str, str], Depends(pool, scope="app")]) -> dict[str, str]:
        seen.append(id(p))
        return p

    @app.get("/b")
    def b(p: Annotated[dict[str, str], Depends(pool, scope="app")]) -> dict[str, str]:
        seen.append(id(p))
        return p

    assert events == []
    with client_factory(app) as client:
        assert events == ["settings", "pool open", "lifespan start"]
        for _ in range(5):
            assert client.get("/a").json() == {"pool": "db://"}
            assert client.get("/b").json() == {"pool": "db://"}
        assert events == ["settings", "pool open", "lifespan start"]
    assert len(seen) == 10
    assert len(set(seen)) == 1
    assert events[3:] == ["lifespan end", "pool closed", "settings closed"]


def test_app_scoped_dependency_without_lifespan_is_created_lazily(client_factory: ClientFactory) -> None:
    calls: list[int] = []

    async def pool() -> dict[str, int]:
        calls.append(1)
        return {"n": len(calls)}

    app = App()

    @app.get("/")
    async def handler(p: Annotated[dict[str, int], Depends(pool, scope="app")]) -> dict[str, int]:
        return p

    client = client_factory(app)  # not entered: the lifespan does not run
    assert calls == []
    assert [client.get("/").json() for _ in range(3)] == [{"n": 1}] * 3
    assert calls == [1]


def test_app_scoped_dependency_cannot_take_request_data() -> None:
    app = App()

    def with_query(q: str) -> str:
        return q

    def with_request(request: Request) -> str:
        return request.url.path

    def indirect(v: Annotated[str, Depends(with_query)]) -> str:
        return v

    for dep, needs in [(with_query, "q"), (with_request, "request"), (indirect, "q")]:
        with pytest.raises(RouteConfigError, match=rf"cannot take request data \({needs}\)"):

            @app.get(f"/{dep.__name__}")
            async def handler(v: Annotated[str, Depends(dep, scope="app")]) -> str:
                return v  # pragma: no cover

    assert app.endpoints == []


# --- 7. overrides ------------------------------------------------------------------------------


def test_overrides_apply_on_the_next_request_and_can_be_removed(client_factory: ClientFactory) -> None:
    app = App()

    def get_db() -> str:
        return "real"

    def get_repo(db: Annotated[str, Depends(get_db)]) -> str:
        return f"repo({db})"

    @app.get("/uses")
    async def uses(repo: Annotated[str, Depends(get_repo)]) -> str:
        return repo

    @app.get("/other")
    async def other(q: int = 0) -> int:
        return q

    uses_ep, other_ep = app.endpoints
    client = client_factory(app)
    assert client.get("/uses").json() == "repo(real)"

    app.dependency_overrides[get_db] = lambda: "fake"
    assert client.get("/uses").json() == "repo(fake)"
    assert client.get("/other?q=3").json() == 3
    assert uses_ep.plan is not uses_ep.base_plan
    assert other_ep.plan is other_ep.base_plan

    del app.dependency_overrides[get_db]
    assert client.get("/uses").json() == "repo(real)"
    assert uses_ep.plan is uses_ep.base_plan

    async def fake_repo(limit: int) -> str:
        return f"fake repo {limit}"

    app.dependency_overrides[get_repo] = fake_repo
    assert client.get("/uses?limit=2").json() == "fake repo 2"
    assert error_locs(client.get("/uses?limit=lots")) == [("query", "limit")]
    assert error_locs(client.get("/uses")) == [("query", "limit")]
    assert client.get("/other").json() == 0
    assert other_ep.plan is other_ep.base_plan

    app.dependency_overrides.clear()
    assert client.get("/uses").json() == "repo(real)"
    assert uses_ep.plan is uses_ep.base_plan


def test_override_deep_in_a_chain_and_in_dependency_lists(client_factory: ClientFactory) -> None:
    app = App(dependencies=[Depends(verify_token)])

    def d1() -> int:
        return 1

    def d2(v: Annotated[int, Depends(d1)]) -> int:
        return v + 10

    async def d3(v: Annotated[int, Depends(d2)]) -> int:
        return v + 100

    @app.get("/")
    async def handler(v: Annotated[int, Depends(d3)]) -> int:
        return v

    client = client_factory(app)
    assert client.get("/", headers={"x-token": "wrong"}).status_code == 401
    assert client.get("/", headers={"x-token": "secret"}).json() == 111
    app.dependency_overrides[verify_token] = lambda: "test user"
    app.dependency_overrides[d1] = lambda: 5
    assert client.get("/").json() == 115
    app.dependency_overrides.pop(verify_token)
    assert client.get("/", headers={"x-token": "wrong"}).status_code == 401
    assert client.get("/", headers={"x-token": "secret"}).json() == 115


# --- 8. registration errors --------------------------------------------------------------------


def test_dependency_cycle_is_refused_naming_the_chain() -> None:
    app = App()
    to_b = Depends()

    def cycle_a(x: str = to_b) -> str:
        return x  # pragma: no cover

    def cycle_b(x: Annotated[str, Depends(cycle_a)]) -> str:
        return x  # pragma: no cover

    to_b.dependency = cycle_b

    with pytest.raises(RouteConfigError, match="cycle") as info:

        @app.get("/")
        async def handler(v: Annotated[str, Depends(cycle_a)]) -> str:
            return v  # pragma: no cover

    message = str(info.value)
    assert message.index("cycle_a") < message.index("cycle_b") < message.rindex("cycle_a")
    assert app.endpoints == []


def test_unresolvable_dependency_parameter_names_the_dependency() -> None:
    app = App()

    class Opaque:
        pass

    def opaque_dep(thing: Opaque) -> None:
        pass  # pragma: no cover

    def outer_dep(v: Annotated[None, Depends(opaque_dep)]) -> None:
        pass  # pragma: no cover

    with pytest.raises(RouteConfigError, match=r"opaque_dep.*'thing'"):

        @app.get("/")
        async def handler(v: Annotated[None, Depends(outer_dep)]) -> None:
            pass  # pragma: no cover

    def unknown_dep(x: "NoSuchType") -> None:  # type: ignore[name-defined]  # noqa: F821
        pass  # pragma: no cover

    with pytest.raises(RouteConfigError, match="unknown_dep"):
        app.add_api_route("/x", lambda v=Depends(unknown_dep): None)


# --- 9. FastAPI's ordering of auth errors and validation errors ----------------------------------


def test_auth_error_wins_over_the_handlers_validation_error(client_factory: ClientFactory) -> None:
    app = App()
    calls: list[str] = []

    @app.post("/items", dependencies=[Depends(verify_token)])
    async def create(item: Item) -> str:
        calls.append("handler")
        return item.name

    client = client_factory(app)
    bad_body = {"name": "pen", "price": "cheap"}
    denied = client.post("/items", headers={"x-token": "wrong"}, json=bad_body)
    assert (denied.status_code, denied.json()) == (401, {"detail": "Invalid token"})
    assert denied.headers["www-authenticate"] == "Bearer"
    token = {"x-token": "secret"}
    assert error_locs(client.post("/items", headers=token, json=bad_body)) == [("body", "price")]
    assert error_locs(client.post("/items", json=bad_body)) == [("body", "price"), ("header", "x-token")]
    assert calls == []
    assert client.post("/items", headers=token, json={"name": "pen", "price": 1}).json() == "pen"


def test_overriding_an_app_scoped_dependency_never_creates_the_real_one() -> None:
    calls: list[str] = []

    async def pool() -> AsyncIterator[str]:
        calls.append("real")
        yield "real"
        calls.append("real closed")

    async def fake() -> AsyncIterator[str]:
        calls.append("fake")
        yield "fake"
        calls.append("fake closed")

    app = App()

    @app.get("/")
    async def handler(p: Annotated[str, Depends(pool, scope="app")]) -> str:
        return p

    app.dependency_overrides[pool] = fake
    with TestClient(app) as client:
        assert client.get("/").json() == "fake"
        assert client.get("/").json() == "fake"
    assert calls == ["fake", "fake closed"]


def test_overriding_a_sub_dependency_of_an_app_scoped_dependency_applies_at_start_up() -> None:
    def settings() -> str:
        return "real-settings"

    def fake_settings() -> str:
        return "test-settings"

    async def pool(config: Annotated[str, Depends(settings)]) -> AsyncIterator[str]:
        yield f"pool({config})"

    app = App()

    @app.get("/")
    async def handler(p: Annotated[str, Depends(pool, scope="app")]) -> str:
        return p

    app.dependency_overrides[settings] = fake_settings
    with TestClient(app) as client:
        assert client.get("/").json() == "pool(test-settings)"


def test_an_override_set_before_the_route_is_registered_applies() -> None:
    def get_name() -> str:
        return "real"

    app = App()
    app.dependency_overrides[get_name] = lambda: "fake"

    @app.get("/")
    async def index(name: Annotated[str, Depends(get_name)]) -> dict[str, str]:
        return {"name": name}

    assert TestClient(app).get("/").json() == {"name": "fake"}


# --- found by a new user -------------------------------------------------------------------------


def test_assigning_dependency_overrides_works_as_in_fastapi() -> None:
    """FastAPI's testing docs reset overrides with ``app.dependency_overrides = {}``."""
    app = App()

    def real() -> str:
        return "real"

    @app.get("/x")
    async def x(value: Annotated[str, Depends(real)]) -> str:
        return value

    client = TestClient(app)
    app.dependency_overrides = {real: lambda: "fake"}
    assert client.get("/x").json() == "fake"
    app.dependency_overrides[real] = lambda: "again"  # still the live mapping
    assert client.get("/x").json() == "again"
    app.dependency_overrides = {}
    assert client.get("/x").json() == "real"


def test_one_callable_at_app_and_request_scope_is_two_values() -> None:
    opened: list[str] = []

    async def create_pool() -> AsyncIterator[object]:
        opened.append("open")
        yield object()
        opened.append("close")

    async def both(
        per_request: Annotated[object, Depends(create_pool)],
        shared: Annotated[object, Depends(create_pool, scope="app")],
    ) -> tuple[int, int]:
        return id(per_request), id(shared)

    app = App()

    @app.get("/c")
    async def c(ids: Annotated[tuple[int, int], Depends(both)]) -> bool:
        return ids[0] != ids[1]

    with TestClient(app) as client:
        assert opened == ["open"]  # the app-scoped one, at start-up
        assert client.get("/c").json() is True
        assert client.get("/c").json() is True
        assert opened.count("open") == 3  # start-up, then one per request
    assert opened.count("close") == 3


def test_unannotated_parameters_are_query_strings_as_in_fastapi() -> None:
    app = App()

    @app.get("/u")
    async def u(q, n=5):  # type: ignore[no-untyped-def]
        return {"q": q, "n": n}

    def token_of(token):  # type: ignore[no-untyped-def]
        return token

    @app.get("/d")
    async def d(t=Depends(token_of)):  # type: ignore[no-untyped-def]
        return t

    client = TestClient(app)
    assert client.get("/u?q=1").json() == {"q": "1", "n": 5}
    assert client.get("/u?q=1&n=7").json() == {"q": "1", "n": "7"}  # no type: the string
    assert client.get("/u").json()["detail"][0]["loc"] == ["query", "q"]
    assert client.get("/d?token=abc").json() == "abc"
    operation = app.openapi()["paths"]["/u"]["get"]
    assert "requestBody" not in operation
    assert [p["name"] for p in operation["parameters"]] == ["q", "n"]
