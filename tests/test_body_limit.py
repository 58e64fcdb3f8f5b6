"""``App(max_body_size=...)`` holds on every way a body is read: typed body, form, upload,
``request.body()``, ``request.stream()`` (in a handler or a dependency), with per-route overrides."""

from typing import Annotated, Any

import pytest

from toolkit import App, Depends, Form, JSONResponse, Request
from toolkit.testing import TestClient

LIMIT = 1000


def limited_app(**route: Any) -> App:
    app = App(max_body_size=LIMIT)

    @app.post("/body", **route)
    async def body(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    @app.post("/stream", **route)
    async def stream(request: Request) -> dict[str, int]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return {"size": size}

    @app.post("/form", **route)
    async def form(request: Request) -> dict[str, int]:
        data = await request.form()
        return {"fields": len(data)}

    async def read_in_dependency(request: Request) -> int:
        return len(await request.body())

    @app.post("/dependency", **route)
    async def dependency(size: Annotated[int, Depends(read_in_dependency)]) -> dict[str, int]:
        return {"size": size}

    @app.post("/typed-form", **route)
    async def typed_form(name: Annotated[str, Form()]) -> dict[str, int]:
        return {"size": len(name)}

    return app


PATHS = ["/body", "/stream", "/dependency"]


@pytest.mark.parametrize("path", PATHS)
def test_a_body_over_the_app_limit_is_413_however_it_is_read(path: str) -> None:
    client = TestClient(limited_app())
    response = client.post(path, content=b"x" * (LIMIT + 1))
    assert response.status_code == 413
    assert response.json() == {"detail": f"Request body is larger than {LIMIT} bytes"}
    assert client.post(path, content=b"x" * LIMIT).json() == {"size": LIMIT}


@pytest.mark.parametrize("path", PATHS)
def test_a_streamed_body_without_content_length_is_cut_at_the_limit(path: str) -> None:
    client = TestClient(limited_app())
    response = client.post(path, content=iter([b"x" * 600, b"x" * 600]))
    assert response.status_code == 413


@pytest.mark.parametrize("path", ["/form", "/typed-form"])
def test_forms_read_by_hand_or_typed_are_held_to_the_limit(path: str) -> None:
    client = TestClient(limited_app())
    assert client.post(path, data={"name": "x" * (LIMIT + 10)}).status_code == 413
    assert client.post(path, data={"name": "x"}).status_code == 200


@pytest.mark.parametrize("path", PATHS)
def test_a_route_can_raise_the_limit(path: str) -> None:
    client = TestClient(limited_app(max_body_size=10 * LIMIT))
    assert client.post(path, content=b"x" * (5 * LIMIT)).json() == {"size": 5 * LIMIT}
    assert client.post(path, content=b"x" * (10 * LIMIT + 1)).status_code == 413


def test_the_default_limit_is_10_mib_for_bodies_read_by_hand() -> None:
    app = App()

    @app.post("/body")
    async def body(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    client = TestClient(app)
    assert client.post("/body", content=b"x" * (10 * 1024 * 1024 + 1)).status_code == 413


def test_a_lying_content_length_does_not_lift_the_limit() -> None:
    """A client declaring less than it sends is cut off by the count of what arrived."""
    client = TestClient(limited_app())
    response = client.post("/body", content=iter([b"x" * 800, b"x" * 800]), headers={"Content-Length": "10"})
    assert response.status_code in (400, 413)


def test_an_exception_handler_reading_the_body_is_held_to_the_limit() -> None:
    app = App(max_body_size=LIMIT)
    read: list[int] = []

    class Refused(Exception):
        pass

    @app.exception_handler(Refused)
    async def on_refused(request: Request, exc: Refused) -> JSONResponse:
        read.append(len(await request.body()))
        return JSONResponse({"refused": True}, status_code=400)

    @app.post("/refuse")
    async def refuse() -> None:
        raise Refused()

    client = TestClient(app)
    assert client.post("/refuse", content=b"x" * 10).json() == {"refused": True}
    assert client.post("/refuse", content=b"x" * (LIMIT + 1)).status_code == 413
    assert client.post("/refuse", content=iter([b"x" * 600, b"x" * 600])).status_code == 413
    assert read == [10]


@pytest.mark.parametrize(
    "declared", [b"\xb2", b"9" * 5000, b"+10", b"1_0"], ids=["superscript", "huge", "plus", "underscore"]
)
def test_a_malformed_content_length_is_never_a_500(declared: bytes) -> None:
    """Raw ASGI (a server that passes such a header on): counted, not trusted, not a crash."""
    import anyio

    app = limited_app()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"x" * 10, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/body",
        "raw_path": b"/body",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"t"), (b"content-length", declared)],
        "server": ("t", 80),
        "client": ("c", 1),
    }
    anyio.run(app, scope, receive, send)
    status = sent[0]["status"]
    assert status in (200, 413)


def test_not_found_and_server_error_handlers_read_within_the_app_limit() -> None:
    app = App(max_body_size=LIMIT)
    read: list[int] = []

    async def reading(request: Request, exc: Exception) -> JSONResponse:
        read.append(len(await request.body()))
        return JSONResponse({"handled": True}, status_code=404)

    app.add_exception_handler(404, reading)
    app.add_exception_handler(Exception, reading)

    @app.post("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    client = TestClient(app, raise_server_exceptions=False)
    assert client.post("/nowhere", content=b"x" * 10).json() == {"handled": True}
    assert client.post("/nowhere", content=b"x" * (LIMIT + 1)).status_code == 413
    # The server-error handler's read stops at the limit (it then fails: a 500, not a 5 MB read).
    assert client.post("/boom", content=iter([b"x" * 600, b"x" * 600])).status_code in (413, 500)
    assert read == [10]


def test_a_handler_and_its_error_handler_share_one_count() -> None:
    app = App(max_body_size=LIMIT)

    class Half(Exception):
        pass

    @app.exception_handler(Half)
    async def rest(request: Request, exc: Half) -> JSONResponse:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return JSONResponse({"rest": size})

    @app.post("/half")
    async def half(request: Request) -> None:
        async for _ in request.stream():
            raise Half()  # after the first chunk

    client = TestClient(app)
    assert client.post("/half", content=iter([b"x" * 600, b"x" * 600])).status_code == 413


def test_typed_urlencoded_forms_have_a_small_default_limit() -> None:
    app = App()

    @app.post("/login")
    async def login(username: Annotated[str, Form()]) -> dict[str, int]:
        return {"size": len(username)}

    @app.post("/notes", max_body_size=2 * 1024 * 1024)
    async def notes(text: Annotated[str, Form()]) -> dict[str, int]:
        return {"size": len(text)}

    client = TestClient(app)
    big = {"username": "x" * (300 * 1024)}
    assert client.post("/login", data=big).status_code == 413  # 10 MB of "&" is seconds of CPU
    assert client.post("/login", data={"username": "alice"}).json() == {"size": 5}
    assert client.post("/notes", data={"text": "x" * (300 * 1024)}).json() == {"size": 300 * 1024}
    upload = {"username": (None, "x" * (300 * 1024))}  # multipart: parts are bounded their own way
    assert client.post("/login", files=upload).status_code in (200, 413)
