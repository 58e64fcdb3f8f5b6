"""The notes recipe's unit of work, on both apps and both databases: a handler that fails after
writing leaves nothing, a commit that fails is the response (never a 2xx), connections go back to
the pool whatever happened (a client gone, a cancelled request included), parallel requests, one
engine per lifespan (event loop), no SQL in an error, and what an unloaded relationship does."""

import contextlib
import gc
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest
from fastapi.exceptions import ResponseValidationError
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
    run_sql,
)
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import defer
from starlette.types import Message

from apps.notes import queries
from apps.notes.db import Note
from apps.notes.schemas import NoteOut
from apps.notes_fastapi import schemas as fastapi_schemas
from toolkit.testing import AsyncTestClient, TestClient, run_lifespan


def write_then_fail(session_dep: Any) -> Callable[..., Any]:
    async def handler(session: session_dep) -> None:  # type: ignore[valid-type]
        await queries.add_author(session, "written")  # flushed: in the transaction
        raise RuntimeError("the handler failed after writing")

    return handler


def test_a_handler_failure_after_writing_leaves_nothing(notes: NotesApp) -> None:
    notes.add_route("/_test/fail", write_then_fail)
    with TestClient(notes.asgi, raise_server_exceptions=False) as client:
        response = client.post("/_test/fail")
        assert (response.status_code, response.json()) == (500, {"detail": "Internal Server Error"})
        assert count(notes.url, "authors") == 0
        assert checked_out(notes, client) == 0


@pytest.mark.parametrize(
    ("error", "status", "detail"),
    [
        (OperationalError("COMMIT", {}, Exception("disk I/O error")), 503, "Database unavailable"),
        (IntegrityError("COMMIT", {}, Exception("deferred constraint")), 409, "Conflict with existing data"),
    ],
)
def test_a_failing_commit_is_the_response_not_a_2xx(
    client: TestClient, notes: NotesApp, error: Exception, status: int, detail: str
) -> None:
    ada = author(client)
    engine = _engine(notes, client)

    def fail(connection: Any) -> None:
        raise error

    event.listen(engine.sync_engine, "commit", fail)
    try:
        response = client.post("/notes", json={"author_id": ada["id"], "title": "t", "body": "b"})
    finally:
        event.remove(engine.sync_engine, "commit", fail)
    assert (response.status_code, response.json()) == (status, {"detail": detail})
    assert "COMMIT" not in response.text
    assert count(notes.url, "notes") == 0  # rolled back: nothing half-written
    assert engine.pool.checkedout() == 0
    assert client.get("/notes").json()["total"] == 0


def test_connections_go_back_to_the_pool(client: TestClient, notes: NotesApp) -> None:
    ada = author(client)
    assert checked_out(notes, client) == 0
    for method, path, body, status in [
        ("POST", "/notes", {"author_id": ada["id"], "title": "t", "body": "b"}, 201),
        ("GET", "/notes", None, 200),
        ("GET", "/notes/999", None, 404),
        ("POST", "/authors", {"name": "ada"}, 409),
        ("POST", "/notes", {"author_id": 999, "title": "t", "body": "b"}, 422),
        ("DELETE", "/notes/1", None, 204),
    ]:
        assert client.request(method, path, json=body).status_code == status
        assert checked_out(notes, client) == 0, (method, path)


def _engine(notes: NotesApp, client: TestClient) -> AsyncEngine:
    assert client.get("/_test/engine").status_code == 200
    return notes.last_engine()


def _scope(method: str, path: str, state: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        "state": dict(state),  # what a server hands each request from the lifespan
    }


def _body(payload: bytes) -> Callable[[], Any]:
    messages: list[Message] = [{"type": "http.request", "body": payload, "more_body": False}]

    async def receive() -> Message:
        if messages:
            return messages.pop(0)
        await anyio.sleep_forever()
        raise AssertionError

    return receive


async def _author_and_note_body(notes: NotesApp, state: dict[str, Any]) -> tuple[Any, bytes]:
    """An author made over HTTP; the running engine, and a note body naming the author."""
    transport = httpx.ASGITransport(app=_with_state(notes.asgi, state))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        ada = (await client.post("/authors", json={"name": "ada"})).json()
        await client.get("/_test/engine")
    return notes.last_engine(), b'{"author_id": %d, "title": "t", "body": "b"}' % ada["id"]


