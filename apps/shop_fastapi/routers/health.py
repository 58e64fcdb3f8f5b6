"""Liveness and readiness."""

from __future__ import annotations

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from apps.common.db import DatabaseUnavailable

from ..dependencies import DatabaseDep
from ..schemas import Health, Readiness

router = APIRouter(tags=["health"])

CHECK_TIMEOUT = 2.0


@router.get("/health")
async def health() -> Health:
    return Health(status="ok")


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
async def ready(db: DatabaseDep):
    # Sessions live in the signed cookie (Starlette's SessionMiddleware): nothing to check.
    checks = {"database": "ok", "sessions": "ok"}
    try:
        with anyio.fail_after(CHECK_TIMEOUT):
            await db.ping()
    except (DatabaseUnavailable, TimeoutError):
        checks["database"] = "error"
    if "error" in checks.values():
        return JSONResponse({"status": "unavailable", "checks": checks}, status_code=503)
    return Readiness(status="ready", checks=checks)
