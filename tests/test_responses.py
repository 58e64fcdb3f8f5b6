"""Responses: how return values become HTTP responses, on the wire."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import re
import typing
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from starlette.background import BackgroundTask
from starlette.responses import JSONResponse as StarletteJSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from toolkit import (
    App,
    BackgroundTasks,
    Depends,
    EventSourceResponse,
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    RouteConfigError,
    ServerSentEvent,
    StreamingResponse,
)
from toolkit.testing import TestClient

ClientFactory = Callable[..., TestClient]
UID = uuid.UUID("12345678-1234-5678-1234-567812345678")


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Point(msgspec.Struct):
    x: int
    y: int


@dataclasses.dataclass
class Pair:
    left: str
    right: list[int]


class UserOut(msgspec.Struct):
    id: int
    name: str


class UserRecord(msgspec.Struct):
    id: int
    name: str
    password_hash: str


@dataclasses.dataclass
class UserRow:
    id: int
    name: str
    password_hash: str


class UserObject:
    """An ORM-like object: plain attributes, no mapping interface."""

    def __init__(self, id: int, name: str, password_hash: str) -> None:
        self.id = id
        self.name = name
        self.password_hash = password_hash


def assert_json(response: Any, expected: Any, status: int = 200) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-length"] == str(len(response.content))
    assert response.json() == expected


# --- JSON encoding of return values --------------------------------------------------------

RETURN_VALUES: list[tuple[str, Any, Any]] = [
    ("dict", {"a": 1, "b": [True, None]}, {"a": 1, "b": [True, None]}),
    ("list", [1, "two", 3.5], [1, "two", 3.5]),
    ("struct", Point(1, 2), {"x": 1, "y": 2}),
    ("dataclass", Pair("l", [1, 2]), {"left": "l", "right": [1, 2]}),
    ("str", "héllo", "héllo"),
    ("int", 42, 42),
    ("none", None, None),
    ("uuid", UID, str(UID)),
    (
        "datetime",
        datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.UTC),
        "2024-05-06T07:08:09Z",
    ),
    ("enum", Color.GREEN, "green"),
    (
        "nested",
        {"points": [Point(0, 1)], "color": Color.RED, "id": UID, "word": "日本語"},
        {"points": [{"x": 0, "y": 1}], "color": "red", "id": str(UID), "word": "日本語"},
    ),
]


@pytest.mark.parametrize(("kind", "value", "expected"), RETURN_VALUES, ids=[r[0] for r in RETURN_VALUES])
def test_return_value_is_encoded_as_json(
    client_factory: ClientFactory, kind: str, value: Any, expected: Any
) -> None:
    app = App()

    async def async_handler() -> Any:
        return value

    app.add_api_route("/async", async_handler)
    app.add_api_route("/sync", lambda: value)
    client = client_factory(app)
    for path in ("/async", "/sync"):
        # assert_json also checks content-length counts encoded bytes (non-ASCII text included)
        assert_json(client.get(path), expected)


def test_status_code_201(client_factory: ClientFactory) -> None:
    app = App()

    @app.post("/items", status_code=201)
    async def create() -> dict[str, int]:
        return {"id": 1}

    assert_json(client_factory(app).post("/items"), {"id": 1}, status=201)


@pytest.mark.parametrize("response_class", [JSONResponse, HTMLResponse, PlainTextResponse])
def test_status_code_204_sends_no_body(client_factory: ClientFactory, response_class: type[Response]) -> None:
    app = App()

    @app.delete("/items/{item_id}", status_code=204, response_class=response_class)
    async def delete(item_id: int) -> Any:
        return "ignored"

    @app.get("/injected", response_class=response_class)
    async def injected(response: Response) -> Any:
        response.status_code = 204
        return "ignored"

    client = client_factory(app)
    for response in (client.delete("/items/3"), client.get("/injected")):
        assert response.status_code == 204
        assert response.content == b""
        assert "content-length" not in response.headers
        assert "content-type" not in response.headers


@pytest.mark.parametrize(
    ("response_class", "content_type"),
    [(HTMLResponse, "text/html; charset=utf-8"), (PlainTextResponse, "text/plain; charset=utf-8")],
)
def test_response_class_with_str_return(
    client_factory: ClientFactory, response_class: type[Response], content_type: str
) -> None:
    app = App()

    @app.get("/page", response_class=response_class, status_code=202)
    async def page() -> str:
        return "<p>héllo</p>"

    response = client_factory(app).get("/page")
    assert response.status_code == 202
    assert response.headers["content-type"] == content_type
    assert response.content == "<p>héllo</p>".encode()
    assert response.headers["content-length"] == str(len(response.content))


def test_default_response_class_of_app(client_factory: ClientFactory) -> None:
    app = App(default_response_class=PlainTextResponse)

    @app.get("/")
    async def handler() -> str:
        return "plain"

    response = client_factory(app).get("/")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == "plain"


def test_json_response_subclass_as_response_class_is_used(client_factory: ClientFactory) -> None:
    class ProblemJSON(JSONResponse):
        media_type = "application/problem+json"

        def render(self, content: Any) -> bytes:
            return msgspec.json.format(super().render(content), indent=2)

    app = App()

    @app.get("/", response_class=ProblemJSON, status_code=409)
    async def handler() -> dict[str, str]:
        return {"title": "conflict"}

    response = client_factory(app).get("/")
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.text == '{\n  "title": "conflict"\n}'
    assert response.headers["content-length"] == str(len(response.content))


# --- returning a Response ------------------------------------------------------------------


def test_returned_starlette_responses_pass_through(client_factory: ClientFactory) -> None:
    app = App()

    @app.get("/plain", status_code=201)
    async def plain() -> Response:
        return Response(b"raw bytes", status_code=203, media_type="application/octet-stream")

    @app.get("/json", status_code=201)
    async def starlette_json() -> StarletteJSONResponse:
        return StarletteJSONResponse({"a": [1, 2]}, status_code=202, headers={"X-Own": "yes"})

    @app.get("/redirect")
    async def redirect() -> RedirectResponse:
        return RedirectResponse("/elsewhere?x=1", status_code=303)

    client = client_factory(app)
    response = client.get("/plain")
    assert response.status_code == 203
    assert response.content == b"raw bytes"
    assert response.headers["content-type"] == "application/octet-stream"

    response = client.get("/json")
    assert response.status_code == 202
    assert response.content == b'{"a":[1,2]}'
    assert response.headers["x-own"] == "yes"

    response = client.get("/redirect", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/elsewhere?x=1"
    assert response.content == b""


def test_toolkit_json_response_encodes_structs(client_factory: ClientFactory) -> None:
    app = App()

    @app.get("/")
    async def handler() -> JSONResponse:
        return JSONResponse({"point": Point(3, 4), "when": datetime.date(2024, 1, 2)}, status_code=207)

    response = client_factory(app).get("/")
    assert_json(response, {"point": {"x": 3, "y": 4}, "when": "2024-01-02"}, status=207)


@pytest.mark.parametrize(
    "annotation",
    [Response, PlainTextResponse, Response | None, Response | PlainTextResponse],
    ids=["Response", "subclass", "optional", "union-of-responses"],
)
def test_response_annotation_is_not_a_model(client_factory: ClientFactory, annotation: Any) -> None:
    app = App()

    async def handler(kind: str = "text") -> Any:
        if kind == "text":
            return PlainTextResponse("not json")
        return {"a": 1}

    handler.__annotations__["return"] = annotation
    app.add_api_route("/", handler)
    client = client_factory(app)
    response = client.get("/")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == "not json"
    if annotation is not PlainTextResponse and annotation is not Response:
        assert_json(client.get("/?kind=dict"), {"a": 1})


@pytest.mark.parametrize(
    "annotation",
    [typing.Union[dict[str, int], Response], dict[str, int] | Response],  # noqa: UP007
    ids=["typing-union", "pep604-union"],
)
def test_a_model_or_a_response_needs_an_explicit_response_model(
    client_factory: ClientFactory, annotation: Any
) -> None:
    """Checking nothing would let a returned row through unfiltered (FastAPI refuses it too)."""

    async def handler(kind: str = "text") -> Any:
        if kind == "text":
            return PlainTextResponse("not json")
        return {"a": 1, "password_hash": "x"}

    handler.__annotations__["return"] = annotation
    with pytest.raises(RouteConfigError, match="mixes a response class with a model; pass response_model="):
        App().add_api_route("/", handler)
    app = App()
    app.add_api_route("/", handler, response_model=dict[str, int])
    client = client_factory(app, raise_server_exceptions=False)
    assert client.get("/").text == "not json"
    assert client.get("/?kind=dict").status_code == 500  # "x" is not an int: never sent


# --- response model ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        UserRecord(1, "ada", "secret-hash"),
        UserRow(1, "ada", "secret-hash"),
        UserObject(1, "ada", "secret-hash"),
        {"id": 1, "name": "ada", "password_hash": "secret-hash"},
    ],
    ids=["struct", "dataclass", "object", "dict"],
)
def test_return_annotation_filters_fields(client_factory: ClientFactory, source: Any) -> None:
    app = App()

    @app.get("/user")
    async def one() -> UserOut:
        return source  # type: ignore[no-any-return]

    @app.get("/users")
    def many() -> list[UserOut]:
        return [source, source]

    client = client_factory(app)
    response = client.get("/user")
    assert_json(response, {"id": 1, "name": "ada"})
    assert b"secret-hash" not in response.content
    response = client.get("/users")
    assert_json(response, [{"id": 1, "name": "ada"}] * 2)
    assert b"secret-hash" not in response.content


def test_subclass_of_model_is_filtered_to_the_model(client_factory: ClientFactory) -> None:
    class UserInDB(UserOut):
        password_hash: str

    app = App()

    @app.get("/")
    async def handler() -> UserOut:
        return UserInDB(7, "bob", "secret-hash")

    response = client_factory(app).get("/")
    assert_json(response, {"id": 7, "name": "bob"})


def test_explicit_response_model_overrides_annotation_and_none_disables_it(
    client_factory: ClientFactory,
) -> None:
    app = App()

    @app.get("/explicit", response_model=UserOut)
    async def explicit() -> Any:
        return {"id": 2, "name": "cy", "password_hash": "h"}

    @app.get("/disabled", response_model=None)
    async def disabled() -> UserOut:
        return UserRecord(1, "ada", "h")  # type: ignore[return-value]

    client = client_factory(app)
    assert_json(client.get("/explicit"), {"id": 2, "name": "cy"})
    assert_json(client.get("/disabled"), {"id": 1, "name": "ada", "password_hash": "h"})


def test_invalid_return_value_is_a_500_not_a_leak(client_factory: ClientFactory) -> None:
    app = App()

    @app.get("/")
    async def handler() -> UserOut:
        return {"id": "not-an-int", "password_hash": "secret-hash"}  # type: ignore[return-value]

    response = client_factory(app, raise_server_exceptions=False).get("/")
    assert response.status_code == 500
    assert b"secret-hash" not in response.content


# --- injected Response ---------------------------------------------------------------------


def test_injected_response_headers_cookies_status_merge_into_json(client_factory: ClientFactory) -> None:
    app = App()

    @app.post("/", status_code=201)
    async def handler(response: Response) -> dict[str, bool]:
        response.headers["X-Custom"] = "value"
        response.set_cookie("session", "abc", httponly=True)
        response.set_cookie("theme", "dark")
        return {"ok": True}

    @app.post("/accepted", status_code=201)
    def accepted(response: Response) -> dict[str, bool]:
        response.status_code = 202
        return {"ok": True}

    @app.get("/html", response_class=HTMLResponse)
    async def html(response: Response) -> str:
        response.headers["X-Extra"] = "yes"
        response.status_code = 203
        return "<b>x</b>"

    client = client_factory(app)
    response = client.get("/html")
    assert response.status_code == 203
    assert response.headers["x-extra"] == "yes"
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.text == "<b>x</b>"

    response = client.post("/")
    assert_json(response, {"ok": True}, status=201)
    assert response.headers["x-custom"] == "value"
    cookies = response.headers.get_list("set-cookie")
    assert len(cookies) == 2
    assert any(c.startswith("session=abc") and "HttpOnly" in c for c in cookies)
    assert any(c.startswith("theme=dark") for c in cookies)
    assert response.headers.get_list("content-type") == ["application/json"]
    assert_json(client.post("/accepted"), {"ok": True}, status=202)


def test_injected_response_merges_into_returned_response(client_factory: ClientFactory) -> None:
    app = App()

    @app.get("/")
    async def handler(response: Response) -> PlainTextResponse:
        response.headers["X-From-Param"] = "1"
        response.set_cookie("c", "v")
        return PlainTextResponse("text", status_code=200, headers={"X-Own": "2"})

    response = client_factory(app).get("/")
    assert response.text == "text"
    assert response.headers["x-from-param"] == "1"
    assert response.headers["x-own"] == "2"
    assert response.headers["set-cookie"].startswith("c=v")
    assert response.headers.get_list("content-type") == ["text/plain; charset=utf-8"]
    assert response.headers.get_list("content-length") == ["4"]


# --- background tasks ----------------------------------------------------------------------


def recording(app: ASGIApp, events: list[str]) -> ASGIApp:
    """Wrap ``app`` to log each response message into ``events`` as it is sent."""

    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        async def logging_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                events.append("start")
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                events.append("body-end")
            await send(message)

        await app(scope, receive, logging_send)

    return wrapper


def test_background_tasks_run_after_the_response(client_factory: ClientFactory) -> None:
    app = App()
    events: list[str] = []

    async def async_task(name: str) -> None:
        events.append(f"async:{name}")

    def sync_task(name: str, *, suffix: str) -> None:
        events.append(f"sync:{name}{suffix}")

    @app.post("/")
    async def handler(tasks: BackgroundTasks) -> dict[str, bool]:
        tasks.add_task(async_task, "one")
        tasks.add_task(sync_task, "two", suffix="!")
        events.append("handler")
        return {"queued": True}

    response = client_factory(recording(app, events)).post("/")
    assert_json(response, {"queued": True})
    assert events == ["handler", "start", "body-end", "async:one", "sync:two!"]


def test_background_tasks_shared_with_dependency(client_factory: ClientFactory) -> None:
    app = App()
    events: list[str] = []

    def dep(tasks: BackgroundTasks) -> None:
        tasks.add_task(events.append, "from-dep")

    @app.get("/")
    def handler(tasks: BackgroundTasks, _: None = Depends(dep)) -> None:
        tasks.add_task(events.append, "from-handler")

    response = client_factory(recording(app, events)).get("/")
    assert_json(response, None)
    assert events == ["start", "body-end", "from-dep", "from-handler"]


def test_background_tasks_attach_to_returned_response(client_factory: ClientFactory) -> None:
    app = App()
    events: list[str] = []

    @app.get("/attach")
    async def attach(tasks: BackgroundTasks) -> PlainTextResponse:
        tasks.add_task(events.append, "injected")
        return PlainTextResponse("ok")

    @app.get("/own")
    async def own(tasks: BackgroundTasks) -> PlainTextResponse:
        return PlainTextResponse("ok", background=BackgroundTask(events.append, "own"))

    client = client_factory(recording(app, events))
    assert client.get("/attach").text == "ok"
    assert events == ["start", "body-end", "injected"]
    events.clear()
    assert client.get("/own").text == "ok"
    assert events == ["start", "body-end", "own"]


# --- streaming -----------------------------------------------------------------------------


def test_streaming_response_from_async_and_sync_generators(client_factory: ClientFactory) -> None:
    app = App()

    async def agen() -> AsyncIterator[bytes]:
        for i in range(3):
            yield f"chunk{i};".encode()

    def gen() -> Iterator[str]:
        yield "alpha,"
        yield "beta"

    @app.get("/async")
    async def stream_async() -> StreamingResponse:
        return StreamingResponse(agen(), media_type="application/x-ndjson")

    @app.get("/sync")
    def stream_sync() -> StreamingResponse:
        return StreamingResponse(gen(), media_type="text/plain")

    client = client_factory(app)
    with client.stream("GET", "/async") as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        assert "content-length" not in response.headers
        assert b"".join(response.iter_bytes()) == b"chunk0;chunk1;chunk2;"
    response = client.get("/sync")
    assert response.text == "alpha,beta"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


def parse_sse(text: str) -> list[dict[str, Any]]:
    """Parse a ``text/event-stream`` the way the HTML standard tells a browser to."""
    events: list[dict[str, Any]] = []
    data: list[str] = []
    fields: dict[str, Any] = {}
    for line in re.split(r"\r\n|\r|\n", text):
        if line == "":
            if data or fields:
                events.append({**fields, "data": "\n".join(data) if data else None})
            data, fields = [], {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        else:
            fields[name] = value
    return events


def test_event_source_response_wire_format(client_factory: ClientFactory) -> None:
    app = App()

    async def events() -> AsyncIterator[Any]:
        yield ServerSentEvent(data="hello")
        yield ServerSentEvent(raw_data="two\nlines", event="update", id="7", retry=1500)
        yield ServerSentEvent(data={"n": 1, "tags": ["a"]}, event="json")
        yield ServerSentEvent(comment="keep-alive")
        yield {"plain": "dict"}
        yield "just text"

    def sync_events() -> Iterator[str]:
        yield "a"
        yield "b"

    @app.get("/events")
    async def stream() -> EventSourceResponse:
        return EventSourceResponse(events(), headers={"X-Stream": "1"})

    @app.get("/sync-events")
    def sync_stream() -> EventSourceResponse:
        return EventSourceResponse(sync_events())

    client = client_factory(app)
    assert client.get("/sync-events").text == 'data: "a"\n\ndata: "b"\n\n'  # JSON, as in FastAPI
    with client.stream("GET", "/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-stream"] == "1"
        assert "content-length" not in response.headers
        body = b"".join(response.iter_bytes()).decode()
    assert body == (
        'data: "hello"\n\n'
        "event: update\ndata: two\ndata: lines\nid: 7\nretry: 1500\n\n"
        'event: json\ndata: {"n":1,"tags":["a"]}\n\n'
        ": keep-alive\n\n"
        'data: {"plain":"dict"}\n\n'
        'data: "just text"\n\n'
    )
    parsed = parse_sse(body)
    assert parsed[1] == {"event": "update", "id": "7", "retry": "1500", "data": "two\nlines"}
    assert json.loads(parsed[2]["data"]) == {"n": 1, "tags": ["a"]}


@pytest.mark.parametrize(
    "data",
    ["a\r\nb\rc\nd", "trailing\n", "\nleading", "", "a\u2028b", "x\x85y\x0bz\x1cw", "tab\tsep"],
    ids=["crlf-cr-lf", "trailing", "leading", "empty", "u2028", "other-unicode-breaks", "tab"],
)
def test_sse_data_round_trips_through_a_spec_parser(data: str) -> None:
    wire = ServerSentEvent(raw_data=data).encode().decode()
    assert wire.endswith("\n\n")
    assert parse_sse(wire) == [{"data": data.replace("\r\n", "\n").replace("\r", "\n")}]
    assert json.loads(parse_sse(ServerSentEvent(data=data).encode().decode())[0]["data"]) == data


def test_sse_events_are_checked_as_fastapi_checks_them() -> None:
    with pytest.raises(ValueError, match="not both"):
        ServerSentEvent(data="x", raw_data="x")
    with pytest.raises(ValueError, match="null"):
        ServerSentEvent(data="x", id="a\0b")
    with pytest.raises(ValueError, match="non-negative"):
        ServerSentEvent(data="x", retry=-1)


def test_sse_json_data_with_unicode_line_separator_stays_valid_json() -> None:
    payload = {"text": "one\u2028two\x85three"}
    wire = ServerSentEvent(data=payload).encode().decode()
    assert json.loads(parse_sse(wire)[0]["data"]) == payload


@pytest.mark.parametrize("field", ["event", "id"])
@pytest.mark.parametrize("value", ["a\nb", "a\rb", "a\r\nb"])
def test_sse_refuses_line_breaks_in_event_and_id(field: str, value: str) -> None:
    with pytest.raises(ValueError, match="line break"):
        ServerSentEvent(data="x", **{field: value})


# --- HEAD and files ------------------------------------------------------------------------


def test_head_request_to_get_json_route_has_no_body(client_factory: ClientFactory) -> None:
    app = App()
    calls: list[str] = []

    @app.get("/item")
    async def item() -> dict[str, str]:
        calls.append("called")
        return {"name": "thing"}

    client = client_factory(app)
    get = client.get("/item")
    head = client.head("/item")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == "application/json"
    assert head.headers["content-length"] == get.headers["content-length"] == str(len(get.content))
    assert calls == ["called", "called"]


def test_file_response(client_factory: ClientFactory, tmp_path: Path) -> None:
    content = b"line one\nline two\n" * 100
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    app = App()

    @app.get("/file")
    async def download() -> FileResponse:
        return FileResponse(path, filename="report.txt")

    client = client_factory(app)
    response = client.get("/file")
    assert response.status_code == 200
    assert response.content == content
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-length"] == str(len(content))
    assert response.headers["content-disposition"] == 'attachment; filename="report.txt"'
    assert "etag" in response.headers
    assert "last-modified" in response.headers

    partial = client.get("/file", headers={"Range": "bytes=5-7"})
    assert partial.status_code == 206
    assert partial.content == content[5:8]

    head = client.head("/file")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(content))
