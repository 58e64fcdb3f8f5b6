"""SQLite behind ``apps.common.db.Database``: stdlib ``sqlite3`` in anyio worker threads, WAL mode.

Each transaction has its own connection (pooled when idle, ``check_same_thread=False``); a
busy database is waited for (``busy_timeout``) and then raises ``DatabaseUnavailable``.

The file is created (with the schema) once, by ``open``; later connections open it read-write
without creating it (a ``file:...?mode=rw`` URI). A database file deleted or replaced while the
service runs is then ``DatabaseUnavailable`` (503, and ``/ready`` says so) instead of a new empty
database whose queries fail with "no such table", and idle connections to the old file are
dropped rather than reused (they would read, and write, a file nobody else sees).
"""

import logging
import os
import pathlib
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread

from ._base import Connection, Database, DatabaseUnavailable, IntegrityError, Row, ValueOutOfRange, schema

__all__ = ["SQLiteDatabase"]

logger = logging.getLogger("apps.db")

T = TypeVar("T")

# Primary result codes meaning "not now" rather than "your SQL is wrong".
_SQLITE_UNAVAILABLE = {
    5,  # SQLITE_BUSY
    6,  # SQLITE_LOCKED
    8,  # SQLITE_READONLY
    10,  # SQLITE_IOERR
    11,  # SQLITE_CORRUPT
    13,  # SQLITE_FULL
    14,  # SQLITE_CANTOPEN
    15,  # SQLITE_PROTOCOL
    26,  # SQLITE_NOTADB
}


def _translate(exc: sqlite3.Error) -> Exception:
    if isinstance(exc, sqlite3.IntegrityError):
        return IntegrityError(str(exc))
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and code & 0xFF in _SQLITE_UNAVAILABLE:
        return DatabaseUnavailable(f"sqlite: {exc}")
    if isinstance(exc, sqlite3.ProgrammingError) and "closed" in str(exc):
        return DatabaseUnavailable(f"sqlite: {exc}")
    return exc


def _sqlite_path(url: str) -> str:
    rest = url.removeprefix("sqlite:").partition("?")[0]
    if not rest.startswith("///") or rest[3:] in ("", ":memory:"):
        raise ValueError(
            f"unsupported SQLite URL {url!r}: use sqlite:///relative.db or sqlite:////absolute.db "
            "(a file: every transaction has its own connection, so :memory: cannot work)"
        )
    return rest[3:]


def _file_uri(path: str, mode: str) -> str:
    """``file:///absolute/path?mode=...``, percent-encoded (a ``?`` or ``#`` in a name is not a query)."""
    return f"{pathlib.Path(path).as_uri()}?mode={mode}"


_Identity = tuple[int, int]


