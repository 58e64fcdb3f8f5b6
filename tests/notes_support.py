"""Support for the notes tests: migrated databases (SQLite files, throw-away PostgreSQL databases),
both apps built on one, and a probe route that hands a test the engine of the running lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic import command
from alembic.config import Config
from fastapi import Request
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp

from apps.notes import deps as toolkit_deps
from apps.notes.db import ALEMBIC_INI
from apps.notes.deps import EngineDep, Settings
from apps.notes.main import create_app
from apps.notes_fastapi import main as fastapi_main
from toolkit.testing import TestClient

__all__ = [
    "APPS",
    "BACKENDS",
    "REPO_ROOT",
    "NotesApp",
    "alembic_config",
    "build",
    "create_pg_database",
    "drop_pg_database",
    "migrate",
    "pg_database",
    "query_value",
    "reset",
    "run_sql",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
APPS = ("toolkit", "fastapi")
BACKENDS = ("sqlite", "postgresql")


# --- databases ------------------------------------------------------------------------------


def alembic_config(url: str) -> Config:
    """The service's alembic.ini, pointed at ``url``, leaving the test run's logging alone."""
    config = Config(str(ALEMBIC_INI))
    config.attributes["database_url"] = url
    config.attributes["configure_logging"] = False
    return config


def migrate(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


async def _admin(server_url: str, statement: str) -> None:
    connection = await asyncpg.connect(server_url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def create_pg_database(server_url: str) -> str:
    """A new empty database on the server of ``server_url``: its URL (the shop's ``test`` db and
    other tests' tables are never touched)."""
    name = f"notes_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    parsed = make_url(url)
    server = parsed.set(database="postgres").render_as_string(hide_password=False)
    asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))


def reset(url: str) -> None:
    """Empty both tables (ids start at 1 again)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        with contextlib.closing(sqlite3.connect(str(parsed.database))) as connection, connection:
            connection.execute("DELETE FROM notes")
            connection.execute("DELETE FROM authors")
        return
    asyncio.run(_execute(url, "TRUNCATE notes, authors RESTART IDENTITY"))


async def _execute(url: str, statement: str) -> None:
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    await _admin(plain, statement)


def run_sql(url: str, statement: str) -> None:
    """One statement on the database of ``url`` (outside any app)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        with contextlib.closing(sqlite3.connect(str(parsed.database))) as connection, connection:
            connection.execute(statement)
        return
    asyncio.run(_execute(url, statement))


def query_value(url: str, statement: str) -> Any:
    """The first column of the first row of ``statement`` (outside any app)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        with contextlib.closing(sqlite3.connect(str(parsed.database))) as connection:
            return connection.execute(statement).fetchone()[0]
    return asyncio.run(_fetch_value(url, statement))


async def _fetch_value(url: str, statement: str) -> Any:
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(plain)
    try:
        return await connection.fetchval(statement)
    finally:
        await connection.close()


# --- the apps -------------------------------------------------------------------------------


class NotesApp:
    """One of the two apps on a database, with ``engine()`` (the current lifespan's) and
    ``add_failing_route()`` (a handler that writes, then raises)."""

    def __init__(self, kind: str, url: str, *, debug: bool = False) -> None:
        self.kind = kind
        self.url = url
        self._engines: list[AsyncEngine] = []
        if kind == "toolkit":
            self.app: Any = create_app(Settings(database_url=url, debug=debug))

            @self.app.get("/_test/engine", include_in_schema=False)
            async def engine_probe(engine: EngineDep) -> None:
                self._engines.append(engine)

        else:
            self.app = fastapi_main.create_app(url, debug=debug)

            @self.app.get("/_test/engine", include_in_schema=False)
            async def engine_probe_fastapi(request: Request) -> None:
                self._engines.append(request.state.engine)

    @property
    def asgi(self) -> ASGIApp:
        return self.app  # type: ignore[no-any-return]

    def add_route(self, path: str, make: Callable[[Any], Callable[..., Any]], **options: Any) -> None:
        """``make(SessionDep)`` is the handler, given this app's session dependency."""
        session_dep = toolkit_deps.SessionDep if self.kind == "toolkit" else fastapi_main.SessionDep
        self.app.post(path, **options)(make(session_dep))

    def last_engine(self) -> AsyncEngine:
        assert self._engines, "call GET /_test/engine first"
        return self._engines[-1]


def build(kind: str, url: str, **options: Any) -> NotesApp:
    return NotesApp(kind, url, **options)


@contextlib.contextmanager
def pg_database(server_url: str) -> Iterator[str]:
    """A throw-away database, migrated, dropped at the end; its async URL."""
    url = create_pg_database(server_url)
    try:
        yield url
    finally:
        drop_pg_database(url)


# --- fixtures (imported by the test modules) --------------------------------------------


@pytest.fixture(scope="module", name="pg_url")
def fixture_pg_url(postgres_url: str) -> Iterator[str]:
    with pg_database(postgres_url) as url:
        migrate(url)
        yield url


@pytest.fixture(params=BACKENDS, name="db_url")
def fixture_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: a SQLite file of the test's own, or the module's PostgreSQL one."""
    if request.param == "sqlite":
        sqlite_url = f"sqlite:///{tmp_path / 'notes.db'}"
        migrate(sqlite_url)
        return sqlite_url
    pg_url: str = request.getfixturevalue("pg_url")
    reset(pg_url)
    return pg_url


@pytest.fixture(params=APPS, name="notes")
def fixture_notes(request: pytest.FixtureRequest, db_url: str) -> NotesApp:
    return build(request.param, db_url)


@pytest.fixture(name="client")
def fixture_client(notes: NotesApp) -> Iterator[TestClient]:
    with TestClient(notes.asgi) as client:
        yield client


def checked_out(notes: NotesApp, client: TestClient) -> int:
    assert client.get("/_test/engine").status_code == 200
    return int(notes.last_engine().pool.checkedout())  # type: ignore[attr-defined]


def author(client: TestClient, name: str = "ada") -> dict[str, Any]:
    response = client.post("/authors", json={"name": name})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def note(client: TestClient, author_id: int, title: str = "t", body: str = "b") -> dict[str, Any]:
    response = client.post("/notes", json={"author_id": author_id, "title": title, "body": body})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def count(url: str, table: str) -> int:
    return int(query_value(url, f"SELECT count(*) FROM {table}"))
