"""Parity: the toolkit shop (apps/shop) and its FastAPI twin (apps/shop_fastapi) hold one conversation.

The table is ``tests/parity_spec.py``. Each app runs it against its own empty SQLite database;
every exchange is checked against the table (status, normalised JSON body, the headers that
matter) and the two transcripts are compared step by step. Intentional differences are stated
in the table with both answers; ``test_intentional_difference`` asserts each one explicitly.
Live events (SSE and WebSocket) need two concurrent requests and are tested separately below.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import anyio
import jwt
import pytest
from parity_spec import ACCOUNT_ATTEMPTS, ADMIN, ANY, JWT, PRESENT, STEPS, TS, Differs, Expect, Step
from starlette.testclient import TestClient

from apps.common.db import DatabaseUnavailable, SQLiteDatabase
from apps.common.settings import Settings

pytest.importorskip("fastapi")

SECRET = "parity-secret-" + "k" * 40
ORIGIN = "http://testserver"  # the one origin the WebSocket accepts
#: The table's throttling steps reach the per-account limit; the per-address ones stay out of the
#: way of the conversation (tests/test_shop_abuse.py tests them, on both apps).
LIMITS = {
    "login_rate_per_account": f"{ACCOUNT_ATTEMPTS}/hour",
    "login_rate_per_address": "1000/hour",
    "signup_rate_per_address": "1000/hour",
}
APPS = ("toolkit", "fastapi")
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
_TIMESTAMP_KEYS = {"created_at", "updated_at", "at"}
COMPARED_HEADERS = ("location", "allow", "www-authenticate")
PRESENT_VALUE = "<present>"


@pytest.fixture(scope="module", autouse=True)
def cheap_passwords() -> Iterator[None]:
    """Both apps hash with scrypt at OWASP's cost (~0.3 s a hash); the same low cost here."""
    import apps.shop.security
    import apps.shop_fastapi.security
    from toolkit.security import PasswordHasher

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(apps.shop.security, "hasher", PasswordHasher(n=2**4, r=8, p=1))
        patch.setattr(apps.shop_fastapi.security, "SCRYPT_COST", (2**4, 8, 1))
        yield


