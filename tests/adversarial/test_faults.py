"""Faults (issue 9, part 2): Redis going away under load, the database locked or gone, an error
after the response started, clients leaving mid-stream and mid-cleanup, a cancelled Redis command.

Already covered, not repeated: Redis stopped between two requests and a hung Redis timing out
(tests/test_sessions.py::test_redis_stopped_in_the_middle, ::test_a_hung_redis_times_out_into_a_503),
a closed database (tests/test_shop.py::test_database_gone_is_503), the error middleware's log
record and re-raise in-process (tests/middleware/test_errors.py).
"""

from __future__ import annotations

import collections
import shutil
import socket
import sqlite3
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import redis.asyncio as aredis
from adv_app import LOG_MARK
from adv_support import PASSWORD, Server, bearer, parse, raw_get, register, shop_settings
from redis_server import RedisServer

from apps.shop.deps import open_database
from apps.shop.main import create_app
from toolkit import App, Middleware
from toolkit.middleware.sessions import SessionMiddleware
from toolkit.sessions import RedisStore, Session
from toolkit.testing import AsyncTestClient, TestClient

DEADLINE = 20.0  # a guard against hanging; nothing asserts on how long anything took


async def eventually(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await anyio.sleep(0.01)


def poll(condition: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + DEADLINE
    while not (result := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
    return result


# --- Redis stopped and restarted while requests run ---------------------------------------------


@pytest.mark.anyio
async def test_redis_stopped_and_restarted_under_load(private_redis: RedisServer, tmp_path: Path) -> None:
    app = create_app(shop_settings(tmp_path, redis_url=private_redis.url))
    async with AsyncTestClient(app) as client:

        async def login(name: str) -> str:
            body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
            assert (await client.post("/users", json=body)).status_code == 201
            response = await client.post("/auth/login", json={"username": name, "password": PASSWORD})
            assert response.status_code == 200
            client.cookies.clear()
            return response.cookies["session"]

        async def me(cookie: str) -> httpx.Response:
            return await client.get("/users/me", headers={"Cookie": f"session={cookie}"})

        alice, bob, carol = [await login(name) for name in ("alice", "bob", "carol")]
        assert (await client.post("/auth/logout", headers={"Cookie": f"session={bob}"})).status_code == 204
        statuses: collections.Counter[int] = collections.Counter()
        stop = anyio.Event()

        async def load() -> None:
            while not stop.is_set():
                response = await me(alice)
                statuses[response.status_code] += 1
                if response.status_code == 200:
                    assert response.json()["username"] == "alice"
                else:
                    assert response.json() == {"detail": "Session store unavailable"}
                    assert "set-cookie" not in response.headers
                await anyio.sleep(0.002)

        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(load)
            await eventually(lambda: statuses[200] >= 10)
            await anyio.to_thread.run_sync(lambda: private_redis.stop(save=True))
            await eventually(lambda: statuses[503] >= 10)
            # While Redis is down: a logout and a login cannot be recorded, so both are refused.
            logout = await client.post("/auth/logout", headers={"Cookie": f"session={carol}"})
            assert (logout.status_code, logout.headers.get("set-cookie")) == (503, None)
            login = await client.post("/auth/login", json={"username": "carol", "password": PASSWORD})
            assert (login.status_code, login.headers.get("set-cookie")) == (503, None)
            ready = await client.get("/ready")
            assert ready.status_code == 503
            assert ready.json()["checks"] == {"database": "ok", "sessions": "error"}
            await anyio.to_thread.run_sync(private_redis.start)  # same port, the saved data loaded
            served = statuses[200]
            await eventually(lambda: statuses[200] >= served + 10)
            stop.set()
        # Only "ok" or "unavailable": never a 500, never a 401 (an empty session served as real).
        assert set(statuses) == {200, 503}, statuses
        assert (await me(alice)).json()["username"] == "alice"  # created before, valid after
        assert (await me(bob)).status_code == 401  # logged out before: not resurrected
        assert (await me(carol)).json()["username"] == "carol"  # its logout failed (503): still on
        assert (await client.post("/auth/logout", headers={"Cookie": f"session={carol}"})).status_code == 204
        assert (await me(carol)).status_code == 401


# --- a Redis command cancelled in flight -----------------------------------------------------------

SECRET = "adversarial-session-secret-0123456789"


def session_app(store: RedisStore) -> App:
    app = App(middleware=[Middleware(SessionMiddleware, secret_key=SECRET, store=store)])

    @app.post("/login")
    async def login(session: Session, user: str) -> dict[str, bool]:
        session.regenerate()
        session["user"] = user
        return {"ok": True}

    @app.get("/me")
    async def me(session: Session) -> dict[str, Any]:
        return {"user": session.get("user")}

    return app


async def get_calls(store: RedisStore) -> int:
    """How many GET commands the server has executed (INFO commandstats)."""
    stats = await store.client.info("commandstats")
    return int(stats.get("cmdstat_get", {}).get("calls", 0))


async def cancelled_read_then_next_request(private_redis: RedisServer, how: str) -> dict[str, Any]:
    """alice's read is cut short while Redis is frozen; then bob asks, on the only connection."""
    pool = aredis.BlockingConnectionPool.from_url(private_redis.url, max_connections=1, timeout=10)
    store = RedisStore(aredis.Redis(connection_pool=pool), timeout=0.3 if how == "store-timeout" else 10)
    seen: dict[str, Any] = {}
    try:
        async with AsyncTestClient(session_app(store)) as client:
            cookies = {}
            for user in ("alice", "bob"):
                cookies[user] = (await client.post("/login", params={"user": user})).cookies["session"]
                client.cookies.clear()
            seen["connection before"] = await store.client.client_id()
            seen["GETs before"] = await get_calls(store)
            private_redis.pause()  # alice's GET reaches the socket; the answer comes only after resume
            try:
                alice = {"Cookie": f"session={cookies['alice']}"}
                if how == "client-cancelled":
                    finished = []

                    async def read_alice() -> None:
                        await client.get("/me", headers=alice)
                        finished.append(True)

                    async with anyio.create_task_group() as tg:
                        tg.start_soon(read_alice)
                        await anyio.wait_all_tasks_blocked()  # her GET is sent; the reply is awaited
                        tg.cancel_scope.cancel()  # the request itself is cancelled mid-command
                    assert not finished
                else:
                    response = await client.get("/me", headers=alice)
                    assert response.status_code == 503  # the store's own timeout cancelled the command
            finally:
                private_redis.resume()
            for user in ("bob", "alice"):
                response = await client.get("/me", headers={"Cookie": f"session={cookies[user]}"})
                seen[user] = response.json()["user"]
            seen["connection after"] = await store.client.client_id()
            seen["GETs after"] = await get_calls(store)
    finally:
        await store.close()
        await pool.disconnect()
    return seen


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["client-cancelled", "store-timeout"])
async def test_a_cancelled_redis_command_never_answers_the_next_request(
    private_redis: RedisServer, how: str
) -> None:
    seen = await cancelled_read_then_next_request(private_redis, how)
    assert seen["bob"] == "bob"  # its own data, not the stale reply to alice's GET
    assert seen["alice"] == "alice"
    # redis-py dropped the connection that had a reply pending: the next command used a new one.
    assert seen["connection after"] != seen["connection before"]


def test_the_cancelled_command_was_executed_so_its_reply_was_really_pending(
    private_redis: RedisServer,
) -> None:
    """The control for the test above: alice's GET reached Redis and was answered after the
    resume (three GETs ran, not two), so a reply really was left behind for the next reader."""

    async def main() -> dict[str, Any]:
        return await cancelled_read_then_next_request(private_redis, "client-cancelled")

    seen = anyio.run(main)
    assert seen["GETs after"] - seen["GETs before"] == 3  # alice's cancelled one, bob's, alice's again
    assert (seen["bob"], seen["alice"]) == ("bob", "alice")


@pytest.mark.anyio
async def test_no_stale_reply_even_if_the_redis_client_kept_the_connection(
    private_redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guarantee is the store's own: with redis-py's clean-up on error switched off (its public
    ``disconnect_on_error`` flag), the connection with a pending reply is still never reused."""
    from redis.asyncio.connection import AbstractConnection

    real = AbstractConnection.read_response

    async def read_response_without_cleanup(self: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs["disconnect_on_error"] = False
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(AbstractConnection, "read_response", read_response_without_cleanup)
    seen = await cancelled_read_then_next_request(private_redis, "client-cancelled")
    assert (seen["bob"], seen["alice"]) == ("bob", "alice")
    assert seen["connection after"] != seen["connection before"]


# --- the database locked or gone ------------------------------------------------------------------


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[tuple[App, TestClient, dict[str, str]]]:
    (tmp_path / "db").mkdir()
    app = create_app(shop_settings(tmp_path / "db"))
    with TestClient(app, raise_server_exceptions=False) as client:
        register(client, "alice")
        yield app, client, bearer(client, "alice")


def database(app: App, *, busy_timeout: float | None = None) -> Any:
    """The shop's database; its idle connections are closed, so the next request opens a new one."""
    db = app.app_scope.values[open_database]
    with db._lock:
        idle, db._idle = db._idle, []
        if busy_timeout is not None:
            db.busy_timeout = busy_timeout
    for raw in idle:
        raw.close()
    return db


def assert_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.json() == {"detail": "Database unavailable"}
    assert response.headers["retry-after"] == "1"


def test_a_locked_database_is_a_clean_503_that_writes_nothing(
    shop: tuple[App, TestClient, dict[str, str]], tmp_path: Path
) -> None:
    app, client, auth = shop
    item = client.post("/items", json={"name": "Widget", "price": 1}, headers=auth).json()
    database(app, busy_timeout=0.05)
    locker = sqlite3.connect(tmp_path / "db" / "shop.db", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        assert_unavailable(client.post("/items", json={"name": "Other", "price": 1}, headers=auth))
        assert_unavailable(client.patch(f"/items/{item['id']}", json={"name": "Changed"}, headers=auth))
        assert_unavailable(client.delete(f"/items/{item['id']}", headers=auth))
        body = {"username": "bob", "email": "bob@example.com", "password": PASSWORD}
        assert_unavailable(client.post("/users", json=body))
        assert client.get("/items").json()["total"] == 1  # WAL: readers are not blocked by a writer
    finally:
        locker.close()
    assert client.get("/items").json()["items"] == [item]  # nothing was written
    register(client, "bob")


@pytest.mark.parametrize("how", ["directory-removed", "file-overwritten"])
def test_a_database_gone_is_a_clean_503(shop: tuple[App, TestClient, dict[str, str]], how: str) -> None:
    app, client, auth = shop
    path = Path(database(app).path)
    if how == "directory-removed":
        shutil.rmtree(path.parent)
    else:
        for file in path.parent.iterdir():
            file.unlink()
        path.write_bytes(b"this is not a database" * 100)
    assert_unavailable(client.get("/items"))
    assert_unavailable(client.post("/items", json={"name": "Widget", "price": 1}, headers=auth))
    ready = client.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] == "error"


def test_a_deleted_database_file_is_a_clean_503(shop: tuple[App, TestClient, dict[str, str]]) -> None:
    app, client, _ = shop
    path = Path(database(app).path)
    for file in path.parent.iterdir():
        file.unlink()
    assert_unavailable(client.get("/items"))
    assert client.get("/ready").status_code == 503


# --- an error after the response started (through uvicorn) -----------------------------------------


@pytest.mark.parametrize("target", [b"/boom/stream", b"/boom/raw"])
def test_an_error_after_the_response_started_aborts_the_connection(server: Server, target: bytes) -> None:
    logged = len(server.log())
    raw = server.request(raw_get(target))
    head, _, body = raw.partition(b"\r\n\r\n")
    assert raw.count(b"HTTP/1.1 ") == 1, raw  # no second response
    assert head.startswith(b"HTTP/1.1 200 "), raw
    if target == b"/boom/stream":
        assert body.startswith(b"c\r\nfirst chunk\n\r\n")
        assert not body.endswith(b"0\r\n\r\n")  # the chunked body never ends: the client knows
    else:
        assert b"content-length: 100" in head.lower()
        assert body == b"only ten b"  # 10 of 100 bytes, then the connection is closed
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(server.url + target.decode(), timeout=10)
    request_id = parse(raw).header("x-request-id")
    ours = f"{LOG_MARK} toolkit.errors ERROR error after the response started: GET '{target.decode()}'"
    ours += f" (request id {request_id})"
    new = poll(lambda: (text := server.log()[logged:]).count(ours) and text)
    assert new.count(ours) == 1  # the toolkit logs it once, with the request id...
    # ...and uvicorn reports the re-raised exception too (its own logger): once per request.
    assert new.count("Exception in ASGI application") == 2  # this request and the httpx one


# --- clients leaving mid-stream and mid-cleanup (through uvicorn) ----------------------------------

ORDER = ["first:start", "slow:start", "last:start", "last:cleanup", "slow:cleanup", "first:cleanup"]


def events(server: Server, key: str, count: int) -> list[str]:
    def fetch() -> list[str] | None:
        recorded: list[str] = httpx.get(f"{server.url}/events/{key}", timeout=10).json()
        return recorded if len(recorded) >= count else None

    result: list[str] = poll(fetch)
    time.sleep(0.05)  # nothing more may come
    assert httpx.get(f"{server.url}/events/{key}", timeout=10).json() == result
    return result


def close(sock: socket.socket, abort: bool) -> None:
    if abort:  # RST instead of FIN
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.mark.parametrize("abort", [False, True], ids=["fin", "rst"])
def test_client_leaving_mid_stream_runs_every_cleanup(server: Server, abort: bool) -> None:
    key = uuid.uuid4().hex
    sock = server.connect()
    sock.sendall(raw_get(f"/stream/{key}".encode()))
    received = b""
    while b"chunk 3\n" not in received:
        received += sock.recv(65536)
    close(sock, abort)
    assert events(server, key, 7) == [*ORDER[:3], "stream:closed", *ORDER[3:]]


@pytest.mark.parametrize("abort", [False, True], ids=["fin", "rst"])
def test_client_leaving_during_a_dependency_cleanup_runs_every_cleanup(server: Server, abort: bool) -> None:
    key = uuid.uuid4().hex
    sock = server.connect()
    sock.sendall(raw_get(f"/cleanup/{key}".encode()).replace(b"Connection: close\r\n", b""))
    received = b""
    while not received.endswith(f'{{"key":"{key}"}}'.encode()):
        received += sock.recv(65536)
    close(sock, abort)  # the slow cleanup is sleeping now (0.3 s)
    assert events(server, key, 6) == ORDER
