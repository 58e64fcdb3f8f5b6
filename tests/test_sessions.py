"""Sessions over real HTTP semantics: signed-cookie sessions, and server-side ones in a
``MemoryStore`` and in a real Redis (see ``conftest.py``: ``redis_url``, ``private_redis``)."""

from __future__ import annotations

import base64
import collections
import contextlib
import dataclasses
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import itsdangerous
import pytest
import redis
from _session_app import SECRET, call, issued, session_app, session_id, set_cookies
from redis_server import RedisServer, free_port

import toolkit.middleware.sessions as sessions_module
from toolkit import App, Middleware
from toolkit.middleware.sessions import SessionMiddleware
from toolkit.sessions import MemoryStore, RedisStore, Session, Store, StoreError
from toolkit.testing import AsyncTestClient, TestClient

ALL = ["cookie", "memory", "redis"]
SERVER = ["memory", "redis"]
TESTS_DIR = Path(__file__).resolve().parent


# --- harness -------------------------------------------------------------------------------------


class CountingStore:
    """Wraps a real store: counts calls, and raises ``StoreError`` while ``harness.broken``."""

    def __init__(self, inner: Any, harness: Harness) -> None:
        self.inner, self.harness = inner, harness

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self.harness.calls[name] += 1
        if self.harness.broken:
            raise StoreError(f"{name}: store is down (test)")
        return await getattr(self.inner, name)(*args, **kwargs)

    async def get(self, key: str) -> bytes | None:
        return await self._call("get", key)  # type: ignore[no-any-return]

    async def set(self, key: str, value: bytes, ttl: float, *, only_if_exists: bool = False) -> bool:
        return bool(await self._call("set", key, value, ttl, only_if_exists=only_if_exists))

    async def delete(self, key: str) -> None:
        await self._call("delete", key)

    async def close(self) -> None:
        if isinstance(self.inner, RedisStore):
            await self.inner.close()


@dataclasses.dataclass
class Harness:
    kind: str
    redis_url: str | None
    prefix: str
    memory: MemoryStore = dataclasses.field(default_factory=MemoryStore)
    calls: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    broken: bool = False
    raw: redis.Redis | None = None

    def store(self) -> Store | None:
        """A new store on the same data (a Redis client is bound to one event loop: one per app)."""
        if self.kind == "cookie":
            return None
        if self.kind == "memory":
            return CountingStore(self.memory, self)
        return CountingStore(RedisStore(url=self.redis_url, prefix=self.prefix), self)

    def app(self, **options: Any) -> App:
        return session_app(self.store(), **options)

    def records(self) -> int:
        if self.kind == "memory":
            return len(self.memory)
        assert self.raw is not None
        return len(self.raw.keys(self.prefix + "*"))

    def has_record(self, session_id: str) -> bool:
        if self.kind == "memory":
            return anyio.run(self.memory.get, session_id) is not None  # MemoryStore: any event loop
        assert self.raw is not None
        return bool(self.raw.exists(self.prefix + session_id))


@pytest.fixture
def harness(request: pytest.FixtureRequest, redis_prefix: str) -> Iterator[Harness]:
    kind = request.param
    url = request.getfixturevalue("redis_url") if kind == "redis" else None
    h = Harness(kind, url, redis_prefix)
    if url is not None:
        h.raw = redis.Redis.from_url(url)
    yield h
    if h.raw is not None:
        h.raw.close()


