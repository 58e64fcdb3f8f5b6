"""Misconfigurations that used to fail on every request are refused when the route is made
(or, for a dependency override, when its plan is made), naming the route and the step."""

import re
from typing import Annotated

import msgspec
import pytest

from toolkit import App, Depends, Request, RouteConfigError, WebSocket
from toolkit.testing import TestClient


class Thing:
    """A plain class: msgspec can neither decode nor check it."""

    def __init__(self, name: str) -> None:
        self.name = name


class Holder(msgspec.Struct):
    things: list[Thing]


def test_a_websocket_parameter_in_an_http_route_is_refused_at_registration() -> None:
    app = App()
    with pytest.raises(RouteConfigError, match=r"GET /echo \(.*echo\): .*echo takes a WebSocket"):

        @app.get("/echo")
        async def echo(ws: WebSocket) -> None: ...


def test_an_undecodable_body_is_refused_at_registration() -> None:
    app = App()
    with pytest.raises(RouteConfigError, match="request body holds Thing"):

        @app.post("/things")
        async def create(things: dict[str, Thing]) -> None: ...

    with pytest.raises(RouteConfigError, match="request body holds Thing"):

        @app.post("/holders")
        async def create_holder(holder: Holder) -> None: ...


def test_an_undecodable_response_model_is_refused_at_registration() -> None:
    app = App()
    with pytest.raises(RouteConfigError, match="response model holds Thing"):

        @app.get("/thing")
        async def thing() -> Thing:
            return Thing("x")

    @app.get("/raw", response_model=None)  # the way out the message names
    async def raw() -> dict[str, str]:
        return {"name": "x"}


def test_an_override_asking_for_a_request_in_a_websocket_route_is_refused() -> None:
    app = App()

    async def user() -> str:
        return "alice"

    async def user_from_request(request: Request) -> str:
        return request.headers.get("x-user", "")

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, name: Annotated[str, Depends(user)]) -> None:
        await websocket.accept()
        await websocket.send_text(name)
        await websocket.close()

    client = TestClient(app)
    with client.websocket_connect("/ws") as connection:
        assert connection.receive_text() == "alice"
    app.dependency_overrides[user] = user_from_request  # used to get None for the Request
    with (
        pytest.raises(
            RouteConfigError, match=r"WEBSOCKET /ws .*takes a Request .*which websocket routes do not have"
        ),
        client.websocket_connect("/ws"),
    ):
        pass


def test_an_error_in_a_dependency_names_the_route_and_the_chain() -> None:
    app = App()

    def token_reader(token: Thing) -> str:  # a query parameter cannot be a plain class
        return "x"

    def get_user(token: Annotated[str, Depends(token_reader)]) -> str:
        return token

    with pytest.raises(RouteConfigError) as raised:

        @app.get("/me")
        async def me(user: Annotated[str, Depends(get_user)]) -> str:
            return user

    message = str(raised.value)
    assert message.startswith("GET /me (")
    assert "me -> " in message
    assert "get_user -> " in message
    assert "token_reader: parameter 'token'" in message


def test_an_override_that_cannot_be_planned_is_refused_naming_the_route(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Overrides are compiled on the next request (setting one must stay cheap): the route
    answers a 500 whose logged error names the route, never runs the broken plan."""
    app = App()

    def current_user() -> str:
        return "alice"

    @app.get("/me")
    async def me(user: Annotated[str, Depends(current_user)]) -> str:
        return user

    def broken_override(ws: WebSocket) -> str:
        return "x"

    client = TestClient(app, raise_server_exceptions=False)
    assert client.get("/me").json() == "alice"
    app.dependency_overrides[current_user] = broken_override
    response = client.get("/me")
    assert response.status_code == 500
    assert "WebSocket" not in response.text  # nothing of the configuration reaches the client
    logged = "\n".join(str(record.exc_info[1]) for record in caplog.records if record.exc_info)
    assert re.search(r"GET /me \(.*me\): .*broken_override takes a WebSocket", logged)
    app.dependency_overrides.clear()
    assert client.get("/me").json() == "alice"


@pytest.mark.parametrize("status", ["201", 99, 600, True, 201.0])
def test_a_status_code_that_is_not_an_http_status_is_refused(status: object) -> None:
    app = App()
    with pytest.raises(RouteConfigError, match=r"POST /items \(.*\): status_code must be an int"):
        app.add_api_route("/items", lambda: None, methods=["POST"], status_code=status)  # type: ignore[arg-type]


def test_an_http_status_enum_is_a_status_code() -> None:
    from http import HTTPStatus

    app = App()

    @app.post("/items", status_code=HTTPStatus.CREATED)
    async def create() -> dict[str, bool]:
        return {"ok": True}

    assert TestClient(app).post("/items").status_code == 201
