"""Request and response bodies (msgspec Structs), constrained as apps/SPEC.md says.

Response models list only public fields: a user row's ``password_hash`` is dropped when the
toolkit converts the returned dict to ``User``.
"""

from typing import Annotated

import msgspec
from msgspec import UNSET, UnsetType

__all__ = [
    "UNSET",
    "Audit",
    "Health",
    "Image",
    "Item",
    "ItemCreate",
    "ItemPage",
    "ItemUpdate",
    "LoginBody",
    "Readiness",
    "Token",
    "User",
    "UserCreate",
]

Username = Annotated[str, msgspec.Meta(min_length=3, max_length=32, pattern="^[a-zA-Z0-9_]+$")]
# PostgreSQL refuses a NUL character in text: refused here (a 422), not stored or searched for.
NO_NUL = r"^[^\x00]*$"
Email = Annotated[str, msgspec.Meta(max_length=254, pattern="@")]  # NUL: ValueOutOfRange, a 422
Password = Annotated[str, msgspec.Meta(min_length=8, max_length=128)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=NO_NUL)]
Description = Annotated[str, msgspec.Meta(max_length=1000, pattern=NO_NUL)]
Price = Annotated[float, msgspec.Meta(gt=0)]
Tag = Annotated[str, msgspec.Meta(pattern=NO_NUL)]
Tags = Annotated[list[Tag], msgspec.Meta(max_length=10)]


class UserCreate(msgspec.Struct):
    username: Username
    email: Email
    password: Password


class LoginBody(msgspec.Struct):
    username: str
    password: str


class User(msgspec.Struct):
    id: int
    username: str
    email: str
    roles: list[str]
    created_at: str


class Token(msgspec.Struct):
    access_token: str
    token_type: str = "bearer"


class ItemCreate(msgspec.Struct, kw_only=True):
    name: Name
    description: Description | None = None
    price: Price
    tags: Tags = msgspec.field(default_factory=list)


class ItemUpdate(msgspec.Struct):
    """Only the fields sent change: an absent field stays ``UNSET``; ``description: null`` clears it."""

    name: Name | UnsetType = UNSET
    description: Description | UnsetType | None = UNSET
    price: Price | UnsetType = UNSET
    tags: Tags | UnsetType = UNSET

    def changes(self) -> dict[str, object]:
        return {
            field: value for field in self.__struct_fields__ if (value := getattr(self, field)) is not UNSET
        }


class Image(msgspec.Struct):
    content_type: str
    size: int


class Item(msgspec.Struct):
    id: int
    owner_id: int
    name: str
    description: str | None
    price: float
    tags: list[str]
    image: Image | None
    created_at: str
    updated_at: str


class ItemPage(msgspec.Struct):
    items: list[Item]
    total: int
    skip: int
    limit: int


class Audit(msgspec.Struct):
    id: int
    user_id: int
    action: str
    item_id: int | None
    at: str


class Health(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct):
    status: str
    checks: dict[str, str]
