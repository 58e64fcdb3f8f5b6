"""The application: ``create_app(settings)``, and ``app`` for ``toolkit run apps.notes.main:app``.

Run the migrations first (``.venv/bin/alembic -c apps/notes/alembic.ini upgrade head``): the app
never creates tables, and refuses to start on a database that is not at the head revision.
"""

from sqlalchemy.exc import SQLAlchemyError

from toolkit import App

from .deps import Settings, get_settings
from .errors import database_error
from .routes import router

__all__ = ["app", "create_app"]


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
