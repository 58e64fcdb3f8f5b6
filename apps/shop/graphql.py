"""GraphQL at ``/graphql`` (strawberry, the ``graphql`` extra): the signed-in user and the items.

Authentication is the REST API's: the context getter takes ``CurrentUser``, the shop's own
``current_user`` (a bearer token, else the session cookie), so a request without valid
credentials is refused before its query is read: 401 + ``WWW-Authenticate: Bearer`` and
``{"errors": [{"message": "Not authenticated", "extensions": {"code": "UNAUTHENTICATED", ...}}]}``.
The request's transaction (``Conn``) is the context's ``conn``: committed after the response,
rolled back if a resolver raises; ``createItem`` commits before it answers, as ``POST /items``.

::

    query { me { id username } items(limit: 10, offset: 0) { total items { id name price } } }
    mutation { createItem(name: "Widget", price: 9.5, tags: ["blue"]) { id ownerId } }
"""

import math
from typing import Any

import msgspec
import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from apps.common import repository
from apps.common.db import MAX_ID, ValueOutOfRange
from toolkit import Response
from toolkit.graphql import GraphQL

from .deps import BroadcasterDep, Conn, CurrentUser, DatabaseDep
from .models import ItemCreate
from .routes import items as item_routes

__all__ = ["Item", "ItemPage", "Mutation", "Query", "User", "create_graphql", "get_context", "schema"]

MAX_PAGE = 100  # as GET /items


@strawberry.type
class User:
    id: int
    username: str
    email: str
    roles: list[str]
    created_at: str


@strawberry.type
class Item:
    id: int
    owner_id: int
    name: str
    description: str | None
    price: float
    tags: list[str]
    created_at: str
    updated_at: str


@strawberry.type
class ItemPage:
    items: list[Item]
    total: int
    limit: int
    offset: int


def _user(row: dict[str, Any]) -> User:
    return User(
        id=row["id"],
        username=row["username"],
        email=row["email"],
        roles=list(row["roles"]),
        created_at=row["created_at"],
    )


def _item(row: dict[str, Any]) -> Item:
    return Item(
        id=row["id"],
        owner_id=row["owner_id"],
        name=row["name"],
        description=row["description"],
        price=row["price"],
        tags=list(row["tags"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _bad_input(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "BAD_USER_INPUT"})


async def get_context(
    user: CurrentUser, conn: Conn, db: DatabaseDep, events: BroadcasterDep
) -> dict[str, Any]:
    """Resolved like a route's dependencies (``app.dependency_overrides`` apply)."""
    return {"user": user, "conn": conn, "db": db, "events": events}


@strawberry.type
class Query:
    @strawberry.field(description="The signed-in user.")
    def me(self, info: Info) -> User:
        return _user(info.context["user"])

    @strawberry.field(description="A page of items by id, as GET /items.")
    async def items(self, info: Info, limit: int = 20, offset: int = 0) -> ItemPage:
        if not 1 <= limit <= MAX_PAGE:
            raise _bad_input(f"limit must be from 1 to {MAX_PAGE}")
        if not 0 <= offset <= MAX_ID:
            raise _bad_input("offset must be from 0 to 2^63-1")
        rows, total = await repository.list_items(info.context["conn"], skip=offset, limit=limit)
        return ItemPage(items=[_item(row) for row in rows], total=total, limit=limit, offset=offset)


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Create an item owned by the signed-in user, as POST /items.")
    async def create_item(
        self,
        info: Info,
        name: str,
        price: float,
        description: str | None = None,
        tags: list[str] | None = None,
    ) -> Item:
        if not math.isfinite(price):
            # GraphQL reads ``1e400`` as inf (REST refuses it when decoding the JSON), and ``gt=0``
            # lets inf through: stored, it would break every reader (Float cannot represent it).
            raise _bad_input("price must be a finite number")
        fields = {"name": name, "price": price, "description": description, "tags": tags or []}
        try:
            body = msgspec.convert(fields, ItemCreate)  # the REST body's rules
        except msgspec.ValidationError as exc:
            raise _bad_input(str(exc)) from None
        context = info.context
        try:
            row = await item_routes.create_item(  # the REST handler itself: commit, audit, live event
                body,
                context["user"],
                context["conn"],
                context["db"],
                context["events"],
                context["background_tasks"],
                Response(),  # its Location header is for REST clients
            )
        except ValueOutOfRange:  # the database refused a value (PostgreSQL: a NUL character): REST's 422
            raise _bad_input("a value the database cannot hold") from None
        return _item(row)


schema = strawberry.Schema(query=Query, mutation=Mutation)


def create_graphql() -> GraphQL:
    """The app mounted at ``/graphql``: limits, masking, introspection follow the toolkit's defaults."""
    return GraphQL(schema, context_getter=get_context)
