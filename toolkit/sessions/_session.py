"""``Session``: the dict-like object ``request.session`` returns, loaded lazily."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

__all__ = ["Session", "SessionNotLoaded"]


class SessionNotLoaded(RuntimeError):
    """A server-side session was used before it was loaded from its store."""


class _Backend(Protocol):
    can_load_sync: bool

    async def load(self, session: Session) -> None: ...

    def load_sync(self, session: Session) -> None: ...


class Session(dict[str, Any]):
    """The session data, a ``dict`` (Starlette-compatible), plus what the middleware needs to save it.

    A server-side session is read from its store only when first needed: declare a parameter
    ``session: Session`` on a toolkit handler (loaded before the call), or ``await session.load()``.
    A client-side (cookie) session decodes on first access, with no I/O.

    - ``regenerate()``: a new id on save (login, privilege change); the old record is deleted.
    - ``clear()``: logout: the record is deleted server-side and the cookie expired.
    """

    __slots__ = (
        "_backend",
        "accessed",
        "cookie",
        "created",
        "id",
        "invalidated",
        "loaded",
        "modified",
        "regenerate_id",
        "written",
    )

    def __init__(self, backend: _Backend, cookie: str | None) -> None:
        super().__init__()
        self._backend = backend
        self.cookie = cookie  # the raw cookie value sent by the client, if any
        self.id: str | None = None  # server-side id, set only for a record that exists
        self.created = 0.0  # when the session began (absolute timeout)
        self.written = 0.0  # when it was last written (idle timeout, touch throttle)
        self.loaded = False
        self.accessed = False
        self.modified = False
        self.invalidated = False
        self.regenerate_id = False

    # --- loading ---------------------------------------------------------------------------

    async def load(self) -> Session:
        if not self.loaded:
            await self._backend.load(self)
        return self

    def _ensure(self) -> None:
        if not self.loaded:
            if not self._backend.can_load_sync:
                raise SessionNotLoaded(
                    "this server-side session is not loaded: declare a `session: Session` parameter "
                    "or `await request.session.load()` first"
                )
            self._backend.load_sync(self)
        self.accessed = True

    def _fill(self, data: dict[str, Any], *, created: float, written: float, session_id: str | None) -> None:
        """Called by the backend with what it loaded."""
        dict.clear(self)
        dict.update(self, data)
        self.created, self.written, self.id = created, written, session_id
        self.loaded = True

    # --- intent ----------------------------------------------------------------------------

    def regenerate(self) -> None:
        """Issue a new session id when saving (call it on login or any privilege change)."""
        self._ensure()
        self.regenerate_id = True
        self.modified = True

    def clear(self) -> None:
        """Empty the session and end it: the server-side record is deleted, the cookie expired."""
        self._ensure()
        dict.clear(self)
        self.invalidated = True
        self.modified = True

    # --- the dict interface (reads mark access, writes mark modification) -----------------

    def __getitem__(self, key: str) -> Any:
        self._ensure()
        return dict.__getitem__(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        self._ensure()
        self.modified = True
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: str) -> None:
        self._ensure()
        self.modified = True
        dict.__delitem__(self, key)

    def __contains__(self, key: object) -> bool:
        self._ensure()
        return dict.__contains__(self, key)

    def __iter__(self) -> Iterator[str]:
        self._ensure()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self._ensure()
        return dict.__len__(self)

    def __bool__(self) -> bool:
        return len(self) > 0

    def __eq__(self, other: object) -> bool:
        self._ensure()
        return dict.__eq__(self, other)

    __hash__ = None

    def __repr__(self) -> str:
        if not self.loaded:
            return "Session(<not loaded>)"
        return f"Session({dict.__repr__(self)})"

    def get(self, key: str, default: Any = None) -> Any:
        self._ensure()
        return dict.get(self, key, default)

    def keys(self) -> Any:
        self._ensure()
        return dict.keys(self)

    def values(self) -> Any:
        self._ensure()
        return dict.values(self)

    def items(self) -> Any:
        self._ensure()
        return dict.items(self)

    def copy(self) -> dict[str, Any]:
        self._ensure()
        return dict(dict.items(self))

    def pop(self, key: str, *default: Any) -> Any:
        self._ensure()
        if dict.__contains__(self, key):
            self.modified = True
        return dict.pop(self, key, *default)

    def popitem(self) -> tuple[str, Any]:
        self._ensure()
        self.modified = True
        return dict.popitem(self)

    def setdefault(self, key: str, default: Any = None) -> Any:
        self._ensure()
        if not dict.__contains__(self, key):
            self.modified = True
        return dict.setdefault(self, key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._ensure()
        self.modified = True
        dict.update(self, *args, **kwargs)

    def data(self) -> dict[str, Any]:
        """A plain copy of the data, without marking the session accessed."""
        return dict(dict.items(self))
