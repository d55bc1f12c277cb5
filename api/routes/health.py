"""Liveness and readiness, for the reverse proxy and the orchestrator.

`/healthz` says the process serves; it touches nothing, so a slow database never gets a live
replica restarted. `/readyz` says this replica can do its work now: the database answers at
the schema this code needs, the object store answers, the keys open under the master key and
the data directory takes writes. Each check runs in a worker thread with a deadline, all at
once, so a dead dependency makes the answer a 503 within `CHECK_TIMEOUT`, not after the S3
client's retries. The body names what failed and why, never a secret.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.deps import RuntimeDep
from api.errors import StartupError
from api.key_check import check_keys_fit_database
from api.migrate import migration_scripts
from api.problems import problem
from api.runtime import AUDIT_CHECKPOINT_KEY, Runtime
from locker.errors import LockerError

router = APIRouter(tags=["health"])

CHECK_TIMEOUT = 3.0
OK = "ok"


class NotReady(Exception):
    """A check's finding, said for an operator: what is wrong and what to look at."""


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up and serving; says nothing about what it depends on."""
    return {"status": "ok"}


def _schema_head() -> str | None:
    return migration_scripts().get_current_head()


def check_database(runtime: Runtime) -> None:
    runtime.check_database()  # StartupError saying why, if it does not answer
    try:
        with runtime.engine.connect() as connection:
            revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError:
        revision = None
    needed = _schema_head()
    if revision != needed:
        raise NotReady(
            f"the schema is at {revision or 'no revision'}, this code needs {needed}: "
            "run `shanakht db upgrade`"
        )


def check_object_store(runtime: Runtime) -> None:
    """One listing call: the store answers, the bucket exists and the credentials work."""
    settings = runtime.settings
    if settings.store == "local":
        root = settings.data_dir / "objects"
        if not (root.is_dir() and os.access(root, os.W_OK | os.X_OK)):
            raise NotReady(f"the object folder {root} is missing or not writable")
    next(iter(runtime.store.keys("documents/")), None)


def check_keys(runtime: Runtime) -> None:
    """The key provider's keys open under this master key, and the current KEK is there.

    Checks a key that must already exist rather than asking for it by name: the local key
    store makes a missing key on request, and a readiness probe must never make a key."""
    settings = runtime.settings
    sealed = settings.data_dir / "keys" / f"{AUDIT_CHECKPOINT_KEY}.json"
    if not sealed.is_file():
        raise NotReady(f"the key {AUDIT_CHECKPOINT_KEY} is missing from {sealed.parent}")
    runtime.keys.secret(AUDIT_CHECKPOINT_KEY)  # StartupError if it does not open
    current = runtime.keks.current()
    runtime.keks.get(current.version_id)  # LockerError (KeyUnavailable) if it is gone
    check_keys_fit_database(runtime)  # KeysDoNotFit (a StartupError) if a key was replaced


def check_data_dir(runtime: Runtime) -> None:
    data_dir = runtime.settings.data_dir
    if not (data_dir.is_dir() and os.access(data_dir, os.W_OK | os.X_OK)):
        raise NotReady(f"{data_dir} is not writable")


CHECKS: dict[str, Callable[[Runtime], None]] = {
    "database": check_database,
    "object_store": check_object_store,
    "keys": check_keys,
    "storage": check_data_dir,
}


async def _run(check: Callable[[Runtime], None], runtime: Runtime) -> str:
    try:
        await asyncio.wait_for(run_in_threadpool(check, runtime), CHECK_TIMEOUT)
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT:g} s"
    except (NotReady, StartupError, LockerError) as exc:
        return str(exc)
    except (SQLAlchemyError, OSError) as exc:
        lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return OK


@router.get("/readyz", response_model=None)
async def readyz(runtime: RuntimeDep) -> dict[str, object] | JSONResponse:
    """Ready to take traffic: database (at the current schema), object store, keys and data
    directory all answer; otherwise 503, naming each that failed."""
    results = await asyncio.gather(*(_run(check, runtime) for check in CHECKS.values()))
    checks = dict(zip(CHECKS, results, strict=True))
    if all(value == OK for value in checks.values()):
        return {"status": "ready", "checks": checks}
    failed = ", ".join(name for name, value in checks.items() if value != OK)
    return problem(503, "Not ready", f"Not ready: {failed}.", checks=checks)
