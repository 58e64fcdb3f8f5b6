"""Registration and the current user."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Response, status
from fastapi.concurrency import run_in_threadpool

from apps.common import repository

from ..dependencies import Conn, CurrentUser, SettingsDep
from ..schemas import User, UserCreate
from ..security import hash_password

router = APIRouter(prefix="/users", tags=["users"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=User)
async def register(body: UserCreate, conn: Conn, settings: SettingsDep, response: Response) -> Any:
    password_hash = await run_in_threadpool(hash_password, body.password)
    roles = ["user", "admin"] if body.username in settings.admin_usernames else ["user"]
    try:
        user = await repository.create_user(
            conn, username=body.username, email=body.email, password_hash=password_hash, roles=roles
        )
    except repository.UsernameTaken:
        raise HTTPException(status.HTTP_409_CONFLICT, "Username already taken") from None
    response.headers["Location"] = f"/users/{user['id']}"
    return user


@router.get("/me", response_model=User)
async def read_me(user: CurrentUser) -> Any:
    return user
