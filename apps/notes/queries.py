"""The notes service's queries, shared by both apps (so a benchmark compares the frameworks, not
the SQL). Every note is loaded with its author (``joinedload``: one query, no lazy load)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from .db import Author, Note

__all__ = ["add_author", "add_note", "count_notes", "get_note", "page_of_notes"]

_WITH_AUTHOR = joinedload(Note.author)


async def add_author(session: AsyncSession, name: str) -> Author:
    """Insert an author (flushed: its id and ``created_at`` are set). A taken name raises
    ``IntegrityError`` here, at the flush, and leaves the session to be rolled back."""
    author = Author(name=name)
    session.add(author)
    await session.flush()
    return author


async def add_note(session: AsyncSession, author_id: int, title: str, body: str) -> Note | None:
    """Insert a note of an existing author (flushed, author loaded); ``None``: no such author."""
    author = await session.get(Author, author_id)
    if author is None:
        return None
    note = Note(author=author, title=title, body=body)
    session.add(note)
    await session.flush()
    return note


async def get_note(session: AsyncSession, note_id: int) -> Note | None:
    return await session.get(Note, note_id, options=[_WITH_AUTHOR])


async def page_of_notes(session: AsyncSession, limit: int, offset: int) -> Sequence[Note]:
    """Notes ordered by id, each with its author: one SELECT ... JOIN authors."""
    query = select(Note).options(_WITH_AUTHOR).order_by(Note.id).limit(limit).offset(offset)
    return (await session.scalars(query)).all()


async def count_notes(session: AsyncSession) -> int:
    return (await session.scalar(select(func.count()).select_from(Note))) or 0
