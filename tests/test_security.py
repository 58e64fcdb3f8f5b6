"""Security helpers (issue 6): schemes, passwords and roles, each accepted and rejected over HTTP."""

import base64
from collections.abc import Callable
from typing import Annotated, Any

import pytest

import toolkit.security
from toolkit import App, Depends, HTTPException, Request
from toolkit._analysis import analyze
from toolkit.security import (
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
    PasswordHasher,
    RoleChecker,
    compare_secret,
    hash_password,
    needs_rehash,
    require_roles,
    verify_password,
)
from toolkit.security.jwt import create_token, decode_token
from toolkit.testing import TestClient

ClientFactory = Callable[..., TestClient]

KEY = "k" * 32
INVALID_TOKEN = 'Bearer error="invalid_token"'
FAST = PasswordHasher(n=2**10, r=8, p=1)  # tests only: far below a production cost


def test_public_names() -> None:
    assert sorted(toolkit.security.__all__) == [
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


def echo_app(scheme: Callable[..., Any]) -> App:
    """``GET /`` answers what ``scheme`` returned, as JSON."""
    app = App()

    @app.get("/")
    async def read(value: Annotated[Any, Depends(scheme)]) -> Any:
        if isinstance(value, (HTTPBasicCredentials, HTTPAuthorizationCredentials)):
            return value  # a dataclass, encoded as an object
        return {"value": value}

    return app


def basic(text: str | bytes) -> dict[str, str]:
    raw = text.encode() if isinstance(text, str) else text
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


# --- schemes: OpenAPI declarations ------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "expected"),
    [
        (
            OAuth2PasswordBearer(tokenUrl="token"),
            (
                "OAuth2PasswordBearer",
                {"type": "oauth2", "flows": {"password": {"tokenUrl": "token", "scopes": {}}}},
            ),
        ),
        (
            OAuth2PasswordBearer(tokenUrl="/auth", scopes={"read": "Read"}, refreshUrl="/refresh"),
            (
                "OAuth2PasswordBearer",
                {
                    "type": "oauth2",
                    "flows": {
                        "password": {
                            "tokenUrl": "/auth",
                            "scopes": {"read": "Read"},
                            "refreshUrl": "/refresh",
                        }
                    },
                },
            ),
        ),
        (HTTPBearer(), ("HTTPBearer", {"type": "http", "scheme": "bearer"})),
        (
            HTTPBearer(bearerFormat="JWT"),
            ("HTTPBearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}),
        ),
        (HTTPBasic(realm="r"), ("HTTPBasic", {"type": "http", "scheme": "basic"})),
        (APIKeyHeader(name="X-Key"), ("APIKeyHeader", {"type": "apiKey", "in": "header", "name": "X-Key"})),
        (APIKeyQuery(name="key"), ("APIKeyQuery", {"type": "apiKey", "in": "query", "name": "key"})),
        (APIKeyCookie(name="sid"), ("APIKeyCookie", {"type": "apiKey", "in": "cookie", "name": "sid"})),
        (
            APIKeyHeader(name="X-Key", scheme_name="partner", description="Partner key"),
            ("partner", {"type": "apiKey", "in": "header", "name": "X-Key", "description": "Partner key"}),
        ),
    ],
)
def test_openapi_security(scheme: Any, expected: tuple[str, dict[str, Any]]) -> None:
    assert scheme.openapi_security == expected


@pytest.mark.parametrize(
    "scheme",
    [
        OAuth2PasswordBearer(tokenUrl="t"),
        HTTPBearer(),
        HTTPBasic(),
        APIKeyHeader(name="x"),
        APIKeyCookie(name="c"),
    ],
)
def test_schemes_read_the_request_not_parameters(scheme: Any) -> None:
    # What they read is no OpenAPI parameter: the only input is the injected Request.
    dependant = analyze(scheme, {})
    assert (dependant.scalars, dependant.specials) == ([], [("request", "request")])


# --- OAuth2 ---------------------------------------------------------------------------------


def test_oauth2_bearer_accepts_a_bearer_token(client_factory: ClientFactory) -> None:
    client = client_factory(echo_app(OAuth2PasswordBearer(tokenUrl="token")))
    assert client.get("/", headers={"Authorization": "Bearer abc.def"}).json() == {"value": "abc.def"}
    assert client.get("/", headers={"Authorization": "bearer xyz"}).json() == {"value": "xyz"}


@pytest.mark.parametrize("header", [None, "Basic dTpw", "Bearer", "Bearer   ", "abc"])
def test_oauth2_bearer_rejects(client_factory: ClientFactory, header: str | None) -> None:
    client = client_factory(echo_app(OAuth2PasswordBearer(tokenUrl="token")))
    response = client.get("/", headers={"Authorization": header} if header is not None else {})
    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}
    assert response.headers["www-authenticate"] == "Bearer"


