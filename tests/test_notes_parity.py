"""Parity: the toolkit's notes app and its FastAPI twin answer one conversation with the same
status and JSON, on the same migrated database (SQLite and PostgreSQL)."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from notes_support import build, migrate, pg_database, reset

from toolkit.testing import TestClient

MAX_ID = 2**63 - 1
JSON = {"content-type": "application/json"}

# (method, path, keyword arguments): run in order on an empty database.
CONVERSATION: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/health", {}),
    ("POST", "/authors", {"json": {"name": "ada"}}),
    ("POST", "/authors", {"json": {"name": "bob"}}),
    ("POST", "/authors", {"json": {"name": "ada"}}),
    ("POST", "/notes", {"json": {"author_id": 1, "title": "one", "body": "first"}}),
    ("POST", "/notes", {"json": {"author_id": 2, "title": "two", "body": ""}}),
    ("POST", "/notes", {"json": {"author_id": 1, "title": "three", "body": "3"}}),
    ("POST", "/notes", {"json": {"author_id": 99, "title": "t", "body": "b"}}),
    ("GET", "/notes", {}),
    ("GET", "/notes", {"params": {"limit": 2, "offset": 1}}),
    ("GET", "/notes", {"params": {"offset": MAX_ID}}),
    ("GET", "/notes/2", {}),
    ("GET", "/notes/42", {}),
    ("PATCH", "/notes/2", {"json": {"body": "changed"}}),
    ("PATCH", "/notes/2", {"json": {}}),
    ("PATCH", "/notes/42", {"json": {"title": "x"}}),
    ("DELETE", "/notes/3", {}),
    ("DELETE", "/notes/3", {}),
    ("GET", "/notes", {}),
    # Refused: the same status, and the same failing fields.
    ("GET", "/notes", {"params": {"limit": 10**9, "offset": -1}}),
    ("GET", f"/notes/{2**70}", {}),
    ("DELETE", "/notes/0", {}),
    ("GET", "/notes/abc", {}),
    ("POST", "/notes", {"json": {"author_id": "x", "title": "t" * 201}}),
    ("POST", "/notes", {"content": b"{not json", "headers": JSON}),
    ("POST", "/authors", {"json": {"name": ""}}),
    ("PATCH", "/notes/1", {"json": {"title": None}}),
    # A NUL character (PostgreSQL's text cannot hold one): refused at validation by both alike.
    ("POST", "/authors", {"json": {"name": "nul\u0000"}}),
    ("POST", "/notes", {"json": {"author_id": 1, "title": "t", "body": "\u0000"}}),
    ("PATCH", "/notes/1", {"json": {"title": "a\u0000b", "body": "fine"}}),
    ("GET", "/nowhere", {}),
]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'notes.db'}"
        migrate(url)
        yield url
        return
    with pg_database(request.getfixturevalue("postgres_url")) as url:
        migrate(url)
        yield url


def comparable(status: int, body: Any) -> Any:
    """A 422's failing fields (type and location; the toolkit words some messages differently),
    anything else as it is, creation times masked (each run writes its own)."""
    if status == 422 and isinstance(body, dict) and isinstance(body.get("detail"), list):
        return sorted((error["type"], tuple(error["loc"][:2])) for error in body["detail"])
    return _masked(body)


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: "<time>" if key == "created_at" else _masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value


def converse(kind: str, url: str) -> list[tuple[int, Any]]:
    reset(url)
    with TestClient(build(kind, url).asgi) as client:
        replies = []
        for method, path, kwargs in CONVERSATION:
            response = client.request(method, path, **kwargs)
            body = response.json() if response.content else None
            replies.append((response.status_code, comparable(response.status_code, body)))
        return replies


def test_one_conversation_same_answers(db_url: str) -> None:
    toolkit, fastapi = converse("toolkit", db_url), converse("fastapi", db_url)
    for step, (ours, theirs) in enumerate(zip(toolkit, fastapi, strict=True)):
        assert ours == theirs, CONVERSATION[step]
    assert [status for status, _ in toolkit].count(422) == 12


def test_the_same_rows_read_identically(db_url: str) -> None:
    """Rows written by one app, read by both: the same JSON to the byte (times included)."""
    reset(db_url)
    toolkit_app, fastapi_app = build("toolkit", db_url), build("fastapi", db_url)
    with TestClient(fastapi_app.asgi) as writer:
        ada = writer.post("/authors", json={"name": "ada"}).json()
        for title in ("a", "b", "é ✓ \u2028"):
            writer.post("/notes", json={"author_id": ada["id"], "title": title, "body": "x"})
    with TestClient(toolkit_app.asgi) as ours, TestClient(fastapi_app.asgi) as theirs:
        for path in ("/notes", "/notes?limit=1&offset=2", "/notes/1"):
            assert ours.get(path).json() == theirs.get(path).json(), path
