"""The toolkit behind a real uvicorn process: where the server, not the test client, matters."""

from __future__ import annotations

import contextlib
import importlib.util
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_server import SHUTDOWN_TIMEOUT, TESTS_DIR, Server, raw_request, run_process, split_response


@contextlib.contextmanager
def run_server(tmp_path: Path) -> Iterator[Server]:
    arguments = ["-m", "uvicorn", "_server_app:app", "--app-dir", str(TESTS_DIR), "--host", "127.0.0.1"]
    arguments += ["--port", "{port}", "--lifespan", "on", "--workers", "1"]
    with run_process(arguments, tmp_path) as server:
        yield server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(tmp_path_factory.mktemp("uvicorn")) as running:
        yield running


# --- plain HTTP ----------------------------------------------------------------------------


def test_json_route(server: Server) -> None:
    with server.client() as client:
        response = client.get("/json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-length"] == str(len(response.content))
    assert response.json() == {"hello": "wörld", "items": [1, 2, 3]}


def test_path_and_query_parameters_and_body(server: Server) -> None:
    with server.client() as client:
        assert client.get("/items/5", params={"limit": "3"}).json() == {"item_id": 5, "limit": 3}
        created = client.post("/items", json={"name": "pen", "price": 1.5})
    assert created.status_code == 201
    assert created.json() == {"name": "pen", "price": 1.5}


def test_validation_errors_are_422(server: Server) -> None:
    with server.client() as client:
        query = client.get("/items/5", params={"limit": "many"})
        body = client.post("/items", json={"name": "pen", "price": "free"})
    assert query.status_code == 422
    assert query.headers["content-type"] == "application/json"
    [error] = query.json()["detail"]
    assert error["loc"] == ["query", "limit"]
    assert body.status_code == 422
    [error] = body.json()["detail"]
    assert error["loc"] == ["body", "price"]


def test_not_found_and_method_not_allowed(server: Server) -> None:
    with server.client() as client:
        missing = client.get("/nowhere")
        wrong_type = client.get("/items/not-a-number")
        wrong_method = client.put("/items/5")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Not Found"}
    assert wrong_type.status_code == 404
    assert wrong_method.status_code == 405
    assert wrong_method.json() == {"detail": "Method Not Allowed"}
    assert wrong_method.headers["allow"] == "DELETE, GET, HEAD"


def test_head_request_has_no_body_on_the_wire(server: Server) -> None:
    with server.client() as client:
        get = client.get("/json")
        head = client.head("/json")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]

    raw = raw_request(server, b"HEAD /json HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
    status_line, headers, body = split_response(raw)
    assert status_line == "HTTP/1.1 200 OK"
    assert headers["content-length"] == [get.headers["content-length"]]
    assert body == b""


def test_204_has_no_body_or_content_headers_on_the_wire(server: Server) -> None:
    raw = raw_request(server, b"DELETE /items/9 HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
    status_line, headers, body = split_response(raw)
    assert status_line == "HTTP/1.1 204 No Content"
    assert "content-length" not in headers
    assert "content-type" not in headers
    assert "transfer-encoding" not in headers
    assert body == b""


def test_keep_alive_connection_serves_several_requests(server: Server) -> None:
    with server.client() as client:
        responses = [client.get("/json"), client.head("/json"), client.get("/items/1"), client.get("/json")]
    assert [r.status_code for r in responses] == [200, 200, 200, 200]
    assert responses[-1].json() == responses[0].json()


def test_lifespan_startup_ran(server: Server) -> None:
    with server.client() as client:
        response = client.get("/state")
    assert response.json() == {"greeting": "hello from lifespan", "started": True}
    assert "lifespan startup" in server.log()


# --- streaming -----------------------------------------------------------------------------


def test_server_sent_events_arrive_incrementally(server: Server) -> None:
    key = uuid.uuid4().hex
    with server.client() as client, client.stream("GET", f"/sse/{key}") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        assert "content-length" not in response.headers
        lines = response.iter_lines()
        # The server holds the rest of the stream until /release is called: if it buffered the
        # response, this read would not return (and the client timeout would fail the test).
        first = [next(lines), next(lines)]
        assert first == ['data: "first"', "id: 1"]
        assert next(lines) == ""
        with server.client() as other:
            assert other.post(f"/release/{key}").json() == {"released": True}
        rest = list(lines)
    assert rest == [
        "event: second",
        'data: {"n":2}',
        "id: 2",
        "",
        "data: multi",
        "data: line",
        "",
    ]


# --- websockets (only when uvicorn has a websocket implementation) -------------------------


def test_websocket_round_trip(server: Server) -> None:
    if importlib.util.find_spec("websockets") is None:
        pytest.skip("the 'websockets' package is not installed (uvicorn[standard] extra)")
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{server.port}/ws", open_timeout=15, close_timeout=15) as ws:
        ws.send("ping")
        assert ws.recv(timeout=15) == "echo: ping"


# --- shutdown ------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_clean_shutdown_runs_lifespan_shutdown(tmp_path: Path, sig: signal.Signals) -> None:
    with run_server(tmp_path) as server:
        with server.client() as client:
            assert client.get("/state").status_code == 200
        assert "lifespan shutdown" not in server.log()
        server.process.send_signal(sig)
        try:
            returncode = server.process.wait(timeout=SHUTDOWN_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"uvicorn did not exit within {SHUTDOWN_TIMEOUT}s of {sig.name}:\n{server.log()}")
        log = server.log()
        # uvicorn re-raises the caught signal once it has shut down cleanly (exit status -SIGTERM).
        assert returncode in (0, -sig), log
        assert "Finished server process" in log
        assert "lifespan shutdown" in log
        assert "Application shutdown complete" in log
        assert log.index("lifespan startup") < log.index("lifespan shutdown")
        assert "Traceback" not in log


# --- the body limit holds for bodies read by hand ---------------------------------------------------


@pytest.mark.parametrize("path", ["/raw-body", "/stream-body"])
def test_a_declared_oversized_body_is_refused_before_it_is_sent(server: Server, path: str) -> None:
    """``Content-Length: 50 MB`` and no body: the answer comes without waiting for the body."""
    head = f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 50000000\r\nConnection: close\r\n\r\n"
    status, _, body = split_response(raw_request(server, head.encode()))
    assert status == "HTTP/1.1 413 Request Entity Too Large"
    assert b"larger than 1000000 bytes" in body


@pytest.mark.parametrize("path", ["/raw-body", "/stream-body"])
def test_a_streamed_oversized_body_is_refused(server: Server, path: str) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):  # 40 x 64 KiB = 2.5 MB, no Content-Length (chunked)
            yield b"x" * 65536

    with server.client() as client:
        response = client.post(path, content=chunks())
        assert response.status_code == 413
        assert client.post(path, content=b"x" * 1000).json() == {"size": 1000}
