"""Registration and the current user."""

from apps.common import repository
from apps.common.db import Row
from toolkit import HTTPException, Response, Router

from ..deps import Conn, CurrentUser, SettingsDep
from ..models import User, UserCreate
from ..security import hash_password

router = Router(tags=["users"])


@router.post(
    "/users",
    status_code=201,
    response_model=User,
    responses={409: {"description": "Username already taken"}},
)
async def register(body: UserCreate, conn: Conn, settings: SettingsDep, response: Response) -> Row:
    """Create an account; usernames listed in ``ADMIN_USERNAMES`` also get the ``admin`` role."""
    password_hash = await hash_password(body.password)
    roles = ["user", "admin"] if body.username in settings.admin_usernames else ["user"]
    try:
        user = await repository.create_user(
            conn, username=body.username, email=body.email, password_hash=password_hash, roles=roles
        )
    except repository.UsernameTaken:
        raise HTTPException(409, "Username already taken") from None
    await conn.commit()
    response.headers["Location"] = f"/users/{user['id']}"
    return user  # the response model drops password_hash


@router.get("/users/me", response_model=User)
async def read_me(user: CurrentUser) -> Row:
    return user
