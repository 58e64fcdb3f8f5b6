"""The FastAPI twin of ``apps.notes``: ``uvicorn apps.notes_fastapi.main:app``.

Written as FastAPI's own docs and its careful users write it: the engine made in the lifespan and
handed to requests through the lifespan state, ``Annotated[AsyncSession, Depends(get_session)]``
(function scope, as the toolkit app's: committed before the response is sent), ORM rows returned
and read by ``response_model`` (``from_attributes``).
"""

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any, TypedDict

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import (
    IntegrityError,
    SQLAlchemyError,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from apps.notes import queries
from apps.notes.db import (
    MAX_ID,
    Note,
    check_migrated,
    create_engine,
    create_sessionmaker,
    database_url_from_env,
)
from apps.notes.errors import database_error

from .schemas import AuthorIn, AuthorOut, NoteIn, NoteOut, NotePage, NotePatch

__all__ = ["app", "create_app"]


class State(TypedDict):
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Committed when the handler returns (before the response is sent), rolled back if it raises."""
    async with request.state.sessions() as session:
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


def unknown_author(author_id: int) -> HTTPException:
    error = {"type": "not_found", "loc": ["body", "author_id"], "msg": "Author not found", "input": author_id}
    return HTTPException(422, [error])


async def _note(session: AsyncSession, note_id: int) -> Note:
    note = await queries.get_note(session, note_id)
    if note is None:
        raise HTTPException(404, "Note not found")
    return note


def internal_error(request: Request, exc: Exception) -> Response:
    """A JSON 500, as the toolkit's (Starlette's own is plain text); the error is logged."""
    return JSONResponse({"detail": "Internal Server Error"}, status_code=500)


def create_app(database_url: str | None = None, *, debug: bool = False, **options: Any) -> FastAPI:
    """The twin on ``database_url`` (default: ``NOTES_DATABASE_URL``); ``options`` go to ``FastAPI``
    (the benchmark turns its telemetry off, as its best users do)."""
    url = database_url or database_url_from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[State]:
        engine = create_engine(url)
        try:
            await check_migrated(engine)
            yield {"engine": engine, "sessions": create_sessionmaker(engine)}
        finally:
            await engine.dispose()

    app = FastAPI(title="notes", lifespan=lifespan, debug=debug, **options)
    app.add_exception_handler(SQLAlchemyError, database_error)
    app.add_exception_handler(Exception, internal_error)

    @app.get("/health", tags=["health"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/authors", status_code=201, response_model=AuthorOut, tags=["authors"])
    async def create_author(body: AuthorIn, session: SessionDep) -> Any:
        try:
            return await queries.add_author(session, body.name)
        except IntegrityError:
            raise HTTPException(409, "An author with this name already exists") from None

    @app.post("/notes", status_code=201, response_model=NoteOut, tags=["notes"])
    async def create_note(body: NoteIn, session: SessionDep) -> Any:
        note = await queries.add_note(session, body.author_id, body.title, body.body)
        if note is None:
            raise unknown_author(body.author_id)
        return note

    @app.get("/notes", response_model=NotePage, tags=["notes"])
    async def list_notes(
        session: SessionDep,
        limit: Annotated[int, Query(ge=1, le=100)] = 50,
        offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    ) -> Any:
        items: Sequence[Note] = await queries.page_of_notes(session, limit, offset)
        total = await queries.count_notes(session)
        return {"items": items, "total": total, "limit": limit, "offset": offset}

    @app.get("/notes/{note_id}", response_model=NoteOut, tags=["notes"])
    async def read_note(note_id: NoteId, session: SessionDep) -> Any:
        return await _note(session, note_id)

    @app.patch("/notes/{note_id}", response_model=NoteOut, tags=["notes"])
    async def update_note(note_id: NoteId, body: NotePatch, session: SessionDep) -> Any:
        note = await _note(session, note_id)
        for field, value in body.model_dump(exclude_unset=True).items():
            setattr(note, field, value)
        await session.flush()
        return note

    @app.delete("/notes/{note_id}", status_code=204, tags=["notes"])
    async def delete_note(note_id: NoteId, session: SessionDep) -> None:
        await session.delete(await _note(session, note_id))
        await session.flush()

    return app


app = create_app()
