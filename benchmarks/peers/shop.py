"""The shop scenarios' apps: ``apps/shop`` (toolkit) and ``apps/shop_fastapi`` (its FastAPI twin).

Each is built with its own ``create_app(Settings(...))`` on a temporary SQLite database of its own
(deleted when the process exits) and the in-memory session store (no ``REDIS_URL``), seeded
with the same rows through the shared ``apps.common`` storage layer:

- ``shop_app`` (login, list): the user of ``spec.SHOP_USER`` and the 100 items of
  ``spec.SHOP_ITEMS``; never written to, so every list request sees the same page and total.
- ``shop_write_app`` (create): the same user and no items; each timed request adds an item (and
  an audit record), so this database grows while it is timed, by as many rows as the peer is fast.

The login and sign-up limits are off (``rate_limits=False``): ``shop_login`` is one user logging in
from one address as fast as it can, which the service's default limits refuse after a few tries.

Password hashing is made cheap for both, as ``tests/test_parity.py`` does: scrypt at n=2^4 instead
of OWASP's 2^14 (~0.1-0.4 s of CPU per login, which would swamp any framework). Both apps check
the hash with the parameters stored in it, so a login costs both the same few microseconds.

Nothing here runs at import: a peer module builds an app on first access (its ``__getattr__``).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ..spec import SHOP_ITEMS, SHOP_SECRET, SHOP_USER

__all__ = ["SCRYPT_COST", "build"]

SCRYPT_COST = (2**4, 8, 1)  # (n, r, p), as tests/test_parity.py sets it for both apps
APPS = ("shop_app", "shop_write_app")


def _cheap_passwords(kind: str) -> Callable[[str], str]:
    """Make the ``kind`` app hash new passwords cheaply; its hash function, for the seed."""
    if kind == "toolkit":
        import apps.shop.security
        from toolkit.security import PasswordHasher

        n, r, p = SCRYPT_COST
        apps.shop.security.hasher = PasswordHasher(n=n, r=r, p=p)
        return apps.shop.security.hasher.hash
    import apps.shop_fastapi.security

    apps.shop_fastapi.security.SCRYPT_COST = SCRYPT_COST
    return apps.shop_fastapi.security.hash_password


async def _seed(url: str, password_hash: str, items: tuple[dict[str, Any], ...]) -> None:
    from apps.common import repository
    from apps.common.db import Database

    db = await Database.connect(url)  # creates the schema
    try:
        async with db.transaction(write=True) as conn:
            user = await repository.create_user(
                conn,
                username=SHOP_USER["username"],
                email=SHOP_USER["email"],
                password_hash=password_hash,
                roles=["user"],
            )
            for item in items:
                await repository.create_item(conn, owner_id=user["id"], **item)
    finally:
        await db.close()


def run_apart(job: Callable[[], Awaitable[None]]) -> None:
    """Run ``job`` on an event loop of its own, in a thread: the caller's loop may be running
    (uvicorn imports the app, and the in-process worker loads it, from inside their loops)."""
    import anyio

    failure: list[BaseException] = []

    def target() -> None:
        try:
            anyio.run(job)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=target, name="seed-shop-database")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def build(kind: str, name: str) -> Any:
    """The ``kind`` ("toolkit" or "fastapi") shop app for the cases naming ``name``."""
    if name not in APPS:
        raise ValueError(f"unknown shop app {name!r}")
    from apps.common.settings import Settings

    directory = Path(tempfile.mkdtemp(prefix=f"benchmarks-{kind}-{name}-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    url = f"sqlite:///{directory / 'shop.db'}"
    password_hash = _cheap_passwords(kind)(SHOP_USER["password"])
    items = SHOP_ITEMS if name == "shop_app" else ()
    run_apart(lambda: _seed(url, password_hash, items))
    # rate_limits=False: shop_login logs the same user in from one address thousands of times a second.
    settings = Settings(database_url=url, redis_url=None, secret_key=SHOP_SECRET, rate_limits=False)
    if kind == "toolkit":
        import apps.shop.main as main
    else:
        import apps.shop_fastapi.main as main
    return main.create_app(settings)
