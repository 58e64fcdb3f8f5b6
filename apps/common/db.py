"""The database: SQLite (stdlib ``sqlite3`` in worker threads) or PostgreSQL (asyncpg), one API.

::

    db = await Database.connect("sqlite:///./shop.db")  # or "postgresql://user@host/db"
    async with db.transaction() as conn:  # commit on success, rollback on an exception
        row = await conn.fetchone("SELECT * FROM users WHERE id = ?", 1)
    await db.close()

SQL is written once with ``?`` placeholders (translated to ``$1..$n`` for asyncpg). A connection
is taken from the pool at the first statement of a transaction, not before, and given back at
``commit()``/``rollback()``: a request that never queries never touches the database, and a
handler may ``commit()`` early to make its writes durable and visible before it responds (a later
statement starts a new transaction). A locked, unreachable or closed database raises
``DatabaseUnavailable``; a violated constraint raises ``IntegrityError``; a parameter the database
cannot represent (an integer beyond 64 bits, or 32 for a PostgreSQL ``integer``; on PostgreSQL any
value it refuses, a NUL character in ``text`` included) raises ``ValueOutOfRange``.
"""

from ._base import (
    MAX_ID,
    Connection,
    Database,
    DatabaseUnavailable,
    IntegrityError,
    Row,
    ValueOutOfRange,
    schema,
)
from ._sqlite import SQLiteDatabase

__all__ = [
    "MAX_ID",
    "Connection",
    "Database",
    "DatabaseUnavailable",
    "IntegrityError",
    "Row",
    "SQLiteDatabase",
    "ValueOutOfRange",
    "schema",
]
