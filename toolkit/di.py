"""Dependency injection markers: ``Depends`` and ``Security``-style declarations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

__all__ = ["Depends"]


class Depends:
    """Declare that a parameter's value is produced by calling ``dependency``.

    ``dependency`` may be a function, an async function, a (async) generator (value before
    ``yield``, cleanup after), a class or a callable instance; its own parameters are declared
    exactly like a handler's. Omit it inside ``Annotated[T, Depends()]`` to call ``T`` itself.

    - ``use_cache``: within one request, a dependency used several times runs once.
    - ``scope="app"``: created once at start-up and shared by every request (torn down at shutdown).
    - ``sync_to_thread``: run a sync dependency in a worker thread (the default) or inline.
    """

    __slots__ = ("dependency", "scope", "sync_to_thread", "use_cache")

    def __init__(
        self,
        dependency: Callable[..., Any] | None = None,
        *,
        use_cache: bool = True,
        scope: Literal["request", "app"] = "request",
        sync_to_thread: bool = True,
    ) -> None:
        if scope not in ("request", "app"):
            raise ValueError(f"Depends scope must be 'request' or 'app', not {scope!r}")
        self.dependency = dependency
        self.use_cache = use_cache
        self.scope = scope
        self.sync_to_thread = sync_to_thread

    def __repr__(self) -> str:
        name = getattr(self.dependency, "__qualname__", repr(self.dependency))
        cache = "" if self.use_cache else ", use_cache=False"
        return f"Depends({name}{cache})"
