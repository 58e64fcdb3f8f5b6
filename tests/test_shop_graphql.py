"""The shop's GraphQL endpoint (apps/shop/graphql.py) through HTTP: the REST API's users, items
and authentication (bearer token or session cookie, through the shop's own ``current_user``)."""

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_shop import (  # the shop's helpers and fixtures (cheap password hashing included)
    PASSWORD,
    app_value,
    bearer,
    cheap_hashing,  # noqa: F401
    make_settings,
    register,
)

from apps.common.settings import Settings
from apps.shop.deps import current_user, open_database
from apps.shop.main import create_app
from toolkit import App
from toolkit.testing import TestClient

Headers = dict[str, str]

CREATE = """
mutation Create($name: String!, $price: Float!, $description: String, $tags: [String!]) {
  createItem(name: $name, price: $price, description: $description, tags: $tags) {
    id ownerId name description price tags createdAt
  }
}
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(f"sqlite:///{tmp_path / 'shop.db'}")


@pytest.fixture
def app(settings: Settings) -> App:
    return create_app(settings)


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


def gql(client: TestClient, query: str, headers: Headers | None = None, **variables: Any) -> Any:
    return client.post("/graphql", json={"query": query, "variables": variables}, headers=headers or {})


def signed_up(client: TestClient, username: str) -> Headers:
    register(client, username)
    return bearer(client, username)


def test_me_and_items_with_a_bearer_token(client: TestClient) -> None:
    alice = signed_up(client, "alice")
    client.post("/items", json={"name": "Lamp", "price": 12.5, "tags": ["home"]}, headers=alice)
    response = gql(
        client,
        "{ me { id username email roles } items(limit: 5) { total limit offset items { name price tags } } }",
        alice,
    )
    assert response.status_code == 200
    assert response.json() == {
        "data": {
            "me": {"id": 1, "username": "alice", "email": "alice@example.com", "roles": ["user"]},
            "items": {
                "total": 1,
                "limit": 5,
                "offset": 0,
                "items": [{"name": "Lamp", "price": 12.5, "tags": ["home"]}],
            },
        }
    }


def test_session_cookie_and_token_are_the_same_user(client: TestClient) -> None:
    token = signed_up(client, "alice")
    by_token = gql(client, "{ me { id username } }", token).json()
    assert client.post("/auth/login", json={"username": "alice", "password": PASSWORD}).status_code == 200
    by_cookie = gql(client, "{ me { id username } }").json()  # the client now holds the session cookie
    assert by_cookie == by_token == {"data": {"me": {"id": 1, "username": "alice"}}}
    client.post("/auth/logout")
    assert gql(client, "{ me { id } }").status_code == 401


def test_create_item_as_post_items(client: TestClient) -> None:
    alice = signed_up(client, "alice")
    response = gql(client, CREATE, alice, name="Widget", price=9.5, description="Blue", tags=["a", "b"])
    assert response.status_code == 200
    item = response.json()["data"]["createItem"]
    assert item["ownerId"] == 1
    assert (item["name"], item["description"], item["price"], item["tags"]) == (
        "Widget",
        "Blue",
        9.5,
        ["a", "b"],
    )
    assert "location" not in response.headers  # the REST handler's header stays with REST
    rest = client.get(f"/items/{item['id']}").json()  # committed: REST sees it
    assert (rest["owner_id"], rest["name"], rest["created_at"]) == (1, "Widget", item["createdAt"])


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"name": "", "price": 1.0}, "length >= 1"),
        ({"name": "x" * 101, "price": 1.0}, "length <= 100"),
        ({"name": "Free", "price": 0.0}, "> 0"),
        ({"name": "Tagged", "price": 1.0, "tags": [str(i) for i in range(11)]}, "length <= 10"),
        ({"name": "Wordy", "price": 1.0, "description": "x" * 1001}, "length <= 1000"),
    ],
)
def test_create_item_has_the_rules_of_post_items(
    client: TestClient, fields: dict[str, Any], fragment: str
) -> None:
    alice = signed_up(client, "alice")
    body = gql(client, CREATE, alice, **fields).json()
    assert body["data"] is None
    assert fragment in body["errors"][0]["message"]
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT"}
    assert client.get("/items").json()["total"] == 0  # nothing written (and the transaction rolled back)
    rest = client.post("/items", json=fields, headers=alice)
    assert rest.status_code == 422  # what REST says for the same body


def test_unauthenticated_is_refused_before_the_query(client: TestClient) -> None:
    response = gql(client, CREATE, name="Anon", price=1.0)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {
        "errors": [{"message": "Not authenticated", "extensions": {"code": "UNAUTHENTICATED", "status": 401}}]
    }
    response = gql(client, "{ items { total } }", {"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401
    assert response.json()["errors"][0]["message"] == "Could not validate credentials"  # as REST says
    assert client.get("/items").json()["total"] == 0


def test_a_second_user_is_themselves(client: TestClient) -> None:
    alice = signed_up(client, "alice")
    bob = signed_up(client, "bob")
    gql(client, CREATE, alice, name="Alice's", price=1.0)
    assert gql(client, "{ me { username } }", bob).json() == {"data": {"me": {"username": "bob"}}}
    created = gql(client, CREATE, bob, name="Bob's", price=2.0).json()["data"]["createItem"]
    assert created["ownerId"] == 2
    # There is no owner argument to forge: the owner is the authenticated user.
    forged = gql(client, 'mutation { createItem(name: "x", price: 1, ownerId: 1) { id } }', bob).json()
    assert "Unknown argument 'ownerId'" in forged["errors"][0]["message"]
    owners = [item["owner_id"] for item in client.get("/items").json()["items"]]
    assert owners == [1, 2]


def test_page_bounds_are_those_of_get_items(client: TestClient) -> None:
    alice = signed_up(client, "alice")
    for query in [
        "{ items(limit: 0) { total } }",
        "{ items(limit: 101) { total } }",
        "{ items(offset: -1) { total } }",
    ]:
        errors = gql(client, query, alice).json()["errors"]
        assert errors[0]["extensions"] == {"code": "BAD_USER_INPUT"}, query
    assert gql(client, "{ items(limit: 100, offset: 5) { total offset } }", alice).json() == {
        "data": {"items": {"total": 0, "offset": 5}}
    }


def test_a_cross_site_form_cannot_use_the_session(client: TestClient) -> None:
    register(client, "alice")
    assert client.post("/auth/login", json={"username": "alice", "password": PASSWORD}).status_code == 200
    forged = 'query=mutation{createItem(name:"csrf",price:1){id}}'
    for content_type in [
        "application/x-www-form-urlencoded",
        "text/plain",
        "multipart/form-data; boundary=x",
    ]:
        response = client.post("/graphql", content=forged, headers={"Content-Type": content_type})
        assert response.status_code == 415
    response = client.get(
        "/graphql", params={"query": 'mutation { createItem(name: "csrf", price: 1) { id } }'}
    )
    assert response.status_code == 400  # a link cannot run a mutation either
    assert client.get("/items").json()["total"] == 0


def test_production_defaults(client: TestClient) -> None:
    alice = signed_up(client, "alice")
    errors = gql(client, "{ __schema { types { name } } }", alice).json()["errors"]
    assert "introspection has been disabled" in errors[0]["message"]
    assert client.get("/graphql", headers={"Accept": "text/html"}).status_code == 404
    response = client.post(
        "/graphql", content=b"x" * (11 * 1024 * 1024), headers={**alice, "Content-Type": "application/json"}
    )
    assert response.status_code == 413


def test_database_gone_is_503_as_rest(app: App, client: TestClient) -> None:
    alice = signed_up(client, "alice")
    client.portal.call(app_value(app, open_database).close)  # type: ignore[union-attr]
    response = gql(client, "{ me { id } }", alice)
    assert response.status_code == 503  # the app's exception handler, as for GET /items
    assert response.json() == {"detail": "Database unavailable"}
    assert response.headers["retry-after"] == "1"


def test_current_user_override_applies(app: App, client: TestClient) -> None:
    signed_up(client, "alice")
    app.dependency_overrides[current_user] = lambda: {
        "id": 1,
        "username": "stand-in",
        "email": "s@example.com",
        "roles": ["user"],
        "created_at": "now",
    }
    assert gql(client, "{ me { username } }").json() == {"data": {"me": {"username": "stand-in"}}}


def test_two_clients_in_a_row(settings: Settings) -> None:
    app = create_app(settings)
    with TestClient(app) as client:
        alice = signed_up(client, "alice")
        gql(client, CREATE, alice, name="First", price=1.0)
    with TestClient(app) as client:  # another event loop: a new database pool, the same file
        body = gql(client, 'mutation { createItem(name: "Second", price: 2) { id } } ', alice).json()
        assert body == {"data": {"createItem": {"id": 2}}}
        assert gql(client, "{ items { total } }", alice).json() == {"data": {"items": {"total": 2}}}


def test_without_strawberry_the_shop_serves_rest_only(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delitem(sys.modules, "apps.shop.graphql")
    monkeypatch.setitem(sys.modules, "strawberry", None)  # as if the graphql extra were not installed
    with caplog.at_level("INFO", logger="apps.shop"):
        app = create_app(settings)
    assert "GraphQL is off" in caplog.text
    with TestClient(app) as client:
        assert client.post("/graphql", json={"query": "{ me { id } }"}).status_code == 404
        assert client.get("/items").status_code == 200


@pytest.mark.parametrize(
    ("literal", "fragment"),
    [
        ("1e400", "finite"),  # GraphQL reads it as inf (REST refuses it when decoding the JSON)
        ("-1e400", "finite"),
        ("1.7976931348623157e309", "finite"),
        ("-0.0", "> 0"),  # as REST: gt=0
        ("0", "> 0"),
    ],
)
def test_create_item_refuses_a_price_that_is_not_a_finite_positive_number(
    client: TestClient, literal: str, fragment: str
) -> None:
    alice = signed_up(client, "alice")
    body = gql(
        client, f'mutation {{ createItem(name: "Huge", price: {literal}) {{ id price }} }}', alice
    ).json()
    assert body["data"] is None
    assert fragment in body["errors"][0]["message"]
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT"}
    # Nothing written: every reader still works (an inf price broke REST's JSON and the GraphQL page).
    assert client.get("/items").json() == {"items": [], "total": 0, "skip": 0, "limit": 20}
    assert gql(client, "{ items { total items { price } } }", alice).json() == {
        "data": {"items": {"total": 0, "items": []}}
    }
    rest = client.post(
        "/items",
        content=b'{"name": "Huge", "price": %s}' % literal.encode(),
        headers={**alice, "Content-Type": "application/json"},
    )
    assert rest.status_code == 422  # what REST says for the same number


@pytest.mark.parametrize("number", [b"1e400", b"-1e400", b"Infinity", b"NaN", b"-Infinity"])
def test_create_item_refuses_a_non_finite_price_in_variables(client: TestClient, number: bytes) -> None:
    """JSON has no inf or NaN, but lenient decoders read ``1e400`` (and ``Infinity``, ``NaN``) as one."""
    alice = signed_up(client, "alice")
    payload = b'{"query": %s, "variables": {"name": "Huge", "price": %s}}' % (
        json.dumps(CREATE).encode(),
        number,
    )
    response = client.post("/graphql", content=payload, headers={**alice, "Content-Type": "application/json"})
    assert response.status_code in (200, 400), response.text
    assert response.json()["errors"]
    assert response.json().get("data") is None
    assert client.get("/items").json()["total"] == 0
    assert gql(client, "{ items { total } }", alice).json() == {"data": {"items": {"total": 0}}}


def test_a_finite_price_near_the_limits_is_accepted(client: TestClient) -> None:
    alice = signed_up(client, "alice")
    for price in (5e-324, 1.7976931348623157e308):
        item = gql(client, CREATE, alice, name="Edge", price=price).json()["data"]["createItem"]
        assert item["price"] == price
    assert [item["price"] for item in client.get("/items").json()["items"]] == [
        5e-324,
        1.7976931348623157e308,
    ]
