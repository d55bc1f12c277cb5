"""Liveness and readiness, for the reverse proxy and the orchestrator."""

from __future__ import annotations

import os

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.deps import RuntimeDep
from api.errors import StartupError
from api.problems import problem

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up and serving; says nothing about what it depends on."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
async def readyz(runtime: RuntimeDep) -> dict[str, object] | JSONResponse:
    """Ready to take traffic: the database answers and the data directory is writable."""
    checks: dict[str, str] = {}
    try:
        await run_in_threadpool(runtime.check_database)
        checks["database"] = "ok"
    except StartupError as exc:
        checks["database"] = str(exc)
    data_dir = runtime.settings.data_dir
    storage_ok = data_dir.is_dir() and os.access(data_dir, os.W_OK)
    checks["storage"] = "ok" if storage_ok else f"{data_dir} is not writable"
    if all(value == "ok" for value in checks.values()):
        return {"status": "ready", "checks": checks}
    return problem(503, "Not ready", "A dependency is not reachable.", checks=checks)
