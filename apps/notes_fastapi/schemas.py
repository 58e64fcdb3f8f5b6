"""Pydantic models, read from ORM rows (``from_attributes``), bounded as ``apps.notes.schemas``."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from apps.notes.db import MAX_ID
from apps.notes.schemas import NO_NUL

__all__ = ["AuthorIn", "AuthorOut", "AuthorRef", "NoteIn", "NoteOut", "NotePage", "NotePatch"]

Name = Annotated[str, Field(min_length=1, max_length=100, pattern=NO_NUL)]
Title = Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)]
Body = Annotated[str, Field(max_length=100_000, pattern=NO_NUL)]


class AuthorIn(BaseModel):
    name: Name


class AuthorOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    created_at: datetime


class AuthorRef(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str


class NoteIn(BaseModel):
    author_id: Annotated[int, Field(ge=1, le=MAX_ID)]
    title: Title
    body: Body


class NotePatch(BaseModel):
    """Only the fields sent are changed (``model_dump(exclude_unset=True)``). The defaults are not
    validated, so a field left out is fine while ``null`` sent is a 422 (``string_type``)."""

    title: Title = None  # type: ignore[assignment]  # see above: None only when left out
    body: Body = None  # type: ignore[assignment]


class NoteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    body: str
    created_at: datetime
    author: AuthorRef


class NotePage(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    items: list[NoteOut]
    total: int
    limit: int
    offset: int
