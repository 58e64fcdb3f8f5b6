"""CSRF middleware and CORS configuration (issue 6): real requests through an App."""

from collections.abc import Callable
from typing import Any

import pytest
from starlette.middleware import Middleware

from toolkit import App, Request
from toolkit.security import CSRFMiddleware, cors_middleware
from toolkit.testing import TestClient

ClientFactory = Callable[..., TestClient]

UNSAFE = ["POST", "PUT", "PATCH", "DELETE"]
SAME_ORIGIN = "http://testserver"


def csrf_app(**options: Any) -> App:
    app = App(middleware=[Middleware(CSRFMiddleware, **options)])

    @app.get("/form")
    async def form(request: Request) -> dict[str, Any]:
        return {"token": request.scope.get("csrf_token")}

    @app.api_route("/change", methods=UNSAFE)
    async def change() -> str:
        return "changed"

    @app.post("/webhooks/stripe")
    async def webhook() -> str:
        return "hooked"

    return app


def send(client: TestClient, method: str, path: str = "/change", **headers: str) -> Any:
    return client.request(method, path, headers={k.replace("_", "-"): v for k, v in headers.items()})


# --- the token cookie -------------------------------------------------------------------------


def test_safe_request_sets_a_token_cookie(client_factory: ClientFactory) -> None:
    client = client_factory(csrf_app())
    response = client.get("/form")
    cookie = response.headers["set-cookie"]
    token = response.json()["token"]
    assert cookie == f"csrftoken={token}; Path=/; SameSite=Lax"  # readable by JS: no HttpOnly
    assert len(token) >= 32
    # Once the browser has it, it is kept, not rotated on every page.
    again = client.get("/form", headers={"Cookie": f"csrftoken={token}"})
    assert "set-cookie" not in again.headers
    assert again.json() == {"token": token}


def test_token_cookie_options(client_factory: ClientFactory) -> None:
    secure = client_factory(csrf_app(), base_url="https://testserver")
    assert secure.get("/form").headers["set-cookie"].endswith("; Secure")
    client = client_factory(
        csrf_app(
            cookie_name="xsrf", cookie_samesite="strict", cookie_domain="example.com", cookie_path="/app"
        )
    )
    assert client.get("/form").headers["set-cookie"].split("; ")[1:] == [
        "Path=/app",
        "SameSite=Strict",
        "Domain=example.com",
    ]
    none = client_factory(csrf_app(cookie_samesite="none"))
    assert none.get("/form").headers["set-cookie"].endswith("SameSite=None; Secure")


# --- accepted ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", UNSAFE)
def test_same_origin_with_matching_token(client_factory: ClientFactory, method: str) -> None:
    client = client_factory(csrf_app())
    token = client.get("/form").json()["token"]  # the client now holds the cookie, like a browser
    response = send(client, method, origin=SAME_ORIGIN, x_csrf_token=token)
    assert (response.status_code, response.json()) == (200, "changed")


def test_requests_without_cookies_pass(client_factory: ClientFactory) -> None:
    # A non-browser API client (no Origin, no Referer) or the app's own page is not affected.
    # A foreign origin is checked even without cookies (cached Basic credentials ride on it too):
    # see tests/test_security_abuse.py.
    client = client_factory(csrf_app())
    assert send(client, "POST", authorization="Bearer x").status_code == 200
    assert send(client, "POST", origin=SAME_ORIGIN, authorization="Bearer x").status_code == 200


def test_safe_methods_pass(client_factory: ClientFactory) -> None:
    client = client_factory(csrf_app())
    for method in ("GET", "HEAD", "OPTIONS"):
        response = send(client, method, "/form", origin="https://evil.example", cookie="session=abc")
        assert response.status_code in (200, 405)
        assert response.status_code != 403


def test_referer_stands_in_for_a_missing_origin(client_factory: ClientFactory) -> None:
    client = client_factory(csrf_app(double_submit=False))
    ok = send(client, "POST", cookie="session=abc", referer="http://testserver/page?x=1")
    assert ok.status_code == 200
    bad = send(client, "POST", cookie="session=abc", referer="https://evil.example/page")
    assert (bad.status_code, bad.json()) == (403, {"detail": "CSRF check failed: origin not trusted"})


def test_trusted_origins_and_default_ports(client_factory: ClientFactory) -> None:
    client = client_factory(csrf_app(double_submit=False, trusted_origins=["https://App.Example.com:443"]))
    for origin in ("https://app.example.com", "http://testserver:80", "HTTP://TESTSERVER"):
        assert send(client, "POST", cookie="s=1", origin=origin).status_code == 200, origin
    for origin in ("https://app.example.com:8443", "http://app.example.com", "https://example.com"):
        assert send(client, "POST", cookie="s=1", origin=origin).status_code == 403, origin


def test_exempt_paths(client_factory: ClientFactory) -> None:
    client = client_factory(csrf_app(exempt_paths=["/webhooks/*", "/nothing"]))
    assert (
        send(client, "POST", "/webhooks/stripe", cookie="s=1", origin="https://stripe.example").status_code
        == 200
    )
    assert send(client, "POST", cookie="s=1", origin="https://stripe.example").status_code == 403


def test_token_only_when_no_origin_is_sent(client_factory: ClientFactory) -> None:
    # Neither Origin nor Referer (a non-browser client, a privacy proxy): the token decides.
    client = client_factory(csrf_app())
    token = client.get("/form").json()["token"]
    assert send(client, "POST", x_csrf_token=token).status_code == 200
    assert send(client, "POST", x_csrf_token="forged").status_code == 403


