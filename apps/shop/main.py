"""The application: ``create_app(settings)``, and ``app`` for ``uvicorn apps.shop.main:app``."""

import contextlib
import logging
from collections.abc import AsyncIterator

from apps.common.db import DatabaseUnavailable, ValueOutOfRange
from apps.common.settings import Settings, load_settings
from toolkit import App, Depends, JSONResponse, Middleware, Request, Response
from toolkit.middleware.sessions import SessionMiddleware
from toolkit.middleware.timing import TimingMiddleware
from toolkit.security import require_origin
from toolkit.sessions import MemoryStore, RedisStore, Store

from .deps import get_settings
from .routes import admin, auth, health, items, live, users

__all__ = ["app", "create_app"]

logger = logging.getLogger("apps.shop")

SESSION_IDLE_TIMEOUT = 30 * 60  # seconds between requests before a session ends
SESSION_MAX_AGE = 7 * 24 * 3600


def database_unavailable(request: Request, exc: Exception) -> Response:
    return JSONResponse({"detail": "Database unavailable"}, status_code=503, headers={"Retry-After": "1"})


def value_out_of_range(request: Request, exc: Exception) -> Response:
    """A safety net: parameters are bounded before they reach the database (apps/SPEC.md)."""
    return JSONResponse({"detail": "Value out of range"}, status_code=422)


def create_app(settings: Settings | None = None) -> App:
    """The shop service configured by ``settings`` (default: from the environment)."""
    settings = settings if settings is not None else load_settings()
    store: Store = RedisStore(url=settings.redis_url) if settings.redis_url else MemoryStore()

    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if isinstance(store, RedisStore):
                await store.close()  # its connections belong to this event loop

    app = App(
        title="shop",
        description="Users and items on the toolkit: the service of apps/SPEC.md.",
        lifespan=lifespan,
        request_id_header="X-Request-ID",
        middleware=[
            Middleware(TimingMiddleware),
            Middleware(
                SessionMiddleware,
                secret_key=settings.secret_key,
                store=store,
                idle_timeout=SESSION_IDLE_TIMEOUT,
                max_age=SESSION_MAX_AGE,
                # Production: __Host-session, Secure; development: session (apps/common/settings.py).
                cookie_name=settings.session_cookie,
                https_only=settings.secure_cookies,
                same_site="lax",
            ),
        ],
        exception_handlers={DatabaseUnavailable: database_unavailable, ValueOutOfRange: value_out_of_range},
    )
    app.state.session_store = store
    for module in (health, users, auth, admin, items, live):
        app.include_router(module.router)
    # Refused before accept (close 1008; uvicorn answers the handshake 403) unless the Origin is one
    # of settings.allowed_origins; none listed refuses every browser.
    app.add_websocket_route(
        "/ws/items", live.item_socket, dependencies=[Depends(require_origin(*settings.allowed_origins))]
    )
    _mount_graphql(app)
    # Dependencies ask for `get_settings` (the database is made from it); this app answers with its
    # own. Set after the routes: the toolkit ignores overrides set before a route is registered.
    app.dependency_overrides[get_settings] = lambda: settings
    return app


def _mount_graphql(app: App) -> None:
    """``/graphql`` when strawberry is installed (the ``graphql`` extra); without it the REST API
    serves alone and ``/graphql`` is a 404 (the container image installs it)."""
    try:
        from .graphql import create_graphql
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.partition(".")[0] not in ("strawberry", "graphql"):
            raise  # a bug of ours, not the missing extra
        logger.info("GraphQL is off: install the graphql extra (pip install 'toolkit[graphql]')")
        return
    app.mount("/graphql", create_graphql())


app = create_app()
