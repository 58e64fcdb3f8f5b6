"""Start, stop and restart a real ``redis-server`` for the session tests (no persistence, own dir)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import NoReturn

import pytest

STARTUP_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def redis_binary() -> str | None:
    return shutil.which("redis-server")


def unavailable(reason: str) -> NoReturn:
    """Skip loudly, or fail when ``REQUIRE_REDIS=1`` (CI must exercise the real store)."""
    message = f"REDIS NOT AVAILABLE, Redis session tests NOT RUN: {reason}"
    if os.environ.get("REQUIRE_REDIS") == "1":
        pytest.fail(f"{message} (REQUIRE_REDIS=1)", pytrace=False)
    pytest.skip(message)


def ping(port: int, timeout: float = 0.5) -> bool:
    """A raw RESP ``PING``: no client library, no event loop."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process on a fixed port, which a test may stop and start again."""

    def __init__(self, binary: str, directory: Path, port: int | None = None) -> None:
        self.binary = binary
        self.directory = directory
        self.port = port if port is not None else free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = directory / f"redis-{self.port}.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> None:
        assert self.process is None, "already running"
        command = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=self.directory)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise RuntimeError(f"redis-server exited with {code}:\n{self.log()}")
            if ping(self.port):
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer PING within {STARTUP_TIMEOUT}s:\n{self.log()}")

    def stop(self, *, save: bool = False) -> None:
        """Stop the process for real. ``save=True`` shuts down with ``SHUTDOWN SAVE``, so a restart
        in the same directory loads the data again (as a Redis with persistence would); otherwise
        SIGTERM, with nothing saved."""
        process, self.process = self.process, None
        if process is None:
            return
        process.send_signal(signal.SIGCONT)  # in case a test paused it
        if save:
            with (
                socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock,
                contextlib.suppress(ConnectionResetError),
            ):
                sock.sendall(b"*2\r\n$8\r\nSHUTDOWN\r\n$4\r\nSAVE\r\n")
                sock.recv(64)  # the server closes the connection once it has saved
        else:
            process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): connections stay open but nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)