def test_oauth2_bearer_optional(client_factory: ClientFactory) -> None:
    client = client_factory(echo_app(OAuth2PasswordBearer(tokenUrl="token", auto_error=False)))
    assert client.get("/").json() == {"value": None}
    assert client.get("/", headers={"Authorization": "Basic dTpw"}).json() == {"value": None}


def form_app(form_class: type[OAuth2PasswordRequestForm]) -> App:
    app = App()

    @app.post("/token")
    async def token(form: Annotated[OAuth2PasswordRequestForm, Depends(form_class)]) -> dict[str, Any]:
        return {k: v for k, v in vars(form).items() if k != "password"} | {"password_len": len(form.password)}

    return app


def test_password_request_form(client_factory: ClientFactory) -> None:
    client = client_factory(form_app(OAuth2PasswordRequestForm))
    data = {"username": "ann", "password": "pw", "scope": "read  write", "grant_type": "password"}
    assert client.post("/token", data=data).json() == {
        "grant_type": "password",
        "username": "ann",
        "scope": "read  write",
        "scopes": ["read", "write"],
        "client_id": None,
        "client_secret": None,
        "password_len": 2,
    }
    minimal = client.post("/token", data={"username": "ann", "password": "pw"}).json()
    assert (minimal["grant_type"], minimal["scopes"]) == (None, [])


def test_password_request_form_rejects(client_factory: ClientFactory) -> None:
    client = client_factory(form_app(OAuth2PasswordRequestForm))
    response = client.post(
        "/token", data={"username": "ann", "password": "pw", "grant_type": "client_credentials"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "grant_type"]
    response = client.post("/token", data={"username": "ann"})
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "password"]]
    strict = client_factory(form_app(OAuth2PasswordRequestFormStrict))
    response = strict.post("/token", data={"username": "ann", "password": "pw"})
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "grant_type"]]
    assert (
        strict.post("/token", data={"username": "a", "password": "p", "grant_type": "password"}).status_code
        == 200
    )


def test_password_request_form_repr_hides_secrets() -> None:
    form = OAuth2PasswordRequestForm(username="ann", password="hunter2", client_secret="s3cret")
    assert "hunter2" not in repr(form)
    assert "s3cret" not in repr(form)
    assert "hunter2" not in repr(HTTPBasicCredentials("ann", "hunter2"))


# --- HTTP Bearer / Basic ----------------------------------------------------------------------


def test_http_bearer(client_factory: ClientFactory) -> None:
    client = client_factory(echo_app(HTTPBearer()))
    assert client.get("/", headers={"Authorization": "Bearer tok"}).json() == {
        "scheme": "Bearer",
        "credentials": "tok",
    }
    for headers in ({}, {"Authorization": "Basic dTpw"}, {"Authorization": "Bearer "}):
        response = client.get("/", headers=headers)
        assert (response.status_code, response.json()) == (401, {"detail": "Not authenticated"})
        assert response.headers["www-authenticate"] == "Bearer"
    optional = client_factory(echo_app(HTTPBearer(auto_error=False)))
    assert optional.get("/", headers={"Authorization": "Digest x"}).json() == {"value": None}


