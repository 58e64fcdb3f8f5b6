"""Bad input against the shop service (apps/shop): hostile session cookies, 10,000 cookies, JSON
without a JSON content type. Every refusal is a 4xx and writes nothing (no record, no cookie).

Already covered, not repeated: flipped signature/payload/timestamp bytes, unsigned, garbage,
empty and ``value * 200`` cookies on every store (tests/test_sessions.py::
test_tampered_or_malformed_cookie_is_an_empty_session), validly signed unknown ids
(test_sessions.py::test_an_unknown_but_validly_signed_id_is_never_adopted).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from adv_support import SHOP_SECRET, Server, bearer, call, parse, raw_get, register, scope_for, shop_settings
from itsdangerous import TimestampSigner

from apps.shop.main import SESSION_MAX_AGE, create_app
from toolkit import App
from toolkit.sessions import MemoryStore
from toolkit.testing import TestClient

ID_SALT = "toolkit.session.id"


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[tuple[App, TestClient]]:
    app = create_app(shop_settings(tmp_path))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield app, client


@pytest.fixture
def logged_in(shop: tuple[App, TestClient]) -> tuple[App, TestClient, str]:
    """alice's valid session cookie (the client itself keeps no cookie)."""
    app, client = shop
    register(client, "alice")
    response = client.post("/auth/login", json={"username": "alice", "password": "correct horse"})
    assert response.status_code == 200
    cookie = response.cookies["session"]
    client.cookies.clear()
    return app, client, cookie


def records(app: App) -> int:
    store = app.state.session_store
    assert isinstance(store, MemoryStore)
    return len(store)


def me(client: TestClient, cookie_header: str) -> Any:
    return client.get("/users/me", headers={"Cookie": cookie_header})


def only_expires(set_cookie: str | None) -> bool:
    """No ``Set-Cookie``, or one that only tells the browser to drop the cookie it sent."""
    if set_cookie is None:
        return True
    value = set_cookie.partition(";")[0]
    return value in ("session=", 'session=""') and "max-age=0" in set_cookie.lower()


def session_id(cookie: str) -> str:
    return cookie.rsplit(".", 2)[0]


class _OldSigner(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - SESSION_MAX_AGE - 60


def signed(value: str, *, key: str = SHOP_SECRET, old: bool = False) -> str:
    signer = (_OldSigner if old else TimestampSigner)(key.encode(), salt=ID_SALT)
    return signer.sign(value).decode()


# --- hostile session cookies ------------------------------------------------------------------------


def test_our_own_signature_is_accepted(logged_in: tuple[App, TestClient, str]) -> None:
    """The control for the tests below: a cookie made here like the middleware makes it works."""
    _, client, cookie = logged_in
    response = me(client, f"session={signed(session_id(cookie))}")
    assert response.json()["username"] == "alice"


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda sid: signed(sid, old=True), id="expired-signature"),
        pytest.param(lambda sid: signed(sid, key="another-key-of-at-least-32-bytes-long!"), id="wrong-key"),
        pytest.param(lambda sid: signed(sid + "A" * 4100), id="validly-signed-over-4kb"),
        pytest.param(lambda sid: signed(sid) + "A" * 4100, id="over-4kb"),
        pytest.param(lambda sid: signed(sid).replace(".", ".\r\n", 1), id="crlf-inside"),
        pytest.param(lambda sid: signed(sid) + "%0d%0aSet-Cookie:%20admin=1", id="encoded-crlf"),
        pytest.param(lambda sid: signed(sid + "\r\nSet-Cookie: admin=1"), id="validly-signed-crlf"),
        pytest.param(lambda sid: signed("../" + sid), id="validly-signed-traversal"),
        pytest.param(lambda sid: signed(sid + "\x00"), id="validly-signed-nul"),
    ],
)
def test_a_forged_session_cookie_is_no_session_and_writes_nothing(
    logged_in: tuple[App, TestClient, str], forge: Any
) -> None:
    app, client, cookie = logged_in
    before = records(app)
    forged = forge(session_id(cookie))
    response = client.portal.call(
        call, app, scope_for("/users/me", headers=[(b"cookie", f"session={forged}".encode("latin-1"))])
    )
    assert response.status == 401, response.body
    assert response.json() == {"detail": "Not authenticated"}
    assert only_expires(response.headers.get("set-cookie")), response.headers
    assert records(app) == before
    assert me(client, f"session={cookie}").status_code == 200  # the real session is untouched


