"""Security helpers under attack (second attack review): a JWT without ``exp``, a cross-site form
POST riding on cached HTTP Basic credentials, CORS regexes that match look-alike domains, and a
websocket opened from a foreign page. Each test goes through the public API."""

import base64
from collections.abc import Callable
from typing import Annotated, Any

import jwt as pyjwt
import pytest
from starlette.middleware import Middleware
from starlette.websockets import WebSocketDisconnect

from toolkit import App, Depends, HTTPException, WebSocket
from toolkit.security import (
    CSRFMiddleware,
    HTTPBasic,
    HTTPBasicCredentials,
    OriginChecker,
    cors_middleware,
    require_origin,
)
from toolkit.security.jwt import create_token, decode_token
from toolkit.testing import TestClient

ClientFactory = Callable[..., TestClient]

KEY = "k" * 32
SHOP = "https://shop.example"

# --- 2. JWT: exp is required whatever require= lists --------------------------------------------


def rejected(token: str, **kwargs: Any) -> str:
    with pytest.raises(HTTPException) as info:
        decode_token(token, KEY, **kwargs)
    assert info.value.status_code == 401
    detail: str = info.value.detail
    return detail


def test_jwt_require_adds_to_exp_never_replaces_it() -> None:
    no_exp = pyjwt.encode({"sub": "ann"}, KEY, algorithm="HS256")
    assert rejected(no_exp, require=("sub",)) == "Token has no 'exp' claim"
    assert rejected(no_exp, require=["sub", "roles"]) == "Token has no 'exp' claim"
    assert rejected(no_exp, require=()) == "Token has no 'exp' claim"
    token = create_token({"sub": "ann"}, KEY)
    assert decode_token(token, KEY, require=("sub",))["sub"] == "ann"
    assert decode_token(token, KEY, require=("exp", "sub"))["sub"] == "ann"  # the shop's spelling
    assert rejected(create_token({}, KEY), require=("sub",)) == "Token has no 'sub' claim"


def test_jwt_tokens_without_exp_only_when_switched_off_by_name() -> None:
    no_exp = pyjwt.encode({"sub": "ann"}, KEY, algorithm="HS256")
    assert decode_token(no_exp, KEY, require=("sub",), require_exp=False) == {"sub": "ann"}
    expired = create_token({"sub": "ann"}, KEY, expires_in=-5)
    assert rejected(expired, require_exp=False) == "Token has expired"  # a present exp still counts
    with pytest.raises(ValueError, match="require_exp=False"):
        decode_token(no_exp, KEY, require=("exp",), require_exp=False)
    with pytest.raises(TypeError, match="not a string"):
        decode_token(no_exp, KEY, require="sub")


# --- 3. CSRF: a foreign origin is checked whatever the credential ------------------------------

basic = HTTPBasic()


def basic_app(**options: Any) -> App:
    """An intranet-style app: the browser authenticates with HTTP Basic, no cookie at all."""
    app = App(middleware=[Middleware(CSRFMiddleware, **options)])

    @app.post("/transfer")
    async def transfer(user: Annotated[HTTPBasicCredentials, Depends(basic)]) -> str:
        return f"moved by {user.username}"

    @app.post("/hooks/in")
    async def hook() -> str:
        return "hooked"

    return app


BASIC = "Basic " + base64.b64encode(b"ann:secret").decode()
FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.mark.parametrize(
    "options", [{}, {"double_submit": False}, {"check_origin": False}], ids=["default", "origin", "token"]
)
@pytest.mark.parametrize(
    "source",
    [
        {"origin": "https://evil.example"},
        {"origin": "null"},  # a sandboxed iframe or Referrer-Policy: no-referrer
        {"referer": "https://evil.example/page"},
        {"origin": "http://testserver.evil.example"},
    ],
)
def test_cross_site_form_post_with_cached_basic_credentials_is_refused(
    client_factory: ClientFactory, options: dict[str, Any], source: dict[str, str]
) -> None:
    client = client_factory(basic_app(**options))
    headers = {**FORM, "authorization": BASIC, **source}
    response = client.post("/transfer", content="amount=1000&to=mallory", headers=headers)
    assert response.status_code == 403
    assert response.json()["detail"].startswith("CSRF check failed: ")


def test_cross_site_bearer_call_without_cookies_is_refused_unless_trusted(
    client_factory: ClientFactory,
) -> None:
    app = basic_app()
    headers = {"authorization": "Bearer x", "origin": "https://spa.example"}
    response = client_factory(app).post("/hooks/in", headers=headers)
    assert (response.status_code, response.json()) == (
        403,
        {"detail": "CSRF check failed: origin not trusted"},
    )
    trusted = client_factory(basic_app(trusted_origins=["https://spa.example"]))
    assert trusted.post("/hooks/in", headers=headers).status_code == 200


