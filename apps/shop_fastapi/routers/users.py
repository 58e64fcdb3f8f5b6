"""Registration (the ``user`` role only: admins are made by ``python -m apps.shop.admin``) and
the current user."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Response, status

from apps.common import repository

from ..dependencies import Conn, CurrentUser
from ..schemas import User, UserCreate
from ..security import hash_password_async
from ..throttle import THROTTLED, limit_signup_by_address

router = APIRouter(prefix="/users", tags=["users"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=User,
    dependencies=[Depends(limit_signup_by_address)],
    responses=THROTTLED,
)
async def register(body: UserCreate, conn: Conn, response: Response) -> Any:
    password_hash = await hash_password_async(body.password)
    try:
        user = await repository.create_user(
            conn, username=body.username, email=body.email, password_hash=password_hash, roles=["user"]
        )
    except repository.UsernameTaken:
        raise HTTPException(status.HTTP_409_CONFLICT, "Username already taken") from None
    response.headers["Location"] = f"/users/{user['id']}"
    return user


@router.get("/me", response_model=User)
async def read_me(user: CurrentUser) -> Any:
    return user
