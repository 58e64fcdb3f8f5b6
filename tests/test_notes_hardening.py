"""Attacker findings on the notes service and its FastAPI twin, on SQLite and PostgreSQL: a PATCH
racing a DELETE, NUL characters in strings (PostgreSQL's ``text`` cannot hold them), and a value
the database refuses (``sqlalchemy.exc.DataError``): each a 4xx without SQL, never a 500."""

import logging
import time
from collections.abc import Callable
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
    query_value,
)
from sqlalchemy import event
from sqlalchemy.exc import DataError
from sqlalchemy.ext.asyncio import AsyncEngine

from apps.notes import queries
from apps.notes import schemas as toolkit_schemas
from apps.notes_fastapi import schemas as fastapi_schemas
from toolkit.testing import TestClient


def _engine(notes: NotesApp, client: TestClient) -> AsyncEngine:
    assert client.get("/_test/engine").status_code == 200
    return notes.last_engine()


# --- a PATCH racing a DELETE -------------------------------------------------------------------


def test_a_patch_racing_a_delete_is_a_404(
    client: TestClient, notes: NotesApp, caplog: pytest.LogCaptureFixture
) -> None:
    """The PATCH read the note; a DELETE committed before its UPDATE ran (done here on the same
    connection, just before the UPDATE): the UPDATE matches no row (``StaleDataError``)."""
    created = note(client, author(client)["id"])
    engine = _engine(notes, client)

    def delete_first(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE NOTES"):
            cursor.execute(f"DELETE FROM notes WHERE id = {int(created['id'])}")

    event.listen(engine.sync_engine, "before_cursor_execute", delete_first)
    try:
        with caplog.at_level(logging.WARNING):
            response = client.patch(f"/notes/{created['id']}", json={"title": "renamed"})
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", delete_first)
    assert (response.status_code, response.json()) == (404, {"detail": "Note not found"})
    assert "Traceback" not in caplog.text  # an expected race, not an error to page anyone about
    assert checked_out(notes, client) == 0
    # The handler's transaction was rolled back (the out-of-band DELETE with it): the note is there.
    assert client.get(f"/notes/{created['id']}").json() == created
    assert client.patch(f"/notes/{created['id']}", json={"title": "renamed"}).status_code == 200


# --- NUL characters ----------------------------------------------------------------------------

NUL_INPUT: list[tuple[str, str, dict[str, Any], list[str]]] = [
    ("POST", "/authors", {"name": "a\u0000b"}, ["body", "name"]),
    ("POST", "/authors", {"name": "\u0000"}, ["body", "name"]),
    ("POST", "/notes", {"author_id": 1, "title": "t\u0000", "body": "b"}, ["body", "title"]),
    ("POST", "/notes", {"author_id": 1, "title": "t", "body": "\u0000b"}, ["body", "body"]),
    ("PATCH", "/notes/1", {"title": "x\u0000y"}, ["body", "title"]),
    ("PATCH", "/notes/1", {"body": "b" * 1000 + "\u0000"}, ["body", "body"]),
]


@pytest.mark.parametrize(("method", "path", "json", "loc"), NUL_INPUT)
def test_a_nul_character_is_a_422_naming_the_field(
    client: TestClient,
    notes: NotesApp,
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
    json: dict[str, Any],
    loc: list[str],
) -> None:
    created = note(client, author(client, "ada")["id"])  # note 1 of author 1
    with caplog.at_level(logging.WARNING):
        response = client.request(method, path, json=json)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert (error["type"], error["loc"]) == ("string_pattern_mismatch", loc)
    assert caplog.text == ""  # refused at validation: nothing logged, let alone a traceback
    assert (count(notes.url, "authors"), count(notes.url, "notes")) == (1, 1)
    assert client.get("/notes/1").json() == created
    assert checked_out(notes, client) == 0


def test_other_control_characters_and_unicode_are_accepted(client: TestClient) -> None:
    text = "tab\tnew\nline \u0001 \u2028 é ✓ 🙂"
    ada = author(client, text)
    created = note(client, ada["id"], title=text, body=text)
    assert (created["title"], created["body"], created["author"]["name"]) == (text, text, text)
    patched = client.patch(f"/notes/{created['id']}", json={"body": text + "!"})
    assert patched.json()["body"] == text + "!"


@pytest.mark.parametrize("schemas", [toolkit_schemas, fastapi_schemas], ids=["toolkit", "fastapi"])
def test_the_nul_check_costs_little_on_the_largest_body(schemas: Any) -> None:
    """The pattern is one linear scan: a 100,000-character body validates in well under a millisecond
    or so per request (bounded here generously, against the same body without the pattern)."""
    import msgspec
    import pydantic

    body = "é" * 99_999 + "x"
    data = {"author_id": 1, "title": "t", "body": body}
    if schemas is toolkit_schemas:
        raw = msgspec.json.encode(data)
        decoder = msgspec.json.Decoder(schemas.NoteIn)

        def validate() -> None:
            decoder.decode(raw)

        with pytest.raises(msgspec.ValidationError, match="matching regex"):
            decoder.decode(msgspec.json.encode({**data, "body": body[:-1] + "\u0000"}))
    else:
        raw_text = msgspec.json.encode(data).decode()

        def validate() -> None:
            schemas.NoteIn.model_validate_json(raw_text)

        with pytest.raises(pydantic.ValidationError, match="pattern"):
            schemas.NoteIn.model_validate_json(msgspec.json.encode({**data, "body": body[:-1] + "\u0000"}))
    validate()
    runs = 50
    start = time.perf_counter()
    for _ in range(runs):
        validate()
    per_request = (time.perf_counter() - start) / runs
    assert per_request < 0.005, f"{per_request * 1000:.2f} ms to validate a 100,000-character body"


# --- a value the database refuses --------------------------------------------------------------


def write_nul(session_dep: Any) -> Callable[..., Any]:
    """A handler that skips validation and writes what PostgreSQL's ``text`` cannot hold."""

    async def handler(session: session_dep) -> None:  # type: ignore[valid-type]
        await queries.add_author(session, "nul\u0000name")

    return handler


def test_a_value_the_database_refuses_is_a_422_without_sql(
    notes: NotesApp, caplog: pytest.LogCaptureFixture
) -> None:
    """``sqlalchemy.exc.DataError``: PostgreSQL's own (a NUL in ``text``); SQLite stores a NUL, so
    there the driver's refusal is simulated at the INSERT."""
    notes.add_route("/_test/nul", write_nul)

    def refuse(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO AUTHORS"):
            raise DataError(statement, {}, Exception("string data right truncation"))

    sqlite = notes.url.startswith("sqlite")
    with TestClient(notes.asgi, raise_server_exceptions=False) as client:
        engine = _engine(notes, client)
        if sqlite:
            event.listen(engine.sync_engine, "before_cursor_execute", refuse)
        try:
            with caplog.at_level(logging.WARNING):
                response = client.post("/_test/nul")
        finally:
            if sqlite:
                event.remove(engine.sync_engine, "before_cursor_execute", refuse)
        assert (response.status_code, response.json()) == (422, {"detail": "Invalid value"})
        assert "INSERT" not in response.text
        assert "Traceback" not in caplog.text  # one line in the log, not a traceback per request
        assert "invalid value" in caplog.text
        assert checked_out(notes, client) == 0
        assert author(client, "after")["name"] == "after"
    assert query_value(notes.url, "SELECT count(*) FROM authors") == 1
