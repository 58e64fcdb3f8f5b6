"""Authentication schemes as dependencies: each reads its credentials and declares its OpenAPI scheme.

Every scheme is a callable instance used with ``Depends(scheme)``. Its ``__call__`` takes the
``Request`` (so the header, query value or cookie it reads is not listed as an ordinary OpenAPI
parameter) and returns the credentials, or raises a 401 with a ``WWW-Authenticate`` challenge.
With ``auto_error=False`` a missing credential gives ``None`` instead, for optional
authentication or for trying several schemes in turn.

``openapi_security`` is ``(name, Security Scheme Object)`` for ``components/securitySchemes``;
the name is the class name unless ``scheme_name=`` is given.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hmac
from typing import Annotated, Any, ClassVar

from starlette.requests import Request

from ..exceptions import HTTPException
from ..params import Form

__all__ = [
    "APIKeyCookie",
    "APIKeyHeader",
    "APIKeyQuery",
    "HTTPAuthorizationCredentials",
    "HTTPBasic",
    "HTTPBasicCredentials",
    "HTTPBearer",
    "OAuth2PasswordBearer",
    "OAuth2PasswordRequestForm",
    "OAuth2PasswordRequestFormStrict",
    "SecurityScheme",
    "compare_secret",
]

NOT_AUTHENTICATED = "Not authenticated"


def compare_secret(given: str | bytes, expected: str | bytes) -> bool:
    """``given == expected`` in time that does not depend on where they differ (``hmac.compare_digest``).

    Use it for API keys, basic-auth passwords and any other secret compared to a known value;
    ``==`` returns as soon as a byte differs, which leaks the secret through response timing.
    Strings are compared as UTF-8 bytes.
    """
    if isinstance(given, str):
        given = given.encode("utf-8")
    if isinstance(expected, str):
        expected = expected.encode("utf-8")
    return hmac.compare_digest(given, expected)


def _split_authorization(value: str | None) -> tuple[str, str]:
    """``"Bearer abc "`` -> ``("Bearer", "abc")``; a missing header -> ``("", "")``."""
    if not value:
        return "", ""
    scheme, _, credentials = value.strip().partition(" ")
    return scheme, credentials.strip()


def _quote(value: str) -> str:
    """An RFC 9110 quoted-string."""
    if "\r" in value or "\n" in value:
        raise ValueError(f"a header parameter cannot contain a line break: {value!r}")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


class SecurityScheme:
    """Base of the schemes: the OpenAPI declaration and the 401 they answer with."""

    challenge: ClassVar[str] = ""  # the WWW-Authenticate value
    #: Where the credential is read: ``("header" | "query" | "cookie", name)``. A cached route
    #: keys its entries on it; ``None`` (a scheme that does not say) makes caching refuse the route.
    credential_source: tuple[str, str] | None = None

    def __init__(self, *, scheme_name: str | None, description: str | None, auto_error: bool) -> None:
        self.scheme_name = scheme_name or type(self).__name__
        self.description = description
        self.auto_error = auto_error

    @property
    def openapi_security(self) -> tuple[str, dict[str, Any]]:
        """``(name, OpenAPI 3.1 Security Scheme Object)``."""
        scheme = self._openapi_scheme()
        if self.description:
            scheme["description"] = self.description
        return self.scheme_name, scheme

    def _openapi_scheme(self) -> dict[str, Any]:
        raise NotImplementedError

    def not_authenticated(self) -> HTTPException:
        """The 401 raised when credentials are missing or unusable."""
        return HTTPException(401, NOT_AUTHENTICATED, headers={"WWW-Authenticate": self.challenge})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scheme_name={self.scheme_name!r})"


# --- OAuth2 ----------------------------------------------------------------------------------


class OAuth2PasswordBearer(SecurityScheme):
    """A bearer token obtained from the OAuth2 password flow at ``tokenUrl``; returns the token.

    ``Authorization: Bearer <token>`` -> ``"<token>"``. A missing header, another scheme or an
    empty token is a 401 ``Not authenticated`` with ``WWW-Authenticate: Bearer``. Checking the
    token (``toolkit.security.jwt.decode_token``...) is the next dependency's job.
    """

    challenge = "Bearer"
    credential_source = ("header", "authorization")

    def __init__(
        self,
        tokenUrl: str,  # FastAPI's (and OpenAPI's) spelling
        *,
        scheme_name: str | None = None,
        scopes: dict[str, str] | None = None,
        description: str | None = None,
        refreshUrl: str | None = None,
        auto_error: bool = True,
    ) -> None:
        super().__init__(scheme_name=scheme_name, description=description, auto_error=auto_error)
        self.token_url = tokenUrl
        self.refresh_url = refreshUrl
        self.scopes = dict(scopes or {})

    def _openapi_scheme(self) -> dict[str, Any]:
        flow: dict[str, Any] = {"tokenUrl": self.token_url, "scopes": dict(self.scopes)}
        if self.refresh_url:
            flow["refreshUrl"] = self.refresh_url
        return {"type": "oauth2", "flows": {"password": flow}}

    async def __call__(self, request: Request) -> str | None:
        scheme, token = _split_authorization(request.headers.get("authorization"))
        if scheme.lower() != "bearer" or not token:
            if self.auto_error:
                raise self.not_authenticated()
            return None
        return token


# The docs' form shows these as password inputs (FastAPI marks them so too).
_SECRET_FIELD = Form(json_schema_extra={"format": "password"})


class OAuth2PasswordRequestForm:
    """The form a client posts to the token endpoint (OAuth2 password flow), as a class dependency.

    Fields: ``username``, ``password``, optional ``grant_type`` (only ``"password"``), ``scope``
    (space-separated; also split into ``scopes``), ``client_id``, ``client_secret``. Needs
    python-multipart (``pip install 'toolkit[forms]'``)::

        @app.post("/token")
        async def login(form: Annotated[OAuth2PasswordRequestForm, Depends()]): ...
    """

    def __init__(
        self,
        *,
        username: Annotated[str, Form()],
        password: Annotated[str, _SECRET_FIELD],
        grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
        scope: Annotated[str, Form()] = "",
        client_id: Annotated[str | None, Form()] = None,
        client_secret: Annotated[str | None, _SECRET_FIELD] = None,
    ) -> None:
        self.grant_type = grant_type
        self.username = username
        self.password = password
        self.scope = scope
        self.scopes = scope.split()
        self.client_id = client_id
        self.client_secret = client_secret

    def __repr__(self) -> str:  # never print the password or the client secret
        return f"{type(self).__name__}(username={self.username!r}, scopes={self.scopes!r})"


class OAuth2PasswordRequestFormStrict(OAuth2PasswordRequestForm):
    """``OAuth2PasswordRequestForm`` with ``grant_type=password`` required, as the spec says."""

    def __init__(
        self,
        *,
        grant_type: Annotated[str, Form(pattern="^password$")],
        username: Annotated[str, Form()],
        password: Annotated[str, _SECRET_FIELD],
        scope: Annotated[str, Form()] = "",
        client_id: Annotated[str | None, Form()] = None,
        client_secret: Annotated[str | None, _SECRET_FIELD] = None,
    ) -> None:
        super().__init__(
            grant_type=grant_type,
            username=username,
            password=password,
            scope=scope,
            client_id=client_id,
            client_secret=client_secret,
        )


# --- HTTP authentication (RFC 9110) ----------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class HTTPAuthorizationCredentials:
    """``Authorization: <scheme> <credentials>``, split at the first space."""

    scheme: str
    credentials: str = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True, slots=True)
class HTTPBasicCredentials:
    """The decoded user name and password of HTTP Basic authentication."""

    username: str
    password: str = dataclasses.field(repr=False)


class HTTPBearer(SecurityScheme):
    """``Authorization: Bearer <token>`` -> ``HTTPAuthorizationCredentials("Bearer", "<token>")``.

    A missing header, another scheme or an empty token: 401 with ``WWW-Authenticate: Bearer``.
    """

    challenge = "Bearer"
    credential_source = ("header", "authorization")

    def __init__(
        self,
        *,
        bearerFormat: str | None = None,  # OpenAPI's spelling; e.g. "JWT"
        scheme_name: str | None = None,
        description: str | None = None,
        auto_error: bool = True,
    ) -> None:
        super().__init__(scheme_name=scheme_name, description=description, auto_error=auto_error)
        self.bearer_format = bearerFormat

    def _openapi_scheme(self) -> dict[str, Any]:
        scheme: dict[str, Any] = {"type": "http", "scheme": "bearer"}
        if self.bearer_format:
            scheme["bearerFormat"] = self.bearer_format
        return scheme

    async def __call__(self, request: Request) -> HTTPAuthorizationCredentials | None:
        scheme, token = _split_authorization(request.headers.get("authorization"))
        if scheme.lower() != "bearer" or not token:
            if self.auto_error:
                raise self.not_authenticated()
            return None
        return HTTPAuthorizationCredentials(scheme=scheme, credentials=token)


class HTTPBasic(SecurityScheme):
    """``Authorization: Basic base64(user:password)`` -> ``HTTPBasicCredentials(user, password)``.

    Missing or another scheme: 401 ``WWW-Authenticate: Basic`` (``Basic realm="..."`` with a
    realm), or ``None`` with ``auto_error=False``. Credentials that are present but malformed
    (not base64, not UTF-8, no colon) are always a 401: the client tried and failed. Compare the
    password with ``compare_secret`` or ``verify_password``, never ``==``.
    """

    credential_source = ("header", "authorization")

    def __init__(
        self,
        *,
        realm: str | None = None,
        scheme_name: str | None = None,
        description: str | None = None,
        auto_error: bool = True,
    ) -> None:
        super().__init__(scheme_name=scheme_name, description=description, auto_error=auto_error)
        self.realm = realm
        self._challenge = f"Basic realm={_quote(realm)}" if realm else "Basic"

    def _openapi_scheme(self) -> dict[str, Any]:
        return {"type": "http", "scheme": "basic"}

    def not_authenticated(self) -> HTTPException:
        return HTTPException(401, NOT_AUTHENTICATED, headers={"WWW-Authenticate": self._challenge})

    async def __call__(self, request: Request) -> HTTPBasicCredentials | None:
        scheme, encoded = _split_authorization(request.headers.get("authorization"))
        if scheme.lower() != "basic":
            if self.auto_error:
                raise self.not_authenticated()
            return None
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, ValueError) as exc:  # UnicodeDecodeError is a ValueError
            raise self.not_authenticated() from exc
        username, colon, password = decoded.partition(":")
        if not colon:
            raise self.not_authenticated()
        return HTTPBasicCredentials(username=username, password=password)


# --- API keys --------------------------------------------------------------------------------


class _APIKey(SecurityScheme):
    """An API key read from one place; returns it as a string. Missing or empty: 401."""

    # No standard challenge exists for API keys, but a 401 must carry one (RFC 9110 §15.5.2).
    challenge = "APIKey"
    location: ClassVar[str] = ""

    def __init__(
        self,
        *,
        name: str,
        scheme_name: str | None = None,
        description: str | None = None,
        auto_error: bool = True,
    ) -> None:
        super().__init__(scheme_name=scheme_name, description=description, auto_error=auto_error)
        self.name = name
        self.credential_source = (self.location, name)

    def _openapi_scheme(self) -> dict[str, Any]:
        return {"type": "apiKey", "in": self.location, "name": self.name}

    def _read(self, request: Request) -> str | None:
        raise NotImplementedError

    async def __call__(self, request: Request) -> str | None:
        key = self._read(request)
        if not key:
            if self.auto_error:
                raise self.not_authenticated()
            return None
        return key


class APIKeyHeader(_APIKey):
    """An API key in the header ``name`` (e.g. ``X-API-Key``). Check it with ``compare_secret``."""

    location = "header"

    def _read(self, request: Request) -> str | None:
        return request.headers.get(self.name)


class APIKeyQuery(_APIKey):
    """An API key in the query parameter ``name``. Keys in URLs end up in logs: prefer a header."""

    location = "query"

    def _read(self, request: Request) -> str | None:
        return request.query_params.get(self.name)


class APIKeyCookie(_APIKey):
    """An API key in the cookie ``name``. Cookie auth needs CSRF protection (``CSRFMiddleware``)."""

    location = "cookie"

    def _read(self, request: Request) -> str | None:
        return request.cookies.get(self.name)
