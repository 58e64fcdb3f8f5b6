"""Abuse of the shop service (apps/shop) and its FastAPI twin (apps/shop_fastapi), through HTTP.

Regressions of an attack review: password guessing and sign-up floods are throttled (per client
address and per account, before any password is hashed) and a burst of logins leaves other
requests served; registering a name never makes an admin (admins come from
``python -m apps.shop.admin``); the session cookie is ``__Host-session`` with ``Secure`` unless
``SHOP_DEVELOPMENT=1``, which ``make serve`` uses on plain ``http://localhost``; a WebSocket is
accepted only from ``Settings.allowed_origins``.

Most tests run against both apps (``kind``); none measures a duration: concurrency is checked by
what is answered while logins are held, not by how long anything takes.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import apps.shop.security
from apps.common import repository
from apps.common.db import Database
from apps.common.settings import Settings, load_settings
from apps.common.throttling import account_key, address_key
from apps.shop import admin as admin_command
from toolkit import WebSocketDisconnect
from toolkit.security import PasswordHasher
from toolkit.testing import AsyncTestClient, TestClient

pytest.importorskip("fastapi")

from processes import stop_process

import apps.shop_fastapi.security  # after the skip: the twin needs the benchmark extra (PyJWT)

SECRET = "abuse-test-secret-key-of-at-least-32-bytes"
PASSWORD = "correct horse"
APPS = ("toolkit", "fastapi")
ROOT = Path(__file__).resolve().parent.parent
CLIENT_HEADER = "X-Test-Client"  # read by ``from_address``: the client address of one request


# --- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture(params=APPS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def kdf_runs(kind: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Cheap hashing for ``kind``'s app, and a record of every password hash or check it runs."""
    runs: list[str] = []
    if kind == "toolkit":

        class Counting(PasswordHasher):
            def hash(self, password: str) -> str:
                runs.append("hash")
                return super().hash(password)

            def verify(self, password: str, hashed: str) -> bool:
                runs.append("verify")
                return super().verify(password, hashed)

        monkeypatch.setattr(apps.shop.security, "hasher", Counting(n=2**4, r=8, p=1))
    else:
        security = apps.shop_fastapi.security
        monkeypatch.setattr(security, "SCRYPT_COST", (2**4, 8, 1))
        hash_password, check_password = security.hash_password, security.check_password

        def counting_hash(password: str) -> str:
            runs.append("hash")
            return hash_password(password)

        def counting_check(password: str, hashed: str | None) -> bool:
            runs.append("verify")
            return check_password(password, hashed)

        monkeypatch.setattr(security, "hash_password", counting_hash)
        monkeypatch.setattr(security, "check_password", counting_check)
    return runs


def make_settings(tmp_path: Path, **changes: Any) -> Settings:
    options: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'shop.db'}",
        "redis_url": None,
        "secret_key": SECRET,
        "development": True,
        **changes,
    }
    return Settings(**options)


def create_app(kind: str, settings: Settings) -> Any:
    if kind == "toolkit":
        from apps.shop.main import create_app as create
    else:
        from apps.shop_fastapi.main import create_app as create
    return create(settings)


