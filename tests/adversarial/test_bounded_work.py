"""An anonymous request buys only bounded work: the reproduction from the attack review.

``POST /items`` on the shop with no credentials and a 1 MB body of 500,000 wrong-typed tags used
to walk every item on the event loop (14 s) before answering 401, and with a token returned a
422 fifty times the request's size. Authentication now runs before any validation work beyond
the decode, and the error walk honours the list's own ``max_length``."""

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import msgspec
import pytest
from adv_support import bearer, register, shop_settings

import toolkit._json_body as body_module
from apps.shop.main import create_app
from toolkit import App, Depends, HTTPException, Request
from toolkit.testing import TestClient

HUGE_TAGS = b'{"name":"x","price":1,"tags":[' + b",".join([b"0"] * 500_000) + b"]}"


class Item(msgspec.Struct):
    name: str


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times a request's body was walked for every failing field."""
    calls: list[int] = []
    original = body_module.JsonBody.errors

    def counted(self: body_module.JsonBody, raw: bytes, *args: Any) -> Any:
        calls.append(len(raw))
        return original(self, raw, *args)

    monkeypatch.setattr(body_module.JsonBody, "errors", counted)
    return calls


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(shop_settings(tmp_path)), raise_server_exceptions=False) as client:
        yield client


def test_an_anonymous_hostile_body_gets_401_without_a_walk(shop: TestClient, walks: list[int]) -> None:
    assert len(HUGE_TAGS) > 1_000_000
    response = shop.post("/items", content=HUGE_TAGS, headers={"Content-Type": "application/json"})
    assert response.status_code == 401
    assert walks == []


def test_an_authenticated_hostile_body_gets_a_small_422(shop: TestClient, walks: list[int]) -> None:
    register(shop, "alice")
    headers = {**bearer(shop, "alice"), "Content-Type": "application/json"}
    response = shop.post("/items", content=HUGE_TAGS, headers=headers)
    assert response.status_code == 422
    assert len(walks) == 1
    error, marker = response.json()["detail"]  # over 256 KiB: the first error only, and a marker
    assert error["loc"][:2] == ["body", "tags"]
    assert marker["type"] == "too_many_errors"
    assert len(response.content) < 2_000


def test_gates_run_before_the_walk_and_body_readers_after_it(walks: list[int]) -> None:
    """A dependency that does not read the body (an auth check) refuses first; one that does
    read it never runs on an invalid body."""
    app = App()
    seen: list[str] = []

    async def auth(request: Request) -> None:
        seen.append("auth")
        if request.headers.get("x-token") != "ok":
            raise HTTPException(401, "Not authenticated")

    async def reads_body(item: Item) -> str:
        seen.append("reads_body")
        return item.name

    @app.post("/items", dependencies=[Depends(auth)])
    async def create(item: Item, name: Annotated[str, Depends(reads_body)]) -> dict[str, str]:
        return {"name": name}

    client = TestClient(app)
    assert client.post("/items", json={"name": 1}).status_code == 401
    assert walks == []
    response = client.post("/items", json={"name": 1}, headers={"x-token": "ok"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "name"]
    assert seen == ["auth", "auth"]
    assert client.post("/items", json={"name": "a"}, headers={"x-token": "ok"}).json() == {"name": "a"}


def test_a_large_failing_body_reports_the_first_error_without_a_second_decode(
    shop: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """10 MB of padding around one bad field: the walk would decode it all again, untyped."""
    decoded: list[int] = []
    real_decode = body_module.msgspec.json.decode

    def counting_decode(raw: bytes, *args: Any, **kwargs: Any) -> Any:
        decoded.append(len(raw))
        return real_decode(raw, *args, **kwargs)

    monkeypatch.setattr(body_module.msgspec.json, "decode", counting_decode)
    body = b'{"username":1,"password":"b","pad":[' + b",".join([b"{}"] * 2_000_000) + b"]}"
    response = shop.post("/users", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    first, marker = response.json()["detail"]
    assert first["loc"] == ["body", "username"]
    assert marker["type"] == "too_many_errors"
    assert decoded == []  # no untyped decode of the 6 MB body
    small = shop.post("/users", json={"username": 1, "password": 2})
    locs = [error["loc"] for error in small.json()["detail"]]
    assert ["body", "username"] in locs  # a small body still gets every error
    assert ["body", "password"] in locs