def _identity(path: str) -> _Identity | None:
    """The file's (device, inode), or None when it is gone: tells a replaced file from the same one."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


class _Raw(sqlite3.Connection):
    """A connection that remembers which file (device, inode) it opened."""

    identity: _Identity | None = None


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> Row:
    return dict(zip([column[0] for column in cursor.description], row, strict=True))


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


class SQLiteDatabase(Database):
    """SQLite in WAL mode; each transaction has its own ``sqlite3`` connection (pooled when idle)."""

    dialect = "sqlite"

    def __init__(self, path: str, *, busy_timeout: float = 5.0, max_idle: int = 16) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self.max_idle = max_idle
        self._file = os.path.abspath(path)  # the same file whatever the working directory later
        self._uri = _file_uri(self._file, "rw")  # never creates the file: only ``open`` does
        self._idle: list[_Raw] = []
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    async def open(cls, url: str, *, busy_timeout: float = 5.0) -> "SQLiteDatabase":
        db = cls(_sqlite_path(url), busy_timeout=busy_timeout)
        try:
            await anyio.to_thread.run_sync(db._create_schema)
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        return db

    def _create_schema(self) -> None:
        raw = self._open(create=True)
        try:
            raw.execute("PRAGMA journal_mode=WAL")
            raw.execute("BEGIN IMMEDIATE")
            for statement in schema(self.dialect):
                raw.execute(statement)
            raw.execute("COMMIT")
        finally:
            self._release(raw)

    def _open(self, *, create: bool = False) -> _Raw:
        raw = sqlite3.connect(
            _file_uri(self._file, "rwc") if create else self._uri,
            timeout=self.busy_timeout,
            isolation_level=None,
            check_same_thread=False,
            uri=True,
            factory=_Raw,
        )
        try:
            raw.identity = _identity(self._file)
            raw.execute("PRAGMA foreign_keys=ON")
            raw.execute("PRAGMA synchronous=NORMAL")  # durable in WAL mode up to the last checkpoint
            # SQLite's LOWER() only folds ASCII; PostgreSQL's folds every letter. Same results on both.
            raw.create_function("lower", 1, _lower, deterministic=True)
        except BaseException:
            raw.close()
            raise
        raw.row_factory = _dict_row
        return raw

    def _acquire(self) -> _Raw:
        current = _identity(self._file)  # one stat() per transaction, in the worker thread
        with self._lock:
            if self._closed:
                raise DatabaseUnavailable("the database is closed")
            stale = [raw for raw in self._idle if raw.identity != current]
            if stale:
                self._idle = [raw for raw in self._idle if raw.identity == current]
            raw = self._idle.pop() if self._idle else None
        for old in stale:  # connected to a file that was deleted or replaced since
            old.close()
        if stale:
            logger.warning("the database file %s was deleted or replaced", self.path)
        return raw if raw is not None else self._open()

    def _release(self, raw: _Raw) -> None:
        if not raw.in_transaction:  # a connection stuck in a transaction is not reused
            with self._lock:
                if not self._closed and len(self._idle) < self.max_idle:
                    self._idle.append(raw)
                    return
        raw.close()

    async def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for raw in idle:
            raw.close()

    async def ping(self) -> None:
        async with self.transaction() as conn:
            await conn.fetchone("SELECT count(*) AS tables FROM sqlite_master")

    def _connection(self, write: bool) -> Connection:
        return _SQLiteConnection(self, write)


class _SQLiteConnection(Connection):
    dialect = "sqlite"

    def __init__(self, db: SQLiteDatabase, write: bool) -> None:
        self._db = db
        self._begin = "BEGIN IMMEDIATE" if write else "BEGIN"
        self._raw: _Raw | None = None

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            if self._raw is None:
                raw = self._db._acquire()
                try:
                    raw.execute(self._begin)
                except BaseException:
                    self._db._release(raw)
                    raise
                self._raw = raw
            return work(self._raw)

        try:
            return await anyio.to_thread.run_sync(call)
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        except OverflowError as exc:  # an int beyond 64 bits: the statement did not run
            raise ValueOutOfRange(f"sqlite: {exc}") from exc

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        row: Row | None = await self._run(lambda raw: raw.execute(sql, args).fetchone())
        return row

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        rows: list[Row] = await self._run(lambda raw: raw.execute(sql, args).fetchall())
        return rows

    async def execute(self, sql: str, *args: Any) -> int:
        return await self._run(lambda raw: raw.execute(sql, args).rowcount)

    async def insert(self, sql: str, *args: Any) -> int:
        rows: list[Row] = await self._run(lambda raw: raw.execute(sql + " RETURNING id", args).fetchall())
        return int(rows[0]["id"])

    async def _finish(self, statement: str) -> None:
        raw, self._raw = self._raw, None
        if raw is None:
            return

        def finish() -> None:
            try:
                raw.execute(statement)
            finally:
                self._db._release(raw)  # closed instead if still in a transaction

        try:
            await anyio.to_thread.run_sync(finish)
        except sqlite3.Error as exc:
            raise _translate(exc) from exc

    async def commit(self) -> None:
        await self._finish("COMMIT")

    async def rollback(self) -> None:
        try:
            await self._finish("ROLLBACK")
        except (DatabaseUnavailable, sqlite3.Error) as exc:  # the connection is closed either way
            logger.warning("rollback failed: %s", exc)
