"""Shared by the adversarial tests: a real uvicorn process, raw HTTP over a socket, a raw ASGI
driver (exact bytes in the scope, no client normalizing anything) and the shop service."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import live_server
import pytest
from live_server import read_all
from starlette.types import ASGIApp, Message

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
STARTUP_TIMEOUT = 30.0  # generous: CI machines are slow and busy
IO_TIMEOUT = 15.0  # only a guard against hanging forever


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- a real uvicorn process ------------------------------------------------------------------------


@dataclasses.dataclass
class Server(live_server.Server):
    http: str

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=IO_TIMEOUT)

    def request(self, raw: bytes) -> bytes:
        """Send ``raw`` and read until the server closes the connection (send ``Connection: close``)."""
        with self.connect() as sock:
            sock.sendall(raw)
            return read_all(sock)


@contextlib.contextmanager
def uvicorn(
    target: str, log_dir: Path, *, http: str = "httptools", env: dict[str, str] | None = None
) -> Iterator[Server]:
    """``uvicorn target`` on a free port (the app dir is this folder); killed when done."""
    port = free_port()
    log_path = log_dir / f"uvicorn-{http}-{port}.log"
    command = [sys.executable, "-m", "uvicorn", target, "--app-dir", str(HERE), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--http", http, "--lifespan", "on", "--no-access-log"]
    full_env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(REPO),
        "ADV_SERVER": "1",
        **(env or {}),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=full_env)
    server = Server(process, port, log_path, http)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"uvicorn exited with {process.returncode}:\n{server.log()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{server.url}/health", timeout=2.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"uvicorn did not answer within {STARTUP_TIMEOUT}s:\n{server.log()}")
            time.sleep(0.05)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=IO_TIMEOUT)


# --- raw HTTP/1.1 ----------------------------------------------------------------------------------


def raw_get(target: bytes, *headers: bytes, method: bytes = b"GET", host: bytes = b"127.0.0.1") -> bytes:
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: " + host, *headers, b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n"


@dataclasses.dataclass
class RawResponse:
    status: int
    headers: dict[str, list[str]]
    body: bytes
    status_lines: int  # how many "HTTP/1.x NNN" lines the whole reply holds (must be one)

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


def parse(raw: bytes) -> RawResponse:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    assert status_line.startswith("HTTP/1.1 "), raw[:200]
    headers: dict[str, list[str]] = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    if headers.get("transfer-encoding") == ["chunked"]:
        body = dechunk(body)
    return RawResponse(int(status_line.split()[1]), headers, body, raw.count(b"HTTP/1.1 "))


def read_response(sock: socket.socket) -> RawResponse:
    """One response on a kept-alive connection (a ``Content-Length`` body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    found = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    assert found is not None, head
    while len(body) < int(found.group(1)):
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-body"
        body += chunk
    return parse(head + b"\r\n\r\n" + body)


def dechunk(body: bytes) -> bytes:
    out, rest = b"", body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out, rest = out + rest[:size], rest[size + 2 :]
    return out


# --- a raw ASGI driver ------------------------------------------------------------------------------


@dataclasses.dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        import json

        return json.loads(self.body)


def scope_for(
    path: str,
    *,
    method: str = "GET",
    query: bytes = b"",
    headers: Iterable[tuple[bytes, bytes]] = (),
    raw_path: bytes | None = None,
) -> dict[str, Any]:
    from urllib.parse import quote

    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "http",
        "method": method,
        "path": path,
        "raw_path": raw_path if raw_path is not None else quote(path, safe="/").encode("ascii"),
        "root_path": "",
        "query_string": query,
        "headers": [(b"host", b"testserver"), *headers],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 50000),
        "state": {},
    }


async def call(app: ASGIApp, scope: dict[str, Any], body: bytes = b"") -> Reply:
    """One request straight into the app: exactly these bytes, as a server would hand them over."""
    sent: list[Message] = []
    pending = [body]
    done = anyio.Event()

    async def receive() -> Message:
        if pending:
            return {"type": "http.request", "body": pending.pop(), "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            done.set()

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert sum(m["type"] == "http.response.start" for m in sent) == 1
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in start.get("headers", [])}
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Reply(start["status"], headers, payload)


def call_sync(app: ASGIApp, scope: dict[str, Any], body: bytes = b"") -> Reply:
    result: list[Reply] = []

    async def main() -> None:
        result.append(await call(app, scope, body))

    anyio.run(main)
    return result[0]


# --- the shop service ---------------------------------------------------------------------------------

SHOP_SECRET = "adversarial-secret-key-of-at-least-32-bytes"
PASSWORD = "correct horse"


def shop_settings(directory: Path, redis_url: str | None = None, **changes: Any) -> Any:
    """Development mode (the plain-HTTP test client keeps the ``session`` cookie), limits on."""
    from apps.common.settings import Settings

    return Settings(
        database_url=f"sqlite:///{directory / 'shop.db'}",
        redis_url=redis_url,
        secret_key=SHOP_SECRET,
        development=True,
        **changes,
    )


def promote(directory: Path, username: str) -> None:
    """Make ``username`` an admin out of band, as ``python -m apps.shop.admin promote`` does."""
    from apps.shop.admin import promote as promote_user

    anyio.run(promote_user, f"sqlite:///{directory / 'shop.db'}", username)


def register(client: Any, username: str) -> dict[str, Any]:
    """Register ``username`` (works with the sync ``TestClient``)."""
    body = {"username": username, "email": f"{username}@example.com", "password": PASSWORD}
    response = client.post("/users", json=body)
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


def bearer(client: Any, username: str) -> dict[str, str]:
    response = client.post("/auth/token", data={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}
