"""Security helpers: authentication schemes as dependencies, passwords, roles, CSRF, CORS and
``Origin`` allow-lists (websockets).

JWT helpers live in ``toolkit.security.jwt`` (they need PyJWT: ``pip install 'toolkit[jwt]'``).
"""

from ._schemes import (
    APIKeyCookie,
    APIKeyHeader,
    APIKeyQuery,
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
    OAuth2PasswordBearer,
    OAuth2PasswordRequestForm,
    OAuth2PasswordRequestFormStrict,
    SecurityScheme,
    compare_secret,
)
from .cors import cors_middleware
from .csrf import CSRFMiddleware
from .origin import OriginChecker, require_origin
from .passwords import (
    PasswordHasher,
    hash_password,
    hash_password_async,
    needs_rehash,
    verify_password,
    verify_password_async,
)
from .roles import RoleChecker, require_roles
from .scopes import SecurityScopes, require_scopes

__all__ = [
    "APIKeyCookie",
    "APIKeyHeader",
    "APIKeyQuery",
    "CSRFMiddleware",
    "HTTPAuthorizationCredentials",
    "HTTPBasic",
    "HTTPBasicCredentials",
    "HTTPBearer",
    "OAuth2PasswordBearer",
    "OAuth2PasswordRequestForm",
    "OAuth2PasswordRequestFormStrict",
    "OriginChecker",
    "PasswordHasher",
    "RoleChecker",
    "SecurityScheme",
    "SecurityScopes",
    "compare_secret",
    "cors_middleware",
    "hash_password",
    "hash_password_async",
    "needs_rehash",
    "require_origin",
    "require_roles",
    "require_scopes",
    "verify_password",
    "verify_password_async",
]
