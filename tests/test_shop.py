"""The shop service (apps/shop) through HTTP: every endpoint of apps/SPEC.md, success and errors.

Handlers are defined inside test functions here: no ``from __future__ import annotations``.
"""

import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from apps.common import repository
from apps.common._postgres import to_dollar_placeholders
from apps.common._sqlite import SQLiteDatabase
from apps.common.db import MAX_ID, Database, DatabaseUnavailable, ValueOutOfRange
from apps.common.events import Broadcaster
from apps.common.settings import Settings, load_settings
from apps.shop import admin as admin_command
from apps.shop import security
from apps.shop.deps import Conn, open_broadcaster, open_database
from apps.shop.main import create_app
from toolkit import App
from toolkit.security import PasswordHasher
from toolkit.security.jwt import create_token
from toolkit.testing import TestClient

SECRET = "test-secret-key-of-at-least-32-bytes!!"
ORIGIN = "http://testserver"  # the WebSocket's allowed origin (the test client's own)
PASSWORD = "correct horse"

Headers = dict[str, str]


# --- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """scrypt at its real cost takes ~0.2 s per hash: tests use a tiny one (same format)."""
    monkeypatch.setattr(security, "hasher", PasswordHasher(n=2**4, r=1, p=1))


def make_settings(database_url: str, **changes: Any) -> Settings:
    options: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": None,
        "secret_key": SECRET,
        "development": True,  # the plain-HTTP test client: a `session` cookie without Secure
        "allowed_origins": (ORIGIN,),
        **changes,
    }
    return Settings(**options)


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


def app_value(app: App, dependency: Callable[..., Any]) -> Any:
    """The value of an app-scoped dependency (or of its override) while the app runs."""
    return app.app_scope.values[app.dependency_overrides.get(dependency, dependency)]


def register(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, Any]:
    response = client.post(
        "/users", json={"username": username, "email": f"{username}@example.com", "password": password}
    )
    assert response.status_code == 201, response.text
    user: dict[str, Any] = response.json()
    return user


def bearer(client: TestClient, username: str, password: str = PASSWORD) -> Headers:
    response = client.post("/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def user_headers(client: TestClient, username: str) -> Headers:
    register(client, username)
    return bearer(client, username)


def admin_headers(client: TestClient, settings: Settings, username: str = "admin") -> Headers:
    """Registered through HTTP (a plain user), promoted out of band by the admin command."""
    register(client, username)
    promoted = anyio.run(admin_command.promote, settings.database_url, username)
    assert promoted["roles"] == ["user", "admin"]
    return bearer(client, username)


def create_item(client: TestClient, headers: Headers, **fields: Any) -> dict[str, Any]:
    body = {"name": "Widget", "price": 10.0, **fields}
    response = client.post("/items", json=body, headers=headers)
    assert response.status_code == 201, response.text
    item: dict[str, Any] = response.json()
    return item


def replay(client: TestClient, cookie: str) -> int:
    """``GET /users/me`` with only this session cookie; the status code."""
    client.cookies.clear()
    return client.get("/users/me", headers={"Cookie": f"session={cookie}"}).status_code


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# --- health, docs, middleware ------------------------------------------------------------------


def test_health_and_ready(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "sessions": "ok"}}


def test_database_gone_is_503(app: App, client: TestClient) -> None:
    database: Database = app_value(app, open_database)
    client.portal.call(database.close)  # type: ignore[union-attr]
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "checks": {"database": "error", "sessions": "ok"}}
    response = client.get("/items")
    assert response.status_code == 503
    assert response.json() == {"detail": "Database unavailable"}
    assert response.headers["retry-after"] == "1"


def test_unopenable_database_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")

    async def connect() -> None:
        await Database.connect(f"sqlite:///{tmp_path / 'a-file' / 'shop.db'}")

    with pytest.raises(DatabaseUnavailable):
        anyio.run(connect)
    with pytest.raises(ValueError, match="memory"):
        anyio.run(Database.connect, "sqlite:///:memory:")


