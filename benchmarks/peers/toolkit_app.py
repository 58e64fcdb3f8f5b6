"""The toolkit peer: handlers written as a toolkit user would write them."""

from __future__ import annotations

from typing import Annotated

import msgspec

from toolkit import App, PlainTextResponse, Query

LABEL = "toolkit"
PACKAGES = ("toolkit", "starlette", "msgspec")


class Owner(msgspec.Struct):
    id: int
    email: str


class Item(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
    price: Annotated[float, msgspec.Meta(gt=0)]
    tags: list[str] = []
    owner: Owner | None = None


app = App()


@app.get("/plaintext", response_class=PlainTextResponse)
async def plaintext():
    return "Hello, World!"


@app.get("/json")
async def json():
    return {"message": "Hello, World!"}


@app.get("/items/{item_id}")
async def read_item(
    item_id: int,
    q: Annotated[str | None, Query(max_length=50)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
):
    return {"item_id": item_id, "q": q, "limit": limit}


@app.post("/items", status_code=201)
async def create_item(item: Item) -> Item:
    return item
