"""Values PostgreSQL refuses (a NUL character in ``text``, a number its column cannot hold), sent to
the shop (apps/shop) and its FastAPI twin (apps/shop_fastapi) on PostgreSQL: a 422 or "no match",
never a 500, and nothing written. ``apps.common`` turns asyncpg's ``DataError`` family into
``ValueOutOfRange``, which both apps answer with a 422."""

from collections.abc import Iterator
from typing import Any

import anyio
import asyncpg  # type: ignore[import-untyped]
import pytest
import test_shop
from test_shop import PASSWORD, make_settings

from apps.common.db import Database, ValueOutOfRange
from toolkit.testing import TestClient

pytest.importorskip("fastapi")

import apps.shop_fastapi.security  # after the skip: the twin needs PyJWT

APPS = ("toolkit", "fastapi")

# test_shop's fixtures: a schema of the test's own on the PostgreSQL server; cheap password hashing.
postgres_schema_url = test_shop.postgres_schema_url
cheap_hashing = test_shop.cheap_hashing
OUT_OF_RANGE = (422, {"detail": "Value out of range"})


@pytest.fixture(params=APPS)
def client(
    request: pytest.FixtureRequest, postgres_schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    settings = make_settings(postgres_schema_url)
    if request.param == "toolkit":
        from apps.shop.main import create_app
    else:
        from apps.shop_fastapi.main import create_app

        monkeypatch.setattr(apps.shop_fastapi.security, "SCRYPT_COST", (2**4, 1, 1))
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def signed_up(client: TestClient, username: str = "alice") -> dict[str, str]:
    body = {"username": username, "email": f"{username}@example.com", "password": PASSWORD}
    assert client.post("/users", json=body).status_code == 201
    response = client.post("/auth/token", data={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "a\u0000b", "price": 1.0},
        {"name": "\u0000", "price": 1.0},
        {"name": "Lamp", "price": 1.0, "description": "x\u0000"},
    ],
)
def test_a_nul_character_in_a_new_item_is_a_422(client: TestClient, fields: dict[str, Any]) -> None:
    alice = signed_up(client)
    response = client.post("/items", json=fields, headers=alice)
    assert response.status_code == 422  # refused at validation (apps/shop/models.py NO_NUL)
    assert [error["type"] for error in response.json()["detail"]] == ["string_pattern_mismatch"]
    assert client.get("/items").json()["total"] == 0  # nothing written
    assert client.post("/items", json={"name": "Lamp", "price": 1.0}, headers=alice).status_code == 201


def test_a_nul_character_in_a_search_matches_nothing(client: TestClient) -> None:
    """No stored row can hold a NUL: anonymous searches find nothing, as for any other absent text."""
    alice = signed_up(client)
    assert client.post("/items", json={"name": "ab", "price": 1.0}, headers=alice).status_code == 201
    for query in ("q=a%00b", "q=%00", "tag=a%00b"):
        response = client.get(f"/items?{query}")
        assert (response.status_code, response.json()["total"], response.json()["items"]) == (200, 0, []), (
            query
        )
    assert client.get("/items?q=ab").json()["total"] == 1  # the connection is fine afterwards


def test_an_item_tagged_with_a_nul_does_not_hide_the_others_from_tag_searches(client: TestClient) -> None:
    alice = signed_up(client)
    assert (
        client.post("/items", json={"name": "a", "price": 1.0, "tags": ["x"]}, headers=alice).status_code
        == 201
    )
    refused = client.post("/items", json={"name": "b", "price": 1.0, "tags": ["\u0000"]}, headers=alice)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "tags", 0]
    assert client.get("/items?tag=x").json()["total"] == 1


def test_a_nul_character_in_a_sign_up_is_a_422(client: TestClient) -> None:
    body = {"username": "alice", "email": "alice\u0000@example.com", "password": PASSWORD}
    response = client.post("/users", json=body)
    assert (response.status_code, response.json()) == OUT_OF_RANGE  # the database refused it
    signed_up(client)  # the name was not taken by a half-written row


def test_asyncpg_data_errors_are_value_out_of_range(postgres_schema_url: str) -> None:
    """The family (SQLSTATE class 22), at the storage layer: a NUL in ``text``, a numeric overflow,
    a text the column's type cannot parse. The transaction is rolled back; the pool goes on."""

    async def main() -> None:
        database = await Database.connect(postgres_schema_url)
        try:
            for sql, args, error in [
                ("SELECT ?::text AS v", ("a\u0000b",), asyncpg.CharacterNotInRepertoireError),
                ("SELECT 2147483647 + ?::integer AS v", (1,), asyncpg.NumericValueOutOfRangeError),
                ("SELECT ?::text::integer AS v", ("many",), asyncpg.InvalidTextRepresentationError),
                ("SELECT 1 / ?::integer AS v", (0,), asyncpg.DivisionByZeroError),
            ]:
                with pytest.raises(ValueOutOfRange) as caught:
                    async with database.transaction() as conn:
                        await conn.fetchone(sql, *args)
                assert isinstance(caught.value.__cause__, error), sql
                async with database.transaction() as conn:
                    assert await conn.fetchone("SELECT 1 AS ok") == {"ok": 1}
            # An argument of the wrong Python type is a bug of ours, not the client's value: left as is.
            with pytest.raises(asyncpg.DataError) as caught:
                async with database.transaction() as conn:
                    await conn.fetchone("SELECT ?::integer AS v", "1")
            assert not isinstance(caught.value, ValueOutOfRange)
            assert isinstance(caught.value.__cause__, TypeError)
        finally:
            await database.close()

    anyio.run(main)


def test_a_nul_character_in_graphql_create_item_is_a_bad_user_input(postgres_schema_url: str) -> None:
    """As POST /items' 422 (it was a masked internal error)."""
    pytest.importorskip("strawberry")
    from apps.shop.main import create_app

    with TestClient(create_app(make_settings(postgres_schema_url))) as client:
        alice = signed_up(client)
        mutation = 'mutation { createItem(name: "a\\u0000b", price: 1) { id } }'
        response = client.post("/graphql", json={"query": mutation}, headers=alice)
        body = response.json()
        assert (response.status_code, body["data"]) == (200, None)
        assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT"}
        assert "$.name" in body["errors"][0]["message"]  # refused at validation, as POST /items
        assert client.get("/items").json()["total"] == 0
        ok = 'mutation { createItem(name: "ab", price: 1) { name } }'
        assert client.post("/graphql", json={"query": ok}, headers=alice).json() == {
            "data": {"createItem": {"name": "ab"}}
        }