@pytest.mark.anyio
async def test_a_client_that_goes_away_leaves_no_connection_checked_out(notes: NotesApp) -> None:
    app = notes.asgi
    async with run_lifespan(app) as state:
        engine, payload = await _author_and_note_body(notes, state)

        # 1. Gone before the body arrived: nothing written.
        async def disconnected() -> Message:
            return {"type": "http.disconnect"}

        with anyio.fail_after(10):
            await _call(app, _scope("POST", "/notes", state), disconnected, _ignore)
        assert engine.pool.checkedout() == 0

        # 2. Gone while the response is sent (the send fails): committed before it, as a 201 would say.
        async def broken_send(message: Message) -> None:
            raise OSError("connection reset by peer")

        with anyio.fail_after(10):
            await _call(app, _scope("POST", "/notes", state), _body(payload), broken_send)
        assert engine.pool.checkedout() == 0

        assert await anyio.to_thread.run_sync(count, notes.url, "notes") == 1  # case 2's


@pytest.mark.anyio
async def test_a_cancelled_request_returns_its_connection(notes: NotesApp) -> None:
    """Cancelled (a server's timeout, a shutdown) while the handler holds a connection."""
    if notes.url.startswith("sqlite"):
        # SQLAlchemy 2.1.9 + aiosqlite 0.22.1: a connection interrupted by a cancellation is
        # terminated, and the graceful close it starts (shielded) waits for a worker thread that
        # the forced close already stopped: a task pending forever, and a hang when the event
        # loop closes (asyncio.run cancels it). Not the recipe's or the toolkit's to fix.
        pytest.skip("aiosqlite: a cancelled connection leaves a close task pending forever (upstream)")
    app = notes.asgi
    async with run_lifespan(app) as state:
        engine, payload = await _author_and_note_body(notes, state)
        checked_out = anyio.Event()

        def on_checkout(*args: Any) -> None:
            checked_out.set()

        event.listen(engine.sync_engine.pool, "checkout", on_checkout)
        try:
            with anyio.fail_after(10):
                async with anyio.create_task_group() as group:
                    group.start_soon(_call, app, _scope("POST", "/notes", state), _body(payload), _ignore)
                    await checked_out.wait()
                    group.cancel_scope.cancel()
        finally:
            event.remove(engine.sync_engine.pool, "checkout", on_checkout)
        assert engine.pool.checkedout() == 0
    assert await anyio.to_thread.run_sync(count, notes.url, "notes") == 0


def _with_state(app: Any, state: dict[str, Any]) -> Any:
    async def with_state(scope: Any, receive: Any, send: Any) -> None:
        scope["state"] = dict(state)
        await app(scope, receive, send)

    return with_state


async def _ignore(message: Message) -> None:
    return None


async def _call(app: Any, scope: dict[str, Any], receive: Any, send: Any) -> None:
    with contextlib.suppress(OSError, RuntimeError):  # the send that failed, re-raised
        await app(scope, receive, send)


@pytest.mark.anyio
async def test_parallel_requests(notes: NotesApp) -> None:
    async with AsyncTestClient(notes.asgi) as client:
        ada = (await client.post("/authors", json={"name": "ada"})).json()
        results: list[httpx.Response] = []

        async def create(i: int) -> None:
            body = {"author_id": ada["id"], "title": f"n{i}", "body": "b"}
            results.append(await client.post("/notes", json=body))

        async def read() -> None:
            results.append(await client.get("/notes", params={"limit": 100}))

        async def same_name() -> None:
            results.append(await client.post("/authors", json={"name": "taken"}))

        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:
                for i in range(20):
                    group.start_soon(create, i)
                    group.start_soon(read)
                for _ in range(10):
                    group.start_soon(same_name)
        statuses = sorted(response.status_code for response in results)
        assert statuses == [200] * 20 + [201] * 21 + [409] * 9
        page = (await client.get("/notes", params={"limit": 100})).json()
        assert page["total"] == 20
        assert sorted(item["title"] for item in page["items"]) == sorted(f"n{i}" for i in range(20))
        await client.get("/_test/engine")
        assert notes.last_engine().pool.checkedout() == 0


