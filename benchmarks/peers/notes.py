"""The SQLAlchemy scenario's apps: ``apps/notes`` (toolkit) and ``apps/notes_fastapi`` (its FastAPI
twin, as its best users write it: FastAPI's telemetry off, as the tuned peer's).

Each is built with its own ``create_app`` on a temporary SQLite database of its own (deleted when
the process exits), migrated with Alembic (``upgrade head``, as the README says to) and seeded
through the shared ``apps.notes.queries`` with ``spec.NOTES_AUTHORS`` and ``spec.NOTES``. The
database is never written to while timed, so every page request sees the same rows. Both apps run
the same SQL through the same SQLAlchemy engine options (``apps.notes.db``): what differs is the
framework, the dependency injection and the serialization of the ORM rows (``msgspec.convert(...,
from_attributes=True)`` vs pydantic's ``response_model`` with ``from_attributes``).

Nothing here runs at import: a peer module builds the app on first access (its ``__getattr__``).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..spec import NOTES, NOTES_AUTHORS
from .shop import run_apart

__all__ = ["build"]

APPS = ("notes_app",)
ALEMBIC_INI = Path(__file__).resolve().parents[2] / "apps" / "notes" / "alembic.ini"


def migrate(url: str) -> None:
    """``alembic -c apps/notes/alembic.ini upgrade head`` on ``url`` (its own event loop)."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(ALEMBIC_INI))
    config.attributes["database_url"] = url
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")


async def _prepare(url: str) -> None:
    """Migrate, then seed. Alembic's ``env.py`` runs an event loop of its own (``asyncio.run``),
    so the migration runs in a worker thread, off this one's running loop."""
    import anyio.to_thread

    from apps.notes import queries
    from apps.notes.db import create_engine, create_sessionmaker

    await anyio.to_thread.run_sync(migrate, url)
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session:
            authors = [await queries.add_author(session, name) for name in NOTES_AUTHORS]
            for note in NOTES:
                await queries.add_note(session, authors[note["author"]].id, note["title"], note["body"])
            await session.commit()
    finally:
        await engine.dispose()


def build(kind: str, name: str) -> Any:
    """The ``kind`` ("toolkit" or "fastapi_tuned") notes app for the cases naming ``name``."""
    if name not in APPS:
        raise ValueError(f"unknown notes app {name!r}")
    directory = Path(tempfile.mkdtemp(prefix=f"benchmarks-{kind}-{name}-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    url = f"sqlite+aiosqlite:///{directory / 'notes.db'}"
    run_apart(lambda: _prepare(url))
    if kind == "toolkit":
        from apps.notes.deps import Settings
        from apps.notes.main import create_app

        return create_app(Settings(database_url=url))
    from apps.notes_fastapi.main import create_app as create_fastapi_app

    from .fastapi_tuned_app import TELEMETRY_OFF

    return create_fastapi_app(url, telemetry=TELEMETRY_OFF)