@pytest.mark.parametrize(
    ("credentials", "expected"),
    [
        ("ann:pw", ("ann", "pw")),
        ("ann:p:w:", ("ann", "p:w:")),
        (":", ("", "")),
        ("zoë:пароль", ("zoë", "пароль")),
    ],
)
def test_http_basic_accepts(
    client_factory: ClientFactory, credentials: str, expected: tuple[str, str]
) -> None:
    app = App()
    scheme = HTTPBasic()

    @app.get("/")
    async def read(creds: Annotated[HTTPBasicCredentials, Depends(scheme)]) -> list[str]:
        return [creds.username, creds.password]

    assert client_factory(app).get("/", headers=basic(credentials)).json() == list(expected)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer abc"},
        {"Authorization": "Basic"},
        {"Authorization": "Basic %%%not-base64%%%"},
        {"Authorization": "Basic YW5u"},  # "ann": no colon
        basic(b"\xff\xfe:pw"),  # not UTF-8
    ],
)
def test_http_basic_rejects(client_factory: ClientFactory, headers: dict[str, str]) -> None:
    client = client_factory(echo_app(HTTPBasic(realm='Staff "only"')))
    response = client.get("/", headers=headers)
    assert (response.status_code, response.json()) == (401, {"detail": "Not authenticated"})
    assert response.headers["www-authenticate"] == 'Basic realm="Staff \\"only\\""'


def test_http_basic_optional_and_without_realm(client_factory: ClientFactory) -> None:
    assert client_factory(echo_app(HTTPBasic())).get("/").headers["www-authenticate"] == "Basic"
    optional = client_factory(echo_app(HTTPBasic(auto_error=False)))
    assert optional.get("/").json() == {"value": None}
    # Credentials that are present but broken are still refused: the client tried and failed.
    assert optional.get("/", headers={"Authorization": "Basic YW5u"}).status_code == 401
    with pytest.raises(ValueError, match="line break"):
        HTTPBasic(realm="a\r\nSet-Cookie: x=1")


def test_http_basic_with_compare_secret(client_factory: ClientFactory) -> None:
    app = App()
    security = HTTPBasic()

    def admin(creds: Annotated[HTTPBasicCredentials, Depends(security)]) -> str:
        ok_user = compare_secret(creds.username, "admin")
        ok_password = compare_secret(creds.password, "correct horse")
        if not (ok_user and ok_password):
            raise HTTPException(401, "Incorrect username or password", headers={"WWW-Authenticate": "Basic"})
        return creds.username

    @app.get("/")
    async def read(user: Annotated[str, Depends(admin)]) -> str:
        return user

    client = client_factory(app)
    assert client.get("/", auth=("admin", "correct horse")).json() == "admin"
    response = client.get("/", auth=("admin", "wrong"))
    assert (response.status_code, response.headers["www-authenticate"]) == (401, "Basic")


# --- API keys -----------------------------------------------------------------------------------


def api_key_request(scheme: Any, client: TestClient, key: str | None) -> Any:
    if key is None:
        return client.get("/")
    if isinstance(scheme, APIKeyHeader):
        return client.get("/", headers={"X-API-Key": key})
    if isinstance(scheme, APIKeyQuery):
        return client.get("/", params={"api_key": key})
    return client.get("/", headers={"Cookie": f"api_key={key}"})


@pytest.mark.parametrize(
    "scheme", [APIKeyHeader(name="X-API-Key"), APIKeyQuery(name="api_key"), APIKeyCookie(name="api_key")]
)
def test_api_keys(client_factory: ClientFactory, scheme: Any) -> None:
    app = App()

    def checked_key(key: Annotated[str, Depends(scheme)]) -> str:
        if not compare_secret(key, "s3cret-key"):
            raise HTTPException(401, "Invalid API key", headers={"WWW-Authenticate": "APIKey"})
        return key

    @app.get("/")
    async def read(key: Annotated[str, Depends(checked_key)]) -> dict[str, str]:
        return {"key": key}

    client = client_factory(app)
    assert api_key_request(scheme, client, "s3cret-key").json() == {"key": "s3cret-key"}
    for key, detail in ((None, "Not authenticated"), ("", "Not authenticated"), ("guess", "Invalid API key")):
        response = api_key_request(scheme, client, key)
        assert (response.status_code, response.json()) == (401, {"detail": detail})
        assert response.headers["www-authenticate"] == "APIKey"


