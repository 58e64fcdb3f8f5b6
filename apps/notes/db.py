"""The data layer both notes apps share (framework-neutral): SQLAlchemy 2.0 models, the URL's
normalisation to the async drivers, the engine and session factory, and the migration check.

The schema is Alembic's (``apps/notes/migrations``): the apps never create tables, they refuse to
start on a database that is not at the head revision (``check_migrated``).
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, MetaData, String, Text, event
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.types import TypeDecorator

__all__ = [
    "ALEMBIC_INI",
    "DEFAULT_DATABASE_URL",
    "MAX_ID",
    "MIGRATE_COMMAND",
    "Author",
    "Base",
    "DatabaseNotMigrated",
    "Note",
    "async_url",
    "check_migrated",
    "create_engine",
    "create_sessionmaker",
    "database_url_from_env",
]

logger = logging.getLogger("apps.notes")

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./notes.db"
#: Ids are signed 64-bit integers (PostgreSQL's bigint, SQLite's integer): bound parameters to it.
MAX_ID = 2**63 - 1
ALEMBIC_INI = Path(__file__).with_name("alembic.ini")
MIGRATE_COMMAND = ".venv/bin/alembic -c apps/notes/alembic.ini upgrade head"

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
_ALIASES = {"postgres": "postgresql"}


def async_url(url: str) -> str:
    """``url`` with the async driver of its database: ``sqlite:///x.db`` -> ``sqlite+aiosqlite``,
    ``postgresql://`` (or ``postgres://``, ``postgresql+psycopg2://``) -> ``postgresql+asyncpg``."""
    parsed = make_url(url)
    backend = _ALIASES.get(parsed.get_backend_name(), parsed.get_backend_name())
    driver = _ASYNC_DRIVERS.get(backend)
    if driver is None:
        raise ValueError(f"unsupported database {parsed.drivername!r}: use sqlite:// or postgresql://")
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def database_url_from_env() -> str:
    """``NOTES_DATABASE_URL`` (default ``sqlite+aiosqlite:///./notes.db``), with its async driver."""
    return async_url(os.environ.get("NOTES_DATABASE_URL") or DEFAULT_DATABASE_URL)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every database (SQLite keeps no offset: stored as naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and dialect.name == "sqlite":
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def _now() -> datetime:
    return datetime.now(UTC)


# SQLite makes an INTEGER PRIMARY KEY the rowid (autoincrementing); elsewhere it is a bigint.
_Id = BigInteger().with_variant(Integer(), "sqlite")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Author(Base):
    __tablename__ = "authors"

    id: Mapped[int] = mapped_column(_Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)


class Note(Base):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(_Id, primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_now)
    # lazy="raise": async code cannot lazy-load, so a query that forgot to eager-load the author
    # fails with a clear InvalidRequestError at once (not a MissingGreenlet, or a load per row).
    author: Mapped[Author] = relationship(lazy="raise")


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")  # off by default in SQLite
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not wait for the writer
    cursor.close()


def create_engine(url: str, **options: Any) -> AsyncEngine:
    """An async engine for ``url`` (normalised by ``async_url``); one per event loop (lifespan)."""
    url = async_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        # A pool of connections to a file (SQLAlchemy 2.1's default; 2.0's opened a new
        # connection, and aiosqlite thread, per checkout).
        options.setdefault("poolclass", AsyncAdaptedQueuePool)
    engine = create_async_engine(url, **options)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose objects stay readable after the commit (their attributes are not expired:
    reading one would be a lazy load, which async code cannot do)."""
    return async_sessionmaker(engine, expire_on_commit=False)


class DatabaseNotMigrated(RuntimeError):
    """The database is not at the head revision of the migrations: the app refuses to start."""


def _current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(Config(str(ALEMBIC_INI))).get_current_head()


async def check_migrated(engine: AsyncEngine) -> None:
    """Raise ``DatabaseNotMigrated`` (logged first as one line naming the command to run) unless
    the database is at the head revision. A missing SQLite file is not created here."""
    shown = engine.url.render_as_string(hide_password=True)
    database = engine.url.database
    problem = None
    if (
        engine.dialect.name == "sqlite"
        and database not in (None, "", ":memory:")
        and not Path(database).exists()
    ):
        problem = "does not exist"
    else:
        async with engine.connect() as connection:
            current = await connection.run_sync(_current_revision)
        head = head_revision()
        if current != head:
            problem = f"is at revision {current or 'none'}, not {head}"
    if problem is not None:
        message = f"refusing to start: the database {shown} {problem}: run `{MIGRATE_COMMAND}`"
        logger.error("%s", message)
        raise DatabaseNotMigrated(message)
