"""The FastAPI app: ``create_app(settings)`` and a module-level ``app``.

Run it with ``uvicorn apps.shop_fastapi.main:app``.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.middleware.sessions import SessionMiddleware

from apps.common.db import Database, DatabaseUnavailable, ValueOutOfRange
from apps.common.events import Broadcaster
from apps.common.settings import Settings, load_settings

from .dependencies import allowed_origins
from .routers import admin, auth, health, items, live, users
from .throttle import Throttle

_WELL_FORMED_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings if settings is not None else load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.db = await Database.connect(settings.database_url)
        app.state.broadcaster = Broadcaster()
        try:
            yield
        finally:
            app.state.broadcaster.close()  # ends the live streams still open
            await app.state.db.close()

    app = FastAPI(title="shop (FastAPI)", version="1.0.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.throttle = Throttle(settings)
    app.state.allowed_origins = allowed_origins(settings)  # of WebSockets (dependencies.check_origin)

    # Production: __Host-session, Secure; development: session (apps/common/settings.py).
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie=settings.session_cookie,
        https_only=settings.secure_cookies,
        same_site="lax",
    )

    @app.middleware("http")
    async def request_id_and_timing(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        incoming = request.headers.get("x-request-id", "")
        request_id = incoming if _WELL_FORMED_ID.fullmatch(incoming) else uuid.uuid4().hex
        start = time.perf_counter()
        response = await call_next(request)
        response.headers["X-Process-Time"] = f"{time.perf_counter() - start:.6f}"
        response.headers["X-Request-ID"] = request_id
        return response

    @app.exception_handler(DatabaseUnavailable)
    async def database_unavailable(request: Request, exc: DatabaseUnavailable) -> JSONResponse:
        return JSONResponse({"detail": "Database unavailable"}, status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(ValueOutOfRange)
    async def value_out_of_range(request: Request, exc: ValueOutOfRange) -> JSONResponse:
        return JSONResponse({"detail": "Value out of range"}, status_code=422)  # parameters are bounded

    app.include_router(health.router)
    app.include_router(users.router)
    app.include_router(auth.router)
    app.include_router(admin.router)
    app.include_router(live.router)  # before items: /items/events must win over /items/{item_id}
    app.include_router(items.router)
    return app


app = create_app()
