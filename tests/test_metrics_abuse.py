"""Metrics under abuse: no request a client can send, and no status a handler can set, adds
series without bound (each series costs memory in the app and in Prometheus, and bytes in every
scrape). One test runs real uvicorn with its h11 parser, which accepts any token as a method."""

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from toolkit import App, Response
from toolkit.metrics import Metrics
from toolkit.testing import TestClient

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 30.0  # generous: CI machines are slow and busy
IO_TIMEOUT = 15.0  # only a guard against hanging forever
STANDARD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"]


def metrics_app(metrics: Metrics) -> App:
    app = App(middleware=[metrics.middleware()])
    app.add_api_route("/metrics", metrics.endpoint, include_in_schema=False)

    @app.api_route("/x", methods=["GET", "POST"])
    async def x() -> str:
        return "x"

    @app.get("/status/{code}")
    async def status(code: int) -> Response:
        return Response(status_code=code)  # a handler echoing input into the status (a proxy...)

    return app


def label_values(metrics: Metrics, label: str) -> set[str]:
    return {
        sample.labels[label]
        for family in metrics.registry.collect()
        for sample in family.samples
        if label in sample.labels
    }


def test_unknown_methods_share_one_label() -> None:
    metrics = Metrics()
    with TestClient(metrics_app(metrics)) as client:
        for method in STANDARD:
            client.request(method, "/x")
        for _ in range(50):
            assert client.request(f"M{secrets.token_hex(4).upper()}", "/x").status_code == 405
    assert label_values(metrics, "method") == {*STANDARD, "OTHER"}
    total = metrics.registry.get_sample_value(
        "http_requests_total", {"method": "OTHER", "route": "<unmatched>", "status": "405"}
    )
    assert total == 50
    assert metrics.registry.get_sample_value("http_requests_in_flight", {"method": "OTHER"}) == 0


def test_unmatched_paths_share_one_label() -> None:
    metrics = Metrics()
    with TestClient(metrics_app(metrics)) as client:
        for _ in range(50):
            assert client.get(f"/{secrets.token_hex(8)}/{secrets.token_hex(8)}").status_code == 404
    assert label_values(metrics, "route") == {"<unmatched>"}


def test_status_codes_a_handler_invents_are_grouped_by_class() -> None:
    metrics = Metrics()
    with TestClient(metrics_app(metrics)) as client:
        for code in (200, 204, 404, 418, 499, 520, 599, 299, 150):
            client.get(f"/status/{code}")
        for code in range(600, 700):
            with contextlib.suppress(Exception):  # the test transport may refuse odd codes
                client.get(f"/status/{code}")
    statuses = label_values(metrics, "status")
    # Registered codes keep their number; anything else is its class (or "other" out of range).
    assert {"200", "204", "404", "418", "4xx", "5xx", "2xx", "1xx", "other"} >= statuses
    assert {"200", "204", "404", "418", "4xx", "5xx", "2xx", "1xx"} <= statuses
    total = metrics.registry.get_sample_value(
        "http_requests_total", {"method": "GET", "route": "/status/{code}", "status": "5xx"}
    )
    assert total == 2  # 520 and 599


# --- real uvicorn with its h11 parser ----------------------------------------------------------

APP = textwrap.dedent(
    """
    from toolkit import App
    from toolkit.metrics import Metrics

    metrics = Metrics()
    app = App(middleware=[metrics.middleware()])
    app.add_api_route("/metrics", metrics.endpoint, include_in_schema=False)

    @app.get("/health")
    async def health() -> str:
        return "ok"

    @app.api_route("/x", methods=["GET", "POST"])
    async def x() -> str:
        return "x"
    """
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def uvicorn_h11(app_dir: Path) -> Iterator[str]:
    """``uvicorn metrics_app:app --http h11`` on a free port; killed when done."""
    (app_dir / "metrics_app.py").write_text(APP)
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "metrics_app:app", "--app-dir", str(app_dir)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--http", "h11", "--no-access-log"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log_path = app_dir / "uvicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"uvicorn exited with {process.returncode}:\n{log_path.read_text()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health", timeout=2.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"uvicorn did not answer within {STARTUP_TIMEOUT}s:\n{log_path.read_text()}")
            time.sleep(0.05)
        yield url
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=IO_TIMEOUT)


def raw_request(port: int, method: str, target: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as sock:
        head = f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        sock.sendall(head.encode("ascii"))
        chunks: list[bytes] = []
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


def series(text: str) -> list[Any]:
    return [
        sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if "method" in sample.labels
    ]


def test_random_methods_under_h11_keep_series_bounded(tmp_path: Path) -> None:
    """The attack as reported: ``MXYZ /x`` with random methods, each a new series before the fix."""
    with uvicorn_h11(tmp_path) as url:
        port = int(url.rsplit(":", 1)[1])
        for _ in range(200):
            method = "M" + secrets.token_hex(6).upper()
            assert raw_request(port, method, "/x").startswith(b"HTTP/1.1 405 ")
        for _ in range(20):
            raw_request(port, "GET", f"/{secrets.token_hex(8)}")
        text = httpx.get(f"{url}/metrics", timeout=IO_TIMEOUT).text
    found = series(text)
    assert {sample.labels["method"] for sample in found} <= {*STANDARD, "OTHER"}
    assert {sample.labels["route"] for sample in found if "route" in sample.labels} <= {
        "/health",
        "/x",
        "/metrics",
        "<unmatched>",
    }
    other = [s for s in found if s.name == "http_requests_total" and s.labels.get("method") == "OTHER"]
    assert [(s.labels["route"], s.labels["status"], s.value) for s in other] == [
        ("<unmatched>", "405", 200.0)
    ]
    # Bounded whatever the number of requests: a few routes x methods x statuses x buckets.
    assert len(found) < 200
