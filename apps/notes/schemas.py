"""The request and response bodies (msgspec Structs). Every string and number is bounded, so a
value the database cannot hold is a 422, not a 500."""

from datetime import datetime
from typing import Annotated

import msgspec

from .db import MAX_ID

__all__ = ["NO_NUL", "AuthorIn", "AuthorOut", "AuthorRef", "NoteIn", "NoteOut", "NotePage", "NotePatch"]

#: No NUL character: PostgreSQL's ``text`` cannot hold one (SQLite can: refused on both alike).
#: One linear scan of the string; ``search`` finds the first NUL without backtracking.
NO_NUL = r"^[^\x00]*$"
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=NO_NUL)]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=NO_NUL)]
Body = Annotated[str, msgspec.Meta(max_length=100_000, pattern=NO_NUL)]
Id = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]


class AuthorIn(msgspec.Struct):
    name: Name


class AuthorOut(msgspec.Struct):
    id: int
    name: str
    created_at: datetime


class AuthorRef(msgspec.Struct):
    id: int
    name: str


class NoteIn(msgspec.Struct):
    author_id: Id
    title: Title
    body: Body


class NotePatch(msgspec.Struct):
    """Only the fields sent are changed (``null`` is refused: neither may be empty)."""

    title: Title | msgspec.UnsetType = msgspec.UNSET
    body: Body | msgspec.UnsetType = msgspec.UNSET


class NoteOut(msgspec.Struct):
    id: int
    title: str
    body: str
    created_at: datetime
    author: AuthorRef


class NotePage(msgspec.Struct):
    items: list[NoteOut]
    total: int
    limit: int
    offset: int
