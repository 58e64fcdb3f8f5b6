"""Registration and the current user.

Registering never grants a role beyond ``user``: admins are made out of band
(``python -m apps.shop.admin``). Sign-ups are throttled per client address (``..throttle``).
"""

from apps.common import repository
from apps.common.db import Row
from toolkit import Depends, HTTPException, Response, Router

from ..deps import Conn, CurrentUser
from ..models import User, UserCreate
from ..security import hash_password
from ..throttle import THROTTLED, limit_signup_by_address

router = Router(tags=["users"])


@router.post(
    "/users",
    status_code=201,
    response_model=User,
    dependencies=[Depends(limit_signup_by_address)],
    responses={409: {"description": "Username already taken"}, **THROTTLED},
)
async def register(body: UserCreate, conn: Conn, response: Response) -> Row:
    """Create an account with the ``user`` role."""
    password_hash = await hash_password(body.password)
    try:
        user = await repository.create_user(
            conn, username=body.username, email=body.email, password_hash=password_hash, roles=["user"]
        )
    except repository.UsernameTaken:
        raise HTTPException(409, "Username already taken") from None
    await conn.commit()
    response.headers["Location"] = f"/users/{user['id']}"
    return user  # the response model drops password_hash


@router.get("/users/me", response_model=User)
async def read_me(user: CurrentUser) -> Row:
    return user
