"""The request and response bodies (msgspec Structs). Every string and number is bounded, so a
value the database cannot hold is a 422, not a 500."""

from datetime import datetime
from typing import Annotated

import msgspec

from .db import MAX_ID

__all__ = ["AuthorIn", "AuthorOut", "AuthorRef", "NoteIn", "NoteOut", "NotePage", "NotePatch"]

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Body = Annotated[str, msgspec.Meta(max_length=100_000)]
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
