"""``python -m toolkit run --workers 2``: two worker processes on one socket stay consistent through
``RedisStore`` (sessions, the response cache, rate limits) and count metrics together in
prometheus-client's multiprocess mode; with ``MemoryStore`` they do not (and the command says so).

Every request goes on a new connection, so the kernel hands it to either worker; every response
names its worker (``X-Worker-Pid``, see ``_workers_app``), and each check asks for answers from
both workers (bounded by ``MAX_REQUESTS``: a worker that never answers fails the test).
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from live_server import CLIENT_TIMEOUT, SHUTDOWN_TIMEOUT, STARTUP_TIMEOUT, Server, run_process

APP = "tests/_workers_app.py:app"
WORKERS = 2
LIMIT = 5  # the rate of /limited and /burst in _workers_app: 5/hour
WINDOW = 3600
#: At most this many requests while waiting for the kernel to hand a connection to a given worker.
MAX_REQUESTS = 200
COOKIE = "session"


# --- the server ---------------------------------------------------------------------------------


def worker_pids_in(log: str) -> set[int]:
    return {int(pid) for pid in re.findall(r"Started server process \[(\d+)\]", log)}


def stop(server: Server) -> None:
    """SIGTERM to the parent, which stops its workers; any worker left behind is killed and reported
    (``run_process`` alone SIGKILLs the parent, which orphans the workers: they keep serving)."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.process.wait(timeout=SHUTDOWN_TIMEOUT)
    left = []
    for pid in worker_pids_in(server.log()):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # only ours: the workers of the server this test started
            left.append(pid)
    if left:
        pytest.fail(f"worker processes {left} outlived `toolkit run` after SIGTERM:\n{server.log()}")
    if "Traceback" in server.log():
        pytest.fail(f"an error in the server's log:\n{server.log()}")


@contextlib.contextmanager
def serve_workers(log_dir: Path, env: dict[str, str]) -> Iterator[Server]:
    metrics_dir = log_dir / "prometheus"
    metrics_dir.mkdir()
    arguments = ["-m", "toolkit", "run", APP, "--workers", str(WORKERS), "--host", "127.0.0.1"]
    arguments += ["--port", "{port}"]
    with run_process(arguments, log_dir, env={**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}) as server:
        try:
            yield server
        finally:
            stop(server)


