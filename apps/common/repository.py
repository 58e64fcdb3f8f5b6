"""Storage of users, items and audit records: plain async functions over a ``db.Connection``.

Rows come back as dicts shaped like apps/SPEC.md's data: ``roles`` and ``tags`` are lists,
``image`` is ``{"content_type", "size"}`` or ``None``, timestamps are RFC 3339 UTC strings
(``2024-05-06T07:08:09.123456Z``). Users include ``password_hash``: the web layer filters it out.

An id or offset the database cannot represent (``db.ValueOutOfRange``: beyond 64 bits, or beyond
32 bits for a PostgreSQL ``integer`` column) matches no row: lookups answer ``None``, listings an
empty page, updates ``LookupError``, like any other id that is not there.
"""

import datetime
import json
from collections.abc import Sequence
from typing import Any

from .db import Connection, IntegrityError, Row, ValueOutOfRange

__all__ = [
    "ITEM_FIELDS",
    "UsernameTaken",
    "add_audit",
    "create_item",
    "create_user",
    "delete_item",
    "get_item",
    "get_user",
    "get_user_by_username",
    "list_audit",
    "list_items",
    "list_users",
    "now",
    "set_item_image",
    "set_user_roles",
    "update_item",
]

#: The item fields ``update_item`` may change.
ITEM_FIELDS = frozenset({"name", "description", "price", "tags"})

_USER_COLUMNS = "id, username, email, password_hash, roles, created_at"
_ITEM_COLUMNS = (
    "id, owner_id, name, description, price, tags, image_content_type, image_size, created_at, updated_at"
)


class UsernameTaken(Exception):
    """``create_user`` with a username that already exists."""


def now() -> str:
    """The current time as an RFC 3339 UTC string with a ``Z``."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json(values: Sequence[str]) -> str:
    return json.dumps(list(values), ensure_ascii=False, separators=(",", ":"))


def _user(row: Row) -> Row:
    row["roles"] = json.loads(row["roles"])
    return row


def _item(row: Row) -> Row:
    content_type, size = row.pop("image_content_type"), row.pop("image_size")
    return {
        "id": row["id"],
        "owner_id": row["owner_id"],
        "name": row["name"],
        "description": row["description"],
        "price": row["price"],
        "tags": json.loads(row["tags"]),
        "image": None if content_type is None else {"content_type": content_type, "size": size},
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def _like_pattern(text: str) -> str:
    """A ``LIKE ... ESCAPE '\\'`` pattern matching ``text`` anywhere, case-folded."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# --- users -----------------------------------------------------------------------------------


async def create_user(
    conn: Connection, *, username: str, email: str, password_hash: str, roles: Sequence[str]
) -> Row:
    if await conn.fetchone("SELECT id FROM users WHERE username = ?", username) is not None:
        raise UsernameTaken(username)
    created_at = now()
    try:
        user_id = await conn.insert(
            "INSERT INTO users (username, email, password_hash, roles, created_at) VALUES (?, ?, ?, ?, ?)",
            username,
            email,
            password_hash,
            _json(roles),
            created_at,
        )
    except IntegrityError as exc:  # registered by a concurrent request since the check above
        raise UsernameTaken(username) from exc
    return {
        "id": user_id,
        "username": username,
        "email": email,
        "password_hash": password_hash,
        "roles": list(roles),
        "created_at": created_at,
    }


