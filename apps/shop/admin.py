"""Admins are made out of band, by someone with access to the database, never through the web.

::

    python -m apps.shop.admin promote alice          # an existing user gets the admin role
    python -m apps.shop.admin demote alice           # ... and loses it
    python -m apps.shop.admin create-admin root --email root@example.com   # asks for the password
    printf '%s\\n' "$PASSWORD" | python -m apps.shop.admin create-admin root --email r@x --password-stdin

The database is ``--database-url``, else ``DATABASE_URL``, else ``sqlite:///./shop.db``: the one
the service uses (both apps/shop and its FastAPI twin, which share the storage layer and the
password hash format). The password is never a command-line argument (``ps`` would show it).
"""

import argparse
import getpass
import os
import sys
from collections.abc import Sequence

import anyio
import msgspec

from apps.common import repository
from apps.common.db import Database, Row
from apps.common.settings import DEFAULT_DATABASE_URL

from . import security
from .models import UserCreate

__all__ = ["AdminCommandError", "create_admin", "demote", "main", "promote"]

ADMIN = "admin"


class AdminCommandError(Exception):
    """The command cannot do what it was asked (no such user, name taken, invalid input)."""


async def _set_admin(database_url: str, username: str, admin: bool) -> Row:
    database = await Database.connect(database_url)
    try:
        async with database.transaction(write=True) as conn:
            user = await repository.get_user_by_username(conn, username)
            if user is None:
                raise AdminCommandError(f"no user named {username!r}")
            roles = [role for role in user["roles"] if role != ADMIN] + ([ADMIN] if admin else [])
            updated = await repository.set_user_roles(conn, user["id"], roles)
            assert updated is not None  # same transaction: the row is still there
            return updated
    finally:
        await database.close()


async def promote(database_url: str, username: str) -> Row:
    """Give the existing user ``username`` the admin role (idempotent); the updated user."""
    return await _set_admin(database_url, username, admin=True)


async def demote(database_url: str, username: str) -> Row:
    """Take the admin role away from ``username`` (idempotent); the updated user."""
    return await _set_admin(database_url, username, admin=False)


async def create_admin(database_url: str, username: str, email: str, password: str) -> Row:
    """A new user with the roles ``["user", "admin"]``, validated as ``POST /users`` validates."""
    try:
        body = msgspec.convert({"username": username, "email": email, "password": password}, UserCreate)
    except msgspec.ValidationError as exc:
        raise AdminCommandError(str(exc)) from None
    password_hash = await security.hash_password(body.password)
    database = await Database.connect(database_url)
    try:
        async with database.transaction(write=True) as conn:
            try:
                return await repository.create_user(
                    conn,
                    username=body.username,
                    email=body.email,
                    password_hash=password_hash,
                    roles=["user", ADMIN],
                )
            except repository.UsernameTaken:
                raise AdminCommandError(
                    f"{username!r} is taken: `promote {username}` if that account is the right one"
                ) from None
    finally:
        await database.close()


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Password (again): ") != password:
        raise AdminCommandError("the passwords differ")
    return password


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m apps.shop.admin", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
        help="default: $DATABASE_URL, else %(default)s",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("promote", "give an existing user the admin role"), ("demote", "take it away")):
        command = commands.add_parser(name, help=text)
        command.add_argument("username")
    create = commands.add_parser("create-admin", help="create a new user with the admin role")
    create.add_argument("username")
    create.add_argument("--email", required=True)
    create.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    args = parser.parse_args(argv)
    try:
        if args.command == "create-admin":
            password = _read_password(args.password_stdin)
            user = anyio.run(create_admin, args.database_url, args.username, args.email, password)
        else:
            user = anyio.run(
                promote if args.command == "promote" else demote, args.database_url, args.username
            )
    except AdminCommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{user['username']} (id {user['id']}): roles {', '.join(user['roles'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
