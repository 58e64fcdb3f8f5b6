"""OAuth2 scope checks for dependencies below ``Security(..., scopes=[...])``."""

from __future__ import annotations

from collections.abc import Iterable

from ..di import SecurityScopes
from ..exceptions import HTTPException

__all__ = ["SecurityScopes", "require_scopes"]


def require_scopes(security_scopes: SecurityScopes, granted: str | Iterable[str] | None) -> None:
    """Refuse a token that lacks a scope the route asks for.

    ``granted`` is what the token carries: a space-separated ``scope`` claim (RFC 8693/9068) or a
    list (``scopes``/``scp``). A missing scope is a 403 with ``WWW-Authenticate: Bearer
    error="insufficient_scope", scope="<every scope asked for>"`` (RFC 6750 §3.1): the client is
    authenticated, and the header says which token would do::

        async def current_user(scopes: SecurityScopes, token: Annotated[str, Depends(oauth2)]) -> User:
            claims = decode_token(token, key)
            require_scopes(scopes, claims.get("scope"))
            ...
    """
    if granted is None:
        have: set[str] = set()
    elif isinstance(granted, str):
        have = {scope for scope in granted.split(" ") if scope}  # RFC 6749 §3.3: space-delimited
    else:
        have = {scope for scope in granted if isinstance(scope, str)}
    missing = [scope for scope in security_scopes.scopes if scope not in have]
    if missing:
        challenge = f'Bearer error="insufficient_scope", scope="{_quoted(security_scopes.scope_str)}"'
        raise HTTPException(
            403,
            f"Not enough permissions: missing scope {', '.join(missing)}",
            headers={"WWW-Authenticate": challenge},
        )


def _quoted(value: str) -> str:
    """Scope names as a quoted-string may carry them: RFC 6749's scope-token characters
    (printable ASCII without the quote and the backslash) and the spaces between tokens."""
    return "".join(char for char in value if char == " " or (char in _SCOPE_CHARS))


_SCOPE_CHARS = frozenset(chr(code) for code in (0x21, *range(0x23, 0x5C), *range(0x5D, 0x7F)))
