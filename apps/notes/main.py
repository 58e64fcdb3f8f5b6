"""The application: ``create_app(settings)``, and ``app`` for ``toolkit run apps.notes.main:app``.

Run the migrations first (``.venv/bin/alembic -c apps/notes/alembic.ini upgrade head``): the app
never creates tables, and refuses to start on a database that is not at the head revision.
"""

import logging

from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from toolkit import App, JSONResponse, Request, Response

from .deps import Settings, get_settings
from .routes import router

__all__ = ["app", "create_app"]

logger = logging.getLogger("apps.notes")


def database_error(request: Request, exc: Exception) -> Response:
    """No SQL, parameters or driver message reaches the client; the log has them.

    A constraint a handler did not expect is a 409; a connection that failed or was lost, or a
    pool with no connection to give, a 503 (try again); anything else a 500."""
    if isinstance(exc, IntegrityError):
        logger.warning("%s %s: integrity error: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": "Conflict with existing data"}, status_code=409)
    logger.error("%s %s: database error", request.method, request.url.path, exc_info=exc)
    if isinstance(exc, (PoolTimeout, OperationalError, InterfaceError)) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    ):
        return JSONResponse({"detail": "Database unavailable"}, status_code=503, headers={"Retry-After": "1"})
    return JSONResponse({"detail": "Internal Server Error"}, status_code=500)


def create_app(settings: Settings | None = None) -> App:
    """The notes service on ``settings.database_url`` (default: ``NOTES_DATABASE_URL``).

    The engine is an app-scoped dependency: made when the lifespan starts (on the server's event
    loop, one per lifespan), disposed when it ends; nothing touches the database at import."""
    settings = settings if settings is not None else get_settings()
    app = App(
        title="notes",
        description="Authors and notes on SQLAlchemy 2.0 (async) and Alembic.",
        debug=settings.debug,
        exception_handlers={SQLAlchemyError: database_error},
    )
    app.include_router(router)
    # After the routes: dependencies ask for `get_settings`; this app answers with its own.
    app.dependency_overrides[get_settings] = lambda: settings
    return app


app = create_app()
