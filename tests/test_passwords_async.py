"""The awaitable password functions: a worker thread, a bounded number at once, any event loop.

Ordering, never durations: where a test needs the KDF to be "in progress", a fake KDF waits on a
``threading.Event`` the test sets; the timeouts below only keep a broken build from hanging.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread
import pytest

import toolkit.security
from toolkit import App
from toolkit.security import (
    PasswordHasher,
    hash_password,
    hash_password_async,
    passwords,
    verify_password,
    verify_password_async,
)
from toolkit.testing import AsyncTestClient, TestClient

CHEAP = {"n": 2**4, "r": 1, "p": 1}  # tests only: far below a production cost
SAFETY_TIMEOUT = 30.0  # seconds before a test that would hang fails instead


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def wait_until(predicate: Callable[[], bool]) -> None:
    """Yield to the loop (and the worker threads) until ``predicate()`` holds."""
    with anyio.fail_after(SAFETY_TIMEOUT):
        while not predicate():
            await anyio.sleep(0.001)


@dataclass
class GatedKDF:
    """Stands in for ``passwords._scrypt``: counts calls in progress and holds each one until
    ``gate`` is set (the tests decide when a KDF ends, not the clock)."""

    gate: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    active: int = 0
    most_active: int = 0
    calls: int = 0
    finished: int = 0
    timed_out: bool = False

    def __call__(self, password: str, salt: bytes, n: int, r: int, p: int, size: int) -> bytes:
        with self.lock:
            self.active += 1
            self.calls += 1
            self.most_active = max(self.most_active, self.active)
        try:
            if not self.gate.wait(SAFETY_TIMEOUT):
                self.timed_out = True
            return bytes(size)
        finally:
            with self.lock:
                self.active -= 1
                self.finished += 1


@pytest.fixture
def gated_kdf(monkeypatch: pytest.MonkeyPatch) -> Iterator[GatedKDF]:
    kdf = GatedKDF()
    monkeypatch.setattr(passwords, "_scrypt", kdf)
    try:
        yield kdf
    finally:
        kdf.gate.set()  # never leave a worker thread waiting after a failed test


# --- API -----------------------------------------------------------------------------------------


def test_public_names() -> None:
    for name in ("hash_password_async", "verify_password_async"):
        assert name in toolkit.security.__all__
        assert name in passwords.__all__
        assert getattr(toolkit.security, name) is getattr(passwords, name)


def test_max_concurrency_default_and_validation() -> None:
    default = passwords._default_max_concurrency()
    assert 1 <= default <= 8
    assert PasswordHasher().max_concurrency == default
    # Hashers that leave it unset share one bound (the machine's); a set one is the hasher's own.
    assert PasswordHasher()._limiter is PasswordHasher("scrypt", **CHEAP)._limiter
    assert PasswordHasher()._limiter is passwords._default_hasher._limiter
    own = PasswordHasher(max_concurrency=3)
    assert own.max_concurrency == 3
    assert own._limiter is not PasswordHasher(max_concurrency=3)._limiter
    assert repr(own) == "PasswordHasher('scrypt', n=16384, r=8, p=5, max_concurrency=3)"
    assert repr(PasswordHasher()) == "PasswordHasher('scrypt', n=16384, r=8, p=5)"
    for bad in (0, -1, True):
        with pytest.raises(ValueError, match="max_concurrency"):
            PasswordHasher(max_concurrency=bad)


# --- round trips and errors ----------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("scheme", ["scrypt", "argon2"])
async def test_round_trip(scheme: str) -> None:
    if scheme == "scrypt":
        hasher = PasswordHasher("scrypt", **CHEAP)
    else:
        pytest.importorskip("argon2")
        hasher = PasswordHasher("argon2", time_cost=1, memory_cost=8, parallelism=1)
    hashed = await hasher.hash_async("correct horse")
    assert hashed.startswith(f"${scheme}")
    assert await hasher.verify_async("correct horse", hashed) is True
    assert await hasher.verify_async("wrong horse", hashed) is False
    # The same format as the sync forms, both ways.
    assert hasher.verify("correct horse", hashed) is True
    assert await hasher.verify_async("battery staple", hasher.hash("battery staple")) is True
    assert hasher.needs_rehash(hashed) is False


@pytest.mark.anyio
async def test_module_functions_at_the_default_cost() -> None:
    hashed = await hash_password_async("correct horse")
    assert hashed.startswith("$scrypt$ln=14,r=8,p=5$")
    assert await verify_password_async("correct horse", hashed) is True
    assert await verify_password_async("wrong horse", hashed) is False
    assert verify_password("correct horse", hashed) is True
    assert await verify_password_async("correct horse", hash_password("correct horse")) is True


@pytest.mark.anyio
async def test_unknown_user_costs_a_kdf_and_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """``verify_async(password, None)`` runs the hasher's KDF, at its parameters, then says False."""
    real_scrypt = passwords._scrypt
    costs: list[tuple[int, int, int, int]] = []

    def counting_scrypt(password: str, salt: bytes, n: int, r: int, p: int, size: int) -> bytes:
        costs.append((n, r, p, size))
        return real_scrypt(password, salt, n, r, p, size)

    monkeypatch.setattr(passwords, "_scrypt", counting_scrypt)
    hasher = PasswordHasher("scrypt", **CHEAP)
    assert await hasher.verify_async("anything", None) is False
    assert costs == [(2**4, 1, 1, 32)]
    assert await hasher.verify_async("anything", hasher.hash("other")) is False  # a wrong password
    assert costs == [(2**4, 1, 1, 32)] * 3  # the same KDF as a wrong password's check
    costs.clear()
    assert await verify_password_async("anything", None) is False
    assert costs == [(2**14, 8, 5, 32)]  # the module function: the default cost


