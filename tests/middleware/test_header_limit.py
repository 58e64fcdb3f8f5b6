"""HeaderLimitMiddleware: the head limit for servers without one (``toolkit run`` has its own)."""

from __future__ import annotations

import pytest
from starlette.websockets import WebSocketDisconnect

from toolkit import App, WebSocket
from toolkit.middleware.headers import HeaderLimitMiddleware
from toolkit.testing import TestClient


def make_app(**options: int) -> App:
    app = App()

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("welcome")
        await websocket.close()

    app.add_websocket_route("/ws", socket)
    app.add_middleware(HeaderLimitMiddleware, **options)
    return app


def test_an_ordinary_request_passes() -> None:
    with TestClient(make_app()) as client:
        response = client.get("/hello", headers={"Cookie": "a" * 4000}, params={"q": "x" * 2000})
    assert response.json() == {"hello": "world"}


def test_an_oversized_head_is_431_before_the_app() -> None:
    with TestClient(make_app(max_size=4096)) as client:
        response = client.get("/hello", headers={"Cookie": "a" * 5000})
    assert response.status_code == 431
    assert response.json() == {"detail": "Request header fields too large (at most 4096 bytes)"}
    assert response.headers["connection"] == "close"


def test_a_long_query_string_counts() -> None:
    with TestClient(make_app(max_size=4096)) as client:
        assert client.get("/hello", params={"q": "x" * 5000}).status_code == 431


def test_too_many_fields_is_431() -> None:
    headers = [(f"x-field-{index}", "v") for index in range(30)]
    with TestClient(make_app(max_count=20)) as client:
        response = client.get("/hello", headers=headers)
    assert response.status_code == 431
    assert response.json() == {"detail": "Too many header fields (at most 20)"}


def test_a_websocket_handshake_over_the_limit_is_refused() -> None:
    with TestClient(make_app(max_size=4096)) as client:
        with client.websocket_connect("/ws") as ws:
            assert ws.receive_text() == "welcome"
        with (
            pytest.raises(WebSocketDisconnect) as refused,
            client.websocket_connect("/ws", headers={"Cookie": "a" * 5000}),
        ):
            pass
    assert refused.value.code == 1008


@pytest.mark.parametrize(
    ("options", "message"), [({"max_size": 10}, "max_size"), ({"max_count": 0}, "max_count")]
)
def test_nonsense_limits_are_refused(options: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HeaderLimitMiddleware(App(), **options)
