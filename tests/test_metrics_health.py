"""Prometheus metrics (``toolkit.metrics``) and readiness checks (``toolkit.health``)."""

import contextlib
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis_server import RedisServer

from toolkit import App, HTTPException
from toolkit.health import Health
from toolkit.metrics import Metrics
from toolkit.sessions import RedisStore
from toolkit.testing import TestClient

ROOT = Path(__file__).resolve().parent.parent
ITEM = "/items/{item_id}"


def metrics_app(metrics: Metrics) -> App:
    app = App(middleware=[metrics.middleware()])
    app.add_api_route("/metrics", metrics.endpoint, include_in_schema=False)

    @app.get("/items/{item_id}")
    async def read_item(item_id: int) -> dict[str, Any]:
        if item_id == 0:
            raise HTTPException(404, "no such item")
        in_flight = metrics.registry.get_sample_value("http_requests_in_flight", {"method": "GET"})
        return {"item_id": item_id, "in_flight": in_flight}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("handler failed")

    return app


def sample(metrics: Metrics, name: str, route: str, status: str, method: str = "GET") -> float | None:
    labels = {"method": method, "route": route, "status": status}
    value: float | None = metrics.registry.get_sample_value(name, labels)
    return value


def families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


# --- metrics ------------------------------------------------------------------------------------


def test_requests_are_labelled_by_route_template_and_status() -> None:
    metrics = Metrics()
    app = metrics_app(metrics)
    with TestClient(app, raise_server_exceptions=False) as client:
        in_flight = [client.get(f"/items/{i}").json()["in_flight"] for i in (1, 2, 3)]
        assert client.get("/items/0").status_code == 404
        assert client.get("/items/abc").status_code == 422
        assert client.get("/nowhere/1").status_code == 404
        assert client.get("/nowhere/2").status_code == 404
        assert client.post("/items/1").status_code == 405
        assert client.get("/boom").status_code == 500
    assert in_flight == [1.0, 1.0, 1.0]  # this request, while it runs
    assert metrics.registry.get_sample_value("http_requests_in_flight", {"method": "GET"}) == 0
    # Three paths, one series: the template, never the raw path.
    assert sample(metrics, "http_requests_total", ITEM, "200") == 3
    assert sample(metrics, "http_request_duration_seconds_count", ITEM, "200") == 3
    assert sample(metrics, "http_request_duration_seconds_sum", ITEM, "200") > 0  # type: ignore[operator]
    assert sample(metrics, "http_requests_total", ITEM, "404") == 1  # a matched route's own 404
    assert sample(metrics, "http_requests_total", ITEM, "422") == 1
    assert sample(metrics, "http_requests_total", "<unmatched>", "404") == 2
    assert sample(metrics, "http_requests_total", "<unmatched>", "405", method="POST") == 1
    assert sample(metrics, "http_requests_total", "/boom", "500") == 1  # an exception counts as a 500
    routes = {
        s.labels["route"]
        for metric in metrics.registry.collect()
        for s in metric.samples
        if "route" in s.labels
    }
    assert routes == {ITEM, "<unmatched>", "/boom"}


def test_metrics_endpoint_serves_the_prometheus_text_format() -> None:
    metrics = Metrics()
    app = metrics_app(metrics)
    with TestClient(app) as client:
        client.get("/items/1")
        client.get("/items/2")
        client.get("/missing")
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == prometheus_client.CONTENT_TYPE_LATEST
    found = families(response.text)
    assert found["http_requests"].type == "counter"
    assert found["http_request_duration_seconds"].type == "histogram"
    assert found["http_requests_in_flight"].type == "gauge"
    totals = {
        (s.labels["route"], s.labels["status"]): s.value
        for s in found["http_requests"].samples
        if s.name == "http_requests_total"
    }
    assert totals == {(ITEM, "200"): 2, ("<unmatched>", "404"): 1}  # the scrape is not done yet
    buckets = [s for s in found["http_request_duration_seconds"].samples if s.name.endswith("_bucket")]
    assert {s.labels["le"] for s in buckets} >= {"0.005", "1.0", "+Inf"}
    assert [s.value for s in found["http_requests_in_flight"].samples] == [1.0]  # the scrape itself
    assert "/items/1" not in response.text


