"""FastAPI's response features as ported code uses them.

- ``response_model_include/exclude/by_alias/exclude_unset/exclude_defaults/exclude_none``;
- handlers that ``yield``: JSON Lines by default, server-sent events with
  ``response_class=EventSourceResponse``, raw chunks with ``StreamingResponse``/``PlainTextResponse``;
- ``response_class=RedirectResponse`` with a returned URL;
- dataclass bodies echoed with the fields the client left at their defaults;
- the status-code constants (``toolkit.status``).

The expected outputs are FastAPI 0.165's for the equivalent pydantic app, except where a test says
it differs on purpose.
"""

import dataclasses
import json
import logging
import threading
import warnings
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Generator, Iterable, Iterator
from typing import Any, TypedDict

import anyio
import msgspec
import pytest
import starlette.status
from msgspec import UNSET, UnsetType
from starlette.exceptions import StarletteDeprecationWarning
from starlette.types import Message

import toolkit.status as status
from toolkit import (
    App,
    BackgroundTasks,
    Depends,
    EventSourceResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    RouteConfigError,
    ServerSentEvent,
    StreamingResponse,
)
from toolkit.testing import TestClient


class Inner(msgspec.Struct):
    x: int = 1
    y: int | None = None


class Item(msgspec.Struct, rename={"user_id": "userId"}):
    name: str
    description: str | None = None
    price: float = 10.5
    tags: list[str] = []
    inner: Inner = msgspec.field(default_factory=Inner)
    user_id: int = 0


FULL = {"description": None, "price": 10.5, "tags": [], "inner": {"x": 1, "y": None}, "userId": 0}


def get(app: App, path: str = "/out") -> Any:
    response = TestClient(app).get(path)
    assert response.status_code == 200, response.text
    return response.json()


def serve(result: Any, model: Any = Item, **options: Any) -> App:
    app = App()

    @app.get("/out", response_model=model, **options)
    def out() -> Any:
        return result

    return app


# --- response_model_exclude_unset ------------------------------------------------------------


def test_exclude_unset_leaves_out_what_a_returned_dict_did_not_set() -> None:
    app = serve({"name": "a", "price": 10.5, "inner": {"y": 3}}, response_model_exclude_unset=True)
    assert get(app) == {"name": "a", "price": 10.5, "inner": {"y": 3}}


def test_exclude_unset_applies_to_each_item_of_a_list_model() -> None:
    app = serve([{"name": "a"}, {"name": "b", "price": 1}], list[Item], response_model_exclude_unset=True)
    assert get(app) == [{"name": "a"}, {"name": "b", "price": 1.0}]


class ItemPatch(msgspec.Struct):
    name: str | UnsetType = UNSET
    price: float | UnsetType = UNSET
    tags: list[str] | UnsetType = UNSET


def test_exclude_unset_patch_idiom_with_unset_struct_fields() -> None:
    """A Struct records no "fields set": its fields left at ``msgspec.UNSET`` are the unset ones."""
    app = App()
    stored = {"name": "a", "price": 1.0, "tags": ["x"]}

    @app.patch("/items/{item_id}", response_model_exclude_unset=True)
    def update(item_id: int, patch: ItemPatch) -> ItemPatch:
        stored.update({k: v for k, v in msgspec.structs.asdict(patch).items() if v is not UNSET})
        return patch

    response = TestClient(app).patch("/items/1", json={"price": 3})
    assert response.json() == {"price": 3.0}
    assert stored == {"name": "a", "price": 3.0, "tags": ["x"]}


def test_exclude_unset_counts_every_field_of_a_returned_struct_or_dataclass_as_set() -> None:
    """Differs from FastAPI for a Struct (pydantic remembers which fields were passed), as for a
    dataclass there (FastAPI writes all its fields)."""
    assert get(serve(Item(name="a"), response_model_exclude_unset=True)) == {"name": "a", **FULL}
    assert get(serve(Row(a=1), Row, response_model_exclude_unset=True)) == {"a": 1, "b": 2, "c": None}


# --- response_model_exclude_defaults / exclude_none ---------------------------------------------


def test_exclude_defaults_compares_each_field_with_its_default_at_any_depth() -> None:
    result = {"name": "a", "price": 10.5, "description": None, "tags": [], "inner": {"x": 1, "y": 2}}
    assert get(serve(result, response_model_exclude_defaults=True)) == {"name": "a", "inner": {"y": 2}}
    assert get(serve({"name": "a", "inner": {}}, response_model_exclude_defaults=True)) == {"name": "a"}


