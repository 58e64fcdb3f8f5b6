"""The fake settings, connection pool and user table behind the ``deps`` scenario; the catalog.

Every peer uses these same objects, so the work done *inside* the dependencies is identical and
only the cost of resolving them differs. Nothing here does I/O. The pool counts connections
opened and closed, and the untimed ``GET /deps/pool`` case of ``benchmarks.spec`` checks the two
counts agree: proof that each peer's cleanup (code after ``yield``, or a ``finally``) ran, on the
error path too. No framework is imported here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..spec import CATALOG_SIZE, TOKEN, USER

_USERS = {TOKEN: USER}  # the one valid token and its user, as a users table would return them


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = "fake://benchmarks"


SETTINGS = Settings()


class Connection:
    """A fake database connection: open until ``close()``."""

    __slots__ = ("is_open", "pool", "url")

    def __init__(self, pool: Pool, url: str) -> None:
        self.pool = pool
        self.url = url
        self.is_open = True
        pool.opened += 1

    def fetch_user(self, token: str) -> dict[str, Any] | None:
        return _USERS.get(token)

    def close(self) -> None:
        self.is_open = False
        self.pool.closed += 1


class Pool:
    """Hands out connections and counts how many were opened and closed."""

    __slots__ = ("closed", "opened")

    def __init__(self) -> None:
        self.opened = 0
        self.closed = 0

    def connect(self, url: str) -> Connection:
        return Connection(self, url)

    def stats(self) -> dict[str, int]:
        return {"opened": self.opened, "closed": self.closed}


POOL = Pool()


class Catalog:
    """The ``cached`` scenario's handler work: a list of items built from scratch on every call.

    It counts its calls, so that the untimed ``GET /cached/calls`` case can prove a cache hit
    (the handler ran once, for the request that filled the cache).
    """

    __slots__ = ("calls",)

    def __init__(self) -> None:
        self.calls = 0

    def build(self) -> dict[str, Any]:
        self.calls += 1
        items = [
            {"id": i, "name": f"Item {i}", "price": round(0.5 + i * 1.25, 2), "tags": ["catalog"]}
            for i in range(CATALOG_SIZE)
        ]
        return {"items": items}


CATALOG = Catalog()
