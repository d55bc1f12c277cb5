"""Keys and their rotation: the OIDC token-signing keys and the locker's key-encryption keys,
as `shanakht keys list|rotate` shows and turns them; and, after a KEK rotation, moving every
stored data key to the new KEK (`shanakht locker rewrap`) with its progress on the page.

The re-wrap runs in a background thread of the process that started it, batch by batch, each
batch its own transaction (`locker.rewrap.rewrap_all`), and writes its counts to the database
after each batch (`locker.jobs`); the page, on any replica, reads them and a small script from
/static refreshes them (without the script, a Refresh button does). Stopping it (from any
replica), or losing the process, loses nothing: every key is always under an old or the new
KEK, and starting again skips the keys already moved, so a run is resumed by starting it
again. A run whose process died shows as interrupted, and may be started again at once. One
run at a time across the replicas.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy.orm import Session

from api.administration import kek_states, rotate_kek, rotate_signing_keys
from api.deps import RuntimeDep, SessionDep
from api.i18n import Text
from api.job_runner import beating
from api.refusals import refusal
from api.routes.admin_common import AdminDep, CsrfForm, actor, page
from api.runtime import Runtime
from api.web import SCRIPTED_CSP, check_csrf
from locker import jobs
from locker.errors import LockerError
from locker.rewrap import BATCH_SIZE, rewrap_all

router = APIRouter()
log = logging.getLogger("shanakht.admin")

REWRAP_BATCH = BATCH_SIZE

KIND = "rewrap"
IDLE = "idle"
RUNNING, STOPPING, DONE, STOPPED, FAILED, INTERRUPTED = (
    jobs.RUNNING, jobs.STOPPING, jobs.DONE, jobs.STOPPED, jobs.FAILED, jobs.INTERRUPTED,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class RewrapState:
    status: str = IDLE
    done: int = 0
    total: int = 0
    rewrapped: int = 0
    already_current: int = 0
    changed: int = 0
    kek_version: str = ""
    problem: Text | None = None  # why a failed run stopped (a document version, never a key)
    started_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.status in (RUNNING, STOPPING)


def rewrap_state(runtime: Runtime, session: Session) -> RewrapState:
    """The last re-wrap run as the database has it, whichever replica ran it; a run whose
    process stopped beating is interrupted."""
    job = jobs.latest(session, KIND)
    if job is None:
        return RewrapState()
    said = job.summary
    return RewrapState(
        status=job.status(runtime.clock()), done=job.done, total=job.total,
        rewrapped=int(said.get("rewrapped", 0)),
        already_current=int(said.get("already_current", 0)), changed=int(said.get("changed", 0)),
        kek_version=str(said.get("kek_version", "")), problem=Text.restored(said.get("problem")),
        started_at=job.created_at,
    )  # fmt: skip


class _Stop(Exception):
    """Raised from the progress callback to end a run between batches, when asked to."""


class RewrapJob:
    """The runner of this process's re-wrap run, if it has one; the run's state is in the
    database (`locker.jobs`), where a stop asked on any replica reaches it between batches."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self, runtime: Runtime, who: str) -> bool:
        """Start a run unless one is going on any replica; whether this call started it."""
        with self._lock:
            with runtime.transaction() as session:
                job = jobs.create(
                    session, KIND, starter=who, now=runtime.clock(), one_at_a_time=True
                )
            if job is None:
                return False
            self._thread = threading.Thread(
                target=self._run, args=(runtime, who, job.id), name="admin-rewrap", daemon=True
            )
            self._thread.start()
        return True

    def wait(self, timeout: float | None = None) -> None:
        """For tests and shutdown: until the current run ends."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _progress(self, runtime: Runtime, job_id: str, done: int, total: int) -> None:
        """Record the counts; stop unless the job is still RUNNING: a stop was asked for, or
        the job was marked interrupted (its beats failed for `jobs.STALE`) and another replica
        may have started a run of its own, which this one must not run beside."""
        with runtime.transaction() as session:
            state = jobs.progress(session, job_id, runtime.clock(), done=done, total=total)
        if state != RUNNING:
            if state != STOPPING:
                log.warning("the data-key re-wrap %s is %s: stopping", job_id, state)
            raise _Stop

    def _batch_done(
        self, runtime: Runtime, job_id: str, lost: threading.Event, done: int, total: int
    ) -> None:
        if lost.is_set():  # a heartbeat found the job no longer live
            log.warning("the data-key re-wrap %s is no longer live: stopping", job_id)
            raise _Stop
        self._progress(runtime, job_id, done, total)

    def _run(self, runtime: Runtime, who: str, job_id: str) -> None:
        def end(state: str, **summary: object) -> None:
            with runtime.transaction() as session:
                jobs.finish(session, job_id, runtime.clock(), state, summary=summary)

        try:
            with beating(runtime, job_id) as lost:
                progress = functools.partial(self._batch_done, runtime, job_id, lost)
                report = rewrap_all(
                    runtime.transaction, runtime.keks, runtime.audit_log,
                    actor=who, batch_size=REWRAP_BATCH, progress=progress,
                )  # fmt: skip
        except _Stop:
            end(STOPPED)
        except LockerError as exc:
            log.error("the data-key re-wrap stopped: %s", exc)
            said = refusal(exc)
            end(FAILED, **({"problem": said.words.stored()} if said.known else {}))
        except Exception:
            log.exception("the data-key re-wrap stopped on an unexpected error")
            with contextlib.suppress(Exception):  # if the database failed, it shows interrupted
                end(FAILED)
        else:
            with runtime.transaction() as session:
                jobs.finish(
                    session, job_id, runtime.clock(), DONE, done=report.done,
                    total=max(report.total, report.done),
                    summary={"rewrapped": report.rewrapped,
                             "already_current": report.already_current,
                             "changed": report.changed, "kek_version": report.kek_version},
                )  # fmt: skip


def stop_rewrap(session: Session) -> bool:
    """Ask the running re-wrap, on whichever replica runs it, to stop after its batch."""
    job = jobs.latest(session, KIND)
    return job is not None and jobs.request_stop(session, job.id)


_JOBS: dict[int, tuple[weakref.ref[Runtime], RewrapJob]] = {}
_JOBS_LOCK = threading.Lock()


def rewrap_job(runtime: Runtime) -> RewrapJob:
    """This process's re-wrap runner for this runtime. Keyed by the runtime's id, checked
    against a weak reference, so a later runtime at a reused address starts afresh."""
    with _JOBS_LOCK:
        held = _JOBS.get(id(runtime))
        if held is None or held[0]() is not runtime:
            held = (weakref.ref(runtime), RewrapJob())
            _JOBS[id(runtime)] = held
        return held[1]


def _kek_rows(runtime: Runtime) -> list[dict[str, object]]:
    """Each KEK version for the keys page, an unavailable one's problem in the reader's
    language."""
    return [
        {
            "version_id": k.version_id,
            "state": k.state,
            "problem": refusal(k.problem).words if k.problem is not None else None,
        }
        for k in kek_states(runtime.keks)
    ]


@router.get("/admin/keys", response_model=None)
def keys_page(
    request: Request, runtime: RuntimeDep, session: SessionDep, me: AdminDep, done: str = ""
) -> Response:
    notice = {
        "oidc": Text("New signing keys are in use. The old ones stay published for a day, "
                     "so tokens already issued still verify."),
        "oidc-compromised": Text("New signing keys are in use and the old ones are "
                                 "withdrawn: tokens they signed no longer verify."),
        "locker": Text("A new locker key (KEK) wraps every new document's key. Re-wrap the "
                       "stored data keys so the old KEK can be retired."),
    }.get(done)  # fmt: skip
    return page(
        request, runtime, session, me, "admin_keys.html", notice=notice,
        signing=runtime.provider(session).keys.all(), keks=_kek_rows(runtime),
        rotated_kek=done == "locker", rewrap=rewrap_state(runtime, session),
    )  # fmt: skip


@router.post("/admin/keys/rotate", response_model=None)
def rotate(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: AdminDep,
    which: Annotated[str, Form()] = "",
    csrf: CsrfForm = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    if which in ("oidc", "oidc-compromised"):
        compromised = which == "oidc-compromised"
        rotate_signing_keys(runtime, session, actor=actor(me), compromised=compromised)
    elif which == "locker":
        rotate_kek(runtime, actor=actor(me))
    else:
        return page(
            request, runtime, session, me, "admin_keys.html", status_code=422,
            error=Text("Choose which keys to rotate."),
            signing=runtime.provider(session).keys.all(), keks=_kek_rows(runtime),
            rotated_kek=False, rewrap=rewrap_state(runtime, session),
        )  # fmt: skip
    return RedirectResponse(f"/admin/keys?done={which}", status_code=303)


@router.get("/admin/keys/rewrap", response_model=None)
def rewrap_page(
    request: Request, runtime: RuntimeDep, session: SessionDep, me: AdminDep
) -> Response:
    state = rewrap_state(runtime, session)
    response = page(request, runtime, session, me, "admin_rewrap.html", rewrap=state,
                    current=runtime.keks.current().version_id)  # fmt: skip
    if state.active:
        response.headers["Content-Security-Policy"] = SCRIPTED_CSP
    return response


@router.get("/admin/keys/rewrap/progress", response_model=None)
def rewrap_progress(runtime: RuntimeDep, session: SessionDep, me: AdminDep) -> Response:
    """The run's counts for the progress page's script."""
    state = rewrap_state(runtime, session)
    return JSONResponse(
        {"status": state.status, "done": state.done, "total": state.total},
        headers={"Cache-Control": "no-store"},
    )


@router.post("/admin/keys/rewrap", response_model=None)
def start_rewrap(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: AdminDep,
    action: Annotated[str, Form()] = "start",
    csrf: CsrfForm = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    if action == "stop":
        stop_rewrap(session)
    else:
        rewrap_job(runtime).start(runtime, actor(me))
    return RedirectResponse("/admin/keys/rewrap", status_code=303)