MALFORMED = [
    "",
    "plain text",
    "$scrypt$",
    "$scrypt$ln=14,r=8$c2FsdA$a2V5",
    "$scrypt$ln=14,r=8,p=1$not base64!$a2V5a2V5a2V5a2V5a2V5a2V5",
    "$scrypt$ln=14,r=8,p=1$c2FsdHNhbHQ$c2hvcnQ",  # a key under 16 bytes
    "$scrypt$ln=30,r=8,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",  # over 1 GiB of memory
    "$argon2id$v=19$m=65536,t=3,p=4$garbage",
]


@pytest.mark.anyio
@pytest.mark.parametrize("hashed", MALFORMED)
async def test_malformed_hash_raises_as_the_sync_form_does(hashed: str) -> None:
    if hashed.startswith("$argon2"):
        pytest.importorskip("argon2")
    hasher = PasswordHasher("scrypt", **CHEAP)
    with pytest.raises(ValueError, match="password hash") as sync_error:
        hasher.verify("password", hashed)
    with pytest.raises(ValueError, match="password hash") as async_error:
        await hasher.verify_async("password", hashed)
    assert str(async_error.value) == str(sync_error.value)
    with pytest.raises(ValueError, match=re.escape(str(sync_error.value))):
        await verify_password_async("password", hashed)


