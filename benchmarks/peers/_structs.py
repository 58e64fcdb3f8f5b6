"""The msgspec models of the peers that validate with msgspec (toolkit, Litestar, the Starlette
floor): one definition, so the three validate exactly the same thing. The FastAPI and BlackSheep
peers declare the same fields and constraints as pydantic models."""

from __future__ import annotations

from typing import Annotated

import msgspec

__all__ = ["Catalog", "Entry", "Item", "Owner"]


class Owner(msgspec.Struct):
    id: int
    email: str


class Item(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
    price: Annotated[float, msgspec.Meta(gt=0)]
    tags: list[str] = []
    owner: Owner | None = None


class Entry(msgspec.Struct):
    """One item of the ``cached`` scenario's catalog."""

    id: int
    name: str
    price: float
    tags: list[str]


class Catalog(msgspec.Struct):
    items: list[Entry]