# --- refused ----------------------------------------------------------------------------------


def refusal(response: Any) -> str:
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/json"
    detail: str = response.json()["detail"]
    return detail


@pytest.mark.parametrize("method", UNSAFE)
def test_missing_token(client_factory: ClientFactory, method: str) -> None:
    client = client_factory(csrf_app())
    client.get("/form")  # the cookie is set, the header is not sent
    assert refusal(send(client, method, origin=SAME_ORIGIN)) == "CSRF check failed: token missing"
    # Cookies, but not the token cookie (e.g. it expired): refused as well.
    other = client_factory(csrf_app())
    response = send(other, method, origin=SAME_ORIGIN, cookie="session=abc", x_csrf_token="abc")
    assert refusal(response) == "CSRF check failed: token missing"


def test_mismatched_token(client_factory: ClientFactory) -> None:
    client = client_factory(csrf_app())
    token = client.get("/form").json()["token"]
    for sent in (token[:-1], token + "x", token.upper(), "x" * len(token)):
        response = send(client, "POST", origin=SAME_ORIGIN, x_csrf_token=sent)
        assert refusal(response) == "CSRF check failed: token mismatch"


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "http://testserver.evil.example", "https://testserver", "null", "garbage"],
)
def test_foreign_origin_is_refused_even_with_the_token(client_factory: ClientFactory, origin: str) -> None:
    client = client_factory(csrf_app())
    token = client.get("/form").json()["token"]
    response = send(client, "POST", origin=origin, x_csrf_token=token)
    assert refusal(response) == "CSRF check failed: origin not trusted"


def test_origin_only_mode_needs_an_origin(client_factory: ClientFactory) -> None:
    client = client_factory(csrf_app(double_submit=False))
    assert "set-cookie" not in client.get("/form").headers
    assert send(client, "POST", cookie="s=1", origin=SAME_ORIGIN).status_code == 200
    response = send(client, "POST", cookie="s=1")
    assert refusal(response) == "CSRF check failed: no Origin or Referer header"


def test_token_only_mode_ignores_origin(client_factory: ClientFactory) -> None:
    client = client_factory(csrf_app(check_origin=False))
    token = client.get("/form").json()["token"]
    assert send(client, "POST", origin="https://elsewhere.example", x_csrf_token=token).status_code == 200
    assert refusal(send(client, "POST", origin=SAME_ORIGIN)) == "CSRF check failed: token missing"


def test_configuration_errors() -> None:
    with pytest.raises(ValueError, match="check_origin, double_submit or both"):
        CSRFMiddleware(App(), check_origin=False, double_submit=False)
    with pytest.raises(ValueError, match="not an http"):
        CSRFMiddleware(App(), trusted_origins=["example.com"])


def test_lifespan_passes_through(client_factory: ClientFactory) -> None:
    with client_factory(csrf_app()) as client:
        assert client.get("/form").status_code == 200


# --- CORS -------------------------------------------------------------------------------------


def cors_app(**options: Any) -> App:
    app = App(middleware=[cors_middleware(**options)])

    @app.get("/data")
    async def data() -> dict[str, str]:
        return {"secret": "yes"}

    return app


def preflight(client: TestClient, origin: str) -> Any:
    headers = {"Origin": origin, "Access-Control-Request-Method": "GET"}
    return client.options("/data", headers=headers)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"allow_origins": ["*"]}, "allow_credentials=True would let every site"),
        ({"allow_origins": ["https://a.example", "*"]}, "allow_credentials=True would let every site"),
        ({"allow_origins": ["null"]}, "Origin: null"),
        ({"allow_origin_regex": ".*"}, "matches arbitrary origins"),
        ({"allow_origin_regex": "https?://.+"}, "matches arbitrary origins"),
        ({"allow_origin_regex": "https://.*"}, "matches arbitrary origins"),
    ],
)
def test_cors_refuses_wildcards_with_credentials(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cors_middleware(allow_credentials=True, **options)
    cors_middleware(allow_credentials=False, **options)  # without credentials they are allowed


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"allow_origins": ["https://example.com/"]}, ValueError),
        ({"allow_origins": ["example.com"]}, ValueError),
        ({"allow_origins": "https://example.com"}, TypeError),
        ({"allow_origin_regex": "https://(unclosed"}, ValueError),
    ],
)
def test_cors_refuses_malformed_options(options: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        cors_middleware(**options)


def test_cors_with_credentials_for_listed_origins(client_factory: ClientFactory) -> None:
    client = client_factory(
        cors_app(
            allow_origins=["https://app.example"], allow_credentials=True, allow_headers=["X-CSRF-Token"]
        )
    )
    response = preflight(client, "https://app.example")
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    assert response.headers["access-control-allow-credentials"] == "true"
    refused = preflight(client, "https://evil.example")
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    simple = client.get("/data", headers={"Origin": "https://evil.example", "Cookie": "session=1"})
    assert "access-control-allow-origin" not in simple.headers


def test_cors_anchored_regex_with_credentials(client_factory: ClientFactory) -> None:
    client = client_factory(
        cors_app(allow_origin_regex=r"https://[a-z]+\.example\.com", allow_credentials=True)
    )
    assert preflight(client, "https://app.example.com").headers["access-control-allow-origin"] == (
        "https://app.example.com"
    )
    assert preflight(client, "https://example.com.evil.example").status_code == 400


def test_cors_wildcard_without_credentials(client_factory: ClientFactory) -> None:
    client = client_factory(cors_app(allow_origins=["*"]))
    response = client.get("/data", headers={"Origin": "https://anyone.example"})
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers
