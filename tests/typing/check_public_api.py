"""Checked by mypy in ``make lint`` (never run by pytest): the public API's types, and that the
mistakes users make are type errors. An expected error carries ``# type: ignore[code]``; with
``--strict`` (``warn_unused_ignores``), an ignore that stops being needed fails the check."""

from collections.abc import Callable, Coroutine
from typing import Any, assert_type

from toolkit import App, Depends, Router
from toolkit.cache import CachePolicy
from toolkit.middleware.timing import TimingMiddleware

app = App()
router = Router()


async def current_user() -> str:
    return "alice"


@app.get("/items/{item_id}", status_code=200, tags=["items"], cache=CachePolicy(60, shared=True))
async def read_item(item_id: int) -> dict[str, int]:
    return {"item_id": item_id}


kept: Callable[[int], Coroutine[Any, Any, dict[str, int]]] = read_item  # the decorator keeps its type
assert_type(app.add_api_route("/x", read_item), None)


@router.post("/items", status_code=201, dependencies=[Depends(current_user)], max_body_size=1024)
async def create_item() -> None: ...


@app.websocket("/ws", dependencies=[Depends(current_user)])
async def ws() -> None: ...


app.include_router(router, prefix="/v1", tags=["v1"])
app.add_api_route("/health", read_item, methods=["GET"], include_in_schema=False)
app.add_middleware(TimingMiddleware, access_log=True)


# --- mistakes that must be type errors -----------------------------------------------------------


@app.get("/d", status=201)  # type: ignore[call-arg]
async def misspelt_option() -> None: ...


@app.get("/d", status_code="201")  # type: ignore[arg-type]
async def wrong_option_type() -> None: ...


@app.websocket("/ws2", cache=60)  # type: ignore[call-arg]
async def option_of_another_kind() -> None: ...


app.include_router(router, prefix=1)  # type: ignore[arg-type]
app.add_middleware(TimingMiddleware, acces_log=True)  # type: ignore[call-arg]
app.add_middleware(TimingMiddleware, access_log="yes")  # type: ignore[arg-type]

# FastAPI's spellings: Security in dependencies, response_model_* options, function middleware.
from toolkit import Request, Response, Security  # noqa: E402
from toolkit.middleware import CallNext  # noqa: E402


@app.patch(
    "/items/{item_id}",
    dependencies=[Security(current_user, scopes=["items:write"])],
    response_model_exclude_unset=True,
    openapi_extra={"x-internal": True},
    strict=True,
)
async def patch_item(item_id: int) -> dict[str, int]:
    return {"item_id": item_id}


@app.middleware("http")
async def add_header(request: Request, call_next: CallNext) -> Response:
    response = await call_next(request)
    response.headers["X-Frame-Options"] = "DENY"
    return response


@app.get("/bad", response_model_exclude_none="yes")  # type: ignore[arg-type]
async def wrong_exclude_type() -> None: ...
