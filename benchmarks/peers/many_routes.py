"""Apps with ``n`` routes ``/r0/{id}`` ... ``/r{n-1}/{id}``, for the growth benchmarks.

Each route has a static first segment and an ``int`` parameter, and a tiny handler answering
the parameter back as text. The routing benchmark requests the last-registered route, the worst
case for a router that scans its routes in order; the start-up benchmark times importing the
framework and building one of these apps. Each builder imports its framework only when called.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..spec import TEXT, Case

__all__ = ["BUILDERS", "last_route_case"]


def last_route_case(routes: int) -> Case:
    """A request for the last-registered route of an app built with ``routes`` routes."""
    return Case("route", "GET", f"/r{routes - 1}/42", content_type=TEXT, text="42", timed=True)


def toolkit(routes: int) -> Any:
    from toolkit import App, PlainTextResponse

    async def handler(id: int):
        return str(id)

    app = App()
    for i in range(routes):
        app.add_api_route(f"/r{i}/{{id}}", handler, name=f"r{i}", response_class=PlainTextResponse)
    return app


def fastapi(routes: int, *, tuned: bool = False) -> Any:
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse

    async def handler(id: int):
        return str(id)

    # The tuned peer turns telemetry off (benchmarks/peers/fastapi_tuned_app.py).
    off = {"telemetry": {"tracing": False, "metrics": False, "logs": False}} if tuned else {}
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, **off)  # type: ignore[arg-type]
    for i in range(routes):
        app.add_api_route(f"/r{i}/{{id}}", handler, name=f"r{i}", response_class=PlainTextResponse)
    return app


def fastapi_tuned(routes: int) -> Any:
    return fastapi(routes, tuned=True)


def starlette(routes: int) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def handler(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(request.path_params["id"]))

    return Starlette(routes=[Route(f"/r{i}/{{id:int}}", handler, name=f"r{i}") for i in range(routes)])


def litestar(routes: int) -> Any:
    from litestar import Litestar, MediaType, get

    async def handler(id: int) -> str:
        return str(id)

    text = MediaType.TEXT
    handlers = [get(f"/r{i}/{{id:int}}", name=f"r{i}", media_type=text)(handler) for i in range(routes)]
    return Litestar(route_handlers=handlers, openapi_config=None)


def blacksheep(routes: int) -> Any:
    from blacksheep import Application, text
    from blacksheep.server.routing import Router

    async def handler(id: int):  # bound from the route by name, converted to int
        return text(str(id))

    app = Application(router=Router())  # its own router (BlackSheep binds a router to one app)
    for i in range(routes):
        app.router.add_get(f"/r{i}/{{id}}", handler, name=f"r{i}")
    return app


BUILDERS: dict[str, Callable[[int], Any]] = {
    "toolkit": toolkit,
    "fastapi_tuned": fastapi_tuned,
    "fastapi": fastapi,
    "litestar": litestar,
    "blacksheep": blacksheep,
    "starlette": starlette,
}
