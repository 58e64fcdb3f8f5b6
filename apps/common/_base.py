"""The dialect-neutral part of ``apps.common.db``: errors, schema and the abstract classes."""

import abc
import contextlib
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import anyio

__all__ = [
    "MAX_ID",
    "Connection",
    "Database",
    "DatabaseUnavailable",
    "IntegrityError",
    "Row",
    "ValueOutOfRange",
    "schema",
]

Row = dict[str, Any]

#: The largest id or offset the apps accept: a signed 64-bit integer (SQLite's ``INTEGER``,
#: PostgreSQL's ``bigint``). Larger values are a 422 before they reach the database.
MAX_ID = 2**63 - 1


class DatabaseUnavailable(Exception):
    """The database cannot answer now (locked, unreachable, closed, out of space): try again later."""


class IntegrityError(Exception):
    """A constraint (unique, foreign key, not null) refused the statement."""


class ValueOutOfRange(ValueError):
    """A parameter the database cannot take (an integer beyond its column's range); nothing ran.

    No stored row can hold such a value, so a lookup by it finds nothing: the repository answers
    "not found" (an empty page, ``None``); the apps map any other occurrence to a 422.
    """


def schema(dialect: str) -> list[str]:
    """``CREATE TABLE IF NOT EXISTS`` statements for ``dialect`` ("sqlite" or "postgresql")."""
    sqlite = dialect == "sqlite"
    pk = "INTEGER PRIMARY KEY AUTOINCREMENT" if sqlite else "SERIAL PRIMARY KEY"
    real = "REAL" if sqlite else "DOUBLE PRECISION"
    return [
        f"""CREATE TABLE IF NOT EXISTS users (
            id {pk},
            username TEXT NOT NULL UNIQUE,
            email TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            roles TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
        f"""CREATE TABLE IF NOT EXISTS items (
            id {pk},
            owner_id INTEGER NOT NULL REFERENCES users (id),
            name TEXT NOT NULL,
            description TEXT,
            price {real} NOT NULL,
            tags TEXT NOT NULL,
            image_content_type TEXT,
            image_size INTEGER,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS items_owner_id ON items (owner_id)",
        # No foreign key on item_id: the audit trail outlives the items it mentions.
        f"""CREATE TABLE IF NOT EXISTS audit (
            id {pk},
            user_id INTEGER NOT NULL,
            action TEXT NOT NULL,
            item_id INTEGER,
            at TEXT NOT NULL
        )""",
    ]


class Connection(abc.ABC):
    """One transaction's statements. Rows are dicts keyed by column name."""

    dialect: ClassVar[str]

    @abc.abstractmethod
    async def fetchone(self, sql: str, *args: Any) -> Row | None: ...

    @abc.abstractmethod
    async def fetchall(self, sql: str, *args: Any) -> list[Row]: ...

    @abc.abstractmethod
    async def execute(self, sql: str, *args: Any) -> int:
        """Run a statement; the number of rows it changed."""

    @abc.abstractmethod
    async def insert(self, sql: str, *args: Any) -> int:
        """Run an ``INSERT`` (written without ``RETURNING``); the new row's ``id``."""

    @abc.abstractmethod
    async def commit(self) -> None:
        """Commit what was done so far; a later statement starts a new transaction."""

    @abc.abstractmethod
    async def rollback(self) -> None:
        """Undo what was done since the last commit."""


class Database(abc.ABC):
    """A pool of connections to one database, with the schema created on ``connect``."""

    dialect: ClassVar[str]

    @classmethod
    async def connect(cls, url: str) -> "Database":
        """``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or ``postgresql://...``."""
        if url.startswith(("postgresql://", "postgres://")):
            from ._postgres import PostgresDatabase

            return await PostgresDatabase.open(url)
        if url.startswith("sqlite:"):
            from ._sqlite import SQLiteDatabase

            return await SQLiteDatabase.open(url)
        raise ValueError(f"unsupported database URL {url!r}: use sqlite:///path or postgresql://...")

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the pool; later transactions raise ``DatabaseUnavailable``."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise ``DatabaseUnavailable`` unless the database answers a query."""

    @abc.abstractmethod
    def _connection(self, write: bool) -> Connection: ...

    @contextlib.asynccontextmanager
    async def transaction(self, *, write: bool = False) -> AsyncIterator[Connection]:
        """A transaction: committed when the block ends, rolled back if it raises.

        ``write=True`` says the transaction will write: SQLite then takes the write lock at the
        first statement (``BEGIN IMMEDIATE``), so a read-then-write transaction waits for other
        writers instead of failing when it upgrades. PostgreSQL ignores it.
        """
        conn = self._connection(write)
        try:
            yield conn
        except BaseException:
            with anyio.CancelScope(shield=True):
                await conn.rollback()
            raise
        await conn.commit()