@pytest.fixture(scope="module")
def redis_app(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Two workers of ``toolkit run`` sharing one Redis, under a key prefix of this run's own."""
    prefix = f"toolkit-test:{uuid.uuid4().hex}:"
    env = {"WORKERS_STORE": "redis", "WORKERS_REDIS_URL": redis_url, "WORKERS_PREFIX": prefix}
    try:
        with serve_workers(tmp_path_factory.mktemp("workers-redis"), env) as server:
            yield server
    finally:
        import redis

        with redis.Redis.from_url(redis_url, socket_timeout=5) as client:
            keys = list(client.scan_iter(match=prefix + "*"))
            if keys:
                client.delete(*keys)


# --- requests, each on a connection of its own -----------------------------------------------


def call(server: Server, method: str, path: str, *, cookie: str | None = None) -> httpx.Response:
    headers = {"Connection": "close"}
    if cookie is not None:
        headers["Cookie"] = f"{COOKIE}={cookie}"
    return httpx.request(method, f"{server.url}{path}", headers=headers, timeout=CLIENT_TIMEOUT)


def pid_of(response: httpx.Response) -> int:
    return int(response.headers["x-worker-pid"])


def pids(responses: list[httpx.Response]) -> collections.Counter[int]:
    return collections.Counter(pid_of(response) for response in responses)


def until(
    server: Server,
    method: str,
    path: str,
    done: Callable[[list[httpx.Response]], bool],
    what: str,
    *,
    cookie: str | None = None,
) -> list[httpx.Response]:
    """Requests until ``done(responses so far)``; a failure naming ``what`` after ``MAX_REQUESTS``."""
    responses: list[httpx.Response] = []
    for _ in range(MAX_REQUESTS):
        responses.append(call(server, method, path, cookie=cookie))
        if done(responses):
            return responses
    pytest.fail(
        f"{MAX_REQUESTS} requests {method} {path}: never {what} (answered by {dict(pids(responses))})"
    )


def from_other_worker(
    server: Server, method: str, path: str, than: int, *, cookie: str | None = None
) -> httpx.Response:
    """The first answer by a worker other than ``than`` (the requests before it went to ``than``)."""
    return until(
        server, method, path, lambda rs: pid_of(rs[-1]) != than, f"a worker other than {than}", cookie=cookie
    )[-1]


def from_both_workers(server: Server, method: str, path: str, *, at_least: int = 1) -> list[httpx.Response]:
    return until(
        server, method, path, lambda rs: len(rs) >= at_least and len(pids(rs)) == WORKERS, "both workers"
    )


def both_started(server: Server) -> set[int]:
    """The workers' pids, once each has answered (``run_process`` waited for the first one only)."""
    answered: set[int] = set()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while len(answered) < WORKERS and time.monotonic() < deadline:
        answered.add(pid_of(call(server, "GET", "/health")))
        time.sleep(0.02)
    assert len(answered) == WORKERS, f"only {answered} answered within {STARTUP_TIMEOUT}s:\n{server.log()}"
    assert server.process.pid not in answered
    assert answered <= worker_pids_in(server.log())
    return answered


@pytest.fixture(scope="module")
def workers(redis_app: Server) -> set[int]:
    return both_started(redis_app)


def outside_window_boundary() -> None:
    """Wait out the end of the current rate-limit window if it is near: a boundary in the middle of
    a test lets the sliding window admit one more (the previous window then weighs slightly less)."""
    left = WINDOW - time.time() % WINDOW
    if left < 10:
        time.sleep(left + 0.1)


# --- sessions ------------------------------------------------------------------------------------


def test_a_session_is_read_and_ended_on_the_other_worker(redis_app: Server, workers: set[int]) -> None:
    login = call(redis_app, "POST", "/login?user=alice")
    assert login.status_code == 200, login.text
    made_on = pid_of(login)
    cookie = login.cookies[COOKIE]

    other = from_other_worker(redis_app, "GET", "/whoami", made_on, cookie=cookie)
    assert other.json() == {"user": "alice", "pid": pid_of(other)}

    logout = call(redis_app, "POST", "/logout", cookie=cookie)
    assert logout.status_code == 200
    ended_on = pid_of(logout)
    # The old cookie, replayed on the worker that did not log out: the record is gone from Redis.
    after = from_other_worker(redis_app, "GET", "/whoami", ended_on, cookie=cookie)
    assert after.json() == {"user": None, "pid": pid_of(after)}
    assert {made_on, pid_of(other)} == {ended_on, pid_of(after)} == workers


# --- the response cache ----------------------------------------------------------------------------


def test_the_cache_is_shared_and_invalidated_across_workers(redis_app: Server, workers: set[int]) -> None:
    before = from_both_workers(redis_app, "GET", "/cached", at_least=2)
    first = before[0]
    assert first.json() == {"computed_by": pid_of(first), "computation": 1}
    # Every later answer, from either worker, is that one response out of the cache.
    assert [r.content for r in before] == [first.content] * len(before)
    hits = [r for r in before[1:] if pid_of(r) != pid_of(first)]
    assert hits, "the worker that did not compute the response never answered after it"
    assert all("age" in r.headers and r.headers["etag"] == hits[0].headers["etag"] for r in hits)

    invalidated = call(redis_app, "POST", "/invalidate")
    assert invalidated.status_code == 200
    by = pid_of(invalidated)
    other = from_other_worker(redis_app, "GET", "/cached", by)
    assert other.json()["computation"] == 2, f"worker {pid_of(other)} still served the entry {by} invalidated"

    after = from_both_workers(redis_app, "GET", "/cached", at_least=2)
    assert [r.json() for r in after] == [other.json()] * len(after)


# --- rate limits -------------------------------------------------------------------------------------


def refused_by_both(responses: list[httpx.Response]) -> bool:
    return len(pids([r for r in responses if r.status_code == 429])) == WORKERS


def check_refusals(refused: list[httpx.Response]) -> None:
    for response in refused:
        assert response.status_code == 429
        assert 1 <= int(response.headers["retry-after"]) <= WINDOW
        assert response.headers["ratelimit-remaining"] == "0"


def test_the_rate_limit_counts_requests_of_both_workers(redis_app: Server, workers: set[int]) -> None:
    outside_window_boundary()
    responses = until(redis_app, "GET", "/limited", refused_by_both, "a 429 from both workers")
    statuses = [r.status_code for r in responses]
    assert statuses == [200] * LIMIT + [429] * (len(responses) - LIMIT), f"{statuses} by {pids(responses)}"
    # Each admitted request, whichever worker took it, saw the ones the other worker admitted.
    remaining = [int(r.headers["ratelimit-remaining"]) for r in responses[:LIMIT]]
    assert remaining == list(range(LIMIT - 1, -1, -1)), (
        f"{remaining} by {[pid_of(r) for r in responses[:LIMIT]]}"
    )
    check_refusals(responses[LIMIT:])


def test_a_concurrent_burst_never_passes_the_limit(redis_app: Server, workers: set[int]) -> None:
    outside_window_boundary()
    with ThreadPoolExecutor(max_workers=20) as pool:
        burst = list(pool.map(lambda _: call(redis_app, "GET", "/burst"), range(20)))
    assert {r.status_code for r in burst} <= {200, 429}
    admitted = sum(r.status_code == 200 for r in burst)
    assert 1 <= admitted <= LIMIT, f"{admitted} admitted of 20 (by {pids(burst)})"
    # A request that lost a race took its count back: exactly the rest of the limit passes now.
    rest = until(redis_app, "GET", "/burst", refused_by_both, "a 429 from both workers")
    assert admitted + sum(r.status_code == 200 for r in rest) == LIMIT, f"burst {admitted}, then {rest}"
    check_refusals([r for r in rest if r.status_code != 200])


# --- metrics (prometheus multiprocess mode) ---------------------------------------------------------


def counted_samples(text: str) -> dict[str, float]:
    """``http_requests_total`` and the latency histogram's count for the route ``/counted``."""
    from prometheus_client.parser import text_string_to_metric_families

    found: dict[str, float] = collections.defaultdict(float)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("route") == "/counted":
                found[sample.name] += sample.value
    return {name: found[name] for name in ("http_requests_total", "http_request_duration_seconds_count")}


def test_metrics_count_the_requests_of_both_workers(redis_app: Server, workers: set[int]) -> None:
    made = from_both_workers(redis_app, "GET", "/counted", at_least=20)
    assert all(r.status_code == 200 for r in made)
    expected = {"http_requests_total": len(made), "http_request_duration_seconds_count": len(made)}
    scrapes = from_both_workers(redis_app, "GET", "/metrics")
    for scrape in scrapes:
        assert scrape.status_code == 200
        assert counted_samples(scrape.text) == expected, f"scraped on {pid_of(scrape)}; made {pids(made)}"


def test_no_memory_store_warning_with_redis(redis_app: Server, workers: set[int]) -> None:
    log = redis_app.log()
    assert f"({WORKERS} workers)" in log
    assert "MemoryStore" not in log


# --- the negative control: MemoryStore is per worker ------------------------------------------------


def test_with_memory_store_each_worker_has_its_own_state_and_run_warns(tmp_path: Path) -> None:
    with serve_workers(tmp_path, {"WORKERS_STORE": "memory"}) as server:
        both_started(server)
        warnings = [line for line in server.log().splitlines() if line.startswith("WARNING")]
        assert any("MemoryStore" in line and f"{WORKERS} workers" in line for line in warnings), server.log()

        login = call(server, "POST", "/login?user=alice")
        made_on = pid_of(login)
        cookie = login.cookies[COOKIE]
        other = from_other_worker(server, "GET", "/whoami", made_on, cookie=cookie)
        assert other.json() == {"user": None, "pid": pid_of(other)}  # the session is lost there
        same = from_other_worker(server, "GET", "/whoami", pid_of(other), cookie=cookie)
        assert same.json() == {"user": "alice", "pid": made_on}  # ...but alive where it was made

        outside_window_boundary()
        limited = until(server, "GET", "/limited", refused_by_both, "a 429 from both workers")
        admitted = pids([r for r in limited if r.status_code == 200])
        assert len(admitted) == WORKERS
        assert admitted == dict.fromkeys(admitted, LIMIT)  # each worker admits the whole limit
