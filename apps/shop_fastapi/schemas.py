"""Request and response models (pydantic v2), constrained as apps/SPEC.md says."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Username = Annotated[str, Field(min_length=3, max_length=32, pattern=r"^[a-zA-Z0-9_]+$")]
NO_NUL = r"^[^\x00]*$"  # as apps/shop/models.py: PostgreSQL refuses NUL in text
Email = Annotated[str, Field(max_length=254, pattern="@")]
Password = Annotated[str, Field(min_length=8, max_length=128)]
Name = Annotated[str, Field(min_length=1, max_length=100, pattern=NO_NUL)]
Description = Annotated[str, Field(max_length=1000, pattern=NO_NUL)]
Price = Annotated[float, Field(gt=0)]
Tag = Annotated[str, Field(pattern=NO_NUL)]
Tags = Annotated[list[Tag], Field(max_length=10)]


class UserCreate(BaseModel):
    username: Username
    email: Email
    password: Password


class LoginBody(BaseModel):
    username: str
    password: str


class User(BaseModel):
    id: int
    username: str
    email: str
    roles: list[str]
    created_at: str


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"


class ItemCreate(BaseModel):
    name: Name
    description: Description | None = None
    price: Price
    tags: Tags = []


class ItemUpdate(BaseModel):
    """Every field optional; only the fields sent change (``model_dump(exclude_unset=True)``).

    ``name``, ``price`` and ``tags`` cannot be null; ``description: null`` clears the description.
    """

    model_config = ConfigDict(extra="ignore")

    name: Name = None  # type: ignore[assignment]
    description: Description | None = None
    price: Price = None  # type: ignore[assignment]
    tags: Tags = None  # type: ignore[assignment]


class Image(BaseModel):
    content_type: str
    size: int


class Item(BaseModel):
    id: int
    owner_id: int
    name: str
    description: str | None
    price: float
    tags: list[str]
    image: Image | None
    created_at: str
    updated_at: str


class ItemPage(BaseModel):
    items: list[Item]
    total: int
    skip: int
    limit: int


class Audit(BaseModel):
    id: int
    user_id: int
    action: str
    item_id: int | None
    at: str


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]
