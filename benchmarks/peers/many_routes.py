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


def fastapi(routes: int) -> Any:
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse

    async def handler(id: int):
        return str(id)

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    for i in range(routes):
        app.add_api_route(f"/r{i}/{{id}}", handler, name=f"r{i}", response_class=PlainTextResponse)
    return app


def starlette(routes: int) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def handler(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(request.path_params["id"]))

    return Starlette(routes=[Route(f"/r{i}/{{id:int}}", handler, name=f"r{i}") for i in range(routes)])


BUILDERS: dict[str, Callable[[int], Any]] = {"toolkit": toolkit, "fastapi": fastapi, "starlette": starlette}