def test_cookie_less_requests_that_name_no_foreign_origin_still_pass(client_factory: ClientFactory) -> None:
    client = client_factory(basic_app())
    # A non-browser client (curl, a script): neither Origin nor Referer.
    assert client.post("/transfer", headers={"authorization": BASIC}).json() == "moved by ann"
    # The app's own pages.
    for source in ({"origin": "http://testserver"}, {"referer": "http://testserver/form"}):
        response = client.post("/transfer", headers={**FORM, "authorization": BASIC, **source})
        assert response.status_code == 200, source
    exempt = client_factory(basic_app(exempt_paths=["/hooks/*"]))
    assert exempt.post("/hooks/in", headers={"origin": "https://sender.example"}).status_code == 200


# --- 4. CORS: regexes must anchor the host at a dot and at the end -------------------------------


@pytest.mark.parametrize(
    ("pattern", "matched"),
    [
        (r"https://.*example\.com", "https://evilexample.com"),
        (r"https://example\.com.*", "https://example.com.evil.io"),
        (r"https://example\.com(:.*)?", "https://example.com:1@evil.io"),
        (r"https://[a-z]*example\.com", "https://xexample.com"),
        (r"https://[a-z]+-example\.com", "https://evil-example.com"),
        (r"https://app.example.com", "https://app-example.com"),  # unescaped dots
        (r"https?://.*example[.]com", "http://evilexample.com"),
        (r"https://(www\.|.*)example\.(com|org)", "https://evilexample.org"),
        (r"https://example\.[a-z]+", "https://example.evil"),
        (r"https://[a-z]+\.com", "https://evil.com"),
        (r"https://www\.[a-z]+\.co\.uk", "https://www.evil.co.uk"),
        (r"https://(?!evil)[a-z]+example\.com", "https://xexample.com"),
    ],
)
def test_cors_refuses_regexes_matching_look_alike_domains(pattern: str, matched: str) -> None:
    import re

    assert re.fullmatch(pattern, matched)  # the attack the check exists for
    with pytest.raises(ValueError, match="allow_origin_regex"):
        cors_middleware(allow_origin_regex=pattern, allow_credentials=True)
    cors_middleware(allow_origin_regex=pattern)  # without credentials: only public data is shared


@pytest.mark.parametrize(
    "pattern",
    [
        r"https://([a-z0-9-]+\.)*example\.com",
        r"https://[a-z]+\.example\.com",
        r"https?://(www\.)?example\.(com|org)(:[0-9]+)?",
        r"https://example\.com|https://admin\.example\.com",
        r"https://[\w-]+\.example\.com",
        r"https://example[.]com",
        r"^https://example\.com$",
        r"http://(localhost|127\.0\.0\.1):[0-9]+",
    ],
)
def test_cors_accepts_anchored_regexes(pattern: str) -> None:
    cors_middleware(allow_origin_regex=pattern, allow_credentials=True)


def test_cors_regex_that_cannot_be_checked_is_refused_with_credentials() -> None:
    with pytest.raises(ValueError, match="cannot be checked"):
        cors_middleware(allow_origin_regex=r"https://(\w+)\.example\.com\1", allow_credentials=True)


def test_cors_anchored_regex_serves_subdomains_only(client_factory: ClientFactory) -> None:
    app = App(
        middleware=[
            cors_middleware(allow_origin_regex=r"https://([a-z0-9-]+\.)*example\.com", allow_credentials=True)
        ]
    )

    @app.get("/data")
    async def data() -> dict[str, str]:
        return {"secret": "yes"}

    client = client_factory(app)
    for origin in ("https://example.com", "https://app.example.com", "https://a.b.example.com"):
        response = client.get("/data", headers={"Origin": origin, "Cookie": "session=1"})
        assert response.headers.get("access-control-allow-origin") == origin
    for origin in ("https://evilexample.com", "https://example.com.evil.io", "http://example.com"):
        response = client.get("/data", headers={"Origin": origin, "Cookie": "session=1"})
        assert "access-control-allow-origin" not in response.headers, origin


# --- 5. Origin allow-list for websockets (and HTTP) ----------------------------------------------


