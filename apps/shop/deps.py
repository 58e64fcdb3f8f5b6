"""Dependencies: settings, the database and the event broadcaster (app scope), the request's
transaction, the current user (bearer token or session) and pagination."""

from collections.abc import AsyncIterator
from typing import Annotated, Any

from apps.common.db import MAX_ID, Connection, Database
from apps.common.events import Broadcaster
from apps.common.repository import get_user
from apps.common.settings import Settings, load_settings
from toolkit import Depends, HTTPException, Path, Query, Request
from toolkit.security import OAuth2PasswordBearer, require_roles
from toolkit.sessions import Session

from .security import user_id_from_token

__all__ = [
    "AdminUser",
    "BroadcasterDep",
    "Conn",
    "CurrentUser",
    "DatabaseDep",
    "ItemId",
    "OwnerId",
    "Page",
    "Pagination",
    "ReadConn",
    "SettingsDep",
    "current_user",
    "get_conn",
    "get_read_conn",
    "get_settings",
    "open_broadcaster",
    "open_database",
]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_settings() -> Settings:
    """The app's settings; ``create_app`` overrides this with the ones it was given."""
    return load_settings()


SettingsDep = Annotated[Settings, Depends(get_settings, scope="app")]


async def open_database(settings: SettingsDep) -> AsyncIterator[Database]:
    """Connected (and the schema created) at start-up, closed at shutdown."""
    database = await Database.connect(settings.database_url)
    try:
        yield database
    finally:
        await database.close()


DatabaseDep = Annotated[Database, Depends(open_database, scope="app")]


async def open_broadcaster() -> AsyncIterator[Broadcaster]:
    broadcaster = Broadcaster()
    try:
        yield broadcaster
    finally:
        broadcaster.close()  # ends the live streams still open


BroadcasterDep = Annotated[Broadcaster, Depends(open_broadcaster, scope="app")]


async def get_conn(db: DatabaseDep, request: Request) -> AsyncIterator[Connection]:
    """The request's transaction: committed after the response, rolled back if the handler raises.

    Handlers that write ``await conn.commit()`` before answering, so a 2xx means the data is
    durable and visible (the cleanup of a dependency runs after the response is sent). Unsafe
    methods take SQLite's write lock at the first statement.
    """
    async with db.transaction(write=request.method not in SAFE_METHODS) as conn:
        yield conn


Conn = Annotated[Connection, Depends(get_conn)]


async def get_read_conn(db: DatabaseDep) -> AsyncIterator[Connection]:
    """A read-only transaction for unsafe methods that do not write (log in)."""
    async with db.transaction() as conn:
        yield conn


ReadConn = Annotated[Connection, Depends(get_read_conn)]

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


async def current_user(
    request: Request,
    conn: Conn,
    settings: SettingsDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> dict[str, Any]:
    """The user of the bearer token if there is one (a bad token is a 401), else of the session."""
    if token is not None:
        user_id = user_id_from_token(token, settings.secret_key)
        user = None if user_id is None else await get_user(conn, user_id)
        if user is None:
            raise _unauthorized("Could not validate credentials")
        return user
    session = request.session
    if isinstance(session, Session):
        await session.load()  # read from the store only when no token was sent
    session_user = session.get("user_id")
    if isinstance(session_user, int):
        user = await get_user(conn, session_user)
        if user is not None:
            return user
    raise _unauthorized("Not authenticated")


CurrentUser = Annotated[dict[str, Any], Depends(current_user)]
AdminUser = Annotated[dict[str, Any], Depends(require_roles("admin", user=current_user))]


# Ids and offsets are signed 64-bit integers (what SQLite and PostgreSQL's bigint hold): a larger
# number is a 422 here rather than an OverflowError in the driver.
ItemId = Annotated[int, Path(ge=1, le=MAX_ID)]
OwnerId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


class Pagination:
    def __init__(
        self,
        skip: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> None:
        self.skip = skip
        self.limit = limit


Page = Annotated[Pagination, Depends()]
