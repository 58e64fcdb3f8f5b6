"""The notes service (apps/notes) and its FastAPI twin (apps/notes_fastapi), each on SQLite and on
a real PostgreSQL (a throw-away database): what a user and an attacker send, over HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from notes_support import (  # noqa: F401 (fixtures)
    NotesApp,
    author,
    checked_out,
    count,
    fixture_client,
    fixture_db_url,
    fixture_notes,
    fixture_pg_url,
    note,
)

from toolkit.testing import TestClient

MAX_ID = 2**63 - 1
JSON = {"content-type": "application/json"}


def test_crud(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ada = author(client)
    assert set(ada) == {"id", "name", "created_at"}
    assert ada["name"] == "ada"
    assert ada["created_at"].endswith("Z")  # UTC on both databases
    created = note(client, ada["id"], "first", "hello")
    assert created["author"] == {"id": ada["id"], "name": "ada"}
    assert {created["title"], created["body"]} == {"first", "hello"}
    assert client.get(f"/notes/{created['id']}").json() == created

    patched = client.patch(f"/notes/{created['id']}", json={"title": "renamed"})
    assert patched.status_code == 200
    assert patched.json() == {**created, "title": "renamed"}
    assert client.patch(f"/notes/{created['id']}", json={}).json() == patched.json()
    assert client.get(f"/notes/{created['id']}").json() == patched.json()

    deleted = client.delete(f"/notes/{created['id']}")
    assert (deleted.status_code, deleted.content) == (204, b"")
    for method in ("GET", "PATCH", "DELETE"):
        response = client.request(method, f"/notes/{created['id']}", json={} if method == "PATCH" else None)
        assert (response.status_code, response.json()) == (404, {"detail": "Note not found"})


def test_page(client: TestClient) -> None:
    ada, bob = author(client, "ada"), author(client, "bob")
    made = [note(client, (ada, bob)[i % 2]["id"], f"n{i}") for i in range(7)]
    page = client.get("/notes", params={"limit": 3, "offset": 2}).json()
    assert page == {"items": made[2:5], "total": 7, "limit": 3, "offset": 2}
    assert [item["author"]["name"] for item in page["items"]] == ["ada", "bob", "ada"]
    assert client.get("/notes").json() == {"items": made, "total": 7, "limit": 50, "offset": 0}
    assert client.get("/notes", params={"offset": 100}).json()["items"] == []
    # The largest offset allowed reaches the database on both (a bigint, not an overflow).
    assert client.get("/notes", params={"limit": 100, "offset": MAX_ID}).json() == {
        "items": [],
        "total": 7,
        "limit": 100,
        "offset": MAX_ID,
    }


HOSTILE: list[tuple[str, str, dict[str, Any], list[Any]]] = [
    ("GET", "/notes", {"params": {"limit": 10**9}}, ["query", "limit"]),
    ("GET", "/notes", {"params": {"limit": 0}}, ["query", "limit"]),
    ("GET", "/notes", {"params": {"limit": "many"}}, ["query", "limit"]),
    ("GET", "/notes", {"params": {"offset": -1}}, ["query", "offset"]),
    ("GET", "/notes", {"params": {"offset": 2**70}}, ["query", "offset"]),
    ("GET", f"/notes/{2**70}", {}, ["path", "note_id"]),
    ("PATCH", f"/notes/{2**70}", {"json": {}}, ["path", "note_id"]),
    ("DELETE", f"/notes/{2**70}", {}, ["path", "note_id"]),
    ("GET", "/notes/0", {}, ["path", "note_id"]),
    ("GET", "/notes/-5", {}, ["path", "note_id"]),
    ("GET", "/notes/abc", {}, ["path", "note_id"]),
    ("POST", "/notes", {"json": {"author_id": 1, "title": "x" * 10_000, "body": ""}}, ["body", "title"]),
    ("POST", "/notes", {"json": {"author_id": 1, "title": "", "body": ""}}, ["body", "title"]),
    ("POST", "/notes", {"json": {"author_id": 2**70, "title": "t", "body": ""}}, ["body", "author_id"]),
    ("POST", "/notes", {"json": {"author_id": "x", "title": "t", "body": ""}}, ["body", "author_id"]),
    ("POST", "/notes", {"json": {"author_id": 1, "title": 5, "body": ""}}, ["body", "title"]),
    ("POST", "/notes", {"json": {"author_id": 1, "title": "t"}}, ["body", "body"]),
    ("POST", "/notes", {"json": {"author_id": 1, "title": "t", "body": "b" * 100_001}}, ["body", "body"]),
    ("POST", "/notes", {"json": [1, 2]}, ["body"]),
    (
        "POST",
        "/notes",
        {"content": b'{"author_id": 1,', "headers": {"content-type": "application/json"}},
        ["body"],
    ),
    ("POST", "/authors", {"content": b"", "headers": {"content-type": "application/json"}}, ["body"]),
    ("POST", "/authors", {"json": {"name": ""}}, ["body", "name"]),
    ("POST", "/authors", {"json": {"name": "n" * 101}}, ["body", "name"]),
    ("POST", "/authors", {"json": {"name": None}}, ["body", "name"]),
    ("PATCH", "/notes/1", {"json": {"title": None}}, ["body", "title"]),
    ("PATCH", "/notes/1", {"json": {"body": 12}}, ["body", "body"]),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "loc"), HOSTILE)
def test_hostile_input_is_a_422_naming_the_field(
    client: TestClient, method: str, path: str, kwargs: dict[str, Any], loc: list[Any]
) -> None:
    response = client.request(method, path, **kwargs)
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert errors
    assert all(error["msg"] and error["type"] for error in errors)
    assert any(error["loc"][: len(loc)] == loc for error in errors), errors


def test_duplicate_author_is_a_409(client: TestClient, notes: NotesApp) -> None:
    author(client, "ada")
    response = client.post("/authors", json={"name": "ada"})
    assert response.json() == {"detail": "An author with this name already exists"}
    assert response.status_code == 409
    assert count(notes.url, "authors") == 1
    assert author(client, "bob")["name"] == "bob"  # the session after the conflict is a new one
    assert checked_out(notes, client) == 0


def test_unknown_author_is_a_422(client: TestClient, notes: NotesApp) -> None:
    response = client.post("/notes", json={"author_id": 12345, "title": "t", "body": "b"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert (error["loc"], error["msg"], error["input"]) == (["body", "author_id"], "Author not found", 12345)
    assert count(notes.url, "notes") == 0