@pytest.mark.parametrize("scheme_class", [APIKeyHeader, APIKeyQuery, APIKeyCookie])
def test_api_key_optional(client_factory: ClientFactory, scheme_class: type[Any]) -> None:
    assert client_factory(echo_app(scheme_class(name="k", auto_error=False))).get("/").json() == {
        "value": None
    }


def test_compare_secret() -> None:
    assert compare_secret("s3cret", "s3cret")
    assert compare_secret(b"s3cret", "s3cret")
    assert not compare_secret("s3cret", "s3creT")
    assert not compare_secret("s3", "s3cret")
    assert compare_secret("пароль", "пароль".encode())


# --- passwords ----------------------------------------------------------------------------------


def test_default_password_hashing() -> None:
    hashed = hash_password("correct horse battery staple")
    assert hashed.startswith("$scrypt$ln=14,r=8,p=5$")
    assert verify_password("correct horse battery staple", hashed)
    assert not verify_password("correct horse battery stapler", hashed)
    assert not needs_rehash(hashed)


def test_scrypt_hashes_are_salted_and_self_describing() -> None:
    first, second = FAST.hash("pw"), FAST.hash("pw")
    assert first != second
    assert first.startswith("$scrypt$ln=10,r=8,p=1$")
    assert FAST.verify("pw", first)
    assert FAST.verify("pw", second)
    assert not FAST.verify("pW", first)
    assert not FAST.verify("", first)
    assert FAST.verify("пароль ✓", FAST.hash("пароль ✓"))
    # Parameters travel with the hash: another hasher (or the default one) still verifies it.
    assert verify_password("pw", first)
    assert needs_rehash(first)
    assert not FAST.needs_rehash(first)
    assert PasswordHasher(n=2**11, r=8, p=1).needs_rehash(first)


@pytest.mark.parametrize(
    "hashed",
    [
        "",
        "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8",  # plain sha256
        "$scrypt$",
        "$scrypt$ln=10,r=8$c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5",
        "$scrypt$ln=10,r=8,p=1$!!$a2V5a2V5a2V5a2V5a2V5a2V5",
        "$scrypt$ln=10,r=8,p=1$c2FsdA$",
        "$scrypt$ln=40,r=8,p=1$c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5",  # would need terabytes
        "$scrypt$ln=20,r=4096,p=1$c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5",
        "$argon2id$v=19$garbage",
    ],
)
def test_malformed_hashes_raise(hashed: str) -> None:
    with pytest.raises(ValueError, match="hash"):
        FAST.verify("pw", hashed)