def test_locked_database_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"

    async def main() -> None:
        database = await SQLiteDatabase.open(f"sqlite:///{path}", busy_timeout=0.05)
        locker = sqlite3.connect(path, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        try:
            with pytest.raises(DatabaseUnavailable):
                async with database.transaction(write=True) as conn:
                    await conn.execute("DELETE FROM audit")
        finally:
            locker.close()
            await database.close()

    anyio.run(main)


def test_a_database_file_deleted_while_running_is_unavailable(app: App, client: TestClient) -> None:
    alice = user_headers(client, "alice")  # leaves idle pooled connections to the file
    path = Path(app_value(app, open_database).path)
    for file in path.parent.glob(f"{path.name}*"):  # the database, its -wal and -shm
        file.unlink()
    response = client.get("/items")
    assert response.status_code == 503
    assert response.json() == {"detail": "Database unavailable"}
    assert client.post("/items", json={"name": "Lost", "price": 1}, headers=alice).status_code == 503
    assert client.get("/ready").json()["checks"]["database"] == "error"
    assert not path.exists()  # not silently re-created empty


def test_a_replaced_database_file_is_used_by_new_connections(app: App, client: TestClient) -> None:
    alice = user_headers(client, "alice")
    create_item(client, alice, name="Old", price=1)
    path = Path(app_value(app, open_database).path)
    backup = path.with_name("backup.db")
    with sqlite3.connect(path) as source, sqlite3.connect(backup) as target:
        source.backup(target)
    create_item(client, alice, name="After the backup", price=2)
    for file in path.parent.glob(f"{path.name}*"):
        file.unlink()
    backup.rename(path)  # restored: idle connections to the old file must not answer
    assert [item["name"] for item in client.get("/items").json()["items"]] == ["Old"]


async def check_out_of_range_ids(database: Database, beyond: int) -> None:
    """``beyond`` fits no id column: lookups find nothing, listings are empty, nothing is a 500."""
    async with database.transaction(write=True) as conn:
        with pytest.raises(ValueOutOfRange):
            await conn.fetchone("SELECT id FROM items WHERE id = ?", beyond)
        assert await repository.get_item(conn, beyond) is None
        assert await repository.get_user(conn, beyond) is None
        assert await repository.list_items(conn, skip=0, limit=10, owner_id=beyond) == ([], 0)
        assert (await repository.list_items(conn, skip=beyond, limit=10))[0] == []
        assert await repository.list_users(conn, skip=beyond, limit=10) == []
        assert await repository.delete_item(conn, beyond) is False
        with pytest.raises(LookupError):
            await repository.update_item(conn, beyond, {"name": "x"})
        with pytest.raises(LookupError):
            await repository.set_item_image(conn, beyond, content_type="image/png", size=1)
        assert await conn.fetchone("SELECT count(*) AS n FROM items") == {"n": 0}  # still usable


def test_sqlite_integers_beyond_64_bits_match_nothing(tmp_path: Path) -> None:
    async def main() -> None:
        database = await Database.connect(f"sqlite:///{tmp_path / 'shop.db'}")
        try:
            await check_out_of_range_ids(database, MAX_ID + 1)
            await check_out_of_range_ids(database, -(2**70))
        finally:
            await database.close()

    anyio.run(main)


def test_ids_and_offsets_are_bounded_to_64_bits(client: TestClient) -> None:
    alice = user_headers(client, "alice")
    for url, kind, loc in [
        (f"/items/{MAX_ID + 1}", "less_than_equal", ["path", "item_id"]),
        ("/items/0", "greater_than_equal", ["path", "item_id"]),
        (f"/items?owner_id={MAX_ID + 1}", "less_than_equal", ["query", "owner_id"]),
        (f"/items?skip={10**20}", "less_than_equal", ["query", "skip"]),
    ]:
        response = client.get(url)
        assert response.status_code == 422, url
        assert [(e["type"], e["loc"]) for e in response.json()["detail"]] == [(kind, loc)]
    assert client.get(f"/items/{MAX_ID}").status_code == 404
    assert client.get(f"/items?skip={MAX_ID}").json()["items"] == []
    assert client.delete(f"/items/{MAX_ID + 1}", headers=alice).status_code == 422
    assert client.patch(f"/items/{MAX_ID + 1}", json={}, headers=alice).status_code == 422


def test_an_out_of_range_value_from_the_database_is_a_422(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def overflow(*args: Any, **kwargs: Any) -> None:
        raise ValueOutOfRange("sqlite: Python int too large to convert to SQLite INTEGER")

    monkeypatch.setattr(repository, "list_items", overflow)
    response = client.get("/items")
    assert (response.status_code, response.json()) == (422, {"detail": "Value out of range"})


def test_docs_and_openapi(client: TestClient) -> None:
    assert "swagger" in client.get("/docs").text.lower()
    document = client.get("/openapi.json").json()
    assert {"/users", "/users/me", "/auth/token", "/items", "/items/{item_id}", "/items/events"} <= set(
        document["paths"]
    )
    schemes = document["components"]["securitySchemes"]
    assert schemes["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == "/auth/token"
    user_schema = document["components"]["schemas"]["User"]
    assert "password_hash" not in user_schema["properties"]


def test_request_id_and_timing_headers(client: TestClient) -> None:
    response = client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert "total;dur=" in response.headers["server-timing"]
    assert float(response.headers["x-process-time"]) >= 0
    assert client.get("/health").headers["x-request-id"]  # one is issued when none is sent


# --- users and authentication ------------------------------------------------------------------


def test_register(client: TestClient) -> None:
    body = {"username": "alice", "email": "alice@example.com", "password": PASSWORD}
    response = client.post("/users", json=body)
    assert response.status_code == 201
    user = response.json()
    assert response.headers["location"] == f"/users/{user['id']}"
    assert set(user) == {"id", "username", "email", "roles", "created_at"}
    assert user["roles"] == ["user"]
    assert user["created_at"].endswith("Z")
    duplicate = client.post("/users", json=body)
    assert duplicate.status_code == 409
    assert duplicate.json() == {"detail": "Username already taken"}


def test_register_validation_lists_every_field(client: TestClient) -> None:
    response = client.post("/users", json={"username": "a!", "email": "no-at-sign", "password": "short"})
    assert response.status_code == 422
    locs = {tuple(error["loc"]) for error in response.json()["detail"]}
    assert locs == {("body", "username"), ("body", "email"), ("body", "password")}
    assert client.post("/users", json={"username": "bob"}).status_code == 422


def test_registering_never_makes_an_admin(client: TestClient) -> None:
    for name in ("admin", "root"):
        user = register(client, name)
        assert user["roles"] == ["user"]
        assert client.get("/admin/users", headers=bearer(client, name)).status_code == 403


def test_token_flow(client: TestClient) -> None:
    user = register(client, "alice")
    response = client.post("/auth/token", data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    token = response.json()
    assert token["token_type"] == "bearer"
    assert "set-cookie" not in response.headers
    me = client.get("/users/me", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert me.status_code == 200
    assert me.json() == user


@pytest.mark.parametrize(("username", "password"), [("alice", "wrong password"), ("nobody", PASSWORD)])
def test_token_bad_credentials(client: TestClient, username: str, password: str) -> None:
    register(client, "alice")
    response = client.post("/auth/token", data={"username": username, "password": password})
    assert response.status_code == 401
    assert response.json() == {"detail": "Incorrect username or password"}
    assert response.headers["www-authenticate"] == "Bearer"


def test_token_form_is_validated(client: TestClient) -> None:
    response = client.post("/auth/token", data={"username": "alice"})
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["body", "password"]]


def test_users_me_needs_credentials(client: TestClient) -> None:
    response = client.get("/users/me")
    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        create_token({"sub": "1"}, SECRET, expires_in=-60),  # expired
        create_token({"sub": "1"}, "another-secret-key-of-32-bytes-or-more"),  # badly signed
        create_token({"sub": "999"}, SECRET),  # no such user
    ],
    ids=["malformed", "expired", "bad-signature", "unknown-user"],
)
def test_bad_bearer_token_is_401_even_with_a_session(client: TestClient, token: str) -> None:
    register(client, "alice")
    assert client.post("/auth/login", json={"username": "alice", "password": PASSWORD}).status_code == 200
    assert client.get("/users/me").status_code == 200  # the session alone works
    response = client.get("/users/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json() == {"detail": "Could not validate credentials"}
    assert response.headers["www-authenticate"] == "Bearer"


def test_session_login_logout_and_replay(client: TestClient) -> None:
    user = register(client, "alice")
    response = client.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    assert response.json() == user
    assert "httponly" in response.headers["set-cookie"].lower()
    old_cookie = client.cookies["session"]
    assert client.get("/users/me").json() == user

    response = client.post("/auth/logout")
    assert response.status_code == 204
    assert "max-age=0" in response.headers["set-cookie"].lower()
    assert client.get("/users/me").status_code == 401

    assert replay(client, old_cookie) == 401  # the cookie of the ended session


def test_login_issues_a_new_session_id(client: TestClient) -> None:
    register(client, "alice")
    client.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    first = client.cookies["session"]
    client.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    assert client.cookies["session"] != first
    second = client.cookies["session"]
    assert replay(client, first) == 401  # the previous id was deleted
    assert replay(client, second) == 200


def test_login_failures(client: TestClient) -> None:
    register(client, "alice")
    response = client.post("/auth/login", json={"username": "alice", "password": "wrong password"})
    assert response.status_code == 401
    assert response.json() == {"detail": "Incorrect username or password"}
    assert "www-authenticate" not in response.headers
    assert "set-cookie" not in response.headers
    assert client.post("/auth/login", json={"username": "alice"}).status_code == 422


def test_logout_without_a_session(client: TestClient) -> None:
    response = client.post("/auth/logout")
    assert response.status_code == 204
    assert "set-cookie" not in response.headers


def test_admin_endpoints(client: TestClient, settings: Settings) -> None:
    assert client.get("/admin/users").status_code == 401
    user = user_headers(client, "alice")
    response = client.get("/admin/users", headers=user)
    assert response.status_code == 403
    assert response.json() == {"detail": "Not enough permissions"}
    assert client.get("/admin/audit", headers=user).status_code == 403

    admin = admin_headers(client, settings)
    for name in ("bob", "carol"):
        register(client, name)
    users = client.get("/admin/users", headers=admin).json()
    assert [u["username"] for u in users] == ["alice", "admin", "bob", "carol"]
    assert all("password_hash" not in u for u in users)
    page = client.get("/admin/users?skip=1&limit=2", headers=admin).json()
    assert [u["username"] for u in page] == ["admin", "bob"]
    assert client.get("/admin/users?limit=101", headers=admin).status_code == 422
    assert client.get("/admin/audit?limit=0", headers=admin).status_code == 422


# --- items ------------------------------------------------------------------------------------


def test_create_item_and_audit_record(client: TestClient, settings: Settings) -> None:
    alice = user_headers(client, "alice")
    response = client.post(
        "/items", json={"name": "Lamp", "price": 25, "tags": ["home", "light"]}, headers=alice
    )
    assert response.status_code == 201
    item = response.json()
    assert response.headers["location"] == f"/items/{item['id']}"
    assert item["name"] == "Lamp"
    assert item["price"] == 25.0
    assert item["description"] is None
    assert item["tags"] == ["home", "light"]
    assert item["image"] is None
    assert item["created_at"] == item["updated_at"]
    assert client.get(f"/items/{item['id']}").json() == item

    # The background task ran after the response, in its own (committed) transaction.
    audit = client.get("/admin/audit", headers=admin_headers(client, settings)).json()
    assert len(audit) == 1
    assert audit[0]["action"] == "item.created"
    assert audit[0]["item_id"] == item["id"]
    assert audit[0]["user_id"] == item["owner_id"]
    assert audit[0]["at"].endswith("Z")


def test_audit_is_newest_first(client: TestClient, settings: Settings) -> None:
    admin = admin_headers(client, settings)
    ids = [create_item(client, admin, name=f"n{i}")["id"] for i in range(3)]
    audit = client.get("/admin/audit?limit=2", headers=admin).json()
    assert [record["item_id"] for record in audit] == ids[:0:-1]


def test_create_item_errors(client: TestClient) -> None:
    response = client.post("/items", json={"name": "", "price": 0})
    assert response.status_code == 401  # authentication is checked before the body
    alice = user_headers(client, "alice")
    response = client.post(
        "/items",
        json={"name": "", "price": 0, "tags": [str(i) for i in range(11)], "description": "x" * 1001},
        headers=alice,
    )
    assert response.status_code == 422
    locs = {tuple(error["loc"]) for error in response.json()["detail"]}
    assert locs == {("body", "name"), ("body", "price"), ("body", "tags"), ("body", "description")}
    response = client.post("/items", content=b'{"name": "x", "price": 1}', headers=alice)
    assert response.status_code == 415  # the toolkit refuses a JSON body without its content type


def test_read_item_errors(client: TestClient) -> None:
    response = client.get("/items/12345")
    assert response.status_code == 404
    assert response.json() == {"detail": "Item not found"}
    assert client.get("/items/abc").status_code == 422


def test_list_items_pagination(client: TestClient) -> None:
    alice = user_headers(client, "alice")
    items = [create_item(client, alice, name=f"item {i}") for i in range(5)]
    page = client.get("/items").json()
    assert page == {"items": items, "total": 5, "skip": 0, "limit": 20}
    page = client.get("/items?skip=1&limit=2").json()
    assert [item["id"] for item in page["items"]] == [items[1]["id"], items[2]["id"]]
    assert (page["total"], page["skip"], page["limit"]) == (5, 1, 2)
    assert client.get("/items?skip=10").json()["items"] == []
    for query in ("limit=0", "limit=101", "skip=-1", "min_price=0", "max_price=-1", "limit=x"):
        assert client.get(f"/items?{query}").status_code == 422, query
    response = client.get("/items?limit=0&skip=-1")
    assert {tuple(e["loc"]) for e in response.json()["detail"]} == {("query", "limit"), ("query", "skip")}


def test_list_items_filters(client: TestClient) -> None:
    alice = user_headers(client, "alice")
    bob = user_headers(client, "bob")
    lamp = create_item(client, alice, name="Desk LAMP", price=30, tags=["home", "light"])
    sale = create_item(client, alice, name="Chair", description="50% off_today", price=80, tags=["home"])
    bulb = create_item(client, bob, name="Bulb", description="for a lamp", price=2.5, tags=['odd"tag'])

    def ids(query: str) -> list[int]:
        page = client.get(f"/items?{query}").json()
        assert page["total"] == len(page["items"])
        return [item["id"] for item in page["items"]]

    assert ids("q=lamp") == [lamp["id"], bulb["id"]]  # name or description, any case
    assert ids("q=50%25") == [sale["id"]]  # LIKE wildcards are matched literally
    assert ids("q=o_f") == []  # "_" is not a wildcard either ("off" does not match)
    assert ids("q=off_t") == [sale["id"]]
    assert ids("min_price=30") == [lamp["id"], sale["id"]]
    assert ids("max_price=30") == [lamp["id"], bulb["id"]]
    assert ids("min_price=3&max_price=50") == [lamp["id"]]
    assert ids("tag=home") == [lamp["id"], sale["id"]]
    assert ids("tag=hom") == []  # tags match exactly
    assert ids("tag=odd%22tag") == [bulb["id"]]
    assert ids(f"owner_id={bulb['owner_id']}") == [bulb["id"]]
    assert ids(f"owner_id={lamp['owner_id']}&tag=light&q=desk") == [lamp["id"]]
    page = client.get("/items?tag=home&limit=1").json()
    assert (len(page["items"]), page["total"]) == (1, 2)


def test_patch_changes_only_the_fields_sent(client: TestClient) -> None:
    alice = user_headers(client, "alice")
    item = create_item(client, alice, name="Lamp", description="bright", price=20, tags=["a"])
    url = f"/items/{item['id']}"

    response = client.patch(url, json={"price": 25.5}, headers=alice)
    assert response.status_code == 200
    patched = response.json()
    assert patched["price"] == 25.5
    assert {k: v for k, v in patched.items() if k not in ("price", "updated_at")} == {
        k: v for k, v in item.items() if k not in ("price", "updated_at")
    }
    assert patched["updated_at"] > item["updated_at"]

    cleared = client.patch(url, json={"description": None, "tags": []}, headers=alice).json()
    assert (cleared["description"], cleared["tags"], cleared["name"]) == (None, [], "Lamp")
    unchanged = client.patch(url, json={}, headers=alice).json()
    assert unchanged == cleared
    assert client.patch(url, json={"unknown": 1}, headers=alice).json() == cleared
    assert client.get(url).json() == cleared

    for body in ({"name": None}, {"price": None}, {"tags": None}, {"price": 0}, {"name": ""}):
        response = client.patch(url, json=body, headers=alice)
        assert response.status_code == 422, body
    assert client.get(url).json() == cleared


def test_owner_checks(client: TestClient, settings: Settings) -> None:
    alice = user_headers(client, "alice")
    bob = user_headers(client, "bob")
    admin = admin_headers(client, settings)
    item = create_item(client, alice)
    url = f"/items/{item['id']}"
    png = {"file": ("a.png", b"\x89PNG", "image/png")}

    for method, kwargs in (("PATCH", {"json": {"name": "x"}}), ("DELETE", {}), ("PUT", {"files": png})):
        target = url + "/image" if method == "PUT" else url
        assert client.request(method, target, **kwargs).status_code == 401
        response = client.request(method, target, headers=bob, **kwargs)
        assert response.status_code == 403, method
        assert response.json() == {"detail": "Not the owner of this item"}
        missing = client.request(method, target.replace(str(item["id"]), "999"), headers=bob, **kwargs)
        assert missing.status_code == 404, method
        assert missing.json() == {"detail": "Item not found"}

    assert client.patch(url, json={"name": "by admin"}, headers=admin).json()["name"] == "by admin"
    assert client.get(url).json()["owner_id"] == item["owner_id"]
    assert client.delete(url, headers=admin).status_code == 204


def test_delete(client: TestClient) -> None:
    alice = user_headers(client, "alice")
    item = create_item(client, alice)
    response = client.delete(f"/items/{item['id']}", headers=alice)
    assert response.status_code == 204
    assert response.content == b""
    assert client.get(f"/items/{item['id']}").status_code == 404
    assert client.delete(f"/items/{item['id']}", headers=alice).status_code == 404


def test_image_upload(client: TestClient) -> None:
    alice = user_headers(client, "alice")
    item = create_item(client, alice)
    url = f"/items/{item['id']}/image"
    data = b"\x89PNG" + bytes(1000)
    response = client.put(url, files={"file": ("a.png", data, "image/png")}, headers=alice)
    assert response.status_code == 200
    assert response.json()["image"] == {"content_type": "image/png", "size": len(data)}
    assert client.get(f"/items/{item['id']}").json()["image"] == {"content_type": "image/png", "size": 1004}

    exactly = bytes(1024 * 1024)
    response = client.put(url, files={"file": ("b.bin", exactly, "application/octet-stream")}, headers=alice)
    assert response.json()["image"]["size"] == 1024 * 1024

    too_large = bytes(1024 * 1024 + 1)
    response = client.put(url, files={"file": ("c.png", too_large, "image/png")}, headers=alice)
    assert response.status_code == 413
    assert response.json() == {"detail": "Image too large"}
    assert client.get(f"/items/{item['id']}").json()["image"]["size"] == 1024 * 1024  # unchanged

    response = client.put(url, data={"other": "x"}, files={"other_file": ("d", b"x")}, headers=alice)
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "file"]]


# --- live notifications ----------------------------------------------------------------------


def test_server_sent_events(app: App, client: TestClient) -> None:
    alice = user_headers(client, "alice")
    broadcaster: Broadcaster = app_value(app, open_broadcaster)
    result: dict[str, Any] = {}

    def listen() -> None:  # the test client returns a response once its stream has ended
        result["response"] = client.get("/items/events?limit=2")

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    wait_until(lambda: broadcaster.subscribers == 1)
    created = [create_item(client, alice, name=name) for name in ("first", "second", "third")]
    listener.join(timeout=10)
    assert not listener.is_alive()

    response = result["response"]
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    events = [block.split("\n") for block in response.text.strip().split("\n\n")]
    assert [lines[0] for lines in events] == ["event: item.created"] * 2
    assert [json.loads(lines[1].removeprefix("data: ")) for lines in events] == created[:2]
    assert broadcaster.subscribers == 0  # unsubscribed once the stream ended
    assert client.get("/items/events?limit=0").status_code == 422


def test_websocket_notifications(client: TestClient) -> None:
    alice = user_headers(client, "alice")
    origin = {"Origin": ORIGIN}
    with (
        client.websocket_connect("/ws/items", headers=origin) as first,
        client.websocket_connect("/ws/items", headers=origin) as second,
    ):
        item = create_item(client, alice, name="live")
        expected = {"event": "item.created", "item": item}
        assert first.receive_json() == expected
        assert second.receive_json() == expected


def test_broadcaster_drops_events_for_a_slow_subscriber() -> None:
    async def main() -> None:
        broadcaster = Broadcaster(buffer_size=2)
        async with broadcaster.subscribe() as events:
            for number in range(5):
                broadcaster.publish({"n": number})  # never blocks
            assert broadcaster.dropped == 3
            broadcaster.close()
            assert [event["n"] async for event in events] == [0, 1]
        assert broadcaster.subscribers == 0

    anyio.run(main)


# --- transactions ------------------------------------------------------------------------------


def test_transaction_rolls_back_when_the_handler_fails(settings: Settings) -> None:
    app = create_app(settings)

    @app.post("/fail-after-write")
    async def fail_after_write(conn: Conn) -> None:
        await repository.create_user(conn, username="ghost", email="g@x", password_hash="x", roles=["user"])
        raise RuntimeError("the handler fails after a write")

    # Re-plan with the app's overrides: the toolkit ignores overrides set before a route is added.
    app.dependency_overrides.update({})
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/fail-after-write")
        assert response.status_code == 500
        assert response.json()["detail"] == "Internal Server Error"
        register(client, "ghost")  # not a 409: the user was rolled back


# --- configuration -----------------------------------------------------------------------------


def test_load_settings(caplog: pytest.LogCaptureFixture) -> None:
    env = {
        "DATABASE_URL": "sqlite:////tmp/x.db",
        "REDIS_URL": "redis://localhost:6379/0",
        "SECRET_KEY": SECRET,
        "SHOP_DEVELOPMENT": "1",
        "SHOP_ALLOWED_ORIGINS": " https://shop.example, https://admin.shop.example ,,",
        "SHOP_LOGIN_RATE_PER_ADDRESS": "100/hour",
        "SHOP_LOGIN_RATE_PER_ACCOUNT": "10 per 5 minutes",
        "SHOP_SIGNUP_RATE_PER_ADDRESS": "2/second",
        "SHOP_RATE_LIMITS": "0",
    }
    assert load_settings(env) == Settings(
        database_url="sqlite:////tmp/x.db",
        redis_url="redis://localhost:6379/0",
        secret_key=SECRET,
        development=True,
        allowed_origins=("https://shop.example", "https://admin.shop.example"),
        login_rate_per_address="100/hour",
        login_rate_per_account="10 per 5 minutes",
        signup_rate_per_address="2/second",
        rate_limits=False,
    )
    with caplog.at_level(logging.WARNING, logger="apps.settings"):
        defaults = load_settings({})
    assert "SECRET_KEY is not set" in caplog.text
    assert len(defaults.secret_key) >= 32
    assert defaults.secret_key != load_settings({}).secret_key
    assert (defaults.database_url, defaults.redis_url) == ("sqlite:///./shop.db", None)
    # Production unless told otherwise: secure cookie, no WebSocket origin, limits on.
    assert (defaults.development, defaults.session_cookie, defaults.secure_cookies) == (
        False,
        "__Host-session",
        True,
    )
    assert (defaults.allowed_origins, defaults.rate_limits) == ((), True)
    development = load_settings({"SHOP_DEVELOPMENT": "true"})
    assert (development.session_cookie, development.secure_cookies) == ("session", False)
    assert development.allowed_origins == ("http://localhost:8000", "http://127.0.0.1:8000")
    with pytest.raises(ValueError, match="32 bytes"):
        load_settings({"SECRET_KEY": "short"})
    with pytest.raises(ValueError, match="SHOP_DEVELOPMENT"):
        load_settings({"SHOP_DEVELOPMENT": "maybe"})


def test_placeholders_for_asyncpg() -> None:
    sql = "SELECT * FROM t WHERE a = ? AND b LIKE '%?%' ESCAPE '\\' AND c IN (?, ?)"
    assert to_dollar_placeholders(sql) == (
        "SELECT * FROM t WHERE a = $1 AND b LIKE '%?%' ESCAPE '\\' AND c IN ($2, $3)"
    )


def test_sessions_in_redis(tmp_path: Path, redis_url: str, redis_prefix: str) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'shop.db'}", redis_url=redis_url)
    with TestClient(create_app(settings)) as client:
        assert client.get("/ready").json()["checks"] == {"database": "ok", "sessions": "ok"}
        register(client, "alice")
        assert client.post("/auth/login", json={"username": "alice", "password": PASSWORD}).status_code == 200
        old_cookie = client.cookies["session"]
        assert client.get("/users/me").json()["username"] == "alice"
        assert client.post("/auth/logout").status_code == 204
        assert replay(client, old_cookie) == 401


