"""Liveness and readiness probes."""

import anyio

from apps.common.db import DatabaseUnavailable
from toolkit import Request, Response, Router
from toolkit.sessions import StoreError

from ..deps import DatabaseDep
from ..models import Health, Readiness

router = Router(tags=["health"])

CHECK_TIMEOUT = 2.0


@router.get("/health")
async def health() -> Health:
    """The process is up (no dependency is checked)."""
    return Health(status="ok")


@router.get("/ready", responses={503: {"description": "A dependency is down", "model": Readiness}})
async def ready(request: Request, db: DatabaseDep, response: Response) -> Readiness:
    """The database answers and the session store answers."""
    checks = {"database": "ok", "sessions": "ok"}
    try:
        with anyio.fail_after(CHECK_TIMEOUT):
            await db.ping()
    except (DatabaseUnavailable, TimeoutError):
        checks["database"] = "error"
    ping = getattr(request.app.state.session_store, "ping", None)  # MemoryStore: nothing to check
    if ping is not None:
        try:
            with anyio.fail_after(CHECK_TIMEOUT):
                await ping()
        except (StoreError, TimeoutError):
            checks["sessions"] = "error"
    if "error" in checks.values():
        response.status_code = 503
        return Readiness(status="unavailable", checks=checks)
    return Readiness(status="ready", checks=checks)
