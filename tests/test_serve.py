"""``toolkit run`` / ``toolkit dev`` as real processes: each production default, tried as an attacker
(smuggling, huge heads, tricklers) and as an operator (SIGTERM, proxies, workers, reload) would.

Timeouts are shortened by options (``--timeout-header 1``) so the tests run in seconds; that the
defaults are what the README says is checked on the parsed options (``test_serve_cli.py``).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from live_server import (
    CLIENT_TIMEOUT,
    SHUTDOWN_TIMEOUT,
    TESTS_DIR,
    Server,
    raw_request,
    read_all,
    run_process,
    split_response,
)

APP = "tests/_serve_app.py:app"
# Short limits so a trickler is cut within seconds; the sweep checks twice a second.
QUICK = ["--timeout-header", "1", "--timeout-body", "1", "--min-body-rate", "200"]
QUICK += ["--limit-header-size", "4096", "--timeout-keep-alive", "5", "--timeout-send", "1"]


@contextlib.contextmanager
def toolkit(tmp_path: Path, *options: str, command: str = "run", app: str = APP) -> Iterator[Server]:
    arguments = ["-m", "toolkit", command, app, "--host", "127.0.0.1", "--port", "{port}", *options]
    with run_process(arguments, tmp_path) as server:
        yield server


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with toolkit(tmp_path_factory.mktemp("serve"), *QUICK) as server:
        yield server


@pytest.fixture(scope="module")
def defaults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with toolkit(tmp_path_factory.mktemp("serve")) as server:
        yield server


def connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=CLIENT_TIMEOUT.read)


def statuses(raw: bytes) -> list[str]:
    """The status lines in ``raw`` (a response's body is not followed by a line break)."""
    return [line.decode() for line in re.findall(rb"HTTP/1\.1 \d{3} [^\r\n]*", raw)]


def get(path: str = "/health", **headers: str) -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        "Host: test",
        *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# --- what any request gets ---------------------------------------------------------------------


def test_serves_the_app_with_httptools_and_no_server_header(defaults: Server) -> None:
    with defaults.client() as client:
        response = client.get("/health")
    assert response.json() == {"status": "ok"}
    assert "server" not in response.headers
    log = defaults.log()
    assert "toolkit run: _serve_app:app on http://127.0.0.1:" in log
    assert (
        "head <= 32768 bytes within 10 s, body >= 256 B/s per 10 s, send timeout 60 s, 1000 concurrent" in log
    )
    assert "drain 25 s, proxy headers off" in log


def test_a_websocket_upgrades_through_the_guarded_protocol(guarded: Server) -> None:
    from websockets.sync.client import connect as ws_connect

    with ws_connect(f"ws://127.0.0.1:{guarded.port}/ws", open_timeout=15, close_timeout=15) as ws:
        time.sleep(1.5)  # longer than --timeout-header: the sweep must not touch an upgraded socket
        ws.send("ping")
        assert ws.recv(timeout=15) == "echo: ping"


def test_pipelined_requests_are_all_answered(guarded: Server) -> None:
    with connect(guarded) as sock:
        sock.sendall(get() + get() + get("/health", Connection="close"))
        assert statuses(read_all(sock)) == ["HTTP/1.1 200 OK"] * 3


# --- request smuggling ---------------------------------------------------------------------------


def test_content_length_with_transfer_encoding_is_400_and_closes(defaults: Server) -> None:
    smuggled = (
        b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n" + get("/health")
    )
    raw = raw_request(defaults, smuggled)  # returns once the server closes the connection
    assert statuses(raw) == ["HTTP/1.1 400 Bad Request"]  # the pipelined request is not answered
    assert "connection: close" in raw.decode("latin-1").lower()


@pytest.mark.parametrize(
    "head",
    [
        b"GET /health HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: test\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"GET /health HTTP/1.1\r\nHost: test\r\nContent-Length : 0\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: test\r\n Folded: line\r\n\r\n",
    ],
    ids=["te-not-chunked-last", "two-content-lengths", "space-before-colon", "obs-fold"],
)
def test_ambiguous_framing_is_refused(defaults: Server, head: bytes) -> None:
    assert statuses(raw_request(defaults, head)) == ["HTTP/1.1 400 Bad Request"]


# --- the head-size limit -----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1 << 20, 16 << 20], ids=["1MB", "16MB"])
def test_a_huge_header_is_refused_with_431(defaults: Server, size: int) -> None:
    with connect(defaults) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\nCookie: " + b"a" * size + b"\r\n\r\n")
        raw = read_all(sock)
    assert statuses(raw) == ["HTTP/1.1 431 Request Header Fields Too Large"]
    assert raw.endswith(b"Request header fields too large")
    with defaults.client() as client:  # and the server is not stuck
        assert client.get("/health").status_code == 200


def test_the_head_limit_is_exact(guarded: Server) -> None:
    def head_of(size: int) -> bytes:
        start = b"GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\nX-Pad: "
        return start + b"p" * (size - len(start) - 4) + b"\r\n\r\n"

    assert len(head_of(4096)) == 4096
    assert statuses(raw_request(guarded, head_of(4096))) == ["HTTP/1.1 200 OK"]
    assert statuses(raw_request(guarded, head_of(4097))) == ["HTTP/1.1 431 Request Header Fields Too Large"]


def test_a_body_in_the_same_packet_as_the_head_is_not_counted_as_head(guarded: Server) -> None:
    body = b"x" * 50_000  # far over the 4096-byte head limit, sent in one write with the head
    request = b"POST /echo HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
    request += b"Content-Length: %d\r\n\r\n" % len(body) + body
    status, _, payload = split_response(raw_request(guarded, request))
    assert status == "HTTP/1.1 200 OK"
    assert payload == b'{"size":50000}'


def test_an_oversized_pipelined_head_closes_after_the_pending_responses(guarded: Server) -> None:
    # A head that starts in the same read as the previous request's end is counted from the next
    # read, so the bound for it is twice the limit (2 x 4096 here); past that it is refused.
    big = b"GET /health HTTP/1.1\r\nHost: test\r\nX-Pad: " + b"p" * 8300 + b"\r\n\r\n"
    raw = raw_request(guarded, get() + get() + big)  # returns once the server closes
    # It arrives while the first responses are pending: they are sent, then the connection closes
    # (a status line for the third would interleave with theirs).
    assert statuses(raw) == ["HTTP/1.1 200 OK"] * 2


def test_an_oversized_head_behind_a_running_response_is_not_read_on(guarded: Server) -> None:
    sent = 0
    with connect(guarded) as sock:
        sock.sendall(get("/slow?seconds=3") + b"GET /health HTTP/1.1\r\nHost: test\r\nX-Pad: ")
        sock.settimeout(1.5)
        with contextlib.suppress(TimeoutError, BrokenPipeError, ConnectionResetError):
            while sent < 256 << 20:  # the server stops reading: sending blocks once buffers fill
                sock.sendall(b"p" * 65536)
                sent += 65536
        sock.settimeout(CLIENT_TIMEOUT.read)
        raw = read_all(sock)
    assert sent < 64 << 20  # what the kernel buffers held, not everything the client had
    assert statuses(raw) == ["HTTP/1.1 200 OK"]  # the running response, then the connection closes


def test_a_keep_alive_connection_cannot_send_a_huge_second_head(guarded: Server) -> None:
    with connect(guarded) as sock:
        sock.sendall(get())
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\nX-Pad: " + b"p" * 100_000 + b"\r\n\r\n")
        assert statuses(read_all(sock)) == ["HTTP/1.1 431 Request Header Fields Too Large"]


def test_pipelining_is_bounded(defaults: Server) -> None:
    raw = raw_request(defaults, get() * 200)  # one read: uvicorn would queue all 200
    answered = statuses(raw)
    assert set(answered) == {"HTTP/1.1 200 OK"}
    assert 2 <= len(answered) <= 34  # the running one, 32 waiting, the one that overflowed


def test_request_trailers_are_refused_and_never_become_headers(defaults: Server) -> None:
    chunked = b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    status, _, payload = split_response(raw_request(defaults, chunked + b"3\r\nabc\r\n0\r\n\r\n"))
    assert (status, payload) == ("HTTP/1.1 200 OK", b'{"size":3}')
    trailer = b"3\r\nabc\r\n0\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n"
    status, _, payload = split_response(raw_request(defaults, chunked + trailer))
    assert (status, payload) == ("HTTP/1.1 400 Bad Request", b"Request trailers are not accepted")
    with connect(defaults) as sock:  # a flood of trailer fields stops at the first
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(chunked + b"3\r\nabc\r\n0\r\n" + b"a: b\r\n" * 500_000)
        assert statuses(read_all(sock)) == ["HTTP/1.1 400 Bad Request"]


def test_an_unsupported_upgrade_cannot_desync_the_connection(defaults: Server) -> None:
    with connect(defaults) as sock:
        sock.sendall(
            b"GET /health HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n"
            b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 35\r\n\r\n"
        )
        time.sleep(0.3)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"GET /client HTTP/1.1\r\nHost: x\r\n\r\n")  # the POST's body, not a request
        raw = read_all(sock)
    assert statuses(raw) == ["HTTP/1.1 200 OK"]
    assert b'{"status":"ok"}' in raw
    assert "GET /client" not in defaults.log()