def test_each_lifespan_has_its_own_engine(notes: NotesApp) -> None:
    """Two TestClient sessions in a row (two event loops) on one app object."""
    engines = []
    for name in ("ada", "bob"):
        with TestClient(notes.asgi) as client:
            assert author(client, name)["name"] == name
            engines.append(_engine(notes, client))
            assert client.get("/notes").status_code == 200
    assert engines[0] is not engines[1]
    assert count(notes.url, "authors") == 2


def test_no_sql_in_error_responses(notes: NotesApp, caplog: pytest.LogCaptureFixture) -> None:
    with TestClient(notes.asgi, raise_server_exceptions=False) as client:
        run_sql(notes.url, "ALTER TABLE notes RENAME TO notes_moved")
        try:
            response = client.get("/notes")
        finally:
            run_sql(notes.url, "ALTER TABLE notes_moved RENAME TO notes")
        # SQLite says OperationalError ("no such table"), PostgreSQL ProgrammingError.
        assert response.status_code in (500, 503)
        assert response.json() in ({"detail": "Internal Server Error"}, {"detail": "Database unavailable"})
        assert checked_out(notes, client) == 0
        assert client.get("/notes").status_code == 200
    assert "notes" in caplog.text  # the log has what the client does not


def unloaded(what: str) -> Callable[[Any], Callable[..., Any]]:
    """A handler returning a note whose author (or body) was not loaded (ids: 1 on a fresh db)."""

    def make(session_dep: Any) -> Callable[..., Any]:
        async def handler(session: session_dep) -> Any:  # type: ignore[valid-type]
            ada = await queries.add_author(session, "ada")
            session.add(Note(author_id=ada.id, title="t", body="b"))
            await session.flush()
            session.expunge_all()
            options = [defer(Note.body)] if what == "body" else []
            return await session.get(Note, ada.id, options=options)

        return handler

    return make


@pytest.mark.parametrize(("what", "error"), [("author", "lazy='raise'"), ("body", "greenlet_spawn")])
@pytest.mark.filterwarnings("ignore:coroutine 'Connection.cursor' was never awaited:RuntimeWarning")
def test_an_unloaded_attribute_is_a_500_naming_it_and_nothing_written(
    notes: NotesApp, caplog: pytest.LogCaptureFixture, what: str, error: str
) -> None:
    """Not eager-loaded: the relationship (lazy="raise") or a deferred column (MissingGreenlet;
    on SQLite the adapter's unawaited ``cursor()`` coroutine is also reported when collected)."""
    model = NoteOut if notes.kind == "toolkit" else fastapi_schemas.NoteOut
    notes.add_route("/_test/unloaded", unloaded(what), response_model=model)
    if notes.kind == "toolkit":
        with TestClient(notes.asgi, raise_server_exceptions=False) as client:
            response = client.post("/_test/unloaded")
            assert (response.status_code, response.json()) == (500, {"detail": "Internal Server Error"})
            assert checked_out(notes, client) == 0
        # The log names it (the client sees nothing of it): the loader's error, or with msgspec
        # releases that read a failing attribute as absent (0.22) the field it could not read.
        assert error in caplog.text or f"missing required field `{what}`" in caplog.text
    else:  # FastAPI wraps it in a ResponseValidationError (its server logs it after the 500)
        with TestClient(notes.asgi) as client, pytest.raises(ResponseValidationError, match=error):
            client.post("/_test/unloaded")
    gc.collect()
    assert count(notes.url, "authors") == 0  # the failure came before the commit


def test_toolkit_reads_a_returned_orm_row_as_the_annotation(db_url: str) -> None:
    """Returning the ORM row from a ``-> NoteOut`` handler works too (read by attribute)."""
    from notes_support import build

    notes = build("toolkit", db_url)

    def make(session_dep: Any) -> Callable[..., Any]:
        async def handler(session: session_dep) -> NoteOut:  # type: ignore[valid-type]
            note = await queries.get_note(session, 1)
            assert isinstance(note, Note)
            return note  # type: ignore[return-value]

        return handler

    notes.add_route("/_test/orm", make)
    with TestClient(notes.asgi) as client:
        created = note(client, author(client)["id"])
        assert client.post("/_test/orm").json() == created
