"""Misconfigurations that used to fail on every request are refused when the route is made
(or, for a dependency override, when its plan is made), naming the route and the step."""

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
