"""Items: CRUD with owner checks, filtering, pagination and an image upload.

Errors are checked in a fixed order: 401 (dependencies), 422 (parameters and body), then 404 and
403 in the handler, so both frameworks of apps/SPEC.md answer the same thing for the same request.
"""

import logging
from typing import Annotated, Any

from apps.common import repository
from apps.common.db import Connection, Database, DatabaseUnavailable, Row
from toolkit import BackgroundTasks, HTTPException, Query, Response, Router, UploadFile

from ..deps import BroadcasterDep, Conn, CurrentUser, DatabaseDep, ItemId, OwnerId, Page
from ..models import Item, ItemCreate, ItemPage, ItemUpdate

logger = logging.getLogger("apps.shop")

router = Router(prefix="/items", tags=["items"])

MAX_IMAGE_BYTES = 1024 * 1024
_CHUNK = 64 * 1024
NOT_FOUND = {404: {"description": "Item not found"}}
OWNER_ONLY = {401: {"description": "Not authenticated"}, 403: {"description": "Not the owner"}, **NOT_FOUND}


async def _owned_item(conn: Connection, item_id: int, user: dict[str, Any]) -> Row:
    item = await repository.get_item(conn, item_id)
    if item is None:
        raise HTTPException(404, "Item not found")
    if item["owner_id"] != user["id"] and "admin" not in user["roles"]:
        raise HTTPException(403, "Not the owner of this item")
    return item


async def record_audit(db: Database, *, user_id: int, action: str, item_id: int) -> None:
    """Background task: runs after the response, in its own transaction."""
    try:
        async with db.transaction(write=True) as conn:
            await repository.add_audit(conn, user_id=user_id, action=action, item_id=item_id)
    except DatabaseUnavailable as exc:
        logger.error("audit record %s of item %s lost: %s", action, item_id, exc)


@router.post("", status_code=201, response_model=Item)
async def create_item(
    body: ItemCreate,
    user: CurrentUser,
    conn: Conn,
    db: DatabaseDep,
    events: BroadcasterDep,
    background: BackgroundTasks,
    response: Response,
) -> Row:
    item = await repository.create_item(
        conn,
        owner_id=user["id"],
        name=body.name,
        description=body.description,
        price=body.price,
        tags=body.tags,
    )
    await conn.commit()  # durable and visible before anyone hears of it
    response.headers["Location"] = f"/items/{item['id']}"
    background.add_task(record_audit, db, user_id=user["id"], action="item.created", item_id=item["id"])
    events.publish({"event": "item.created", "item": item})
    return item


@router.get("", response_model=ItemPage)
async def list_items(
    conn: Conn,
    page: Page,
    q: str | None = None,
    min_price: Annotated[float | None, Query(gt=0)] = None,
    max_price: Annotated[float | None, Query(gt=0)] = None,
    tag: str | None = None,
    owner_id: OwnerId = None,
) -> dict[str, Any]:
    """A page of items by id; ``q`` searches name and description (case-insensitive)."""
    items, total = await repository.list_items(
        conn,
        skip=page.skip,
        limit=page.limit,
        q=q,
        min_price=min_price,
        max_price=max_price,
        tag=tag,
        owner_id=owner_id,
    )
    return {"items": items, "total": total, "skip": page.skip, "limit": page.limit}


@router.get("/{item_id}", response_model=Item, responses=NOT_FOUND)
async def read_item(item_id: ItemId, conn: Conn) -> Row:
    item = await repository.get_item(conn, item_id)
    if item is None:
        raise HTTPException(404, "Item not found")
    return item


@router.patch("/{item_id}", response_model=Item, responses=OWNER_ONLY)
async def update_item(item_id: ItemId, body: ItemUpdate, user: CurrentUser, conn: Conn) -> Row:
    """Change only the fields sent; ``"description": null`` clears the description."""
    await _owned_item(conn, item_id, user)
    item = await repository.update_item(conn, item_id, body.changes())
    await conn.commit()
    return item


@router.delete("/{item_id}", status_code=204, responses=OWNER_ONLY)
async def delete_item(item_id: ItemId, user: CurrentUser, conn: Conn) -> None:
    await _owned_item(conn, item_id, user)
    await repository.delete_item(conn, item_id)
    await conn.commit()


async def _size(upload: UploadFile, limit: int) -> int:
    """The upload's size, reading no more than ``limit + 1`` bytes when the parser did not count."""
    if upload.size is not None:
        return upload.size
    size = 0
    while size <= limit and (chunk := await upload.read(_CHUNK)):
        size += len(chunk)
    return size


@router.put(
    "/{item_id}/image",
    response_model=Item,
    responses={**OWNER_ONLY, 413: {"description": "Image too large"}},
)
async def upload_image(item_id: ItemId, file: UploadFile, user: CurrentUser, conn: Conn) -> Row:
    """Attach an image (at most 1 MiB); the item records its content type and size."""
    await _owned_item(conn, item_id, user)
    size = await _size(file, MAX_IMAGE_BYTES)
    if size > MAX_IMAGE_BYTES:
        raise HTTPException(413, "Image too large")
    content_type = file.content_type or "application/octet-stream"
    item = await repository.set_item_image(conn, item_id, content_type=content_type, size=size)
    await conn.commit()
    return item