# --- the event loop keeps serving ------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("form", ["async", "sync"])
async def test_loop_answers_while_hashing(form: str) -> None:
    """Four signups at the real default cost, then ``/live``: with the awaitable form ``/live``
    is answered before any hash is done; with the sync form in an async handler (the control) the
    loop is blocked and ``/live`` waits behind the hashes. Only the order is compared."""
    app = App()
    started = 0
    all_started = anyio.Event()

    @app.post("/signup")
    async def signup() -> dict[str, str]:
        nonlocal started
        started += 1
        if started == 4:
            all_started.set()
        hashed = await hash_password_async("pw") if form == "async" else hash_password("pw")
        return {"hash": hashed}

    @app.get("/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    done: list[str] = []

    async def call(method: str, path: str) -> None:
        response = await client.request(method, path)
        assert response.status_code == 200
        done.append(path)

    with anyio.fail_after(SAFETY_TIMEOUT):
        async with AsyncTestClient(app) as client, anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(call, "POST", "/signup")
            await all_started.wait()  # every handler has begun its hash
            tg.start_soon(call, "GET", "/live")

    assert sorted(done) == ["/live"] + ["/signup"] * 4
    if form == "async":
        assert done[0] == "/live"
    else:
        assert done[0] == "/signup"  # the loop could not answer /live while a hash ran on it


@pytest.mark.anyio
async def test_kdfs_in_progress_leave_the_loop_and_the_default_thread_pool_free(
    gated_kdf: GatedKDF,
) -> None:
    """While six hashes are held inside the KDF, an async and a sync handler still answer: the
    KDFs do not run on the loop, and do not take tokens of anyio's default thread limiter."""
    hasher = PasswordHasher(max_concurrency=2)
    app = App()

    @app.post("/signup")
    async def signup() -> dict[str, str]:
        return {"hash": await hasher.hash_async("pw")}

    @app.get("/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/sync-live")
    def sync_live() -> dict[str, str]:  # runs in a thread of anyio's default pool
        return {"status": "ok"}

    hashes: list[str] = []

    async def signup_call() -> None:
        response = await client.post("/signup")
        assert response.status_code == 200
        hashes.append(response.json()["hash"])

    async with AsyncTestClient(app) as client, anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(signup_call)
        limiter = hasher._limiter.get()
        await wait_until(lambda: gated_kdf.active == 2 and limiter.statistics().tasks_waiting == 4)

        assert anyio.to_thread.current_default_thread_limiter().borrowed_tokens == 0
        assert (await client.get("/live")).json() == {"status": "ok"}
        assert (await client.get("/sync-live")).json() == {"status": "ok"}
        assert gated_kdf.finished == 0
        assert hashes == []
        gated_kdf.gate.set()

    assert len(hashes) == 6
    assert not gated_kdf.timed_out
    assert gated_kdf.most_active == 2


# --- the bound -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_limiter_bounds_concurrent_kdfs(gated_kdf: GatedKDF) -> None:
    hasher = PasswordHasher(max_concurrency=2)
    gated_kdf.gate.set()
    stored = hasher.hash("pw")  # made before the burst
    gated_kdf.gate.clear()
    gated_kdf.calls = 0
    results: list[object] = []

    async def run(call: Awaitable[object]) -> None:
        results.append(await call)

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(run, hasher.hash_async("pw"))
            tg.start_soon(run, hasher.verify_async("pw", stored))  # the same bound for checks
        tg.start_soon(run, hasher.verify_async("pw", None))
        limiter = hasher._limiter.get()
        await wait_until(lambda: gated_kdf.active == 2 and limiter.statistics().tasks_waiting == 5)
        assert limiter.borrowed_tokens == 2
        gated_kdf.gate.set()

    assert gated_kdf.most_active == 2
    assert gated_kdf.calls == 7
    assert not gated_kdf.timed_out
    assert sum(isinstance(result, str) for result in results) == 3  # the hashes
    assert sorted(result for result in results if isinstance(result, bool)) == [False, True, True, True]
    assert limiter.borrowed_tokens == 0


@pytest.mark.anyio
async def test_cancellation_keeps_the_bound(gated_kdf: GatedKDF) -> None:
    """A cancelled call waits for the KDF it started (so the bound holds), and one cancelled while
    waiting for its turn gives its place up; the limiter is whole afterwards."""
    hasher = PasswordHasher(max_concurrency=1)
    scopes: dict[str, anyio.CancelScope] = {}
    kdf_finished_on_return: list[bool] = []

    async def running() -> None:
        with anyio.CancelScope() as scopes["running"]:
            await hasher.hash_async("pw")
        kdf_finished_on_return.append(gated_kdf.finished == 1)

    async def waiting() -> None:
        with anyio.CancelScope() as scopes["waiting"]:
            await hasher.hash_async("pw")

    async with anyio.create_task_group() as tg:
        tg.start_soon(running)
        await wait_until(lambda: gated_kdf.active == 1)
        tg.start_soon(waiting)
        limiter = hasher._limiter.get()
        await wait_until(lambda: limiter.statistics().tasks_waiting == 1)
        scopes["waiting"].cancel()
        scopes["running"].cancel()
        await wait_until(lambda: limiter.statistics().tasks_waiting == 0)
        assert kdf_finished_on_return == []  # still inside the KDF, despite the cancellation
        gated_kdf.gate.set()

    assert kdf_finished_on_return == [True]
    assert gated_kdf.calls == 1  # the cancelled waiter never started one
    assert limiter.borrowed_tokens == 0
    assert await hasher.verify_async("pw", await hasher.hash_async("pw")) is True


# --- several event loops -------------------------------------------------------------------------


def test_two_event_loops_in_sequence(gated_kdf: GatedKDF) -> None:
    """Each ``anyio.run`` gets a limiter of its own, with the hasher's bound, used under contention."""
    gated_kdf.gate.set()
    hasher = PasswordHasher(max_concurrency=1)
    limiters: list[anyio.CapacityLimiter] = []

    async def main() -> None:
        limiters.append(hasher._limiter.get())
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(hasher.hash_async, "pw")
            tg.start_soon(hasher.verify_async, "pw", None)
        assert await hasher.verify_async("pw", await hasher.hash_async("pw")) is True
        assert await verify_password_async("pw", None) is False  # the shared default bound too
        assert hasher._limiter.get() is limiters[-1]  # one per loop, not one per call

    anyio.run(main)
    anyio.run(main)
    assert len(limiters) == 2
    assert limiters[0] is not limiters[1]
    assert all(limiter.total_tokens == 1 and limiter.borrowed_tokens == 0 for limiter in limiters)
    assert gated_kdf.most_active == 1


def test_two_test_clients_in_sequence_and_at_once() -> None:
    """TestClient runs each app in an event loop of its own (in a portal thread): one hasher
    serves them in turn and at the same time, from several threads."""
    hasher = PasswordHasher("scrypt", **CHEAP, max_concurrency=1)
    app = App()

    # A limiter shared by the loops would strand waiters (woken from another thread): fail, not hang.
    @app.post("/signup")
    async def signup() -> dict[str, str]:
        with anyio.fail_after(SAFETY_TIMEOUT):
            return {"hash": await hasher.hash_async("pw")}

    @app.post("/login")
    async def login(body: dict[str, Any]) -> dict[str, bool]:
        with anyio.fail_after(SAFETY_TIMEOUT):
            return {"ok": await hasher.verify_async(body["password"], body["hash"])}

    def round_trip(client: TestClient, password: str) -> bool:
        hashed = client.post("/signup").json()["hash"]
        return bool(client.post("/login", json={"password": password, "hash": hashed}).json()["ok"])

    with TestClient(app) as client:
        assert round_trip(client, "pw") is True
    with TestClient(app) as client:
        assert round_trip(client, "wrong") is False

    with TestClient(app) as first, TestClient(app) as second, ThreadPoolExecutor(4) as pool:
        jobs = [pool.submit(round_trip, client, "pw") for client in (first, second) for _ in range(8)]
        assert [job.result(timeout=SAFETY_TIMEOUT) for job in jobs] == [True] * 16