class Factories(msgspec.Struct):
    pair: list[int] = msgspec.field(default_factory=lambda: [1, 2])
    other: list[int] = msgspec.field(default_factory=lambda: [1, 2])


def test_exclude_defaults_compares_with_what_the_default_factory_makes() -> None:
    result = {"pair": [1, 2], "other": [3]}
    assert get(serve(result, Factories, response_model_exclude_defaults=True)) == {"other": [3]}


class WithMap(msgspec.Struct):
    values: dict[str, int | None]
    note: str | None = None


def test_exclude_none_drops_fields_that_are_none_but_not_none_values_of_a_dict() -> None:
    assert get(serve({"name": "a", "inner": {"x": 1}}, response_model_exclude_none=True)) == {
        "name": "a",
        "price": 10.5,
        "tags": [],
        "inner": {"x": 1},
        "userId": 0,
    }
    result = {"values": {"k": None, "j": 1}}
    assert get(serve(result, WithMap, response_model_exclude_none=True)) == {"values": {"k": None, "j": 1}}


# --- response_model_include / exclude / by_alias -----------------------------------------------


def test_include_and_exclude_name_fields_by_attribute() -> None:
    assert get(serve({"name": "a"}, response_model_include={"name", "price"})) == {"name": "a", "price": 10.5}
    excluded = get(serve({"name": "a"}, response_model_exclude={"tags", "inner", "user_id"}))
    assert excluded == {"name": "a", "description": None, "price": 10.5}
    both = serve({"name": "a"}, response_model_include={"name", "price"}, response_model_exclude={"price"})
    assert get(both) == {"name": "a"}
    # Any collection of names, as FastAPI takes.
    assert get(serve({"name": "a"}, response_model_include=["name"])) == {"name": "a"}


@pytest.mark.parametrize("option", ["response_model_include", "response_model_exclude"])
@pytest.mark.parametrize("model", [Item, list[Item]], ids=["model", "list"])
def test_a_name_the_model_has_no_field_of_is_refused(option: str, model: Any) -> None:
    """Differs from FastAPI on purpose, which ignores it: ``exclude={"pasword_hash"}`` would send
    the field it meant to leave out. The wire name of a renamed field is not its name either."""
    for name in ("pasword_hash", "userId"):
        with pytest.raises(RouteConfigError, match=f"{option} names '{name}'.*its fields: description"):
            serve({"name": "a"}, model, **{option: {name, "name"}})


def test_include_and_exclude_apply_to_each_model_of_a_list_model() -> None:
    """Differs from FastAPI on purpose: pydantic reads the names as list indices there, so
    ``include`` sends ``[]`` and ``exclude`` leaves everything in."""
    result = [{"name": "a"}, {"name": "b", "price": 1}]
    assert get(serve(result, list[Item], response_model_include={"name"})) == [{"name": "a"}, {"name": "b"}]
    excluded = get(serve(result, list[Item], response_model_exclude={"inner", "tags", "description"}))
    assert excluded == [{"name": "a", "price": 10.5, "userId": 0}, {"name": "b", "price": 1.0, "userId": 0}]


def test_include_and_exclude_filter_the_keys_of_a_dict_model() -> None:
    app = serve({"a": 1, "b": 2, "c": 3}, dict[str, int], response_model_exclude={"b"})
    assert get(app) == {"a": 1, "c": 3}


def test_a_nested_include_is_refused_at_registration() -> None:
    app = App()
    with pytest.raises(RouteConfigError, match="top-level field names"):

        @app.get("/out", response_model_include={"inner": {"x"}})  # type: ignore[dict-item]
        def out() -> Item:
            raise AssertionError


class CamelInner(msgspec.Struct, rename="camel"):
    field_name: int


class CamelOuter(msgspec.Struct, rename="camel"):
    inner_item: CamelInner
    items: list[CamelInner] = []


def test_by_alias_false_writes_attribute_names_at_any_depth() -> None:
    assert get(serve({"name": "a", "userId": 3}, response_model_by_alias=False)) == {
        "name": "a",
        "description": None,
        "price": 10.5,
        "tags": [],
        "inner": {"x": 1, "y": None},
        "user_id": 3,
    }
    result = {"innerItem": {"fieldName": 1}, "items": [{"fieldName": 2}]}
    assert get(serve(result, CamelOuter, response_model_by_alias=False)) == {
        "inner_item": {"field_name": 1},
        "items": [{"field_name": 2}],
    }


