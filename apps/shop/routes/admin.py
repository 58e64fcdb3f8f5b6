"""Admin-only listings (401 without credentials, 403 without the admin role)."""

from typing import Annotated

from apps.common import repository
from apps.common.db import Row
from toolkit import Query, Router

from ..deps import AdminUser, Conn, Page
from ..models import Audit, User

router = Router(prefix="/admin", tags=["admin"])


@router.get("/users", response_model=list[User])
async def list_users(admin: AdminUser, conn: Conn, page: Page) -> list[Row]:
    return await repository.list_users(conn, skip=page.skip, limit=page.limit)


@router.get("/audit", response_model=list[Audit])
async def list_audit(
    admin: AdminUser, conn: Conn, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> list[Row]:
    """The newest audit records first."""
    return await repository.list_audit(conn, limit=limit)
