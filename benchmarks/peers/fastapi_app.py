"""The FastAPI peer: pydantic v2 models and FastAPI's defaults, as its docs teach them."""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

LABEL = "FastAPI"
PACKAGES = ("fastapi", "starlette", "pydantic", "pydantic-core")


class Owner(BaseModel):
    id: int
    email: str


class Item(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=50)]
    price: Annotated[float, Field(gt=0)]
    tags: list[str] = []
    owner: Owner | None = None


# No OpenAPI routes: they are never requested, but keep the route tables the same size.
app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


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
