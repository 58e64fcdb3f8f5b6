"""Find a PostgreSQL server for the tests, or start a throw-away one of our own.

In this order: ``DATABASE_URL`` when it names PostgreSQL; a server on 127.0.0.1:5432 with trust auth
(user ``postgres``, database ``test``: what ``.ci/postgres`` sets up) if one answers; otherwise a
private server from the Debian binaries (``/usr/lib/postgresql/*/bin``) in a temp directory on a
free port, stopped and removed at the end of the session.

Environment (for the tests of this fallback, and for odd machines):

- ``POSTGRES_PROBE_URL``: the server probed instead of ``DEFAULT_POSTGRES_URL`` (e.g. a closed port,
  to make the fixture start its own server);
- ``POSTGRES_BINDIR``: the directory holding ``initdb`` and ``postgres`` (a missing one hides them);
- ``REQUIRE_POSTGRES=1``: fail instead of skipping when no server can be had (CI).
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, NoReturn

import anyio
import pytest
from redis_server import free_port

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
STARTUP_TIMEOUT = 30.0
SYSTEM_USER = "postgres"  # initdb and postgres refuse to run as root


def unavailable(reason: str) -> NoReturn:
    """Skip loudly, or fail when ``REQUIRE_POSTGRES=1`` (CI must exercise the real database)."""
    message = f"POSTGRES NOT AVAILABLE, PostgreSQL tests NOT RUN: {reason}"
    if os.environ.get("REQUIRE_POSTGRES") == "1":
        pytest.fail(f"{message} (REQUIRE_POSTGRES=1)", pytrace=False)
    pytest.skip(message)


def configured_url() -> str | None:
    """``DATABASE_URL`` if it is a PostgreSQL URL (used as given, not probed)."""
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith(("postgresql://", "postgres://")) else None


def probe_url() -> str:
    return os.environ.get("POSTGRES_PROBE_URL") or DEFAULT_POSTGRES_URL


def probe(url: str, timeout: float = 2.0) -> str | None:
    """Connect once and close: None when the server answers, else why it did not."""
    import asyncpg  # type: ignore[import-untyped]

    async def connect() -> str | None:
        try:
            connection = await asyncpg.connect(url, timeout=timeout)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            return f"{type(exc).__name__}: {exc}".strip()
        await connection.close()
        return None

    return anyio.run(connect)


def _version(bindir: str) -> tuple[int, ...]:
    match = re.search(r"/postgresql/([\d.]+)/bin$", bindir)
    return tuple(int(part) for part in match.group(1).split(".") if part) if match else ()


def find_bindir() -> str | None:
    """``POSTGRES_BINDIR``; else the newest ``/usr/lib/postgresql/*/bin`` (Debian); else ``initdb``'s
    directory on PATH. Only a directory holding ``initdb`` and ``postgres`` counts."""
    override = os.environ.get("POSTGRES_BINDIR")
    if override is not None:
        candidates = [override]
    else:
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True)
        on_path = shutil.which("initdb")
        if on_path:
            candidates.append(str(Path(on_path).resolve().parent))
    for bindir in candidates:
        if all(os.access(Path(bindir, name), os.X_OK) for name in ("initdb", "postgres")):
            return bindir
    return None


def bindir_searched() -> str:
    """Where ``find_bindir`` looked, for the skip message."""
    override = os.environ.get("POSTGRES_BINDIR")
    if override is not None:
        return f"POSTGRES_BINDIR={override}"
    return "/usr/lib/postgresql/*/bin or on PATH"


class PostgresServer:
    """A throw-away ``postgres`` (trust auth, no fsync) in a temp directory of its own.

    As root, ``initdb`` and ``postgres`` run as the ``postgres`` system user (``subprocess``'s
    ``user=``/``group=``, i.e. what ``setpriv`` does, with no wrapper process between us and the
    server), and the temp directory belongs to that user.
    """

    def __init__(self, bindir: str) -> None:
        self.bindir = Path(bindir)
        self.port = free_port()
        self.directory: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._as_user: dict[str, Any] = {}

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def log_path(self) -> Path:
        assert self.directory is not None
        return self.directory / "postgres.log"

    def log(self) -> str:
        if self.directory is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def _prepare(self) -> None:
        """The temp directory (data, socket dir, log), owned by whoever runs the server."""
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam(SYSTEM_USER)
            except KeyError:
                raise RuntimeError(
                    f"running as root, and there is no {SYSTEM_USER!r} system user to run initdb/postgres as"
                ) from None
            self._as_user = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        # Not pytest's tmp_path: its parents are private to root, where the postgres user cannot reach.
        self.directory = Path(tempfile.mkdtemp(prefix="toolkit-postgres-"))
        (self.directory / "socket").mkdir()
        if self._as_user:
            for path in (self.directory, self.directory / "socket"):
                os.chown(path, self._as_user["user"], self._as_user["group"])

    def _run(self, *command: str) -> None:
        assert self.directory is not None
        with self.log_path.open("ab") as log:
            completed = subprocess.run(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                check=False,
                **self._as_user,
            )
        if completed.returncode != 0:
            raise RuntimeError(f"{command[0]} exited with {completed.returncode}:\n{self.log()}")

    def start(self) -> None:
        """initdb, then ``postgres`` until it accepts connections; on any failure, nothing is left."""
        assert self.process is None, "already running"
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        self._prepare()
        assert self.directory is not None
        data = self.directory / "data"
        self._run(
            str(self.bindir / "initdb"),
            "--pgdata",
            str(data),
            "--username",
            "postgres",
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",
            "--no-instructions",
        )
        command = [
            str(self.bindir / "postgres"),
            "-D",
            str(data),
            "-p",
            str(self.port),
            "-k",
            str(self.directory / "socket"),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, cwd=self.directory, **self._as_user
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise RuntimeError(f"postgres exited with {code}:\n{self.log()}")
            if probe(self.url, timeout=1.0) is None:
                return
            time.sleep(0.05)
        raise RuntimeError(f"postgres did not accept connections within {STARTUP_TIMEOUT}s:\n{self.log()}")

    def stop(self) -> None:
        """Fast shutdown (SIGINT), killed if it lingers; then the temp directory is removed."""
        process, self.process = self.process, None
        if process is not None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        directory, self.directory = self.directory, None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