# --- the options with other models and response classes ------------------------------------------


@dataclasses.dataclass
class Row:
    a: int
    b: int = 2
    c: int | None = None


class Movie(TypedDict, total=False):
    title: str
    year: int | None


def test_options_hold_for_dataclass_and_typeddict_models() -> None:
    assert get(serve(Row(a=1, b=2, c=3), Row, response_model_exclude_defaults=True)) == {"a": 1, "c": 3}
    assert get(serve(Row(a=1), Row, response_model_exclude_none=True)) == {"a": 1, "b": 2}
    assert get(serve(Row(a=1), Row, response_model_include={"a"})) == {"a": 1}
    assert get(serve({"title": "t", "year": None}, Movie, response_model_exclude={"year"})) == {"title": "t"}


def test_exclude_unset_of_a_dict_returned_for_a_dataclass_model() -> None:
    """Differs from FastAPI, which writes every field of a dataclass model: keys absent from a
    returned dict are unset here whatever the model."""
    assert get(serve({"a": 1}, Row, response_model_exclude_unset=True)) == {"a": 1}


def test_options_without_a_response_model_change_nothing() -> None:
    """As in FastAPI: the options shape the response model's output; without one, nothing."""
    app = serve({"a": 1, "b": None}, None, response_model_exclude_none=True, response_model_exclude={"a"})
    assert get(app) == {"a": 1, "b": None}


LEAKY = {"name": "a", "password_hash": "scrypt$secret"}


def test_shaped_output_is_still_validated_against_the_model(caplog: pytest.LogCaptureFixture) -> None:
    assert get(serve(LEAKY, response_model_exclude_none=True))["name"] == "a"
    assert "password_hash" not in json.dumps(get(serve(LEAKY, response_model_exclude_unset=True)))
    app = serve({"name": 1, "password_hash": "x"}, response_model_exclude_none=True)
    with caplog.at_level(logging.ERROR):
        response = TestClient(app, raise_server_exceptions=False).get("/out")
    assert response.status_code == 500
    assert "password_hash" not in response.text


class VendorJSON(JSONResponse):
    media_type = "application/vnd.example+json"


def test_options_hold_with_another_response_class() -> None:
    app = serve({"name": "a"}, response_class=VendorJSON, response_model_exclude_none=True)
    response = TestClient(app).get("/out")
    assert response.headers["content-type"] == "application/vnd.example+json"
    assert response.json() == {"name": "a", "price": 10.5, "tags": [], "inner": {"x": 1}, "userId": 0}


class Cat(msgspec.Struct, tag=True):
    name: str
    lives: int | None = None


class Dog(msgspec.Struct, tag=True):
    name: str


class Point(msgspec.Struct, array_like=True):
    x: int
    y: int | None = None


class Sparse(msgspec.Struct, omit_defaults=True):
    a: int
    b: int = 0


def test_options_keep_tags_arrays_and_omitted_defaults_as_msgspec_writes_them() -> None:
    assert get(serve({"type": "Cat", "name": "c"}, Cat | Dog, response_model_exclude_none=True)) == {
        "type": "Cat",
        "name": "c",
    }
    assert get(serve({"type": "Dog", "name": "d"}, Cat | Dog, response_model_include={"name"})) == {
        "type": "Dog",
        "name": "d",
    }
    assert get(serve([1, None], Point, response_model_exclude_none=True)) == [1, None]
    assert get(serve({"a": 1}, Sparse, response_model_by_alias=False)) == {"a": 1}


# --- dataclass bodies echo their defaults -------------------------------------------------------


@dataclasses.dataclass
class Body:
    a: int
    b: int = 2
    c: str | None = None
    t: list[int] = dataclasses.field(default_factory=list)


def test_a_dataclass_body_echoes_the_fields_left_at_their_defaults() -> None:
    app = App()

    @app.post("/echo")
    def echo(body: Body) -> Body:
        return body

    @app.post("/nested")
    def nested(body: Body) -> dict[str, Body]:
        return {"x": body}

    @app.post("/shaped", response_model_exclude={"t"})
    def shaped(body: Body) -> Body:
        return body

    @app.post("/text", response_class=VendorJSON)
    def text(body: Body) -> Body:
        return body

    client = TestClient(app)
    full = {"a": 1, "b": 2, "c": None, "t": []}
    assert client.post("/echo", json={"a": 1}).json() == full
    assert client.post("/nested", json={"a": 1}).json() == {"x": full}
    assert client.post("/shaped", json={"a": 1}).json() == {"a": 1, "b": 2, "c": None}
    assert client.post("/text", json={"a": 1}).json() == full


