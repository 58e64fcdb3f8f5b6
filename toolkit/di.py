"""Dependency injection markers: ``Depends``, ``Security`` and the ``SecurityScopes`` they pass."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

__all__ = ["Depends", "Security", "SecurityScopes"]


class Depends:
    """Declare that a parameter's value is produced by calling ``dependency``.

    ``dependency`` may be a function, an async function, a (async) generator (value before
    ``yield``, cleanup after), a class or a callable instance; its own parameters are declared
    exactly like a handler's. Omit it inside ``Annotated[T, Depends()]`` to call ``T`` itself.

    - ``use_cache``: within one request, a dependency used several times runs once.
    - ``scope``: for a generator dependency, when its code after ``yield`` runs: ``"request"``
      (the default) after the response is sent, ``"function"`` as soon as the handler returned,
      before the response is sent (as in FastAPI). ``"app"``: created once at start-up and
      shared by every request (torn down at shutdown).
    - ``sync_to_thread``: run a sync dependency in a worker thread (the default) or inline.
    """

    __slots__ = ("dependency", "scope", "sync_to_thread", "use_cache")
    scopes: tuple[str, ...] = ()  # OAuth2 scopes (``Security``)

    def __init__(
        self,
        dependency: Callable[..., Any] | None = None,
        *,
        use_cache: bool = True,
        scope: Literal["request", "function", "app"] = "request",
        sync_to_thread: bool = True,
    ) -> None:
        if scope not in ("request", "function", "app"):
            raise ValueError(f"Depends scope must be 'request', 'function' or 'app', not {scope!r}")
        self.dependency = dependency
        self.use_cache = use_cache
        self.scope = scope
        self.sync_to_thread = sync_to_thread

    def __repr__(self) -> str:
        name = getattr(self.dependency, "__qualname__", repr(self.dependency))
        cache = "" if self.use_cache else ", use_cache=False"
        return f"Depends({name}{cache})"


class Security(Depends):
    """``Depends`` that also asks for OAuth2 ``scopes``.

    The scopes of every ``Security`` on the way from the handler down to a dependency reach it
    through a ``SecurityScopes`` parameter, where it checks them against the token's; the
    OpenAPI document lists them in the operation's security requirement::

        async def current_user(scopes: SecurityScopes, token: Annotated[str, Depends(oauth2)]): ...

        @app.get("/items")
        async def items(user: Annotated[User, Security(current_user, scopes=["items:read"])]): ...
    """

    __slots__ = ("scopes",)

    def __init__(
        self,
        dependency: Callable[..., Any] | None = None,
        *,
        scopes: Sequence[str] | None = None,
        use_cache: bool = True,
        scope: Literal["request", "function", "app"] = "request",
        sync_to_thread: bool = True,
    ) -> None:
        super().__init__(dependency, use_cache=use_cache, scope=scope, sync_to_thread=sync_to_thread)
        if isinstance(scopes, str):
            raise TypeError("Security(scopes=...) takes a list of scope names, not one string")
        self.scopes = tuple(scopes or ())

    def __repr__(self) -> str:
        name = getattr(self.dependency, "__qualname__", repr(self.dependency))
        return f"Security({name}, scopes={list(self.scopes)!r})"


class SecurityScopes:
    """The OAuth2 scopes the ``Security`` markers above a dependency ask for (a parameter
    annotated ``SecurityScopes`` receives them): ``scopes`` (a list) and ``scope_str`` (space
    separated, as in a token's ``scope`` claim and a ``WWW-Authenticate`` header)."""

    __slots__ = ("scope_str", "scopes")

    def __init__(self, scopes: Sequence[str] | None = None) -> None:
        self.scopes: list[str] = list(scopes or ())
        self.scope_str = " ".join(self.scopes)

    def __repr__(self) -> str:
        return f"SecurityScopes({self.scopes!r})"