# --- PostgreSQL ---------------------------------------------------------------------------------


@pytest.fixture
def postgres_schema_url(postgres_url: str) -> Iterator[str]:
    """A fresh schema of this test's own on ``postgres_url``'s server (dropped after), as a database URL."""
    import asyncpg  # type: ignore[import-untyped]

    schema = f"shop_test_{uuid.uuid4().hex[:12]}"

    async def run(statement: str) -> None:
        connection = await asyncpg.connect(postgres_url, timeout=5)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    anyio.run(run, f"CREATE SCHEMA {schema}")
    try:
        yield f"{postgres_url}{'&' if '?' in postgres_url else '?'}search_path={schema}"
    finally:
        anyio.run(run, f"DROP SCHEMA {schema} CASCADE")


def test_postgresql_crud(postgres_schema_url: str) -> None:
    settings = make_settings(postgres_schema_url)
    with TestClient(create_app(settings)) as client:
        assert client.get("/ready").json()["checks"]["database"] == "ok"
        alice = user_headers(client, "alice")
        assert (
            client.post(
                "/users", json={"username": "alice", "email": "a@b", "password": PASSWORD}
            ).status_code
            == 409
        )
        lamp = create_item(client, alice, name="Desk Lamp", description="50% off", price=30, tags=["home"])
        create_item(client, alice, name="Chair", price=80, tags=["garden"])
        page = client.get("/items?q=LAMP&tag=home&min_price=10&max_price=40").json()
        assert (page["total"], [item["id"] for item in page["items"]]) == (1, [lamp["id"]])
        assert client.get("/items?q=50%25").json()["total"] == 1
        assert client.get("/items?skip=1&limit=1").json()["total"] == 2
        url = f"/items/{lamp['id']}"
        patched = client.patch(url, json={"description": None, "price": 35}, headers=alice).json()
        assert (patched["description"], patched["price"], patched["name"]) == (None, 35.0, "Desk Lamp")
        image = client.put(url + "/image", files={"file": ("a.png", b"png", "image/png")}, headers=alice)
        assert image.json()["image"] == {"content_type": "image/png", "size": 3}
        assert client.delete(url, headers=alice).status_code == 204
        assert client.get(url).status_code == 404
        audit = client.get("/admin/audit", headers=admin_headers(client, settings)).json()
        assert [record["action"] for record in audit] == ["item.created", "item.created"]
        # SERIAL ids are 32-bit: a larger (valid 64-bit) id is not found, not a 500 or a 503.
        beyond = f"/items/{2**31}"
        assert client.get(beyond).status_code == 404
        assert client.patch(beyond, json={"price": 1}, headers=alice).status_code == 404
        assert client.delete(beyond, headers=alice).status_code == 404
        assert client.get(f"/items?owner_id={2**31}").json()["items"] == []


def test_postgresql_integers_beyond_32_bits_match_nothing(postgres_schema_url: str) -> None:
    async def main() -> None:
        database = await Database.connect(postgres_schema_url)
        try:
            await check_out_of_range_ids(database, 2**31)
            await check_out_of_range_ids(database, MAX_ID + 1)
        finally:
            await database.close()

    anyio.run(main)
