"""Dependencies: the settings, the engine and its session factory (app scope: one per lifespan),
and the request's ``AsyncSession`` (function scope: committed before the response is sent)."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from toolkit import Depends, HTTPException, Path, Query

from .db import MAX_ID, check_migrated, create_engine, create_sessionmaker, database_url_from_env

__all__ = [
    "EngineDep",
    "NoteId",
    "SessionDep",
    "Settings",
    "SettingsDep",
    "get_session",
    "get_settings",
    "open_engine",
    "open_sessionmaker",
]


@dataclass(frozen=True)
class Settings:
    database_url: str
    #: Tracebacks in 500 responses (development only); off, a client never sees SQL or a trace.
    debug: bool = False


def get_settings() -> Settings:
    """From the environment; ``create_app`` overrides this with the settings it was given."""
    return Settings(database_url=database_url_from_env())


SettingsDep = Annotated[Settings, Depends(get_settings, scope="app")]


async def open_engine(settings: SettingsDep) -> AsyncIterator[AsyncEngine]:
    """Created in the lifespan (so on the server's event loop), refused unless the database is
    migrated, disposed at shutdown."""
    engine = create_engine(settings.database_url)
    try:
        await check_migrated(engine)
        yield engine
    finally:
        await engine.dispose()


EngineDep = Annotated[AsyncEngine, Depends(open_engine, scope="app")]


def open_sessionmaker(engine: EngineDep) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


Sessionmaker = Annotated[
    async_sessionmaker[AsyncSession], Depends(open_sessionmaker, scope="app", sync_to_thread=False)
]


async def get_session(sessions: Sessionmaker) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed when the handler returns, rolled back when it raises,
    always closed (its connection back in the pool).

    Function scope: this runs after the handler built its response but *before* it is sent, so a
    commit that fails is the response (409 for a constraint, else the app's 503/500 handlers)
    and a client never hears 2xx for data that was not written.
    """
    async with sessions() as session:
        try:
            yield session
            await session.commit()
        except IntegrityError:
            await session.rollback()
            raise HTTPException(409, "Conflict with existing data") from None
        except BaseException:
            await session.rollback()
            raise


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]

NoteId = Annotated[int, Path(ge=1, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=100)]
Offset = Annotated[int, Query(ge=0, le=MAX_ID)]