def make_app(kind: str, tmp_path: Path, *, with_admin: bool = False) -> Any:
    """``kind``'s app on an empty database of its own; ``with_admin``: holding the table's admin,
    made out of band (``python -m apps.shop.admin create-admin``) before the app starts."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / kind}.db",
        redis_url=None,
        secret_key=SECRET,
        development=True,  # the plain-HTTP test client: a `session` cookie without Secure
        allowed_origins=(ORIGIN,),
        **LIMITS,
    )
    if with_admin:
        from apps.shop.admin import create_admin

        anyio.run(create_admin, settings.database_url, *ADMIN)
    if kind == "toolkit":
        from apps.shop.main import create_app
    else:
        from apps.shop_fastapi.main import create_app
    return create_app(settings)


# --- normalisation ------------------------------------------------------------------------------


def _check_jwt(token: str) -> str:
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert isinstance(claims["sub"], str), claims
    assert claims["exp"] - claims["iat"] == 30 * 60, claims
    return JWT


def normalise(value: Any, key: str | None = None) -> Any:
    """Timestamps -> TS, JWTs -> JWT, 422 entries -> their ``type`` and ``loc``."""
    if isinstance(value, dict):
        if set(value) >= {"type", "loc", "msg"}:
            return {"type": value["type"], "loc": value["loc"]}
        return {k: normalise(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if key in _TIMESTAMP_KEYS and isinstance(value, str):
        return TS if _TIMESTAMP.fullmatch(value) else f"<bad timestamp {value!r}>"
    if key == "access_token" and isinstance(value, str):
        return _check_jwt(value)
    return value


def media_type(response: Any) -> str:
    message = Message()
    message["content-type"] = response.headers.get("content-type", "")
    return message.get_content_type()


def body_of(response: Any) -> Any:
    if not response.content:
        return None
    if media_type(response) == "application/json":
        return normalise(response.json())
    return f"<{media_type(response)}>"


# --- running the conversation -------------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    status: int
    body: Any
    headers: dict[str, str | None]  # COMPARED_HEADERS, plus any header the table names
    set_cookie: bool
    raw: str  # for failure messages


def special_tokens() -> dict[str, str]:
    past = datetime.now(UTC) - timedelta(hours=1)
    return {
        "expired": jwt.encode({"sub": "2", "iat": past - timedelta(minutes=30), "exp": past}, SECRET),
        "forged": jwt.encode({"sub": "1", "exp": past + timedelta(hours=2)}, "another-" + "k" * 40),
    }


def run_step(client: TestClient, step: Step, tokens: dict[str, str], jars: dict[str, Any]) -> Exchange:
    headers = dict(step.headers)
    if step.bearer is not None:
        headers["Authorization"] = f"Bearer {tokens[step.bearer]}"
    cookies = type(client.cookies)  # httpx's or httpx2's, whichever the TestClient uses
    if step.save_jar is not None:
        jars[step.save_jar] = cookies(jars.get(step.jar or ""))
    client.cookies = cookies(jars.get(step.jar or ""))
    response = client.request(
        step.method,
        step.path,
        json=step.json,
        content=step.content,
        data=step.data,
        files=step.files,
        headers=headers,
        follow_redirects=False,
    )
    if step.jar is not None:
        jars[step.jar] = cookies(client.cookies)
    body = body_of(response)
    for name, key in step.capture.items():
        tokens[name] = response.json()[key]
    toolkit, fastapi = expectations(step)
    wanted = {*COMPARED_HEADERS, *toolkit.headers, *fastapi.headers}
    present_only = {
        name for name in wanted if PRESENT in (toolkit.headers.get(name), fastapi.headers.get(name))
    }
    headers = {name: response.headers.get(name) for name in sorted(wanted)}
    for name in present_only:  # compared between the apps as present or absent, not by value
        headers[name] = PRESENT_VALUE if headers[name] is not None else None
    return Exchange(
        status=response.status_code,
        body=body,
        headers=headers,
        set_cookie="set-cookie" in response.headers,
        raw=f"{response.status_code} {dict(response.headers)} {response.text[:300]!r}",
    )


def expectations(step: Step) -> tuple[Expect, Expect]:
    """(toolkit, fastapi)."""
    if isinstance(step.expect, Differs):
        return step.expect.toolkit, step.expect.fastapi
    return step.expect, step.expect


def run_conversation(app: Any) -> list[Exchange]:
    tokens, jars = special_tokens(), {}
    with TestClient(app) as client:
        return [run_step(client, step, tokens, jars) for step in STEPS]


@pytest.fixture(scope="module")
def transcripts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Exchange]]:
    tmp_path = tmp_path_factory.mktemp("parity")
    return {kind: run_conversation(make_app(kind, tmp_path, with_admin=True)) for kind in APPS}


# --- checks -------------------------------------------------------------------------------------


def mismatches(expect: Expect, got: Exchange) -> list[str]:
    problems = []
    if got.status != expect.status:
        problems.append(f"status {got.status}, expected {expect.status}")
    if expect.body is not ANY and got.body != expect.body:
        problems.append(f"body {json.dumps(got.body)}\n        expected {json.dumps(expect.body)}")
    for name, value in expect.headers.items():
        actual = got.headers.get(name)
        if (value is PRESENT and actual is None) or (value is not PRESENT and actual != value):
            problems.append(
                f"header {name}: {actual!r}, expected {'present' if value is PRESENT else value!r}"
            )
    if expect.set_cookie is not None and got.set_cookie != expect.set_cookie:
        problems.append(f"Set-Cookie {'sent' if got.set_cookie else 'absent'}, expected the opposite")
    return problems


def describe(step: Step) -> str:
    who = f" bearer={step.bearer}" if step.bearer else ""
    who += f" jar={step.jar}" if step.jar else ""
    return f"[{step.name}] {step.method} {step.path}{who}"


@pytest.mark.parametrize("kind", APPS)
def test_conversation_follows_the_table(kind: str, transcripts: dict[str, list[Exchange]]) -> None:
    index = APPS.index(kind)
    failures = []
    for step, got in zip(STEPS, transcripts[kind], strict=True):
        problems = mismatches(expectations(step)[index], got)
        if problems:
            failures.append(f"{describe(step)}\n    " + "\n    ".join(problems) + f"\n    got: {got.raw}")
    assert not failures, f"{kind}: {len(failures)} step(s) differ from the table:\n" + "\n".join(failures)


def test_apps_agree_step_by_step(transcripts: dict[str, list[Exchange]]) -> None:
    """Where the table states no difference, both apps answer alike (also where it leaves the body open)."""
    failures = []
    for step, tk, fa in zip(STEPS, transcripts["toolkit"], transcripts["fastapi"], strict=True):
        if isinstance(step.expect, Differs):
            continue
        for label, a, b in (
            ("status", tk.status, fa.status),
            ("body", tk.body, fa.body),
            ("headers", tk.headers, fa.headers),
            ("Set-Cookie sent", tk.set_cookie, fa.set_cookie),
        ):
            if a != b and not (label == "body" and step.path == "/openapi.json"):
                failures.append(f"{describe(step)} {label}:\n    toolkit {a!r}\n    fastapi {b!r}")
    assert not failures, "the apps differ:\n" + "\n".join(failures)


DIFFERENCES = [step for step in STEPS if isinstance(step.expect, Differs)]


@pytest.mark.parametrize("step", DIFFERENCES, ids=[step.name for step in DIFFERENCES])
def test_intentional_difference(step: Step, transcripts: dict[str, list[Exchange]]) -> None:
    assert isinstance(step.expect, Differs)
    assert step.expect.reason
    index = STEPS.index(step)
    assert mismatches(step.expect.toolkit, transcripts["toolkit"][index]) == []
    assert mismatches(step.expect.fastapi, transcripts["fastapi"][index]) == []


@pytest.mark.parametrize("kind", APPS)
def test_database_unavailable(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def down(self: SQLiteDatabase) -> None:
        raise DatabaseUnavailable("the test took the database away")

    with TestClient(make_app(kind, tmp_path)) as client:
        monkeypatch.setattr(SQLiteDatabase, "_acquire", down)
        response = client.get("/ready")
        assert response.status_code == 503
        assert response.json() == {"status": "unavailable", "checks": {"database": "error", "sessions": "ok"}}
        for method, path in (("GET", "/items"), ("GET", "/items/1"), ("POST", "/auth/token")):
            response = client.request(
                method, path, data={"username": "u", "password": "p"} if method == "POST" else None
            )
            assert (response.status_code, response.json()) == (503, {"detail": "Database unavailable"}), path
            assert response.headers["retry-after"] == "1"


@pytest.mark.parametrize("kind", APPS)
def test_every_response_has_request_id_and_timing(kind: str, tmp_path: Path) -> None:
    with TestClient(make_app(kind, tmp_path)) as client:
        for path in ("/health", "/nowhere", "/items/abc"):
            response = client.get(path, headers={"X-Request-ID": "bad id with spaces"})
            assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"]), path
            assert float(response.headers["x-process-time"]) >= 0, path


# --- live events: an SSE stream and a WebSocket open while items are created ---------------------


def _scope(client: TestClient, kind: str, path: str, query: bytes = b"") -> dict[str, Any]:
    return {
        "type": kind,
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http" if kind == "http" else "ws",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": [(b"host", b"testserver"), (b"origin", ORIGIN.encode())],
        "client": ("testclient", 50000),
        "server": ("testserver", 80),
        "subprotocols": [],
        "extensions": {},
        "state": client.app_state.copy(),
    }


async def _watch_sse(client: TestClient, app: Any, limit: int, sent: list[dict[str, Any]]) -> None:
    """One ``GET /items/events?limit=...`` driven as raw ASGI, so it runs concurrently in the loop."""
    done, requested = anyio.Event(), False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    try:
        await app(_scope(client, "http", "/items/events", f"limit={limit}".encode()), receive, send)
    finally:
        done.set()


async def _watch_ws(client: TestClient, app: Any, want: int, sent: list[dict[str, Any]]) -> None:
    """A ``/ws/items`` client that disconnects once it has ``want`` messages."""
    inbox_tx, inbox_rx = anyio.create_memory_object_stream[dict[str, Any]](10)
    await inbox_tx.send({"type": "websocket.connect"})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if sum(m["type"] == "websocket.send" for m in sent) == want:
            await inbox_tx.send({"type": "websocket.disconnect", "code": 1000})

    with inbox_tx, inbox_rx:
        await app(_scope(client, "websocket", "/ws/items"), inbox_rx.receive, send)
    sent.append({"type": "app returned"})


def parse_sse(body: bytes) -> list[tuple[str | None, Any]]:
    events = []
    for block in body.decode().replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, list[str]] = {}
        for line in block.split("\n"):
            if line and not line.startswith(":"):
                name, _, value = line.partition(":")
                fields.setdefault(name, []).append(value.removeprefix(" "))
        if "data" in fields:
            events.append((fields.get("event", [None])[0], normalise(json.loads("\n".join(fields["data"])))))
    return events


def live_conversation(app: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Open an SSE stream and a WebSocket, create two items, collect what both received."""
    sse: list[dict[str, Any]] = []
    ws: list[dict[str, Any]] = []
    with TestClient(app) as client:
        dana = {"username": "dana", "password": "dana-password"}
        assert client.post("/users", json={**dana, "email": "dana@example.com"}).status_code == 201
        response = client.post("/auth/token", data=dana)
        auth = {"Authorization": f"Bearer {response.json()['access_token']}"}

        def create(name: str) -> None:
            assert client.post("/items", json={"name": name, "price": 1.5}, headers=auth).status_code == 201

        async def scenario() -> None:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_watch_sse, client, app, 2, sse)
                tg.start_soon(_watch_ws, client, app, 2, ws)
                await anyio.wait_all_tasks_blocked()  # both are subscribed and waiting
                for name in ("First", "Second"):
                    await anyio.to_thread.run_sync(create, name)
                # Both streams end by themselves (limit reached, client gone); a hang is a failure.
                with anyio.move_on_after(5):
                    while ws[-1:] != [{"type": "app returned"}] or not any(
                        m["type"] == "http.response.body" and not m.get("more_body") for m in sse
                    ):
                        await anyio.sleep(0.01)
                tg.cancel_scope.cancel()

        client.portal.call(scenario)
    return sse, ws


