"""The notes service's Alembic migrations, on SQLite and PostgreSQL: the README's commands run as
written (the ``alembic`` CLI, then ``toolkit run``), up and down, the migration matches the models,
and both apps refuse to start on a database that is not at the head revision."""

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from live_server import Server as LiveServer
from live_server import free_port, wait_until_ready
from notes_support import APPS, REPO_ROOT, alembic_config, build, migrate, pg_database
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from apps.notes.db import MIGRATE_COMMAND, Base, DatabaseNotMigrated, create_engine
from toolkit.testing import TestClient

VENV_BIN = REPO_ROOT / ".venv" / "bin"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (a SQLite path not yet created, or a new PostgreSQL database)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'notes.db'}"
        return
    with pg_database(request.getfixturevalue("postgres_url")) as url:
        yield url


def _diff(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def _inspect(url: str) -> tuple[set[str], list[object]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_tables), await connection.run_sync(_diff)
    finally:
        await engine.dispose()


def alembic_cli(url: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    """``NOTES_DATABASE_URL=<url> .venv/bin/alembic -c apps/notes/alembic.ini <arguments>``,
    from the repository root, as the README says."""
    environment = {**os.environ, "NOTES_DATABASE_URL": url}
    return subprocess.run(
        [str(VENV_BIN / "alembic"), "-c", "apps/notes/alembic.ini", *arguments],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_readme_commands(empty_url: str, tmp_path: Path) -> None:
    """``alembic ... upgrade head``, then ``toolkit run apps.notes.main:app``, from the repo root."""
    upgraded = alembic_cli(empty_url, "upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "Running upgrade  -> 0001" in upgraded.stderr
    assert "0001 (head)" in alembic_cli(empty_url, "current").stdout
    port = free_port()
    log_path = tmp_path / "server.log"
    environment = {**os.environ, "NOTES_DATABASE_URL": empty_url, "PYTHONUNBUFFERED": "1"}
    command_line = [str(VENV_BIN / "toolkit"), "run", "apps.notes.main:app", "--host", "127.0.0.1"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command_line, "--port", str(port)], cwd=REPO_ROOT, env=environment, stdout=log, stderr=log
        )
    server = LiveServer(process, port, log_path)
    try:
        wait_until_ready(server)
        with httpx.Client(base_url=server.url, timeout=15) as client:
            ada = client.post("/authors", json={"name": "ada"}).json()
            created = client.post("/notes", json={"author_id": ada["id"], "title": "t", "body": "b"})
            assert created.status_code == 201
            assert client.get("/notes").json()["items"] == [created.json()]
    finally:
        process.terminate()
        assert process.wait(timeout=30) in (0, -15), server.log()  # uvicorn re-raises SIGTERM
    assert "Application shutdown complete" in server.log()  # the engine was disposed


@pytest.mark.parametrize("kind", APPS)
def test_refuses_to_start_unless_migrated(empty_url: str, kind: str) -> None:
    """Never migrated (a SQLite file is not created by the attempt), then migrated down to base:
    refused both times, with one line naming the command."""
    for step in ("new", "downgraded"):
        if step == "downgraded":
            migrate(empty_url)
            command.downgrade(alembic_config(empty_url), "base")
        notes = build(kind, empty_url)
        with pytest.raises(DatabaseNotMigrated) as refused, TestClient(notes.asgi):
            pass
        message = str(refused.value)
        assert "\n" not in message
        assert MIGRATE_COMMAND in message
        if step == "new" and empty_url.startswith("sqlite"):
            assert "does not exist" in message
            assert not Path(empty_url.removeprefix("sqlite:///")).exists()
    migrate(empty_url)
    with TestClient(build(kind, empty_url).asgi) as client:
        assert client.get("/notes").status_code == 200


def test_the_server_refuses_to_start_with_one_line_naming_the_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'never-migrated.db'}"
    environment = {**os.environ, "NOTES_DATABASE_URL": url}
    result = subprocess.run(
        [str(VENV_BIN / "toolkit"), "run", "apps.notes.main:app", "--port", str(free_port())],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    line = (
        f"refusing to start: the database sqlite+aiosqlite:///{tmp_path / 'never-migrated.db'} does not exist"
    )
    assert f"{line}: run `{MIGRATE_COMMAND}`\n" in result.stderr


def test_up_down_and_the_migration_matches_the_models(empty_url: str) -> None:
    migrate(empty_url)
    tables, diff = asyncio.run(_inspect(empty_url))
    assert {"authors", "notes", "alembic_version"} <= tables
    assert diff == []  # autogenerate would write nothing: the models and 0001 agree
    command.downgrade(alembic_config(empty_url), "base")
    tables, _ = asyncio.run(_inspect(empty_url))
    assert tables <= {"alembic_version"}
    migrate(empty_url)
    assert asyncio.run(_inspect(empty_url))[1] == []


def test_offline_sql_names_both_tables() -> None:
    """``alembic upgrade head --sql`` (no database) renders the DDL."""
    result = alembic_cli("postgresql://nobody@127.0.0.1:1/none", "upgrade", "head", "--sql")
    assert result.returncode == 0, result.stderr
    assert "CREATE TABLE authors" in result.stdout
    assert "CREATE TABLE notes" in result.stdout