def from_address(app: Any) -> Any:
    """``app`` seeing each request come from the address in its ``X-Test-Client`` header, if any
    (the test client has one address of its own)."""

    async def wrapper(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == CLIENT_HEADER.lower().encode():
                    scope = {**scope, "client": (value.decode(), 50000)}
        await app(scope, receive, send)

    return wrapper


@contextlib.contextmanager
def serve(kind: str, settings: Settings, base_url: str = "http://testserver") -> Iterator[TestClient]:
    with TestClient(from_address(create_app(kind, settings)), base_url=base_url) as client:
        yield client


def register(client: TestClient, username: str, **headers: str) -> httpx.Response:
    body = {"username": username, "email": f"{username}@example.com", "password": PASSWORD}
    return client.post("/users", json=body, headers=headers)


def token(client: TestClient, username: str, password: str = PASSWORD, **headers: str) -> httpx.Response:
    return client.post("/auth/token", data={"username": username, "password": password}, headers=headers)


def login(client: TestClient, username: str, password: str = PASSWORD, **headers: str) -> httpx.Response:
    return client.post("/auth/login", json={"username": username, "password": password}, headers=headers)


def bearer(client: TestClient, username: str) -> dict[str, str]:
    response = token(client, username)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def assert_throttled(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json() == {"detail": "Too Many Requests"}
    assert int(response.headers["retry-after"]) >= 1
    assert "set-cookie" not in response.headers


def at(address: str) -> dict[str, str]:
    return {CLIENT_HEADER: address}


# --- 1. throttling -----------------------------------------------------------------------------


def test_wrong_passwords_end_in_429_for_the_account(kind: str, kdf_runs: list[str], tmp_path: Path) -> None:
    """Guesses at one account are refused after the limit, from any address, before any hashing;
    other accounts are not held back."""
    settings = make_settings(tmp_path, login_rate_per_account="3/hour", login_rate_per_address="100/hour")
    with serve(kind, settings) as client:
        assert register(client, "alice").status_code == 201
        assert register(client, "bob").status_code == 201
        for attempt in (token, login, token):
            assert attempt(client, "alice", "wrong password").status_code == 401
        runs = len(kdf_runs)
        assert_throttled(token(client, "alice", "wrong password"))
        assert_throttled(login(client, "alice"))  # the right password too: the account is held
        assert_throttled(token(client, "ALICE", "guess", **at("203.0.113.7")))  # any case, any address
        assert len(kdf_runs) == runs  # refused before any password was checked
        assert token(client, "bob").status_code == 200
        assert login(client, "bob").status_code == 200


def test_logins_from_one_address_end_in_429(kind: str, kdf_runs: list[str], tmp_path: Path) -> None:
    """Both login endpoints share one count per address, invalid bodies included; another address
    has a count of its own."""
    settings = make_settings(tmp_path, login_rate_per_address="4/hour", login_rate_per_account="100/hour")
    with serve(kind, settings) as client:
        assert register(client, "alice").status_code == 201
        assert token(client, "nobody1").status_code == 401
        assert login(client, "nobody2").status_code == 401
        assert client.post("/auth/login", json={"username": "nobody3"}).status_code == 422
        assert token(client, "alice").status_code == 200
        runs = len(kdf_runs)
        for username in ("nobody4", "alice"):
            assert_throttled(token(client, username))
            assert_throttled(login(client, username))
        assert_throttled(client.post("/auth/token", data={}))  # before the body is even validated
        assert len(kdf_runs) == runs
        assert token(client, "alice", **at("198.51.100.20")).status_code == 200


def test_sign_ups_from_one_address_end_in_429(kind: str, kdf_runs: list[str], tmp_path: Path) -> None:
    settings = make_settings(tmp_path, signup_rate_per_address="3/hour")
    with serve(kind, settings) as client:
        assert register(client, "alice").status_code == 201
        assert register(client, "alice").status_code == 409
        assert client.post("/users", json={"username": "x"}).status_code == 422
        runs = len(kdf_runs)
        assert_throttled(register(client, "mallory"))
        assert len(kdf_runs) == runs
        assert register(client, "mallory", **at("198.51.100.30")).status_code == 201  # not made above


def test_an_ipv6_client_is_counted_by_its_64(kind: str, kdf_runs: list[str], tmp_path: Path) -> None:
    settings = make_settings(tmp_path, signup_rate_per_address="2/hour")
    with serve(kind, settings) as client:
        assert register(client, "user1", **at("2001:db8:1:2::1")).status_code == 201
        assert register(client, "user2", **at("2001:db8:1:2::ffff")).status_code == 201
        assert_throttled(register(client, "user3", **at("2001:db8:1:2:aaaa::3")))  # the same /64
        assert register(client, "user3", **at("2001:db8:1:3::1")).status_code == 201  # the next /64


def test_a_huge_username_is_throttled_like_any_other(kind: str, kdf_runs: list[str], tmp_path: Path) -> None:
    """A login's fields have no length limit: the account key is a bounded hash of the name."""
    settings = make_settings(tmp_path, login_rate_per_account="2/hour", login_rate_per_address="100/hour")
    huge = "A" * 100_000
    with serve(kind, settings) as client:
        assert token(client, huge).status_code == 401
        assert login(client, huge.lower()).status_code == 401
        assert_throttled(token(client, huge))
    assert len(account_key(huge)) == len(account_key("a")) == 32
    assert account_key(" Alice ") == account_key("alice") != account_key("alicia")
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"


def test_limits_can_be_turned_off(kind: str, kdf_runs: list[str], tmp_path: Path) -> None:
    """``rate_limits=False`` (the benchmarks): every attempt is answered on its merits."""
    settings = make_settings(
        tmp_path, rate_limits=False, login_rate_per_account="1/hour", signup_rate_per_address="1/hour"
    )
    with serve(kind, settings) as client:
        for name in ("alice", "bob", "carol"):
            assert register(client, name).status_code == 201
        for _ in range(5):
            assert token(client, "alice", "wrong password").status_code == 401
        assert token(client, "alice").status_code == 200


@pytest.mark.parametrize("kind", ["toolkit"])  # the twin counts in its own memory (throttle.py)
def test_limits_are_shared_by_processes_through_redis(
    kind: str, kdf_runs: list[str], tmp_path: Path, redis_url: str
) -> None:
    """Two toolkit apps on one Redis (two processes behind a balancer) share the account count."""
    username = f"u{uuid.uuid4().hex[:20]}"  # Redis outlives the test: a count of this test's own
    settings = make_settings(
        tmp_path, redis_url=redis_url, login_rate_per_account="2/hour", login_rate_per_address="10000/hour"
    )
    with serve(kind, settings) as first, serve(kind, settings) as second:
        assert token(first, username).status_code == 401
        assert token(second, username).status_code == 401
        assert_throttled(token(first, username))
        assert_throttled(login(second, username))


class Gate:
    """Holds every password check until released, counting how many run at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0

    def hold(self) -> None:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            self.release.wait(timeout=60)  # never left hanging if the test fails
        finally:
            with self.lock:
                self.running -= 1


@pytest.fixture
def gate(kind: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    """Password checks of ``kind``'s app held by a ``Gate``; at most 2 at once."""
    gate = Gate()
    if kind == "toolkit":

        class Held(PasswordHasher):
            def verify(self, password: str, hashed: str) -> bool:
                gate.hold()
                return super().verify(password, hashed)

        monkeypatch.setattr(apps.shop.security, "hasher", Held(n=2**4, r=8, p=1, max_concurrency=2))
    else:
        security = apps.shop_fastapi.security
        monkeypatch.setattr(security, "SCRYPT_COST", (2**4, 8, 1))
        monkeypatch.setattr(security, "HASHING_CONCURRENCY", 2)
        check_password = security.check_password

        def held(password: str, hashed: str | None) -> bool:
            gate.hold()
            return check_password(password, hashed)

        monkeypatch.setattr(security, "check_password", held)
    try:
        yield gate
    finally:
        gate.release.set()


def test_a_burst_of_logins_leaves_other_requests_served(kind: str, gate: Gate, tmp_path: Path) -> None:
    """40 concurrent logins while every password check is held: at most 2 checks run (the
    hashing limit, set to 2 here), and ``GET /items/1`` and ``GET /items`` are answered meanwhile,
    before any of the logins. Checks in the default thread pool would take its threads, the ones
    the database calls of every other request need."""
    settings = make_settings(tmp_path, rate_limits=False)
    app = create_app(kind, settings)

    async def scenario() -> None:
        async with AsyncTestClient(app) as client:
            user = {"username": "alice", "email": "alice@example.com", "password": PASSWORD}
            gate.release.set()  # registration hashes (not held), the first login checks (held)
            assert (await client.post("/users", json=user)).status_code == 201
            response = await client.post("/auth/token", data={"username": "alice", "password": PASSWORD})
            auth = {"Authorization": f"Bearer {response.json()['access_token']}"}
            assert (
                await client.post("/items", json={"name": "Lamp", "price": 5}, headers=auth)
            ).status_code == 201
            gate.release.clear()
            gate.peak = 0

            done: list[int] = []

            async def attempt() -> None:
                form = {"username": "alice", "password": PASSWORD}
                done.append((await client.post("/auth/token", data=form)).status_code)

            async with anyio.create_task_group() as group:
                try:
                    for _ in range(40):
                        group.start_soon(attempt)
                    with anyio.fail_after(30):  # a hang guard, not a measurement
                        while gate.running < 2:
                            await anyio.sleep(0.01)
                        await anyio.wait_all_tasks_blocked()
                        item = await client.get("/items/1")
                        items = await client.get("/items")
                    assert (item.status_code, item.json()["name"]) == (200, "Lamp")
                    assert items.json()["total"] == 1
                    assert done == []  # answered while every login was still waiting
                    assert gate.running == gate.peak == 2
                finally:
                    gate.release.set()  # the held checks end (also when an assertion failed)
            assert done == [200] * 40
            assert gate.peak == 2

    anyio.run(scenario)


# --- 2. admins are made out of band --------------------------------------------------------------


def test_registering_a_name_listed_in_admin_usernames_does_not_make_an_admin(
    kind: str, kdf_runs: list[str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """It used to make whoever registered a listed name first an admin: the setting is now
    ignored (with a warning) and registering always gives the ``user`` role only."""
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'shop.db'}",
        "SECRET_KEY": SECRET,
        "SHOP_DEVELOPMENT": "1",
        "ADMIN_USERNAMES": "root,admin",
    }
    with caplog.at_level(logging.WARNING, logger="apps.settings"):
        settings = load_settings(env)
    assert "ADMIN_USERNAMES is ignored" in caplog.text
    with serve(kind, settings) as client:
        for name in ("root", "admin"):
            response = register(client, name)
            assert (response.status_code, response.json()["roles"]) == (201, ["user"])
            headers = bearer(client, name)
            assert client.get("/admin/users", headers=headers).status_code == 403
            assert client.get("/users/me", headers=headers).json()["roles"] == ["user"]


def run_command(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with (
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setattr(sys, "stdin", io.StringIO(stdin))
        code = admin_command.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_the_admin_command_makes_and_unmakes_admins(kind: str, kdf_runs: list[str], tmp_path: Path) -> None:
    """``python -m apps.shop.admin``: create-admin, promote and demote, on either app's database."""
    settings = make_settings(tmp_path)
    url = ["--database-url", settings.database_url]
    code, out, _ = run_command(
        *url, "create-admin", "boss", "--email", "boss@example.com", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert (code, out) == (0, "boss (id 1): roles user, admin\n")
    with serve(kind, settings) as client:
        boss = bearer(client, "boss")
        assert client.get("/admin/users", headers=boss).status_code == 200
        assert register(client, "alice").status_code == 201
        alice = bearer(client, "alice")
        assert client.get("/admin/users", headers=alice).status_code == 403

        assert run_command(*url, "promote", "alice")[:2] == (0, "alice (id 2): roles user, admin\n")
        assert run_command(*url, "promote", "alice")[0] == 0  # idempotent
        assert client.get("/admin/users", headers=alice).status_code == 200  # roles are read per request
        assert run_command(*url, "demote", "alice")[:2] == (0, "alice (id 2): roles user\n")
        assert client.get("/admin/users", headers=alice).status_code == 403

        code, _, err = run_command(*url, "promote", "nobody")
        assert (code, err) == (1, "error: no user named 'nobody'\n")
        code, _, err = run_command(
            *url, "create-admin", "alice", "--email", "a@b", "--password-stdin", stdin="x" * 8
        )
        assert code == 1
        assert "taken" in err
        code, _, err = run_command(
            *url, "create-admin", "eve", "--email", "no-at", "--password-stdin", stdin="short"
        )
        assert (code, err) == (1, "error: Expected `str` matching regex '@' - at `$.email`\n")
        assert [u["username"] for u in client.get("/admin/users", headers=boss).json()] == ["boss", "alice"]


def test_the_admin_command_runs_as_a_module(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'shop.db'}"

    async def seed() -> None:
        database = await Database.connect(database_url)
        try:
            async with database.transaction(write=True) as conn:
                await repository.create_user(
                    conn, username="alice", email="a@example.com", password_hash="x", roles=["user"]
                )
        finally:
            await database.close()

    anyio.run(seed)
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "apps.shop.admin", "promote", "alice"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "alice (id 1): roles user, admin\n"), result.stderr


# --- 3. the session cookie ----------------------------------------------------------------------


def cookie_attributes(set_cookie: str) -> tuple[str, dict[str, str]]:
    """The cookie's name, and its attributes (lower-cased names and values)."""
    name = set_cookie.split("=", 1)[0]
    attributes = {}
    for part in set_cookie.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        attributes[key.lower()] = value.lower()
    return name, attributes


def test_the_production_session_cookie_is_secure_and_host_only(
    kind: str, kdf_runs: list[str], tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, development=False)
    with serve(kind, settings, base_url="https://testserver") as client:
        assert register(client, "alice").status_code == 201
        response = login(client, "alice")
        assert response.status_code == 200
        name, attributes = cookie_attributes(response.headers["set-cookie"])
        assert name == "__Host-session"
        assert {"secure", "httponly"} <= set(attributes)
        assert (attributes["path"], attributes["samesite"]) == ("/", "lax")
        assert "domain" not in attributes  # __Host-: Secure, Path=/ and no Domain, or browsers drop it
        assert client.get("/users/me").json()["username"] == "alice"  # the client sends it back


def test_the_development_session_cookie_works_on_plain_http(
    kind: str, kdf_runs: list[str], tmp_path: Path
) -> None:
    with serve(kind, make_settings(tmp_path, development=True)) as client:
        assert register(client, "alice").status_code == 201
        response = login(client, "alice")
        name, attributes = cookie_attributes(response.headers["set-cookie"])
        assert name == "session"
        assert "secure" not in attributes
        assert "httponly" in attributes
        assert attributes["samesite"] == "lax"
        assert client.get("/users/me").json()["username"] == "alice"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_make_serve_logs_in_with_a_session_on_plain_http(tmp_path: Path) -> None:
    """``SHOP_DEVELOPMENT=1 uvicorn apps.shop.main:app`` (make serve): a browser-like client on
    http://127.0.0.1 keeps the session cookie and sends it back. Real scrypt: a couple of hashes."""
    port = free_port()
    env = {
        **os.environ,
        "SHOP_DEVELOPMENT": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'shop.db'}",
        "SECRET_KEY": SECRET,
        "PYTHONPATH": str(ROOT),
    }
    env.pop("REDIS_URL", None)
    command = [sys.executable, "-m", "uvicorn", "apps.shop.main:app", "--port", str(port), "--no-access-log"]
    log_path = tmp_path / "uvicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30  # a start-up guard, not a measurement
        while True:
            assert process.poll() is None, log_path.read_text()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        with httpx.Client(base_url=base, timeout=30) as client:
            body = {"username": "alice", "email": "alice@example.com", "password": PASSWORD}
            assert client.post("/users", json=body).status_code == 201
            response = client.post("/auth/login", json={"username": "alice", "password": PASSWORD})
            assert response.status_code == 200
            assert cookie_attributes(response.headers["set-cookie"])[0] == "session"
            assert client.get("/users/me").json()["username"] == "alice"
    finally:
        stop_process(process)


# --- 4. WebSocket origin -----------------------------------------------------------------------


ORIGIN = "http://testserver"


def item_event(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    """Through ``/ws/items`` opened with ``headers``: the event of an item created meanwhile."""
    with client.websocket_connect("/ws/items", headers=headers) as socket_:
        created = client.post("/items", json={"name": "Lamp", "price": 5}, headers=bearer(client, "alice"))
        assert created.status_code == 201
        event: dict[str, Any] = socket_.receive_json()
    return event


@pytest.mark.parametrize(
    "origin",
    [None, "https://evil.example", "null", "http://testserver.evil.example", "http://testserver:8080", "*"],
)
def test_a_websocket_from_a_foreign_or_missing_origin_is_refused_before_accept(
    kind: str, kdf_runs: list[str], tmp_path: Path, origin: str | None
) -> None:
    """Cross-site WebSocket hijacking: another site's page must not open the feed as the user."""
    with serve(kind, make_settings(tmp_path, allowed_origins=(ORIGIN,))) as client:
        headers = {} if origin is None else {"Origin": origin}
        with (
            pytest.raises(WebSocketDisconnect) as refused,
            client.websocket_connect("/ws/items", headers=headers),
        ):
            pass
        assert refused.value.code == 1008


def test_a_websocket_from_an_allowed_origin_is_served(kind: str, kdf_runs: list[str], tmp_path: Path) -> None:
    with serve(kind, make_settings(tmp_path, allowed_origins=("https://shop.example", ORIGIN))) as client:
        assert register(client, "alice").status_code == 201
        for origin in (ORIGIN, "HTTP://TestServer:80"):  # compared as scheme, host and port
            event = item_event(client, {"Origin": origin})
            assert (event["event"], event["item"]["name"]) == ("item.created", "Lamp")


def test_no_allowed_origin_refuses_every_websocket(kind: str, kdf_runs: list[str], tmp_path: Path) -> None:
    """The production default without ``SHOP_ALLOWED_ORIGINS``: no browser may open the feed."""
    settings = make_settings(tmp_path, development=False)
    assert settings.allowed_origins == ()
    with serve(kind, settings, base_url="https://testserver") as client:
        for origin in ("https://testserver", "http://localhost:8000"):
            with (
                pytest.raises(WebSocketDisconnect) as refused,
                client.websocket_connect("/ws/items", headers={"Origin": origin}),
            ):
                pass
            assert refused.value.code == 1008


@pytest.mark.parametrize("origin", ["https://*.example", "https://shop.example/", "shop.example"])
def test_an_allowed_origin_that_is_not_an_origin_is_a_start_up_error(
    kind: str, tmp_path: Path, origin: str
) -> None:
    with pytest.raises(ValueError, match="origin"):
        create_app(kind, make_settings(tmp_path, allowed_origins=(origin,)))
