"""Logging in: the OAuth2 password flow (a JWT) or a session cookie; logging out.

Both are throttled (``..throttle``) before the password is checked; the check runs in a worker
thread, a few at a time (``..security.check_password_async``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordRequestForm

from apps.common import repository
from apps.common.db import Connection

from ..dependencies import Conn, SettingsDep
from ..schemas import LoginBody, Token, User
from ..security import check_password_async, create_access_token
from ..throttle import THROTTLED, limit_login_by_address, throttled_body, throttled_form

router = APIRouter(prefix="/auth", tags=["auth"])

BAD_CREDENTIALS = "Incorrect username or password"


async def authenticate(conn: Connection, username: str, password: str) -> dict[str, Any] | None:
    user = await repository.get_user_by_username(conn, username)
    await conn.commit()  # give the connection (and SQLite's write lock) back during the slow check
    hashed = user["password_hash"] if user is not None else None
    return user if await check_password_async(password, hashed) else None


@router.post("/token", dependencies=[Depends(limit_login_by_address)], responses=THROTTLED)
async def issue_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends(throttled_form)], conn: Conn, settings: SettingsDep
) -> Token:
    user = await authenticate(conn, form.username, form.password)
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, BAD_CREDENTIALS, headers={"WWW-Authenticate": "Bearer"}
        )
    return Token(access_token=create_access_token(user["id"], settings.secret_key, settings.token_minutes))


@router.post(
    "/login", response_model=User, dependencies=[Depends(limit_login_by_address)], responses=THROTTLED
)
async def login(body: Annotated[LoginBody, Depends(throttled_body)], request: Request, conn: Conn) -> Any:
    user = await authenticate(conn, body.username, body.password)
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, BAD_CREDENTIALS)
    request.session.clear()
    request.session["user_id"] = user["id"]
    return user


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(request: Request) -> None:
    request.session.clear()
