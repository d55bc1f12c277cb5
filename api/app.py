"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from api import denials, lanes, problems
from api.backchannel import deliver, end_sessions
from api.database import CHECKPOINT_INTERVAL, WalCheckpointer
from api.denials import Principal
from api.i18n import Text
from api.metrics import Telemetry
from api.metrics import router as metrics_router
from api.pool_gate import PoolGate, admitted
from api.retention import sweep_retained
from api.routes import (
    access_log,
    access_pages,
    account,
    admin_pages,
    audit,
    consent_pages,
    enrol,
    exchange,
    health,
    home,
    locker,
    locker_pages,
    officer_pages,
    oidc,
    pki,
    signin,
    signing,
    verifier_pages,
)
from api.runtime import Runtime, open_runtime
from api.settings import Settings
from api.signed_in import RoleMissing
from api.web import CsrfRejected, NotSignedIn, record_csrf_refusal, render
from audit.batched import sweep_all
from identity import housekeeping as identity_housekeeping
from locker import housekeeping as locker_housekeeping

log = logging.getLogger("shanakht.api")


SWEEP_INTERVAL = 60.0
PKI_INTERVAL = 600.0
LOCKER_SWEEP_INTERVAL = 3600.0


def _checkpoint_once(runtime: Runtime) -> None:
    """Sign a checkpoint whenever the log has grown, so there is always a recent one to hold."""
    with runtime.transaction() as session:
        runtime.audit_log(session).checkpoint_if_grown()


def _sweep_sessions(runtime: Runtime) -> None:
    """End sessions whose time ran out, so their e-services hear of it by back channel too,
    and forget what is past its retention: expired codes, requests and tokens, ended sessions
    (docs/retention.md), a batch per transaction."""
    with runtime.transaction() as session:
        provider = runtime.provider(session)
        notices = end_sessions(runtime, provider, provider.sessions.end_expired(), "expired")
    deliver(runtime, notices)
    sweep_all(runtime.transaction, identity_housekeeping.SWEEPS, runtime.clock())


def _refresh_pki(runtime: Runtime) -> None:
    """Republish the CRL at half its life and renew the OCSP responder's certificate in time;
    nothing before `shanakht pki init`."""
    with runtime.transaction() as session:
        authority = runtime.authority(session)
        if authority.initialised():
            authority.refresh(actor="system:schedule")


def _sweep_locker(runtime: Runtime) -> None:
    """Remove the ciphertext of deleted documents, and objects whose records never committed.
    Replicas may sweep at once: removing an object twice is no error, and a young object is
    never taken for an orphan. Then forget finished jobs and unanswered requests past their
    retention (docs/retention.md)."""
    with runtime.transaction() as session:
        locker = runtime.locker(session)
        locker.sweep()
        locker.sweep_orphans()
    sweep_all(runtime.transaction, locker_housekeeping.SWEEPS, runtime.clock())


async def _every(interval: float, job: Callable[[Runtime], object], runtime: Runtime) -> None:
    """Run `job` every `interval` seconds. A failure (the database restarting, say) is logged
    and retried at the next tick; it must not take the API down with it."""
    while True:
        await asyncio.sleep(interval)
        try:
            await run_in_threadpool(job, runtime)
        except Exception:
            log.exception("background job %s failed", job.__name__)


def create_app(runtime: Runtime | None = None) -> FastAPI:
    """Build the app on `runtime`, or on one opened from the environment's settings."""
    runtime = runtime or open_runtime(Settings())
    lanes.hand_over_quickly()
    gate = PoolGate()

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        interval = runtime.settings.audit_checkpoint_interval
        wal = WalCheckpointer.started(runtime.engine, CHECKPOINT_INTERVAL)
        tasks = [
            asyncio.create_task(_every(SWEEP_INTERVAL, _sweep_sessions, runtime)),
            asyncio.create_task(_every(PKI_INTERVAL, _refresh_pki, runtime)),
            asyncio.create_task(_every(LOCKER_SWEEP_INTERVAL, _sweep_locker, runtime)),
            asyncio.create_task(_every(LOCKER_SWEEP_INTERVAL, sweep_retained, runtime)),
            asyncio.create_task(gate.run()),
        ]
        if interval:
            tasks.append(asyncio.create_task(_every(interval, _checkpoint_once, runtime)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if wal is not None:
                wal.stop()

    app = FastAPI(
        title="Shanakht",
        version="0.1.0",
        summary="Digital identity, document locker and signatures, on one audit log.",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.pool_gate = gate
    app.add_middleware(problems.LastResort)  # innermost: its answers get the headers below
    # Outermost: times and logs every answer, errors too, and gives each the security headers.
    app.add_middleware(Telemetry)
    problems.install(app)
    denials.install(app)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    # The APIs before the pages, the busiest first (tokens, then the locker): a request is
    # matched against the routes in order, twice (about 2 us a route each time), and a
    # department's issue sat behind 150 page routes. No two routers answer the same request
    # (tests/http/test_route_order.py), so the order changes nothing but that cost.
    # Health, metrics and the OIDC routes are not behind the pool's gate (api.pool_gate): a
    # probe must answer however busy the pool, and the OAuth endpoints shed in their own lane.
    app.include_router(health.router)
    app.include_router(metrics_router)
    app.include_router(oidc.router)
    gated = [Depends(admitted)]
    for router in (
        access_log.router,
        locker.router,
        exchange.router,
        audit.router,
        pki.router,
        signing.router,
        signin.router,
        home.router,
        account.router,
        consent_pages.router,
        access_pages.router,
        officer_pages.router,
        admin_pages.router,
        enrol.router,
        verifier_pages.router,
        locker_pages.router,
    ):
        app.include_router(router, dependencies=gated)

    @app.exception_handler(CsrfRejected)
    async def _csrf(request: Request, exc: CsrfRejected) -> Response:
        await run_in_threadpool(record_csrf_refusal, request, runtime)
        return render(
            request,
            runtime,
            "message.html",
            status_code=403,
            heading=Text("Please try again"),
            message=Text("The form has expired. Reload the page and try again."),
        )

    @app.exception_handler(NotSignedIn)
    async def _sign_in_first(_request: Request, exc: NotSignedIn) -> Response:
        where = "/login/second-factor" if exc.step_up else "/login"
        return RedirectResponse(f"{where}?{urlencode({'next': exc.next_page})}", status_code=303)

    @app.exception_handler(RoleMissing)
    async def _not_yours(request: Request, exc: RoleMissing) -> Response:
        who = Principal.citizen(exc.pseudonym)
        await run_in_threadpool(denials.record, request, runtime, who, f"role:{exc.role}")
        return render(
            request,
            runtime,
            "message.html",
            status_code=403,
            heading=Text("This page is not for your account"),
            message=Text(
                "It needs the %(role)s role in a department. Ask your department's "
                "administrator if you should have it.",
                role=exc.role,
            ),
            link="/",
            link_text=Text("Home"),
        )

    return app
