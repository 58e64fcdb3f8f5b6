"""A real server process for tests where the server matters (uvicorn, ``toolkit run``)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

TESTS_DIR = Path(__file__).resolve().parent
STARTUP_TIMEOUT = 20.0
SHUTDOWN_TIMEOUT = 15.0
# Only a guard against hanging forever: nothing here asserts on how long anything took.
CLIENT_TIMEOUT = httpx.Timeout(15.0)


@dataclasses.dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=CLIENT_TIMEOUT)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_ready(server: Server, path: str = "/health") -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"the server exited with {server.process.returncode}:\n{server.log()}")
        try:
            response = httpx.get(f"{server.url}{path}", timeout=2.0)
            if response.status_code == 200:
                return
        except httpx.TransportError as exc:
            last_error = exc
        time.sleep(0.1)
    pytest.fail(f"the server did not answer within {STARTUP_TIMEOUT}s ({last_error!r}):\n{server.log()}")


@contextlib.contextmanager
def run_process(
    arguments: Sequence[str],
    log_dir: Path,
    *,
    port: int | None = None,
    ready_path: str = "/health",
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Iterator[Server]:
    """``python <arguments>`` (``{port}`` in them is replaced), ready once ``ready_path`` answers 200;
    killed at the end if still running."""
    port = port or free_port()
    log_path = log_dir / f"server-{port}.log"
    command = [sys.executable, *(argument.replace("{port}", str(port)) for argument in arguments)]
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd or TESTS_DIR.parent,
            env=environment,
            start_new_session=True,  # its workers too are killed at the end, whatever happened
        )
    server = Server(process, port, log_path)
    try:
        wait_until_ready(server, ready_path)
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=SHUTDOWN_TIMEOUT)


def raw_request(server: Server, request: bytes) -> bytes:
    """Send ``request`` over a plain socket and read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=CLIENT_TIMEOUT.read) as sock:
        sock.sendall(request)
        return read_all(sock)


def read_all(sock: socket.socket) -> bytes:
    """Read until the server closes the connection (a reset after its response counts as closed)."""
    chunks: list[bytes] = []
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def split_response(raw: bytes) -> tuple[str, dict[str, list[str]], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return status_line, headers, body
