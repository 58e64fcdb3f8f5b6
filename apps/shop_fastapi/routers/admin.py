"""Admin-only listings (403 for other users)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from apps.common import repository
from apps.common.db import MAX_ID

from ..dependencies import Conn, require_admin
from ..schemas import Audit, User

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])


@router.get("/users", response_model=list[User])
async def list_users(
    conn: Conn,
    skip: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Any:
    return await repository.list_users(conn, skip=skip, limit=limit)


@router.get("/audit", response_model=list[Audit])
async def list_audit(conn: Conn, limit: Annotated[int, Query(ge=1, le=100)] = 20) -> Any:
    return await repository.list_audit(conn, limit=limit)