def test_a_head_after_a_body_in_one_read_is_still_limited(guarded: Server) -> None:
    with connect(guarded) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 1\r\n\r\n")
        time.sleep(0.2)
        big = b"GET /health HTTP/1.1\r\nHost: test\r\nX-Pad: " + b"p" * 150_000 + b"\r\n\r\n"
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"x" + big)  # the body's last byte and a 150 KB head, in one write
        raw = read_all(sock)
    assert statuses(raw)[0] == "HTTP/1.1 200 OK"
    assert "HTTP/1.1 200 OK" not in statuses(raw)[1:]  # the big head is not served


# --- tricklers -----------------------------------------------------------------------------------------


def trickle(sock: socket.socket, data: bytes, interval: float) -> None:
    """Send ``data`` a byte at a time until the server stops the connection."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        for byte in data:
            sock.sendall(bytes([byte]))
            time.sleep(interval)
            readable, _, _ = select_readable(sock)
            if readable:
                return


def select_readable(
    sock: socket.socket,
) -> tuple[list[socket.socket], list[socket.socket], list[socket.socket]]:
    import select

    return select.select([sock], [], [], 0)


def test_a_header_trickler_is_cut_off_with_408(guarded: Server) -> None:
    with connect(guarded) as sock:
        trickle(sock, get("/health", X_Slow="a" * 200), interval=0.2)  # 5 bytes/s, 1 s allowed
        raw = read_all(sock)
    assert statuses(raw) == ["HTTP/1.1 408 Request Timeout"]
    assert raw.endswith(b"Request header timeout")


def test_a_connection_that_sends_nothing_is_closed_without_a_response(guarded: Server) -> None:
    with connect(guarded) as sock:
        assert read_all(sock) == b""  # closed after --timeout-header (else the 15 s read timeout fails)


def test_an_idle_keep_alive_connection_is_not_a_slow_head(guarded: Server) -> None:
    with connect(guarded) as sock:
        sock.sendall(get())
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
        time.sleep(2)  # idle longer than --timeout-header, shorter than --timeout-keep-alive
        sock.sendall(get("/health", Connection="close"))
        assert statuses(read_all(sock)) == ["HTTP/1.1 200 OK"]


def test_a_body_trickler_is_cut_off_with_408(guarded: Server) -> None:
    with connect(guarded) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 1000\r\n\r\n")
        trickle(sock, b"x" * 1000, interval=0.1)  # 10 bytes/s against --min-body-rate 200
        raw = read_all(sock)
    assert statuses(raw) == ["HTTP/1.1 408 Request Timeout"]
    assert raw.endswith(b"Request body timeout")


def test_a_slow_upload_above_the_minimum_rate_succeeds(guarded: Server) -> None:
    with connect(guarded) as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: 3000\r\n\r\n"
        )
        for _ in range(30):  # 1,000 bytes/s for 3 s: above 200 B/s, longer than --timeout-body
            sock.sendall(b"y" * 100)
            time.sleep(0.1)
        status, _, payload = split_response(read_all(sock))
    assert status == "HTTP/1.1 200 OK"
    assert payload == b'{"size":3000}'


def test_an_app_that_reads_late_is_not_blamed_on_the_client(guarded: Server) -> None:
    body = b"z" * 1_000_000  # more than uvicorn buffers: the socket is paused until the app reads
    request = b"POST /late-read?seconds=2.5 HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
    status, _, payload = split_response(
        raw_request(guarded, request + b"Content-Length: 1000000\r\n\r\n" + body)
    )
    assert status == "HTTP/1.1 200 OK"
    assert payload == b'{"size":1000000}'


def test_a_100_continue_client_waits_for_the_app_without_being_cut(guarded: Server) -> None:
    with connect(guarded) as sock:
        sock.sendall(
            b"POST /late-read?seconds=2 HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
            b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n"
        )
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"  # only once the app reads
        sock.sendall(b"hello")
        status, _, payload = split_response(read_all(sock))
    assert status == "HTTP/1.1 200 OK"
    assert payload == b'{"size":5}'


def test_a_client_that_reads_nothing_is_cut_off(guarded: Server) -> None:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
        sock.settimeout(CLIENT_TIMEOUT.read)
        sock.connect(("127.0.0.1", guarded.port))
        sock.sendall(get("/big?megabytes=64"))
        wait_for_log(guarded, "send timeout, the client reads nothing")  # --timeout-send 1
        received = len(read_all(sock))
    assert received < 64 * 2**20  # cut short: what the buffers held, not the response
    wait_for_log(guarded, "big response ended")  # the request's task is released
    with guarded.client() as client:
        assert client.get("/health").status_code == 200


@pytest.mark.parametrize("path", ["/big?megabytes=64", "/big-plain?megabytes=32"])
def test_a_closing_connection_whose_client_reads_nothing_is_cut_off_too(guarded: Server, path: str) -> None:
    before = guarded.log().count("send timeout")
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(CLIENT_TIMEOUT.read)
        sock.connect(("127.0.0.1", guarded.port))
        sock.sendall(get(path, Connection="close"))  # the response is all written: the transport closes
        deadline = time.monotonic() + SHUTDOWN_TIMEOUT
        while guarded.log().count("send timeout") == before:  # ...with a full buffer, until aborted
            if time.monotonic() > deadline:
                pytest.fail(f"no send timeout:\n{guarded.log()}")
            time.sleep(0.1)


def test_a_websocket_upgrade_behind_a_pending_response_is_not_switched(guarded: Server) -> None:
    upgrade = (
        b"GET /ws HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    raw = raw_request(guarded, get("/slow?seconds=0.5") + upgrade)
    assert statuses(raw) == ["HTTP/1.1 200 OK"]  # the pending response, then the connection closes
    assert raw.endswith(b'{"slept":0.5}')


def test_a_chunked_upload_in_large_and_small_chunks(guarded: Server) -> None:
    chunks = [b"a" * 65536] * 20 + [b"b" * 7] * 300 + [b"c" * 200_000]
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"
    head = b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    status, _, payload = split_response(raw_request(guarded, head + body))
    assert (status, payload) == ("HTTP/1.1 200 OK", b'{"size":%d}' % sum(map(len, chunks)))


def test_a_trailer_field_that_never_ends_is_refused_at_the_limit(guarded: Server) -> None:
    head = b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
    with connect(guarded) as sock:
        sock.sendall(head + b"5\r\nhello\r\n0\r\nX-A: ")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for _ in range(64):  # 4 MB of one trailer value, no line end
                sock.sendall(b"a" * 65536)
        raw = read_all(sock)
    assert statuses(raw) == ["HTTP/1.1 431 Request Header Fields Too Large"]
    assert raw.endswith(b"Request trailers too large")


def test_a_slow_but_steady_reader_gets_the_whole_response(guarded: Server) -> None:
    with connect(guarded) as sock:
        sock.sendall(get("/big?megabytes=8", Connection="close"))
        chunks: list[bytes] = []
        while chunk := sock.recv(256 * 1024):  # 256 KiB every 0.1 s: for 3 s, never a 1 s stall
            chunks.append(chunk)
            time.sleep(0.1)
        _, headers, body = split_response(b"".join(chunks))
    assert headers["transfer-encoding"] == ["chunked"]
    assert body.count(b"b" * 65536) == 8 * 16


def test_many_tricklers_do_not_stop_others_being_served(guarded: Server) -> None:
    sockets = [connect(guarded) for _ in range(100)]
    try:
        for sock in sockets:
            sock.sendall(b"GET /health HTTP/1.1\r\nHo")
        with guarded.client() as client:
            assert client.get("/health").status_code == 200
        for sock in sockets:
            assert statuses(read_all(sock)) == ["HTTP/1.1 408 Request Timeout"]
    finally:
        for sock in sockets:
            sock.close()


# --- concurrency, proxies -------------------------------------------------------------------------


def test_limit_concurrency_counts_requests_not_idle_connections(tmp_path: Path) -> None:
    with toolkit(tmp_path, "--limit-concurrency", "2") as server:
        idle = [connect(server) for _ in range(5)]  # sockets that send nothing do not count
        try:
            with server.client() as client:
                assert client.get("/health").status_code == 200
            results: list[int] = []

            def slow() -> None:
                with server.client() as client:
                    results.append(client.get("/slow", params={"seconds": 2}).status_code)

            threads = [threading.Thread(target=slow) for _ in range(2)]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + SHUTDOWN_TIMEOUT
            while server.log().count("slow request started") < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            with server.client() as client:
                refused = client.get("/health")  # two requests in progress: this third one is refused
            from websockets.exceptions import InvalidStatus
            from websockets.sync.client import connect as ws_connect

            with pytest.raises(InvalidStatus) as handshake:  # a websocket counts too
                ws_connect(f"ws://127.0.0.1:{server.port}/ws", open_timeout=15)
            for thread in threads:
                thread.join()
        finally:
            for sock in idle:
                sock.close()
    assert refused.status_code == 503
    assert refused.headers.get("connection") == "close"
    assert handshake.value.response.status_code == 503
    assert sorted(results) == [200, 200]


def test_proxy_headers_are_ignored_by_default(defaults: Server) -> None:
    with defaults.client() as client:
        response = client.get(
            "/client", headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
        )
    assert response.json() == {"host": "127.0.0.1", "scheme": "http"}


def test_proxy_headers_are_trusted_only_from_the_configured_addresses(tmp_path: Path) -> None:
    forwarded = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    with toolkit(tmp_path, "--forwarded-allow-ips", "127.0.0.1") as server, server.client() as client:
        assert client.get("/client", headers=forwarded).json() == {"host": "203.0.113.9", "scheme": "https"}
    with toolkit(tmp_path, "--forwarded-allow-ips", "10.0.0.0/8") as server, server.client() as client:
        assert client.get("/client", headers=forwarded).json() == {"host": "127.0.0.1", "scheme": "http"}


# --- shutdown -------------------------------------------------------------------------------------


def wait_for_log(server: Server, text: str) -> None:
    deadline = time.monotonic() + SHUTDOWN_TIMEOUT
    while text not in server.log():
        if time.monotonic() > deadline:
            pytest.fail(f"{text!r} never logged:\n{server.log()}")
        time.sleep(0.05)


def wait_exit(server: Server) -> int:
    try:
        return server.process.wait(timeout=SHUTDOWN_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the server did not exit within {SHUTDOWN_TIMEOUT}s:\n{server.log()}")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_lets_an_in_flight_request_finish_then_shuts_down(tmp_path: Path, workers: str) -> None:
    with toolkit(tmp_path, "--workers", workers) as server:
        answer: list[httpx.Response] = []
        thread = threading.Thread(
            target=lambda: answer.append(httpx.get(f"{server.url}/slow?seconds=2", timeout=CLIENT_TIMEOUT))
        )
        thread.start()
        wait_for_log(server, "slow request started")
        server.process.send_signal(signal.SIGTERM)
        thread.join(timeout=SHUTDOWN_TIMEOUT)
        returncode = wait_exit(server)
        log = server.log()
    assert [response.status_code for response in answer] == [200], log
    assert answer[0].json() == {"slept": 2.0}
    assert returncode in (0, -signal.SIGTERM), log
    assert log.index("slow request finished") < log.rindex("lifespan shutdown"), log
    assert "Traceback" not in log


def test_a_request_past_the_drain_timeout_is_cancelled_and_shutdown_completes(tmp_path: Path) -> None:
    with toolkit(tmp_path, "--timeout-graceful-shutdown", "1") as server:
        outcome: list[object] = []

        def slow() -> None:
            try:
                outcome.append(httpx.get(f"{server.url}/slow?seconds=30", timeout=CLIENT_TIMEOUT).status_code)
            except httpx.HTTPError as exc:
                outcome.append(exc)

        thread = threading.Thread(target=slow)
        thread.start()
        wait_for_log(server, "slow request started")
        server.process.send_signal(signal.SIGTERM)
        returncode = wait_exit(server)  # within SHUTDOWN_TIMEOUT, not the request's 30 s
        thread.join(timeout=SHUTDOWN_TIMEOUT)
        log = server.log()
    assert returncode in (0, -signal.SIGTERM), log
    assert "lifespan shutdown" in log
    assert "slow request finished" not in log
    # The cut request is never answered as a success: uvicorn answers it 500 (or the connection drops).
    assert len(outcome) == 1
    assert outcome[0] == 500 or isinstance(outcome[0], httpx.HTTPError)


def test_workers_end_when_their_supervisor_is_killed_outright(tmp_path: Path) -> None:
    with toolkit(tmp_path, "--workers", "2") as server:
        server.process.kill()  # SIGKILL to the supervisor alone: it cannot stop its workers itself
        server.process.wait(timeout=SHUTDOWN_TIMEOUT)
        deadline = time.monotonic() + SHUTDOWN_TIMEOUT
        while True:  # the server runs in a session of its own: wait until no process is left in it
            try:
                os.killpg(server.process.pid, 0)
            except ProcessLookupError:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"the workers outlived their supervisor:\n{server.log()}")
            time.sleep(0.1)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{server.url}/health", timeout=CLIENT_TIMEOUT)


def test_plain_uvicorn_serves_with_the_protocol(tmp_path: Path) -> None:
    script = (
        "import sys, uvicorn; from toolkit.serve import GuardedHttpToolsProtocol; "
        "uvicorn.run('_serve_app:app', port=int(sys.argv[1]), http=GuardedHttpToolsProtocol)"
    )
    env = {"TOOLKIT_SERVE_LIMITS": '{"header_size": 2048}', "PYTHONPATH": str(TESTS_DIR)}
    with run_process(["-c", script, "{port}"], tmp_path, env=env) as server:
        assert statuses(raw_request(server, get("/health", Connection="close"))) == ["HTTP/1.1 200 OK"]
        padded = get("/health", Connection="close", X_Pad="p" * 3000)
        assert statuses(raw_request(server, padded)) == ["HTTP/1.1 431 Request Header Fields Too Large"]


# --- dev ------------------------------------------------------------------------------------------------


def test_dev_reloads_on_change_and_shows_tracebacks(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    source = (TESTS_DIR / "_serve_app.py").read_text()
    (project / "main.py").write_text(source)
    arguments = ["-m", "toolkit", "dev", "--port", "{port}"]
    with run_process(arguments, tmp_path, cwd=project) as server, server.client() as client:
        boom = client.get("/boom")
        assert boom.status_code == 500
        assert "boom: the handler failed" in boom.text  # debug on: the traceback is shown
        (project / "main.py").write_text(source.replace('{"status": "ok"}', '{"status": "reloaded"}'))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if client.get("/health").json() == {"status": "reloaded"}:
                    break
            time.sleep(0.2)
        else:
            pytest.fail(f"no reload within 20 s:\n{server.log()}")
        assert "toolkit dev: main:app on http://127.0.0.1:" in server.log()


def test_run_hides_tracebacks(defaults: Server) -> None:
    with defaults.client() as client:
        boom = client.get("/boom")
    assert boom.status_code == 500
    assert "boom" not in boom.text