def test_crlf_in_the_cookie_header_never_becomes_a_response_header(
    logged_in: tuple[App, TestClient, str],
) -> None:
    app, client, cookie = logged_in
    for header in (
        f"session={cookie}\r\nSet-Cookie: admin=1",
        f"session=x\r\nSet-Cookie: session={cookie}",
        f"a=b\r\n\r\nHTTP/1.1 200 OK; session={cookie}",
    ):
        scope = scope_for("/users/me", headers=[(b"cookie", header.encode("latin-1"))])
        response = client.portal.call(call, app, scope)
        assert response.status in (200, 401)
        assert only_expires(response.headers.get("set-cookie")), response.headers
        assert all("\r" not in v and "\n" not in v for v in response.headers.values())


@pytest.mark.parametrize(
    ("header", "status"),
    [
        ("session={good}; session=garbage", 401),  # the last cookie of a name wins (Starlette's parser)
        ("session=garbage; session={good}", 200),
        ('session="{good}"', 200),  # a quoted value is unquoted (RFC 6265)
        ("Session={good}", 401),  # names are case-sensitive
        ("session ={good}", 200),  # whitespace around the name is ignored
    ],
)
def test_duplicate_and_oddly_spelled_session_cookies(
    logged_in: tuple[App, TestClient, str], header: str, status: int
) -> None:
    app, client, cookie = logged_in
    before = records(app)
    assert me(client, header.format(good=cookie)).status_code == status
    assert records(app) == before


def test_ten_thousand_cookies(logged_in: tuple[App, TestClient, str], server: Server) -> None:
    _, client, cookie = logged_in
    many = "; ".join(f"c{i}=v{i}" for i in range(10_000))
    response = me(client, f"{many}; session={cookie}")
    assert response.json()["username"] == "alice"
    assert me(client, f"session={cookie}; {many}").json()["username"] == "alice"
    assert me(client, many).status_code == 401
    # Through a real server: the request completes and the handler reads its own cookie.
    header = b"Cookie: " + many.encode() + b"; probe=mine"
    reply = parse(server.request(raw_get(b"/echo", header)))
    assert reply.status == 200, reply.body
    assert b'"cookie":"mine"' in reply.body


def test_ten_thousand_copies_of_the_session_cookie(logged_in: tuple[App, TestClient, str]) -> None:
    app, client, cookie = logged_in
    before = records(app)
    response = me(client, "; ".join([f"session=x{i}" for i in range(10_000)] + [f"session={cookie}"]))
    assert response.json()["username"] == "alice"  # the last one wins; one store lookup at most
    assert records(app) == before


# --- JSON bodies without a JSON content type: 415, nothing written ----------------------------------

NOT_JSON = [{"content-type": "text/plain"}, {}, {"content-type": "application/x-www-form-urlencoded"}]


@pytest.mark.parametrize("headers", NOT_JSON, ids=["text-plain", "none", "form"])
def test_json_without_a_json_content_type_is_a_415_that_writes_nothing(
    shop: tuple[App, TestClient], headers: dict[str, str]
) -> None:
    app, client = shop
    body = b'{"username": "mallory", "email": "m@example.com", "password": "correct horse"}'
    response = client.post("/users", content=body, headers=headers)
    assert response.status_code == 415, response.text
    assert isinstance(response.json()["detail"], str)
    register(client, "mallory")  # the name was not taken: nothing was written

    auth = bearer(client, "mallory")
    item = b'{"name": "Widget", "price": 10}'
    assert client.post("/items", content=item, headers={**auth, **headers}).status_code == 415
    assert client.get("/items").json()["total"] == 0
    created = client.post("/items", content=item, headers={**auth, "content-type": "application/json"})
    item_id = created.json()["id"]
    patch = client.patch(f"/items/{item_id}", content=b'{"name": "Changed"}', headers={**auth, **headers})
    assert patch.status_code == 415
    assert client.get(f"/items/{item_id}").json()["name"] == "Widget"

    before = records(app)
    login = client.post(
        "/auth/login", content=b'{"username": "mallory", "password": "correct horse"}', headers=headers
    )
    assert login.status_code == 415
    assert "set-cookie" not in login.headers
    assert records(app) == before
