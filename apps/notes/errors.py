"""How both notes apps answer a database error (``SQLAlchemyError``), on Starlette's request and
response classes, which the toolkit and FastAPI share: no SQL, parameters or driver message reaches
the client; the log has them."""

import logging

from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm.exc import StaleDataError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = ["database_error"]

logger = logging.getLogger("apps.notes")


def _invalid_value(exc: Exception) -> bool:
    """``DataError``, or a driver error of SQLSTATE class 22 (data exception): SQLAlchemy's asyncpg
    dialect reports those (e.g. a NUL in ``text``) as a plain ``DBAPIError``."""
    if isinstance(exc, DataError):
        return True
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None) if isinstance(exc, DBAPIError) else None
    return isinstance(sqlstate, str) and sqlstate.startswith("22")


def database_error(request: Request, exc: Exception) -> Response:
    """No SQL, parameters or driver message reaches the client; the log has them.

    A constraint a handler did not expect is a 409; an update of a row deleted meanwhile a 404; a
    value the database refuses a 422; a connection that failed or was lost, or a pool with no
    connection to give, a 503 (try again); anything else a 500."""
    if isinstance(exc, IntegrityError):
        logger.warning("%s %s: integrity error: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": "Conflict with existing data"}, status_code=409)
    if isinstance(exc, StaleDataError):
        # An UPDATE (or DELETE) of a row the handler had read matched nothing: a concurrent request
        # deleted it in between (a PATCH racing a DELETE). Notes are the only rows the handlers
        # change, and the note is gone, as a PATCH a moment later would be told.
        logger.warning("%s %s: row gone before its update: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": "Note not found"}, status_code=404)
    if _invalid_value(exc):
        # A value the database refuses (validation bounds every input: a safety net). One line,
        # without the parameters (a client's data, up to 100 kB a request).
        orig = getattr(exc, "orig", None) or exc
        logger.warning("%s %s: invalid value: %s", request.method, request.url.path, orig)
        return JSONResponse({"detail": "Invalid value"}, status_code=422)
    logger.error("%s %s: database error", request.method, request.url.path, exc_info=exc)
    if isinstance(exc, (PoolTimeout, OperationalError, InterfaceError)) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    ):
        return JSONResponse({"detail": "Database unavailable"}, status_code=503, headers={"Retry-After": "1"})
    return JSONResponse({"detail": "Internal Server Error"}, status_code=500)