# --- handlers that yield: JSON Lines ------------------------------------------------------------


class Out(msgspec.Struct):
    name: str
    price: float = 1.0


def json_lines(text: str) -> list[Any]:
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_an_async_generator_streams_validated_json_lines() -> None:
    app = App()

    @app.get("/items")
    async def items() -> AsyncIterator[Out]:
        yield {"name": "a", "secret": "x"}  # type: ignore[misc]
        yield Out(name="b", price=2)

    with TestClient(app).stream("GET", "/items") as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/jsonl"
        assert "content-length" not in response.headers
        text = "".join(response.iter_text())
    assert json_lines(text) == [{"name": "a", "price": 1.0}, {"name": "b", "price": 2.0}]


@pytest.mark.parametrize(
    "annotation",
    [AsyncIterator[Out], AsyncIterable[Out], AsyncGenerator[Out, None]],
    ids=["AsyncIterator", "AsyncIterable", "AsyncGenerator"],
)
def test_each_async_stream_annotation_names_the_item_type(annotation: Any) -> None:
    app = App()

    async def items() -> Any:
        yield {"name": "a", "secret": "x"}

    items.__annotations__["return"] = annotation
    app.get("/items")(items)
    assert json_lines(TestClient(app).get("/items").text) == [{"name": "a", "price": 1.0}]


@pytest.mark.parametrize(
    "annotation",
    [Iterator[Out], Iterable[Out], Generator[Out, None, None]],
    ids=["Iterator", "Iterable", "Generator"],
)
def test_a_sync_generator_streams_from_a_worker_thread(annotation: Any) -> None:
    app = App()
    threads: list[int] = []

    async def loop_thread() -> int:
        return threading.get_ident()

    def items(loop: int = Depends(loop_thread)) -> Any:
        threads.extend([loop, threading.get_ident()])
        yield {"name": "a", "secret": "x"}
        yield {"name": "b", "price": 3}

    items.__annotations__["return"] = annotation
    app.get("/items")(items)
    response = TestClient(app).get("/items")
    assert response.headers["content-type"] == "application/jsonl"
    assert json_lines(response.text) == [{"name": "a", "price": 1.0}, {"name": "b", "price": 3.0}]
    loop, worker = threads
    assert worker != loop


def test_a_generator_without_an_item_type_streams_its_items_as_json() -> None:
    app = App()

    @app.get("/items")
    async def items():  # type: ignore[no-untyped-def]
        yield {"a": 1}
        yield "s"
        yield None
        yield float("nan")

    assert json_lines(TestClient(app).get("/items").text) == [{"a": 1}, "s", None, None]


def test_an_explicit_response_model_of_a_generator_checks_each_item() -> None:
    """Differs from FastAPI on purpose: FastAPI checks nothing then, and sends what was yielded
    (``password_hash`` included)."""
    app = App()

    @app.get("/items", response_model=Out)
    async def items():  # type: ignore[no-untyped-def]
        yield {"name": "a", "password_hash": "x"}

    assert json_lines(TestClient(app).get("/items").text) == [{"name": "a", "price": 1.0}]


def test_a_stream_item_that_does_not_fit_ends_the_stream_logged(caplog: pytest.LogCaptureFixture) -> None:
    app = App()
    closed: list[bool] = []

    @app.get("/items")
    async def items() -> AsyncIterator[Out]:
        try:
            yield {"name": "a"}  # type: ignore[misc]
            yield {"name": 1, "password_hash": "x"}  # type: ignore[misc]
            yield {"name": "c"}  # type: ignore[misc]
        finally:
            closed.append(True)

    with caplog.at_level(logging.ERROR):
        response = TestClient(app, raise_server_exceptions=False).get("/items")
    assert response.status_code == 200  # the headers had gone; the connection is cut after line 1
    assert response.text == '{"name":"a","price":1.0}\n'
    assert closed == [True]
    assert any("does not match the response model" in r.getMessage() for r in caplog.records)


