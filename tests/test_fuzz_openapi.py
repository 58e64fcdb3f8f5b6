"""Schemathesis against the document of an app using every parameter kind and security helper.

Bounded in examples so CI runs it on every change: no generated request may cause a 5xx.
"""

from datetime import date
from enum import Enum
from typing import Annotated, Literal
from uuid import UUID

import msgspec
import pytest
from hypothesis import HealthCheck, settings

from toolkit import (
    App,
    Body,
    Cookie,
    Depends,
    File,
    Form,
    Header,
    HTTPException,
    Middleware,
    Path,
    Query,
    UploadFile,
)
from toolkit.middleware.sessions import SessionMiddleware
from toolkit.middleware.timing import TimingMiddleware
from toolkit.security import (
    APIKeyHeader,
    HTTPBasic,
    HTTPBasicCredentials,
    OAuth2PasswordBearer,
    OAuth2PasswordRequestForm,
    compare_secret,
)
from toolkit.security.jwt import create_token, decode_token
from toolkit.sessions import MemoryStore, Session

schemathesis = pytest.importorskip("schemathesis")

SECRET = "0123456789abcdef0123456789abcdef"


class Color(Enum):
    red = "red"
    blue = "blue"


class Owner(msgspec.Struct):
    id: Annotated[int, msgspec.Meta(ge=1)]
    email: Annotated[str, msgspec.Meta(max_length=100)]


class Item(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
    price: Annotated[float, msgspec.Meta(gt=0, lt=1e9)]
    tags: list[str] = []
    owner: Owner | None = None
    color: Color = Color.red


oauth2 = OAuth2PasswordBearer(tokenUrl="/token")
basic = HTTPBasic()
api_key = APIKeyHeader(name="X-API-Key")


def current_user(token: Annotated[str, Depends(oauth2)]) -> str:
    return str(decode_token(token, SECRET)["sub"])


def build_app() -> App:
    app = App(
        title="fuzz",
        middleware=[
            Middleware(TimingMiddleware),
            Middleware(SessionMiddleware, secret_key=SECRET, store=MemoryStore()),
        ],
        request_id_header="X-Request-ID",
    )

    @app.get("/items/{item_id}")
    async def read_item(
        item_id: Annotated[int, Path(ge=1, le=10**6)],
        q: Annotated[str | None, Query(max_length=20, pattern="^[a-z]*$")] = None,
        color: Color = Color.red,
        when: date | None = None,
        order: Literal["asc", "desc"] = "asc",
        tags: Annotated[list[int], Query()] = [],  # noqa: B006 - a default msgspec copies
        x_trace: Annotated[str | None, Header(max_length=40)] = None,
        theme: Annotated[str | None, Cookie()] = None,
    ) -> dict[str, object]:
        return {"item_id": item_id, "q": q, "color": color, "when": when, "order": order, "tags": tags}

    @app.post("/items", status_code=201)
    async def create_item(item: Item, user: Annotated[str, Depends(current_user)]) -> Item:
        return item

    @app.put("/items/{item_id}")
    async def replace_item(
        item_id: UUID,
        item: Item,
        note: Annotated[str, Body(max_length=10)],
        urgent: Annotated[bool, Body()] = False,
    ) -> dict[str, object]:
        return {"item_id": item_id, "note": note, "urgent": urgent}

    @app.post("/token")
    async def token(form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> dict[str, str]:
        if not (compare_secret(form.username, "alice") and compare_secret(form.password, "wonderland")):
            raise HTTPException(401, "Incorrect username or password", headers={"WWW-Authenticate": "Bearer"})
        return {"access_token": create_token({"sub": form.username}, SECRET), "token_type": "bearer"}

    @app.get("/basic")
    async def with_basic(credentials: Annotated[HTTPBasicCredentials, Depends(basic)]) -> dict[str, str]:
        return {"user": credentials.username}

    @app.get("/keyed", dependencies=[Depends(api_key)])
    async def keyed() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/upload")
    async def upload(
        file: Annotated[UploadFile, File()], title: Annotated[str, Form(max_length=30)]
    ) -> dict[str, object]:
        return {"title": title, "size": len(await file.read())}

    @app.post("/session")
    async def remember(session: Session, value: Annotated[str, Query(max_length=30)]) -> dict[str, str]:
        session["value"] = value
        return {"value": value}

    return app


schema = schemathesis.openapi.from_asgi("/openapi.json", build_app())


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_causes_a_server_error(case: "schemathesis.Case") -> None:
    response = case.call()
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text)