def test_hasher_configuration_errors() -> None:
    with pytest.raises(ValueError, match="power of two"):
        PasswordHasher(n=1000)
    with pytest.raises(ValueError, match="scheme"):
        PasswordHasher("md5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="1 GiB"):
        PasswordHasher(n=2**20, r=16)


def test_argon2() -> None:
    hasher = PasswordHasher("argon2", time_cost=1, memory_cost=1024, parallelism=1)
    hashed = hasher.hash("pw")
    assert hashed.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert hasher.verify("pw", hashed)
    assert not hasher.verify("px", hashed)
    # Auto-detected by prefix, whatever scheme the verifying hasher makes.
    assert verify_password("pw", hashed)
    assert FAST.verify("pw", hashed)
    assert needs_rehash(hashed)  # the default scheme is scrypt
    assert not hasher.needs_rehash(hashed)
    assert PasswordHasher("argon2", time_cost=2, memory_cost=1024, parallelism=1).needs_rehash(hashed)
    assert hasher.needs_rehash(FAST.hash("pw"))


# --- roles --------------------------------------------------------------------------------------


class User:
    def __init__(self, name: str, roles: Any) -> None:
        self.name, self.roles = name, roles


USERS = {"root": ["admin", "staff"], "ann": ["staff"], "bob": "staff auditor", "eve": None}


def roles_app(**checker_options: Any) -> tuple[App, list[str]]:
    app = App()
    oauth2 = OAuth2PasswordBearer(tokenUrl="token")
    calls: list[str] = []

    async def current_user(token: Annotated[str, Depends(oauth2)]) -> User:
        calls.append(token)
        if token not in USERS:
            raise HTTPException(401, "Invalid token", headers={"WWW-Authenticate": INVALID_TOKEN})
        return User(token, USERS[token])

    admin = require_roles("admin", user=Depends(current_user), **checker_options)

    @app.get("/admin")
    async def admin_page(
        user: Annotated[User, Depends(admin)], same: Annotated[User, Depends(current_user)]
    ) -> dict[str, Any]:
        return {"name": user.name, "same": user is same}

    @app.get(
        "/staff", dependencies=[Depends(RoleChecker("staff", "auditor", match="any", user=current_user))]
    )
    async def staff_page() -> str:
        return "ok"

    return app, calls


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_roles_accept(client_factory: ClientFactory) -> None:
    app, calls = roles_app()
    client = client_factory(app)
    assert client.get("/admin", headers=auth("root")).json() == {"name": "root", "same": True}
    assert calls == ["root"]  # the user dependency ran once for both uses
    assert client.get("/staff", headers=auth("ann")).json() == "ok"
    assert client.get("/staff", headers=auth("bob")).json() == "ok"  # roles as a space-separated string


def test_roles_reject(client_factory: ClientFactory) -> None:
    client = client_factory(roles_app()[0])
    for path, user in (("/admin", "ann"), ("/admin", "eve"), ("/staff", "eve")):
        response = client.get(path, headers=auth(user))
        assert (response.status_code, response.json()) == (403, {"detail": "Not enough permissions"})
    response = client.get("/admin")  # the user dependency's 401 wins
    assert (response.status_code, response.headers["www-authenticate"]) == (401, "Bearer")
    response = client.get("/admin", headers=auth("mallory"))
    assert (response.status_code, response.json()) == (401, {"detail": "Invalid token"})


def test_roles_all_and_mappings(client_factory: ClientFactory) -> None:
    app = App()

    def user(name: str = "") -> dict[str, Any] | None:
        return {"name": name, "roles": USERS[name]} if name in USERS else None

    @app.get("/")
    async def both(u: Annotated[Any, Depends(RoleChecker("admin", "staff", user=user))]) -> Any:
        return u["name"]

    client = client_factory(app)
    assert client.get("/", params={"name": "root"}).json() == "root"
    assert client.get("/", params={"name": "ann"}).status_code == 403  # needs both roles
    assert client.get("/", params={"name": "nobody"}).status_code == 401  # no user at all
    with pytest.raises(ValueError, match="at least one role"):
        RoleChecker(user=user)
    with pytest.raises(ValueError, match="match"):
        RoleChecker("a", user=user, match="some")  # type: ignore[arg-type]


# --- end to end: login form -> password -> JWT -> bearer -> roles -----------------------------


def test_login_flow(client_factory: ClientFactory) -> None:
    app = App()
    oauth2 = OAuth2PasswordBearer(tokenUrl="token")
    stored = {"ann": (FAST.hash("s3cret"), ["admin"])}

    @app.post("/token")
    def login(form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> dict[str, str]:
        record = stored.get(form.username)
        if record is None or not FAST.verify(form.password, record[0]):
            raise HTTPException(400, "Incorrect username or password")
        token = create_token({"sub": form.username, "roles": record[1]}, KEY, expires_in=300)
        return {"access_token": token, "token_type": "bearer"}

    async def current_user(request: Request, token: Annotated[str, Depends(oauth2)]) -> dict[str, Any]:
        return decode_token(token, KEY)

    @app.get("/me")
    async def me(user: Annotated[dict[str, Any], Depends(require_roles("admin", user=current_user))]) -> str:
        return str(user["sub"])

    client = client_factory(app)
    assert client.post("/token", data={"username": "ann", "password": "wrong"}).status_code == 400
    token = client.post("/token", data={"username": "ann", "password": "s3cret"}).json()["access_token"]
    assert client.get("/me", headers=auth(token)).json() == "ann"
    expired = create_token({"sub": "ann", "roles": ["admin"]}, KEY, expires_in=-1)
    response = client.get("/me", headers=auth(expired))
    assert (response.status_code, response.json()) == (401, {"detail": "Token has expired"})
    assert response.headers["www-authenticate"] == INVALID_TOKEN
