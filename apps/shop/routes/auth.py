"""Logging in: the OAuth2 password flow (a JWT) or a server-side session (a cookie).

Both are throttled (``..throttle``): per client address before the body is validated, per
account once it is, always before the password is checked.
"""

from typing import Annotated

from apps.common.db import Row
from toolkit import Depends, HTTPException, Request, Router
from toolkit.security import OAuth2PasswordRequestForm
from toolkit.sessions import Session

from ..deps import ReadConn, SettingsDep
from ..models import LoginBody, Token, User
from ..security import authenticate, create_access_token
from ..throttle import THROTTLED, ThrottleDep, limit_login_by_address

router = Router(prefix="/auth", tags=["auth"])

BAD_CREDENTIALS = "Incorrect username or password"


async def throttled_form(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request, throttle: ThrottleDep
) -> OAuth2PasswordRequestForm:
    """The validated form, once its account's attempt is counted."""
    await throttle.check_login_account(request, form.username)
    return form


async def throttled_body(body: LoginBody, request: Request, throttle: ThrottleDep) -> LoginBody:
    """The validated body, once its account's attempt is counted."""
    await throttle.check_login_account(request, body.username)
    return body


@router.post("/token", dependencies=[Depends(limit_login_by_address)], responses=THROTTLED)
async def issue_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends(throttled_form)], conn: ReadConn, settings: SettingsDep
) -> Token:
    """OAuth2 password flow: a bearer token for ``Authorization: Bearer <token>``."""
    user = await authenticate(conn, form.username, form.password)
    if user is None:
        raise HTTPException(401, BAD_CREDENTIALS, headers={"WWW-Authenticate": "Bearer"})
    return Token(access_token=create_access_token(user["id"], settings))


@router.post(
    "/login", response_model=User, dependencies=[Depends(limit_login_by_address)], responses=THROTTLED
)
async def login(body: Annotated[LoginBody, Depends(throttled_body)], conn: ReadConn, session: Session) -> Row:
    """Start a session: the cookie carries a new signed id, the data stays on the server."""
    user = await authenticate(conn, body.username, body.password)
    if user is None:
        raise HTTPException(401, BAD_CREDENTIALS)
    session.regenerate()  # a new id at login: a planted session id is never promoted
    session["user_id"] = user["id"]
    return user


@router.post("/logout", status_code=204)
async def logout(session: Session) -> None:
    """End the session: the record is deleted server-side and the cookie expired."""
    session.clear()