def origin_app(*origins: str, **options: Any) -> tuple[App, list[str]]:
    app = App()
    opened: list[str] = []
    guard = require_origin(*origins, **options)

    @app.websocket("/ws", dependencies=[Depends(guard)])
    async def feed(websocket: WebSocket) -> None:
        opened.append(websocket.headers.get("origin", "-"))
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    @app.post("/orders", dependencies=[Depends(guard)])
    async def order() -> str:
        return "ordered"

    return app, opened


def ws_refusal(client: TestClient, headers: dict[str, str]) -> int:
    with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect("/ws", headers=headers):
        pass
    return info.value.code


@pytest.mark.parametrize("origin", [SHOP, "HTTPS://Shop.Example", "https://shop.example:443"])
def test_websocket_from_an_allowed_origin(client_factory: ClientFactory, origin: str) -> None:
    app, opened = origin_app(SHOP, "http://localhost:8000")
    with client_factory(app).websocket_connect("/ws", headers={"origin": origin}) as ws:
        assert ws.receive_text() == "hello"
    assert opened == [origin]


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://shop.example",  # another scheme is another origin
        "https://shop.example:8443",
        "https://shop.example.evil.io",
        "https://evilshop.example",
        "https://shop.example/",
        "https://shop.example@evil.io",
        "null",
        "",
        "http://localhost:8001",
    ],
)
def test_websocket_from_a_foreign_origin_is_closed_before_accept(
    client_factory: ClientFactory, origin: str
) -> None:
    app, opened = origin_app(SHOP, "http://localhost:8000")
    assert ws_refusal(client_factory(app), {"origin": origin}) == 1008
    assert opened == []  # the handler never ran


def test_websocket_without_origin(client_factory: ClientFactory) -> None:
    app, opened = origin_app(SHOP)
    assert ws_refusal(client_factory(app), {}) == 1008
    assert opened == []
    lenient, opened = origin_app(SHOP, allow_missing=True)
    with client_factory(lenient).websocket_connect("/ws") as ws:
        assert ws.receive_text() == "hello"
    assert ws_refusal(client_factory(lenient), {"origin": "https://evil.example"}) == 1008
    assert opened == ["-"]


def test_http_routes_answer_403(client_factory: ClientFactory) -> None:
    app, _ = origin_app(SHOP)
    client = client_factory(app)
    assert client.post("/orders", headers={"origin": SHOP}).json() == "ordered"
    for headers in ({"origin": "https://evil.example"}, {}):
        response = client.post("/orders", headers=headers)
        assert (response.status_code, response.json()) == (403, {"detail": "Origin not allowed"})
    lenient, _ = origin_app(SHOP, allow_missing=True)
    assert client_factory(lenient).post("/orders").status_code == 200


def test_require_origin_with_settings_shaped_arguments(client_factory: ClientFactory) -> None:
    allowed_origins = (SHOP, "http://localhost:8000")  # settings.allowed_origins
    guard = require_origin(*allowed_origins)
    assert isinstance(guard, OriginChecker)
    assert guard.origins == {SHOP, "http://localhost:8000"}
    # Production default: no origin configured. Valid, and every browser is refused.
    nobody, opened = origin_app(*())
    assert ws_refusal(client_factory(nobody), {"origin": SHOP}) == 1008
    assert opened == []


@pytest.mark.parametrize(
    ("origins", "error"),
    [
        (("*",), ValueError),
        (("https://*.example.com",), ValueError),
        (("https://shop.example/",), ValueError),
        (("shop.example",), ValueError),
        (("null",), ValueError),
        (("ws://shop.example",), ValueError),
        (([SHOP],), TypeError),  # a list passed without *
    ],
)
def test_require_origin_configuration_errors(origins: tuple[Any, ...], error: type[Exception]) -> None:
    with pytest.raises(error):
        require_origin(*origins)


@pytest.mark.parametrize(
    "pattern",
    [
        r"https://[a-z0-9-]+\.github\.io",
        r"https://myapp-[a-z0-9-]+\.vercel\.app",
        r"https://[a-z]+\.herokuapp\.com",
        r"https://[a-z0-9-]+\.s3\.amazonaws\.com",
        r"https://[a-z0-9]+\.cloudfront\.net",
    ],
)
def test_cors_refuses_wildcards_under_shared_hosting(pattern: str) -> None:
    with pytest.raises(ValueError, match="anyone can get a name there"):
        cors_middleware(allow_origin_regex=pattern, allow_credentials=True)


def test_cors_regex_with_exploding_repeats_is_refused_quickly() -> None:
    exploding = r"https://((((a|b){100}){100}){100}){100}\.example\.com"
    with pytest.raises(ValueError, match="cannot be checked"):
        cors_middleware(allow_origin_regex=exploding, allow_credentials=True)