def test_response_model_options_shape_each_streamed_item() -> None:
    app = App()

    @app.get("/items", response_model_exclude_none=True, response_model_exclude={"price"})
    async def items() -> AsyncIterator[Item]:
        yield {"name": "a"}  # type: ignore[misc]

    assert json_lines(TestClient(app).get("/items").text) == [
        {"name": "a", "tags": [], "inner": {"x": 1}, "userId": 0}
    ]


def test_a_stream_honours_status_code_dependency_headers_and_background_tasks() -> None:
    app = App()
    log: list[str] = []

    def tagged(response: Response) -> None:
        response.headers["x-dep"] = "1"

    @app.post("/items", status_code=201, dependencies=[Depends(tagged)])
    async def items(background: BackgroundTasks) -> AsyncIterator[int]:
        background.add_task(log.append, "after")
        log.append("streaming")
        yield 1

    def accepted(response: Response) -> None:
        response.status_code = 202

    @app.get("/accepted", status_code=201, dependencies=[Depends(accepted)])
    def accept() -> Iterator[int]:
        yield 1

    client = TestClient(app)
    response = client.post("/items")
    assert (response.status_code, response.headers["x-dep"], response.text) == (201, "1", "1\n")
    assert log == ["streaming", "after"]
    assert client.get("/accepted").status_code == 202  # the injected Response's status wins, as in FastAPI


def test_a_generator_dependency_stays_open_while_the_stream_is_sent() -> None:
    app = App()
    log: list[str] = []

    async def session() -> AsyncIterator[str]:
        log.append("open")
        yield "db"
        log.append("close")

    @app.get("/items")
    async def items(db: str = Depends(session)) -> AsyncIterator[str]:
        for i in range(2):
            log.append(f"item {i}")
            yield db

    assert json_lines(TestClient(app).get("/items").text) == ["db", "db"]
    assert log == ["open", "item 0", "item 1", "close"]


# --- handlers that yield: server-sent events and raw chunks ---------------------------------------


def test_a_generator_with_event_source_response_sends_events() -> None:
    app = App()

    @app.get("/events", response_class=EventSourceResponse)
    async def events() -> AsyncIterable[Out]:
        yield {"name": "a", "secret": "x"}  # type: ignore[misc]
        yield ServerSentEvent(data={"x": 1}, event="e", id="1")  # type: ignore[misc]
        yield ServerSentEvent(comment="hi")  # type: ignore[misc]

    @app.get("/plain", response_class=EventSourceResponse)
    def plain() -> Iterator[Any]:
        yield "hello"
        yield {"a": 1}

    client = TestClient(app)
    with client.stream("GET", "/events") as response:
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        body = "".join(response.iter_text())
    assert body == 'data: {"name":"a","price":1.0}\n\nevent: e\ndata: {"x":1}\nid: 1\n\n: hi\n\n'
    # Each item is JSON, a str too (as in FastAPI).
    assert client.get("/plain").text == 'data: "hello"\n\ndata: {"a":1}\n\n'


def test_an_event_that_does_not_fit_ends_the_event_stream() -> None:
    app = App()

    @app.get("/events", response_class=EventSourceResponse)
    async def events() -> AsyncIterator[Out]:
        yield {"name": "a"}  # type: ignore[misc]
        yield {"name": 2}  # type: ignore[misc]

    response = TestClient(app, raise_server_exceptions=False).get("/events")
    assert response.text == 'data: {"name":"a","price":1.0}\n\n'


def test_an_idle_event_stream_sends_keepalive_comments(monkeypatch: pytest.MonkeyPatch) -> None:
    import toolkit._streaming

    monkeypatch.setattr(toolkit._streaming, "SSE_PING_INTERVAL", 0.05)
    app = App()

    @app.get("/events", response_class=EventSourceResponse)
    async def events() -> AsyncIterator[int]:
        yield 1
        await anyio.sleep(0.12)
        yield 2

    text = TestClient(app).get("/events").text
    assert text.startswith("data: 1\n\n: ping\n\n")
    assert text.endswith("data: 2\n\n")


def test_a_generator_with_a_raw_response_class_streams_its_chunks() -> None:
    app = App()

    @app.get("/raw", response_class=StreamingResponse)
    async def raw() -> AsyncIterator[str | bytes]:
        yield "a"
        yield b"b"

    @app.get("/text", response_class=PlainTextResponse)
    def text() -> Iterator[str]:
        yield "x,"
        yield "y"

    client = TestClient(app)
    response = client.get("/raw")
    assert response.text == "ab"
    assert "content-type" not in response.headers  # as in FastAPI: a bare StreamingResponse has none
    response = client.get("/text")  # a 500 in FastAPI, which hands the generator to PlainTextResponse
    assert response.text == "x,y"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


