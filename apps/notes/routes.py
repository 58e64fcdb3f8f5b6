"""Authors and notes. Handlers convert ORM rows into the response Structs while the session is
open (``msgspec.convert(row, NoteOut, from_attributes=True)``); every note's author was
eager-loaded by its query, so nothing is lazy-loaded (which async code cannot do)."""

from typing import Any

import msgspec
from sqlalchemy.exc import IntegrityError

from toolkit import HTTPException, Router

from . import queries
from .db import Note
from .deps import Limit, NoteId, Offset, SessionDep
from .schemas import AuthorIn, AuthorOut, NoteIn, NoteOut, NotePage, NotePatch

__all__ = ["router"]

router = Router()

NOTE_NOT_FOUND: dict[int | str, Any] = {404: {"description": "Note not found"}}


def unknown_author(author_id: int) -> HTTPException:
    """422 in the shape of a validation error: the body names an author that does not exist."""
    error: dict[str, Any] = {
        "type": "not_found",
        "loc": ["body", "author_id"],
        "msg": "Author not found",
        "input": author_id,
    }
    return HTTPException(422, [error])


@router.get("/health", tags=["health"])
async def health() -> dict[str, str]:
    """The process is up (the database is not checked)."""
    return {"status": "ok"}


@router.post("/authors", status_code=201, tags=["authors"], responses={409: {"description": "Name taken"}})
async def create_author(body: AuthorIn, session: SessionDep) -> AuthorOut:
    try:
        author = await queries.add_author(session, body.name)
    except IntegrityError:  # the unique name, at the flush (the dependency rolls back)
        raise HTTPException(409, "An author with this name already exists") from None
    return msgspec.convert(author, AuthorOut, from_attributes=True)


@router.post("/notes", status_code=201, tags=["notes"])
async def create_note(body: NoteIn, session: SessionDep) -> NoteOut:
    note = await queries.add_note(session, body.author_id, body.title, body.body)
    if note is None:
        raise unknown_author(body.author_id)
    return msgspec.convert(note, NoteOut, from_attributes=True)


@router.get("/notes", tags=["notes"])
async def list_notes(session: SessionDep, limit: Limit = 50, offset: Offset = 0) -> NotePage:
    """A page of notes ordered by id, each with its author, and the total count."""
    rows = await queries.page_of_notes(session, limit, offset)
    items = msgspec.convert(rows, list[NoteOut], from_attributes=True)
    return NotePage(items=items, total=await queries.count_notes(session), limit=limit, offset=offset)


async def _note(session: SessionDep, note_id: int) -> Note:
    note = await queries.get_note(session, note_id)
    if note is None:
        raise HTTPException(404, "Note not found")
    return note


@router.get("/notes/{note_id}", tags=["notes"], responses=NOTE_NOT_FOUND)
async def read_note(note_id: NoteId, session: SessionDep) -> NoteOut:
    return msgspec.convert(await _note(session, note_id), NoteOut, from_attributes=True)


@router.patch("/notes/{note_id}", tags=["notes"], responses=NOTE_NOT_FOUND)
async def update_note(note_id: NoteId, body: NotePatch, session: SessionDep) -> NoteOut:
    """Changes the fields sent (the others keep their values)."""
    note = await _note(session, note_id)
    for field in body.__struct_fields__:
        value = getattr(body, field)
        if value is not msgspec.UNSET:
            setattr(note, field, value)
    await session.flush()
    return msgspec.convert(note, NoteOut, from_attributes=True)


@router.delete("/notes/{note_id}", status_code=204, tags=["notes"], responses=NOTE_NOT_FOUND)
async def delete_note(note_id: NoteId, session: SessionDep) -> None:
    await session.delete(await _note(session, note_id))
    await session.flush()