def test_two_metrics_in_one_process_do_not_collide() -> None:
    first, second = Metrics(), Metrics()
    custom = Metrics(namespace="shop", buckets=(0.1, 1.0))
    with TestClient(metrics_app(first)) as one, TestClient(metrics_app(second)) as two:
        one.get("/items/1")
        one.get("/items/2")
        two.get("/items/3")
    with TestClient(metrics_app(custom)) as three:
        three.get("/items/4")
        text = three.get("/metrics").text
    assert sample(first, "http_requests_total", ITEM, "200") == 2
    assert sample(second, "http_requests_total", ITEM, "200") == 1
    assert sample(custom, "shop_requests_total", ITEM, "200") == 1
    buckets = [s for s in families(text)["shop_request_duration_seconds"].samples if "le" in s.labels]
    assert {s.labels["le"] for s in buckets} == {"0.1", "1.0", "+Inf"}


WORKER = textwrap.dedent(
    """
    import sys
    from toolkit import App
    from toolkit.metrics import Metrics
    from toolkit.testing import TestClient

    metrics = Metrics()
    assert metrics.multiprocess
    app = App(middleware=[metrics.middleware()])
    app.add_api_route("/metrics", metrics.endpoint, include_in_schema=False)

    @app.get("/items/{item_id}")
    async def read_item(item_id: int) -> dict:
        return {"item_id": item_id}

    with TestClient(app) as client:
        for item_id in range(int(sys.argv[1])):
            assert client.get(f"/items/{item_id}").status_code == 200
        if sys.argv[2] == "scrape":
            sys.stdout.write(client.get("/metrics").text)
    """
)


def test_multiprocess_mode_aggregates_every_worker(tmp_path: Path) -> None:
    """Two worker processes write to one ``PROMETHEUS_MULTIPROC_DIR``; the second one's endpoint
    reports the requests of both (as any of several uvicorn workers would)."""
    directory = tmp_path / "prometheus"
    directory.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "PYTHONPATH": str(ROOT)}

    def worker(requests: int, scrape: bool) -> str:
        args = [sys.executable, "-c", WORKER, str(requests), "scrape" if scrape else "-"]
        done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    worker(2, scrape=False)
    text = worker(3, scrape=True)
    assert len(list(directory.glob("counter_*.db"))) == 2  # one file per worker process
    found = families(text)
    [total] = [s for s in found["http_requests"].samples if s.name == "http_requests_total"]
    assert total.labels == {"method": "GET", "route": ITEM, "status": "200"}
    assert total.value == 5
    [count] = [s for s in found["http_request_duration_seconds"].samples if s.name.endswith("_count")]
    assert count.value == 5


# --- health --------------------------------------------------------------------------------------


def health_app(health: Health, **paths: str) -> App:
    app = App()
    app.include_router(health.router(**paths))
    return app


def test_liveness_and_readiness_with_passing_checks() -> None:
    health = Health()

    async def async_check() -> None:
        await anyio.sleep(0)

    health.add_check("sync", lambda: None)
    health.add_check("async", async_check)
    health.add_check("true", lambda: True)
    health.add_check("awaitable", lambda: async_check())  # a sync callable returning a coroutine
    with TestClient(health_app(health)) as client:
        live = client.get("/health/live")
        ready = client.get("/health/ready")
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {"async": "ok", "awaitable": "ok", "sync": "ok", "true": "ok"},
    }


def test_readiness_reports_failing_and_slow_checks() -> None:
    health = Health(timeout=2.0)

    async def raising() -> None:
        raise ConnectionError("refused")

    async def slow() -> None:
        await anyio.sleep(5)

    health.add_check("fine", lambda: None)
    health.add_check("raising", raising)
    health.add_check("false", lambda: False)
    health.add_check("slow", slow, timeout=0.05)
    health.add_check("slow_sync", lambda: time.sleep(1), timeout=0.05)  # a thread is left behind
    with TestClient(health_app(health, live_path="/live", ready_path="/ready")) as client:
        started = time.monotonic()
        ready = client.get("/ready")
        elapsed = time.monotonic() - started
        assert client.get("/live").status_code == 200  # liveness does not run checks
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "unavailable",
        "checks": {
            "false": "error: check returned False",
            "fine": "ok",
            "raising": "error: ConnectionError",
            "slow": "timeout",
            "slow_sync": "timeout",
        },
    }
    assert elapsed < 0.9  # generous; the slow checks would take 1 and 5 seconds