class NDJSONResponse(StreamingResponse):
    media_type = "application/x-ndjson"

    def __init__(self, content: Any, status_code: int = 200, **options: Any) -> None:
        super().__init__(content, status_code, **options)
        self.headers["x-class"] = "ndjson"


def test_a_generator_with_a_streaming_class_of_its_own_is_streamed_by_that_class() -> None:
    app = App()
    closed: list[bool] = []

    @app.get("/nd", response_class=NDJSONResponse, status_code=203)
    async def nd() -> AsyncIterator[str]:
        try:
            yield '{"a":1}\n'
        finally:
            closed.append(True)

    response = TestClient(app).get("/nd")
    assert (response.status_code, response.text) == (203, '{"a":1}\n')
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.headers["x-class"] == "ndjson"
    assert closed == [True]


# --- the handler's generator is closed when the client goes away -----------------------------------


async def request_until_gone(app: App, path: str, spec_version: str, chunks: int = 2) -> list[Message]:
    """GET ``path``; the client goes away once ``chunks`` body messages arrived (ASGI 2.4: ``send``
    raises ``OSError``; before 2.4: ``receive`` says ``http.disconnect``)."""
    sent: list[Message] = []
    gone = anyio.Event()
    asked = False

    async def receive() -> Message:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if gone.is_set() and spec_version == "2.4":
            raise OSError("connection closed")
        sent.append(message)
        if sum(m["type"] == "http.response.body" for m in sent) >= chunks:
            gone.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": spec_version},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"test")],
        "client": ("127.0.0.1", 1234),
        "server": ("test", 80),
    }
    with anyio.fail_after(5):
        await app(scope, receive, send)
    return sent


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
@pytest.mark.parametrize("spec_version", ["2.3", "2.4"])
@pytest.mark.parametrize("response_class", [JSONResponse, EventSourceResponse, StreamingResponse])
async def test_the_handlers_generator_is_closed_when_the_client_goes_away(
    spec_version: str, response_class: type[Response]
) -> None:
    app = App()
    log: list[str] = []

    @app.get("/async", response_class=response_class)
    async def forever() -> AsyncIterator[str]:
        try:
            while True:
                yield "tick"
        finally:
            await anyio.sleep(0)  # the cleanup may await
            log.append("async closed")

    @app.get("/sync", response_class=response_class)
    def forever_sync() -> Iterator[str]:
        try:
            while True:
                yield "tick"
        finally:
            log.append("sync closed")

    sent = await request_until_gone(app, "/async", spec_version)
    assert sent[0]["status"] == 200
    await request_until_gone(app, "/sync", spec_version)
    assert log == ["async closed", "sync closed"]


# --- RedirectResponse -----------------------------------------------------------------------------


def test_a_returned_url_with_redirect_response_redirects() -> None:
    app = App()

    @app.get("/go", response_class=RedirectResponse)
    async def go() -> str:
        return "https://example.com/x"

    @app.get("/found", response_class=RedirectResponse, status_code=302)
    async def found():  # type: ignore[no-untyped-def]
        return "/y"

    client = TestClient(app, follow_redirects=False)
    response = client.get("/go")
    assert (response.status_code, response.headers["location"]) == (307, "https://example.com/x")
    response = client.get("/found")
    assert (response.status_code, response.headers["location"]) == (302, "/y")


# --- status codes -----------------------------------------------------------------------------------


def test_status_reexports_starlettes_constants() -> None:
    assert status.HTTP_404_NOT_FOUND == 404
    assert status.HTTP_422_UNPROCESSABLE_CONTENT == 422
    assert status.WS_1008_POLICY_VIOLATION == 1008
    assert sorted(status.__all__) == sorted(starlette.status.__all__)
    for name in starlette.status.__all__:
        assert getattr(status, name) == getattr(starlette.status, name)


def test_status_keeps_starlettes_deprecated_names_with_their_warning() -> None:
    with pytest.warns(StarletteDeprecationWarning, match="HTTP_422_UNPROCESSABLE_CONTENT"):
        assert status.HTTP_422_UNPROCESSABLE_ENTITY == 422
    with pytest.raises(AttributeError), warnings.catch_warnings():
        status.HTTP_999_NOPE  # noqa: B018
