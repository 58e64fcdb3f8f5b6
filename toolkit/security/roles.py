"""Role checks as dependencies: 403 when the current user lacks a role.

::

    admin_only = require_roles("admin", user=Depends(get_current_user))

    @app.delete("/users/{user_id}", dependencies=[Depends(admin_only)])
    async def delete_user(user_id: int): ...

    @app.get("/reports")
    async def reports(user: Annotated[User, Depends(RoleChecker("auditor", user=get_current_user))]): ...

The user dependency runs first, so its 401 (no or bad credentials) wins over the 403, and it
is cached per request: a handler that also depends on ``get_current_user`` gets the same object.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from ..di import Depends
from ..exceptions import HTTPException

__all__ = ["RoleChecker", "default_roles_of", "require_roles"]

NOT_ENOUGH_PERMISSIONS = "Not enough permissions"


def default_roles_of(user: Any) -> Iterable[str]:
    """``user["roles"]`` for a mapping, else ``user.roles``; a string is split on spaces."""
    roles = user.get("roles", ()) if isinstance(user, Mapping) else getattr(user, "roles", ())
    if isinstance(roles, str):
        return roles.split()
    return roles if roles is not None else ()


class RoleChecker:
    """A dependency that returns the user from ``user`` when they hold the required roles.

    - ``user``: the dependency giving the current user (a callable or ``Depends(...)``).
    - ``match="all"`` (the default) needs every listed role; ``"any"`` needs one of them.
    - ``roles_of(user)`` reads a user's roles (default: ``default_roles_of``).

    Missing roles: 403 ``Not enough permissions``. A user dependency that returns ``None``
    (``auto_error=False`` schemes) is a 401 ``Not authenticated``.
    """

    __signature__: inspect.Signature

    def __init__(
        self,
        *roles: str,
        user: Depends | Callable[..., Any],
        match: Literal["all", "any"] = "all",
        roles_of: Callable[[Any], Iterable[str]] = default_roles_of,
    ) -> None:
        if not roles:
            raise ValueError("RoleChecker needs at least one role")
        if match not in ("all", "any"):
            raise ValueError(f"match must be 'all' or 'any', not {match!r}")
        self.roles = frozenset(roles)
        self.match = match
        self.roles_of = roles_of
        self.user = user if isinstance(user, Depends) else Depends(user)
        # The user dependency is a per-instance default, which only a signature can declare;
        # the toolkit reads it (like inspect.signature does) when the route is registered.
        self.__signature__ = inspect.Signature(
            [inspect.Parameter("user", inspect.Parameter.KEYWORD_ONLY, default=self.user, annotation=Any)]
        )

    async def __call__(self, user: Any) -> Any:
        if user is None:
            raise HTTPException(401, "Not authenticated")
        held = set(self.roles_of(user))
        allowed = self.roles <= held if self.match == "all" else bool(self.roles & held)
        if not allowed:
            raise HTTPException(403, NOT_ENOUGH_PERMISSIONS)
        return user

    def __repr__(self) -> str:
        roles = ", ".join(repr(role) for role in sorted(self.roles))
        return f"RoleChecker({roles}, user={self.user!r}, match={self.match!r})"


def require_roles(
    *roles: str,
    user: Depends | Callable[..., Any],
    match: Literal["all", "any"] = "all",
    roles_of: Callable[[Any], Iterable[str]] = default_roles_of,
) -> RoleChecker:
    """The dependency that lets through users holding ``roles``; use it as ``Depends(require_roles(...))``."""
    return RoleChecker(*roles, user=user, match=match, roles_of=roles_of)
