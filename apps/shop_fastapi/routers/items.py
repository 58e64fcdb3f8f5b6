"""Items: CRUD with pagination and filters, owner checks, an image upload."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, HTTPException, Path, Query, Response, UploadFile, status

from apps.common import repository
from apps.common.db import MAX_ID, Connection, Database, DatabaseUnavailable

from ..dependencies import BroadcasterDep, Conn, CurrentUser, DatabaseDep
from ..schemas import Item, ItemCreate, ItemPage, ItemUpdate

logger = logging.getLogger("apps.shop_fastapi")

router = APIRouter(prefix="/items", tags=["items"])

MAX_IMAGE_SIZE = 1024 * 1024

# Ids and offsets fit a signed 64-bit integer (SQLite's INTEGER): a larger one is a 422.
ItemId = Annotated[int, Path(ge=1, le=MAX_ID)]


async def write_audit(db: Database, user_id: int, item_id: int) -> None:
    """Background task, run after the response is sent, in its own transaction."""
    try:
        async with db.transaction(write=True) as conn:
            await repository.add_audit(conn, user_id=user_id, action="item.created", item_id=item_id)
    except DatabaseUnavailable as exc:
        logger.error("audit record of item %s lost: %s", item_id, exc)


async def get_owned_item(conn: Connection, item_id: int, user: dict[str, Any]) -> dict[str, Any]:
    item = await repository.get_item(conn, item_id)
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Item not found")
    if item["owner_id"] != user["id"] and "admin" not in user["roles"]:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Not the owner of this item")
    return item


@router.post("", status_code=status.HTTP_201_CREATED, response_model=Item)
async def create_item(
    body: ItemCreate,
    user: CurrentUser,
    conn: Conn,
    db: DatabaseDep,
    broadcaster: BroadcasterDep,
    background_tasks: BackgroundTasks,
    response: Response,
) -> Any:
    item = await repository.create_item(conn, owner_id=user["id"], **body.model_dump())
    await conn.commit()  # durable and visible before anyone hears of it
    broadcaster.publish({"event": "item.created", "item": item})
    background_tasks.add_task(write_audit, db, user["id"], item["id"])
    response.headers["Location"] = f"/items/{item['id']}"
    return item


@router.get("", response_model=ItemPage)
async def list_items(
    conn: Conn,
    skip: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    q: Annotated[str | None, Query(max_length=100)] = None,
    min_price: Annotated[float | None, Query(gt=0)] = None,
    max_price: Annotated[float | None, Query(gt=0)] = None,
    tag: str | None = None,
    owner_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Any:
    items, total = await repository.list_items(
        conn,
        skip=skip,
        limit=limit,
        q=q,
        min_price=min_price,
        max_price=max_price,
        tag=tag,
        owner_id=owner_id,
    )
    return {"items": items, "total": total, "skip": skip, "limit": limit}


@router.get("/{item_id}", response_model=Item)
async def read_item(item_id: ItemId, conn: Conn) -> Any:
    item = await repository.get_item(conn, item_id)
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Item not found")
    return item


@router.patch("/{item_id}", response_model=Item)
async def update_item(item_id: ItemId, body: ItemUpdate, user: CurrentUser, conn: Conn) -> Any:
    await get_owned_item(conn, item_id, user)
    return await repository.update_item(conn, item_id, body.model_dump(exclude_unset=True))


@router.delete("/{item_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_item(item_id: ItemId, user: CurrentUser, conn: Conn) -> None:
    await get_owned_item(conn, item_id, user)
    await repository.delete_item(conn, item_id)


@router.put("/{item_id}/image", response_model=Item)
async def upload_image(item_id: ItemId, file: UploadFile, user: CurrentUser, conn: Conn) -> Any:
    await get_owned_item(conn, item_id, user)
    data = await file.read(MAX_IMAGE_SIZE + 1)
    if len(data) > MAX_IMAGE_SIZE:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "Image too large")
    content_type = file.content_type or "application/octet-stream"
    return await repository.set_item_image(conn, item_id, content_type=content_type, size=len(data))