async def get_user(conn: Connection, user_id: int) -> Row | None:
    try:
        row = await conn.fetchone(f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", user_id)
    except ValueOutOfRange:
        return None
    return None if row is None else _user(row)


async def get_user_by_username(conn: Connection, username: str) -> Row | None:
    row = await conn.fetchone(f"SELECT {_USER_COLUMNS} FROM users WHERE username = ?", username)
    return None if row is None else _user(row)


async def set_user_roles(conn: Connection, user_id: int, roles: Sequence[str]) -> Row | None:
    """Replace the user's roles; the updated user, or ``None`` if there is no such user."""
    try:
        changed = await conn.execute("UPDATE users SET roles = ? WHERE id = ?", _json(roles), user_id)
    except ValueOutOfRange:
        return None
    return await get_user(conn, user_id) if changed else None


async def list_users(conn: Connection, *, skip: int, limit: int) -> list[Row]:
    sql = f"SELECT {_USER_COLUMNS} FROM users ORDER BY id LIMIT ? OFFSET ?"
    try:
        rows = await conn.fetchall(sql, limit, skip)
    except ValueOutOfRange:  # an offset past any table
        return []
    return [_user(row) for row in rows]


# --- items -----------------------------------------------------------------------------------


async def create_item(
    conn: Connection,
    *,
    owner_id: int,
    name: str,
    description: str | None,
    price: float,
    tags: Sequence[str],
) -> Row:
    created_at = now()
    item_id = await conn.insert(
        "INSERT INTO items (owner_id, name, description, price, tags, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        owner_id,
        name,
        description,
        float(price),
        _json(tags),
        created_at,
        created_at,
    )
    return {
        "id": item_id,
        "owner_id": owner_id,
        "name": name,
        "description": description,
        "price": float(price),
        "tags": list(tags),
        "image": None,
        "created_at": created_at,
        "updated_at": created_at,
    }


async def get_item(conn: Connection, item_id: int) -> Row | None:
    try:
        row = await conn.fetchone(f"SELECT {_ITEM_COLUMNS} FROM items WHERE id = ?", item_id)
    except ValueOutOfRange:
        return None
    return None if row is None else _item(row)


async def list_items(
    conn: Connection,
    *,
    skip: int,
    limit: int,
    q: str | None = None,
    min_price: float | None = None,
    max_price: float | None = None,
    tag: str | None = None,
    owner_id: int | None = None,
) -> tuple[list[Row], int]:
    """One page of the matching items (by id) and the number of all matching items."""
    clauses: list[str] = []
    args: list[Any] = []
    if q:
        clauses.append("(lower(name) LIKE ? ESCAPE '\\' OR lower(description) LIKE ? ESCAPE '\\')")
        args += [_like_pattern(q)] * 2
    if min_price is not None:
        clauses.append("price >= ?")
        args.append(float(min_price))
    if max_price is not None:
        clauses.append("price <= ?")
        args.append(float(max_price))
    if tag is not None:
        if conn.dialect == "sqlite":
            clauses.append("EXISTS (SELECT 1 FROM json_each(items.tags) WHERE json_each.value = ?)")
        else:
            clauses.append("items.tags::jsonb @> jsonb_build_array(?::text)")
        args.append(tag)
    if owner_id is not None:
        clauses.append("owner_id = ?")
        args.append(owner_id)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    try:
        count = await conn.fetchone(f"SELECT count(*) AS total FROM items{where}", *args)
    except ValueOutOfRange:  # an owner_id no row can hold
        return [], 0
    total = int(count["total"]) if count is not None else 0
    try:
        rows = await conn.fetchall(
            f"SELECT {_ITEM_COLUMNS} FROM items{where} ORDER BY id LIMIT ? OFFSET ?", *args, limit, skip
        )
    except ValueOutOfRange:  # an offset past any table
        rows = []
    return [_item(row) for row in rows], total


async def update_item(conn: Connection, item_id: int, fields: dict[str, Any]) -> Row:
    """Change the given fields (``name``, ``description``, ``price``, ``tags``) and ``updated_at``.

    No fields: nothing changes. An unknown field is a ``ValueError``; a missing item a ``LookupError``.
    """
    unknown = set(fields) - ITEM_FIELDS
    if unknown:
        raise ValueError(f"cannot update item fields {sorted(unknown)}")
    if fields:
        values = {**fields, "updated_at": now()}
        if "tags" in values:
            values["tags"] = _json(values["tags"])
        if "price" in values:
            values["price"] = float(values["price"])
        assignments = ", ".join(f"{column} = ?" for column in values)
        try:
            await conn.execute(f"UPDATE items SET {assignments} WHERE id = ?", *values.values(), item_id)
        except ValueOutOfRange:
            raise LookupError(f"no item {item_id}") from None
    item = await get_item(conn, item_id)
    if item is None:
        raise LookupError(f"no item {item_id}")
    return item


async def delete_item(conn: Connection, item_id: int) -> bool:
    try:
        return await conn.execute("DELETE FROM items WHERE id = ?", item_id) > 0
    except ValueOutOfRange:
        return False


async def set_item_image(conn: Connection, item_id: int, *, content_type: str, size: int) -> Row:
    try:
        await conn.execute(
            "UPDATE items SET image_content_type = ?, image_size = ?, updated_at = ? WHERE id = ?",
            content_type,
            size,
            now(),
            item_id,
        )
    except ValueOutOfRange:
        raise LookupError(f"no item {item_id}") from None
    item = await get_item(conn, item_id)
    if item is None:
        raise LookupError(f"no item {item_id}")
    return item


# --- audit -----------------------------------------------------------------------------------


async def add_audit(conn: Connection, *, user_id: int, action: str, item_id: int | None) -> None:
    await conn.execute(
        "INSERT INTO audit (user_id, action, item_id, at) VALUES (?, ?, ?, ?)",
        user_id,
        action,
        item_id,
        now(),
    )


async def list_audit(conn: Connection, *, limit: int) -> list[Row]:
    """The newest ``limit`` audit records, newest first."""
    return await conn.fetchall(
        "SELECT id, user_id, action, item_id, at FROM audit ORDER BY id DESC LIMIT ?", limit
    )