@pytest.mark.parametrize("kind", APPS)
def test_live_events(kind: str, tmp_path: Path) -> None:
    sse, ws = live_conversation(make_app(kind, tmp_path))
    first = {"id": 1, "owner_id": 1, "name": "First", "description": None, "price": 1.5, "tags": []}
    first |= {"image": None, "created_at": TS, "updated_at": TS}
    second = {**first, "id": 2, "name": "Second"}

    start = sse[0]
    assert (start["type"], start["status"]) == ("http.response.start", 200)
    headers = {name.decode().lower(): value.decode() for name, value in start["headers"]}
    assert headers["content-type"].startswith("text/event-stream")
    body = b"".join(m.get("body", b"") for m in sse if m["type"] == "http.response.body")
    assert parse_sse(body) == [("item.created", first), ("item.created", second)]

    last = sse[-1]
    assert (last["type"], last.get("more_body", False)) == ("http.response.body", False), "no end"
    assert ws[0]["type"] == "websocket.accept"
    assert ws[-1] == {"type": "app returned"}, "the WebSocket endpoint did not return after the client left"
    messages = [normalise(json.loads(m["text"])) for m in ws if m["type"] == "websocket.send"]
    assert messages == [{"event": "item.created", "item": first}, {"event": "item.created", "item": second}]