def test_checks_run_concurrently() -> None:
    """Each pair only passes together: sequential checks would never meet (and fail or time out)."""
    health = Health(timeout=3.0)
    events: list[str] = []
    barrier = threading.Barrier(2, timeout=2)

    def check(name: str, is_async: bool) -> Any:
        async def async_check() -> None:
            events.append(f"start {name}")
            await anyio.sleep(0.3)
            events.append(f"end {name}")

        def sync_check() -> None:
            barrier.wait()  # both threads must be running at once
            events.append(f"met {name}")

        return async_check if is_async else sync_check

    for name, is_async in (("a", True), ("b", True), ("c", False), ("d", False)):
        health.add_check(name, check(name, is_async))
    ok, results = anyio.run(health.run)
    assert ok, results
    asynchronous = [e for e in events if e.endswith((" a", " b"))]
    assert sorted(asynchronous[:2]) == ["start a", "start b"]  # both started before either ended
    assert sorted(e for e in events if e.startswith("met")) == ["met c", "met d"]


def test_readiness_without_checks() -> None:
    with TestClient(health_app(Health())) as client:
        response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {}}


def test_redis_ping_check(private_redis: RedisServer, redis_prefix: str) -> None:
    store = RedisStore(url=private_redis.url, prefix=redis_prefix, timeout=1.0)
    health = Health(timeout=0.3)
    health.add_check("redis", store.ping)

    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        yield
        await store.close()

    app = App(lifespan=lifespan)
    app.include_router(health.router())
    with TestClient(app) as client:
        up = client.get("/health/ready")
        private_redis.pause()  # connected, but nothing answers: the check's own timeout
        try:
            frozen = client.get("/health/ready")
        finally:
            private_redis.resume()
        private_redis.stop()
        down = client.get("/health/ready")
        private_redis.start()
        back = client.get("/health/ready")
    assert up.status_code == 200
    assert up.json()["checks"] == {"redis": "ok"}
    assert frozen.status_code == 503
    assert frozen.json()["checks"] == {"redis": "timeout"}
    assert down.status_code == 503
    assert down.json()["checks"] == {"redis": "error: StoreError"}
    assert back.status_code == 200
    assert back.json()["checks"] == {"redis": "ok"}


CRASHED_WORKER = textwrap.dedent(
    """
    import os
    from toolkit.metrics import Metrics

    metrics = Metrics()
    metrics.in_flight.labels("GET").inc()  # a request in flight...
    os._exit(1)  # ...when the worker dies (no cleanup runs)
    """
)

SCRAPER = textwrap.dedent(
    """
    from toolkit import App
    from toolkit.metrics import Metrics
    from toolkit.testing import TestClient

    metrics = Metrics()
    app = App()
    app.add_api_route("/metrics", metrics.endpoint, include_in_schema=False)
    with TestClient(app) as client:
        print(client.get("/metrics").text)
    """
)


def test_a_crashed_workers_requests_do_not_stay_in_flight(tmp_path: Path) -> None:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "PYTHONPATH": str(ROOT)}

    def run(script: str) -> subprocess.CompletedProcess[str]:
        args = [sys.executable, "-c", script]
        return subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)

    assert run(CRASHED_WORKER).returncode == 1
    assert list(directory.glob("gauge_livesum_*.db"))  # what the dead worker left
    scraped = run(SCRAPER)  # a new worker starts (as uvicorn restarts one) and is scraped
    assert scraped.returncode == 0, scraped.stderr
    family = families(scraped.stdout).get("http_requests_in_flight")
    assert [s for s in (family.samples if family else []) if s.value] == []
    assert not list(directory.glob("gauge_livesum_*.db"))


@pytest.mark.parametrize(
    ("value", "message"),
    [("", "is set but empty"), ("/nonexistent/prometheus", "is not a writable directory")],
)
def test_a_bad_multiprocess_directory_is_refused_at_startup(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", value)
    with pytest.raises(ValueError, match=f"PROMETHEUS_MULTIPROC_DIR.*{message}"):
        Metrics()