class Clock:
    """Stands in for the ``time`` module in ``toolkit.middleware.sessions``."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(sessions_module, "time", fake)
    return fake


def client_for(app: App, **kwargs: Any) -> TestClient:
    return TestClient(app, raise_server_exceptions=False, **kwargs)


# --- data round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("harness", ALL, indirect=True)
def test_data_round_trips_through_a_session_parameter(harness: Harness) -> None:
    with client_for(harness.app()) as client:
        assert call(client, "GET", "/get").json() == {}
        first = call(client, "POST", "/set", json={"user": "alice", "cart": {"items": [1, 2]}})
        assert first.status_code == 200
        cookie = issued(first)
        assert call(client, "GET", "/get", cookie).json() == {"user": "alice", "cart": {"items": [1, 2]}}
        second = call(client, "POST", "/set", cookie, json={"user": "bob", "é€": "日本"})
        cookie = issued(second)
        data = call(client, "GET", "/get", cookie).json()
    assert data == {"user": "bob", "cart": {"items": [1, 2]}, "é€": "日本"}


@pytest.mark.parametrize("harness", ALL, indirect=True)
def test_request_session_behaves_like_a_dict(harness: Harness) -> None:
    load = "lazy" if harness.kind == "cookie" else "eager"  # a server-side session loads eagerly
    with client_for(harness.app(load=load)) as client:
        cookie = issued(call(client, "POST", "/set", json={"z": 0}))
        response = call(client, "POST", "/dict", cookie)
        assert response.json() == {
            "before": {"z": 0},
            "is_dict": True,
            "len": 3,
            "keys": ["a", "d", "z"],
            "contains": True,
            "get": [1, "default"],
            "items": [["a", 1], ["d", [4]], ["z", 0]],
            "popped": 3,
            "equal": False,
        }
        assert call(client, "GET", "/get", issued(response)).json() == {"z": 0, "a": 1, "d": [4]}


@pytest.mark.parametrize("harness", SERVER, indirect=True)
def test_a_lazy_server_side_request_session_loads_on_demand(harness: Harness) -> None:
    with client_for(harness.app()) as client:
        cookie = issued(call(client, "POST", "/login", params={"user": "alice"}))
        assert call(client, "GET", "/lazy", cookie).json() == {"user": "alice"}
        assert call(client, "GET", "/lazy").json() == {"user": None}


@pytest.mark.parametrize("harness", ALL, indirect=True)
def test_only_json_types_are_stored(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    with client_for(harness.app()) as client:
        cookie = issued(call(client, "POST", "/store-object"))
        # msgspec JSON, never pickle: a datetime comes back as its ISO string, a tuple as a list.
        assert call(client, "GET", "/get", cookie).json() == {
            "when": "2024-05-06T07:08:09",
            "pair": [1, "two"],
        }
        records = harness.records() if harness.kind != "cookie" else 0
        with caplog.at_level(logging.ERROR):
            failed = call(client, "POST", "/store-unencodable", cookie)
        assert failed.status_code == 500
        assert failed.json()["detail"] == "Internal Server Error"
        assert set_cookies(failed) == []
        assert any("unsupported" in str(r.exc_info and r.exc_info[1]) for r in caplog.records)
        assert call(client, "GET", "/get", cookie).json()["pair"] == [1, "two"]
        if harness.kind != "cookie":
            assert harness.records() == records


# --- signing, tampering, key rotation --------------------------------------------------------------


def _flip(value: str, index: int) -> str:
    char = value[index]
    return value[:index] + ("A" if char != "A" else "B") + value[index + 1 :]


TAMPERINGS = {
    "signature": lambda v: _flip(v, -3),
    "payload": lambda v: _flip(v, 2),
    "timestamp": lambda v: _flip(v, len(session_id(v)) + 2),
    "unsigned": session_id,
    "garbage": lambda v: "not-a-session",
    "empty": lambda v: "",
    "huge": lambda v: v * 200,
}


@pytest.mark.parametrize("tamper", TAMPERINGS)
@pytest.mark.parametrize("harness", ALL, indirect=True)
def test_tampered_or_malformed_cookie_is_an_empty_session(harness: Harness, tamper: str) -> None:
    with client_for(harness.app()) as client:
        cookie = issued(call(client, "POST", "/set", json={"user": "alice"}))
        records = harness.records() if harness.kind != "cookie" else 0
        bad = TAMPERINGS[tamper](cookie)
        response = call(client, "GET", "/get", bad)
        assert response.status_code == 200
        assert response.json() == {}
        assert all(c.expired or c.value not in (bad, cookie) for c in set_cookies(response))
        if harness.kind != "cookie":
            assert harness.records() == records  # reading a bad id creates nothing
        assert call(client, "GET", "/get", cookie).json() == {"user": "alice"}


def test_client_side_data_is_in_the_cookie_signed_with_a_salt_of_its_own() -> None:
    with client_for(session_app(None)) as client:
        cookie = issued(call(client, "POST", "/set", json={"user": "alice"}))
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", cookie)  # plain ASCII: no quoting, whatever the data
    payload = itsdangerous.TimestampSigner(SECRET, salt="toolkit.session.data").unsign(cookie)
    assert b'"user":"alice"' in base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4))
    with pytest.raises(itsdangerous.BadSignature):
        itsdangerous.TimestampSigner(SECRET).unsign(cookie)  # not itsdangerous' default salt


def test_a_data_cookie_is_never_accepted_as_an_id_cookie() -> None:
    with client_for(session_app(None)) as client:
        data_cookie = issued(call(client, "POST", "/set", json={"user": "alice"}))
    store = MemoryStore()
    with client_for(session_app(store)) as client:
        id_cookie = issued(call(client, "POST", "/set", json={"user": "bob"}))
        assert call(client, "GET", "/get", data_cookie).json() == {}
    with client_for(session_app(None)) as client:
        assert call(client, "GET", "/get", id_cookie).json() == {}
    assert len(store) == 1


@pytest.mark.parametrize("harness", ALL, indirect=True)
def test_key_rotation_accepts_old_keys_and_signs_with_the_newest(harness: Harness) -> None:
    with client_for(harness.app(secret_key="old")) as client:
        old_cookie = issued(call(client, "POST", "/set", json={"user": "alice"}))
    with client_for(harness.app(secret_key=["new", "old"])) as client:
        assert call(client, "GET", "/get", old_cookie).json() == {"user": "alice"}
        new_cookie = issued(call(client, "POST", "/set", old_cookie, json={"n": 1}))
    with client_for(harness.app(secret_key="new")) as client:
        assert call(client, "GET", "/get", new_cookie).json() == {"user": "alice", "n": 1}
        assert call(client, "GET", "/get", old_cookie).json() == {}  # "old" was retired


def test_a_client_side_session_over_4kb_is_a_clear_server_error(caplog: pytest.LogCaptureFixture) -> None:
    with client_for(session_app(None)) as client:
        fits = call(client, "POST", "/big", params={"size": 2000})
        assert fits.status_code == 200
        cookie = issued(fits)
        assert len(fits.headers["set-cookie"]) <= 4096
        with caplog.at_level(logging.ERROR):
            too_big = call(client, "POST", "/big", cookie, params={"size": 5000})
        assert too_big.status_code == 500
        assert set_cookies(too_big) == []  # never a cookie the browser would silently drop
        logged = [r for r in caplog.records if r.exc_info]
        assert any("4096" in str(r.exc_info[1]) for r in logged if r.exc_info), caplog.text
        assert len(call(client, "GET", "/get", cookie).json()["blob"]) == 2000


# --- server-side ids --------------------------------------------------------------------------------


@pytest.mark.parametrize("harness", SERVER, indirect=True)
def test_server_side_cookie_holds_only_a_random_signed_id(harness: Harness) -> None:
    with client_for(harness.app()) as client:
        cookies = [issued(call(client, "POST", "/login", params={"user": "alice"})) for _ in range(3)]
    ids = [session_id(c) for c in cookies]
    assert len(set(ids)) == 3
    for cookie, sid in zip(cookies, ids, strict=True):
        assert "alice" not in cookie
        raw = base64.urlsafe_b64decode(sid + "=" * (-len(sid) % 4))
        assert len(raw) >= 16  # at least 128 bits (secrets.token_urlsafe(32): 256)
        assert harness.has_record(sid)
    assert harness.records() == 3


@pytest.mark.parametrize("harness", SERVER, indirect=True)
def test_an_unknown_but_validly_signed_id_is_never_adopted(harness: Harness) -> None:
    with client_for(harness.app()) as client:
        cookie = issued(call(client, "POST", "/login", params={"user": "alice"}))
        old_id = session_id(cookie)
    # The same secret, another store: the id is validly signed but unknown there.
    other = Harness(harness.kind, harness.redis_url, harness.prefix + "other:", raw=harness.raw)
    with client_for(other.app()) as client:
        read = call(client, "GET", "/get", cookie)
        assert read.json() == {}
        assert all(old_id not in c.value for c in set_cookies(read))
        assert other.records() == 0  # reading it created no record
        written = call(client, "POST", "/set", cookie, json={"user": "mallory"})
        new_id = session_id(issued(written))
        assert new_id != old_id  # a fresh server-issued id, never the client's
        assert other.records() == 1
        assert not other.has_record(old_id)
        assert other.has_record(new_id)


@pytest.mark.parametrize("harness", SERVER, indirect=True)
def test_regenerate_issues_a_new_id_and_deletes_the_old_record(harness: Harness) -> None:
    with client_for(harness.app()) as client:
        anonymous = issued(call(client, "POST", "/set", json={"cart": [1]}))
        logged_in = issued(call(client, "POST", "/login", anonymous, params={"user": "alice"}))
        assert session_id(logged_in) != session_id(anonymous)
        assert not harness.has_record(session_id(anonymous))
        assert harness.records() == 1
        assert call(client, "GET", "/get", logged_in).json() == {"cart": [1], "user": "alice"}
        replayed = call(client, "GET", "/get", anonymous)  # session fixation: the old id is dead
        assert replayed.json() == {}
        assert harness.records() == 1


@pytest.mark.parametrize("harness", ALL, indirect=True)
def test_logout_deletes_server_side_and_expires_the_cookie_with_the_same_flags(harness: Harness) -> None:
    options = {"https_only": True, "domain": "example.com", "path": "/", "same_site": "strict"}
    with client_for(harness.app(**options), base_url="https://testserver") as client:
        cookie = issued(call(client, "POST", "/login", params={"user": "alice"}))
        [live] = set_cookies(call(client, "POST", "/set", cookie, json={"n": 1}))
        logout = call(client, "POST", "/logout", live.value)
        [expired] = set_cookies(logout)
        assert expired.name == "session"
        assert expired.value in ("", '""')
        assert expired.expired
        assert {k: v for k, v in expired.attrs.items() if k not in ("max-age", "expires")} == {
            k: v for k, v in live.attrs.items() if k != "max-age"
        }
        if harness.kind != "cookie":
            assert harness.records() == 0
            replay = call(client, "GET", "/get", live.value)
            assert replay.json() == {}
            assert harness.records() == 0


@pytest.mark.parametrize("harness", SERVER, indirect=True)
def test_data_written_after_logout_goes_to_a_new_session(harness: Harness) -> None:
    with client_for(harness.app()) as client:
        cookie = issued(call(client, "POST", "/login", params={"user": "alice"}))
        after = issued(call(client, "POST", "/logout", cookie, params={"flash": "bye"}))
        assert session_id(after) != session_id(cookie)
        assert harness.records() == 1
        assert call(client, "GET", "/get", after).json() == {"flash": "bye"}
        assert call(client, "GET", "/get", cookie).json() == {}


# --- timeouts (a fake clock in the middleware; Redis keeps its own, longer, TTL) --------------------


@pytest.mark.parametrize("harness", ALL, indirect=True)
def test_idle_timeout_is_enforced_server_side(harness: Harness, clock: Clock) -> None:
    with client_for(harness.app(idle_timeout=60, max_age=None)) as client:
        cookie = issued(call(client, "POST", "/login", params={"user": "alice"}))
        clock.advance(59)
        read = call(client, "GET", "/get", cookie)
        assert read.json() == {"user": "alice"}
        cookie = issued(read)  # touched: the idle timeout slides
        clock.advance(59)
        assert call(client, "GET", "/get", cookie).json() == {"user": "alice"}
        clock.advance(61)
        assert call(client, "GET", "/get", cookie).json() == {}
        if harness.kind != "cookie":
            assert harness.records() == 0  # an expired record is deleted, never revived


@pytest.mark.parametrize("harness", ALL, indirect=True)
def test_absolute_timeout_ends_even_an_active_session(harness: Harness, clock: Clock) -> None:
    with client_for(harness.app(idle_timeout=30, max_age=100)) as client:
        cookie = issued(call(client, "POST", "/login", params={"user": "alice"}))
        for _ in range(4):  # active every 20 s: never idle for 30 s
            clock.advance(20)
            response = call(client, "GET", "/get", cookie)
            assert response.json() == {"user": "alice"}
            cookie = issued(response)
        clock.advance(21)  # 101 s after login
        assert call(client, "GET", "/get", cookie).json() == {}
        if harness.kind != "cookie":
            assert harness.records() == 0


@pytest.mark.parametrize("harness", SERVER, indirect=True)
def test_a_throttled_touch_extends_the_idle_ttl(harness: Harness, clock: Clock) -> None:
    with client_for(harness.app(idle_timeout=100, max_age=None)) as client:
        cookie = issued(call(client, "POST", "/login", params={"user": "alice"}))
        sid = session_id(cookie)
        if harness.raw is not None:
            assert 90_000 < harness.raw.pttl(harness.prefix + sid) <= 100_000
            harness.raw.pexpire(harness.prefix + sid, 50_000)
        sets = harness.calls["set"]
        clock.advance(5)  # under 10% of the idle timeout: no write
        quiet = call(client, "GET", "/get", cookie)
        assert quiet.json() == {"user": "alice"}
        assert set_cookies(quiet) == []
        assert harness.calls["set"] == sets
        if harness.raw is not None:
            assert harness.raw.pttl(harness.prefix + sid) <= 50_000
        clock.advance(6)  # now over it: rewritten, same id, full idle TTL again
        touched = call(client, "GET", "/get", cookie)
        assert session_id(issued(touched)) == sid
        assert harness.calls["set"] == sets + 1
        if harness.raw is not None:
            assert harness.raw.pttl(harness.prefix + sid) > 90_000  # back from 50 s
        clock.advance(95)  # 106 s after login, 95 s after the touch
        assert call(client, "GET", "/get", issued(touched)).json() == {"user": "alice"}


# --- cookie attributes, Vary ------------------------------------------------------------------------


@pytest.mark.parametrize("harness", ALL, indirect=True)
def test_cookie_attributes(harness: Harness) -> None:
    with client_for(harness.app()) as client:
        [default] = set_cookies(call(client, "POST", "/set", json={"a": 1}))
    assert default.attrs == {"httponly": "", "max-age": str(14 * 24 * 3600), "path": "/", "samesite": "Lax"}
    app = harness.app(
        cookie_name="sid", https_only=True, same_site="strict", domain="example.com", path="/app", max_age=600
    )
    with client_for(app, base_url="https://testserver") as client:
        [custom] = set_cookies(call(client, "POST", "/set", json={"a": 1}))
    assert custom.name == "sid"
    expected = {"httponly": "", "secure": "", "samesite": "Strict", "domain": "example.com", "path": "/app"}
    assert custom.attrs == {**expected, "max-age": "600"}


@pytest.mark.parametrize(
    "options",
    [
        {"cookie_name": "__Host-session", "https_only": False},
        {"cookie_name": "__Host-session", "https_only": True, "domain": "example.com"},
        {"cookie_name": "__Host-session", "https_only": True, "path": "/app"},
        {"cookie_name": "__Secure-session", "https_only": False},
        {"same_site": "none", "https_only": False},
        {"secret_key": ""},
        {"secret_key": []},
    ],
)
def test_unsafe_cookie_settings_fail_at_construction(options: dict[str, Any]) -> None:
    options = {"secret_key": SECRET, **options}
    with pytest.raises(ValueError, match=r"__Host-|__Secure-|same_site|secret_key"):
        SessionMiddleware(App(), **options)


def test_a_host_prefixed_cookie() -> None:
    app = session_app(MemoryStore(), cookie_name="__Host-session", https_only=True)
    with client_for(app, base_url="https://testserver") as client:
        cookie = issued(call(client, "POST", "/set", json={"a": 1}), name="__Host-session")
        assert call(client, "GET", "/get", cookie, name="__Host-session").json() == {"a": 1}


@pytest.mark.parametrize("harness", ALL, indirect=True)
def test_vary_cookie_only_when_the_session_was_read(harness: Harness) -> None:
    with client_for(harness.app()) as client:
        cookie = issued(call(client, "POST", "/set", json={"a": 1}))
        assert call(client, "GET", "/get", cookie).headers.get_list("vary") == ["Cookie"]
        assert call(client, "GET", "/get").headers.get_list("vary") == ["Cookie"]
        untouched = call(client, "GET", "/untouched", cookie)
        assert "vary" not in untouched.headers
        assert set_cookies(untouched) == []


# --- when the store is touched ------------------------------------------------------------------------


@pytest.mark.parametrize("harness", SERVER, indirect=True)
def test_the_store_is_read_only_with_a_cookie_and_written_only_when_modified(harness: Harness) -> None:
    with client_for(harness.app()) as client:
        assert call(client, "GET", "/get").json() == {}  # no cookie: nothing to read
        assert call(client, "GET", "/untouched").status_code == 200
        assert sum(harness.calls.values()) == 0
        cookie = issued(call(client, "POST", "/set", json={"a": 1}))
        assert harness.calls == {"set": 1}
        call(client, "GET", "/untouched", cookie)  # a cookie, but the endpoint never uses the session
        assert harness.calls == {"set": 1}
        read = call(client, "GET", "/get", cookie)
        assert set_cookies(read) == []
        assert harness.calls == {"set": 1, "get": 1}  # read, not written back
        call(client, "POST", "/set", cookie, json={"b": 2})
        assert harness.calls == {"set": 2, "get": 2}


@pytest.mark.parametrize("route", ["/fail", "/fail-http"])
@pytest.mark.parametrize("harness", ALL, indirect=True)
def test_an_error_response_does_not_persist_half_made_changes(harness: Harness, route: str) -> None:
    with client_for(harness.app()) as client:
        cookie = issued(call(client, "POST", "/set", json={"x": "before"}))
        sets = harness.calls["set"]
        failed = call(client, "POST", route, cookie)
        assert failed.status_code in (500, 503)
        assert set_cookies(failed) == []
        assert harness.calls["set"] == sets
        assert call(client, "GET", "/get", cookie).json() == {"x": "before"}


@pytest.mark.parametrize("load", ["lazy", "eager"])
@pytest.mark.parametrize("harness", SERVER, indirect=True)
def test_a_store_failure_is_a_503_and_never_an_empty_session(harness: Harness, load: str) -> None:
    with client_for(harness.app(load=load)) as client:
        cookie = issued(call(client, "POST", "/login", params={"user": "alice"}))
        harness.broken = True
        for method, path, kw in [("GET", "/get", {}), ("POST", "/set", {"json": {"user": "mallory"}})]:
            for sent in (cookie, None):  # loading fails with a cookie; saving fails without one
                response = call(client, method, path, sent, **kw)
                if sent is None and method == "GET":
                    assert response.status_code == 200  # nothing to load, nothing to save
                    continue
                assert response.status_code == 503, (method, path, sent)
                assert response.json() == {"detail": "Session store unavailable"}
                assert response.headers["retry-after"] == "1"
                assert set_cookies(response) == []
        # Lazy: an endpoint that never uses the session never touches the store.
        assert call(client, "GET", "/untouched", cookie).status_code == (200 if load == "lazy" else 503)
        harness.broken = False
        assert call(client, "GET", "/get", cookie).json() == {"user": "alice"}


def test_redis_stopped_in_the_middle(private_redis: RedisServer, redis_prefix: str) -> None:
    with client_for(session_app(RedisStore(url=private_redis.url, prefix=redis_prefix))) as client:
        cookie = issued(call(client, "POST", "/login", params={"user": "alice"}))
        private_redis.stop(save=True)
        read = call(client, "GET", "/get", cookie)
        assert read.status_code == 503
        assert read.json() == {"detail": "Session store unavailable"}
        assert call(client, "POST", "/set", cookie, json={"user": "mallory"}).status_code == 503
        assert call(client, "POST", "/set", json={"user": "new"}).status_code == 503
        private_redis.start()  # same port, the saved data loaded again
        assert call(client, "GET", "/get", cookie).json() == {"user": "alice"}


def test_a_hung_redis_times_out_into_a_503(private_redis: RedisServer, redis_prefix: str) -> None:
    store = RedisStore(url=private_redis.url, prefix=redis_prefix, timeout=0.2)
    with client_for(session_app(store)) as client:
        cookie = issued(call(client, "POST", "/login", params={"user": "alice"}))
        private_redis.pause()
        try:
            started = time.monotonic()
            assert call(client, "GET", "/get", cookie).status_code == 503
            assert time.monotonic() - started < 3
        finally:
            private_redis.resume()
        assert call(client, "GET", "/get", cookie).json() == {"user": "alice"}


# --- scale-out: two uvicorn processes, one Redis ----------------------------------------------------


@contextlib.contextmanager
def uvicorn_pair(tmp_path: Path, env: dict[str, str]) -> Iterator[list[str]]:
    processes, urls, logs = [], [], []
    try:
        for _ in range(2):  # both start at once; then wait for each
            port = free_port()
            command = [sys.executable, "-m", "uvicorn", "_session_app:create_app", "--factory"]
            command += ["--app-dir", str(TESTS_DIR), "--host", "127.0.0.1", "--port", str(port)]
            logs.append(tmp_path / f"uvicorn-{port}.log")
            with logs[-1].open("wb") as log:
                processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env))
            urls.append(f"http://127.0.0.1:{port}")
        for process, url, log_path in zip(processes, urls, logs, strict=True):
            deadline = time.monotonic() + 20
            while True:
                assert process.poll() is None, log_path.read_text()
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                        break
                assert time.monotonic() < deadline, "uvicorn did not start"
                time.sleep(0.05)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_two_processes_share_sessions(redis_url: str, redis_prefix: str, tmp_path: Path) -> None:
    env = {**os.environ, "REDIS_URL": redis_url, "SESSION_PREFIX": redis_prefix, "SESSION_SECRET": SECRET}
    with uvicorn_pair(tmp_path, env) as (a, b):

        def get(base: str, method: str, path: str, cookie: str | None = None, **kw: Any) -> httpx.Response:
            headers = {"cookie": f"session={cookie}"} if cookie else {}
            return httpx.request(method, base + path, headers=headers, timeout=10, **kw)

        login = get(a, "POST", "/login", params={"user": "alice"})
        cookie = issued(login)
        on_a = get(a, "GET", "/pid", cookie).json()
        on_b = get(b, "GET", "/pid", cookie).json()
        assert on_a["user"] == on_b["user"] == "alice"
        assert on_a["pid"] != on_b["pid"]  # really two processes
        assert get(b, "POST", "/logout", cookie).status_code == 200
        assert get(a, "GET", "/pid", cookie).json()["user"] is None
        with redis.Redis.from_url(redis_url) as raw:
            assert raw.keys(redis_prefix + "*") == []


# --- races and partial failures -----------------------------------------------------------------


def _race_app(store: Store) -> App:
    app = App(middleware=[Middleware(SessionMiddleware, secret_key=SECRET, store=store)])
    release = anyio.Event()
    app.state.release = release

    @app.post("/login")
    async def login(session: Session) -> dict[str, bool]:
        session.regenerate()
        session["user"] = "alice"
        return {"ok": True}

    @app.post("/slow")
    async def slow(session: Session) -> dict[str, bool]:
        await app.state.release.wait()
        session["x"] = 1
        return {"ok": True}

    @app.post("/logout")
    async def logout(session: Session) -> dict[str, bool]:
        session.clear()
        return {"ok": True}

    @app.get("/get")
    async def get(session: Session) -> dict[str, Any]:
        return dict(session.items())

    return app


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_request_finishing_after_logout_does_not_resurrect_the_session(anyio_backend: str) -> None:
    store = MemoryStore()
    app = _race_app(store)
    async with AsyncTestClient(app) as client:
        login = await client.post("/login")
        cookie = login.cookies["session"]
        results: dict[str, httpx.Response] = {}
        async with anyio.create_task_group() as tg:

            async def slow() -> None:
                results["slow"] = await client.post("/slow")

            tg.start_soon(slow)
            await anyio.sleep(0.05)  # /slow has loaded the session and waits
            assert (await client.post("/logout")).status_code == 200
            app.state.release.set()
        assert results["slow"].status_code == 200
        assert "max-age=0" in results["slow"].headers["set-cookie"].lower()  # told to forget it
        client.cookies.set("session", cookie)
        replay = await client.get("/get")
        assert replay.json() == {}
        assert len(store) == 0


class _FailingWrites(MemoryStore):
    fail = False

    async def set(self, key: str, value: bytes, ttl: float, *, only_if_exists: bool = False) -> bool:
        if self.fail:
            raise StoreError("writes are down (test)")
        return await super().set(key, value, ttl, only_if_exists=only_if_exists)


def test_a_failed_login_write_keeps_the_previous_session() -> None:
    store = _FailingWrites()
    app = _race_app(store)
    with TestClient(app, raise_server_exceptions=False) as client:
        first = client.post("/login")
        cookie = first.cookies["session"]
        store.fail = True
        again = client.post("/login")
        assert again.status_code == 503
        store.fail = False
        client.cookies.set("session", cookie)
        assert client.get("/get").json() == {"user": "alice"}
