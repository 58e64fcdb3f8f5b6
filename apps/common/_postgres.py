"""PostgreSQL behind ``apps.common.db.Database``: an asyncpg pool (``pip install 'toolkit[postgres]'``)."""

import contextlib
import functools
import re
from collections.abc import Iterator
from typing import Any

try:
    import asyncpg  # type: ignore[import-untyped]
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("PostgreSQL needs asyncpg: pip install 'toolkit[postgres]'") from exc

from ._base import Connection, Database, DatabaseUnavailable, IntegrityError, Row, ValueOutOfRange, schema

__all__ = ["PostgresDatabase", "to_dollar_placeholders"]

ACQUIRE_TIMEOUT = 5.0
_SCHEMA_LOCK = 0x5_40_9  # pg_advisory_xact_lock key: one process creates the schema at a time

# A quoted literal (skipped) or a ``?`` placeholder.
_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\?")

# "Not now" errors: the server is gone, restarting, overloaded, or the statement lost a race.
_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,  # e.g. the pool is closed
    asyncpg.OperatorInterventionError,  # shutdown, cannot connect now, statement timeout
    asyncpg.InsufficientResourcesError,  # too many connections, disk full
    asyncpg.TransactionRollbackError,  # deadlock, serialization failure
    asyncpg.LockNotAvailableError,
)


@functools.lru_cache(maxsize=1024)
def to_dollar_placeholders(sql: str) -> str:
    """``WHERE a = ? AND b = '?'`` -> ``WHERE a = $1 AND b = '?'``."""
    numbers = iter(range(1, sql.count("?") + 1))
    return _PLACEHOLDER.sub(lambda m: m.group(0) if m.group(0) != "?" else f"${next(numbers)}", sql)


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise IntegrityError(str(exc)) from exc
    except asyncpg.DataError as exc:
        # A value refused. By the server (SQLSTATE class 22, "data exception"; no ``__cause__``): a
        # NUL character in ``text`` (CharacterNotInRepertoireError), a numeric overflow, a text its
        # type cannot parse. Or by asyncpg before sending anything ("invalid input for query
        # argument $1: ..."), with the Python error as cause: an OverflowError is an integer the
        # column cannot hold ("value out of int32 range"). Either way a value no row can hold, as
        # a client sent it: neither "not now" nor a 500.
        if exc.__cause__ is None or isinstance(exc.__cause__, OverflowError):
            raise ValueOutOfRange(f"postgresql: {type(exc).__name__}: {exc}") from exc
        raise  # an argument of the wrong Python type (a TypeError...): a bug of ours
    except _UNAVAILABLE as exc:
        # asyncpg's client-side ``DataError`` is also an InterfaceError (and a ValueError): never
        # "not now"; an integer too large for its column, else a bug, as above.
        if isinstance(exc.__cause__, OverflowError):
            raise ValueOutOfRange(f"postgresql: {exc}") from exc
        if isinstance(exc, ValueError):
            raise
        raise DatabaseUnavailable(f"postgresql: {type(exc).__name__}: {exc}") from exc


def _rowcount(status: str) -> int:
    """``"UPDATE 3"`` -> 3, ``"INSERT 0 1"`` -> 1, ``"CREATE TABLE"`` -> 0."""
    last = status.rpartition(" ")[2]
    return int(last) if last.isdigit() else 0


class PostgresDatabase(Database):
    dialect = "postgresql"

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, url: str, *, min_size: int = 1, max_size: int = 10) -> "PostgresDatabase":
        with _translated():
            pool = await asyncpg.create_pool(
                url, min_size=min_size, max_size=max_size, timeout=ACQUIRE_TIMEOUT, command_timeout=30
            )
        db = cls(pool)
        try:
            async with db.transaction(write=True) as conn:
                await conn.execute("SELECT pg_advisory_xact_lock(?)", _SCHEMA_LOCK)
                for statement in schema(cls.dialect):
                    await conn.execute(statement)
        except BaseException:
            await db.close()
            raise
        return db

    async def close(self) -> None:
        await self._pool.close()

    async def ping(self) -> None:
        async with self.transaction() as conn:
            await conn.fetchone("SELECT 1 AS ok")

    def _connection(self, write: bool) -> Connection:
        return _PostgresConnection(self._pool)


class _PostgresConnection(Connection):
    dialect = "postgresql"

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._raw: Any = None
        self._transaction: Any = None

    async def _conn(self) -> Any:
        if self._raw is None:
            with _translated():
                raw = await self._pool.acquire(timeout=ACQUIRE_TIMEOUT)
                try:
                    transaction = raw.transaction()
                    await transaction.start()
                except BaseException:
                    await self._pool.release(raw)
                    raise
            self._raw, self._transaction = raw, transaction
        return self._raw

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        conn = await self._conn()
        with _translated():
            record = await conn.fetchrow(to_dollar_placeholders(sql), *args)
        return None if record is None else dict(record)

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        conn = await self._conn()
        with _translated():
            records = await conn.fetch(to_dollar_placeholders(sql), *args)
        return [dict(record) for record in records]

    async def execute(self, sql: str, *args: Any) -> int:
        conn = await self._conn()
        with _translated():
            status = await conn.execute(to_dollar_placeholders(sql), *args)
        return _rowcount(status)

    async def insert(self, sql: str, *args: Any) -> int:
        conn = await self._conn()
        with _translated():
            new_id = await conn.fetchval(to_dollar_placeholders(sql + " RETURNING id"), *args)
        return int(new_id)

    async def _finish(self, commit: bool) -> None:
        raw, transaction = self._raw, self._transaction
        if raw is None:
            return
        self._raw = self._transaction = None
        try:
            with _translated():
                await (transaction.commit() if commit else transaction.rollback())
        finally:
            await self._pool.release(raw)  # resets a connection left in a failed transaction

    async def commit(self) -> None:
        await self._finish(commit=True)

    async def rollback(self) -> None:
        with contextlib.suppress(DatabaseUnavailable):  # the server is gone: nothing left to undo
            await self._finish(commit=False)
