"""Audit checkpoints: the log's size, its latest signed checkpoints, a check of the whole log
(`shanakht audit verify`) and, for an administrator, signing a checkpoint now
(`shanakht audit checkpoint`).

An `audit.reader` may read and verify but not sign; reading and verifying change nothing, so
they need no second factor; signing does. The checkpoints themselves are public
(/audit/checkpoint): this page shows them with the administrator's tools around them.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.administration import verify_audit
from api.deps import RuntimeDep, SessionDep
from api.i18n import Text
from api.refusals import refusal
from api.routes.admin_common import AdminDep, CsrfForm, ReaderDep, page, record
from api.runtime import Runtime
from api.signed_in import SignedIn
from api.web import check_csrf
from audit import TamperError
from audit.models import checkpoints

router = APIRouter()
SHOWN = 10  # checkpoints listed, newest first


def _recent(session: Session) -> list[dict[str, object]]:
    """The newest signed checkpoints, as stored (the audit package publishes only the latest;
    this read-only listing is for the administrator's eyes)."""
    rows = session.execute(
        select(checkpoints.c.id, checkpoints.c.size, checkpoints.c.root, checkpoints.c.issued_at)
        .order_by(checkpoints.c.id.desc())
        .limit(SHOWN)
    )
    return [
        {"size": r.size, "root": base64.b64encode(r.root).decode(), "issued_at": r.issued_at}
        for r in rows
    ]


def _audit_page(
    request: Request,
    runtime: Runtime,
    session: Session,
    me: SignedIn,
    **context: Any,
) -> Response:
    log = runtime.audit_log(session)
    latest = log.latest_checkpoint()
    return page(
        request, runtime, session, me, "admin_audit.html",
        size=log.size(), count=log.checkpoint_count(), recent=_recent(session),
        latest_note=latest.note if latest else "",
        key=runtime.checkpoint_key_of(latest.note) if latest else runtime.audit_signer.verifier_key,
        **context,
    )  # fmt: skip


@router.get("/admin/audit", response_model=None)
def audit_page(
    request: Request, runtime: RuntimeDep, session: SessionDep, me: ReaderDep, signed: str = ""
) -> Response:
    notice = Text("Checkpoint signed.") if signed else None
    return _audit_page(request, runtime, session, me, notice=notice, verdict=None)


@router.post("/admin/audit/verify", response_model=None)
def verify(
    request: Request, runtime: RuntimeDep, session: SessionDep, me: ReaderDep, csrf: CsrfForm = ""
) -> Response:
    """Re-check every entry, the chain, the tree and every checkpoint; show the verdict."""
    check_csrf(request, runtime, csrf)
    started = time.monotonic()
    try:
        report = verify_audit(runtime)
    except TamperError as exc:
        verdict: dict[str, object] = {
            "ok": False,
            "seq": exc.seq,
            "reason": refusal(exc).words,
        }
    else:
        verdict = {
            "ok": True,
            "size": report.size,
            "checkpoints": report.checkpoints,
            "root": base64.b64encode(report.root).decode(),
        }
    verdict["seconds"] = f"{time.monotonic() - started:.2f}"
    return _audit_page(request, runtime, session, me, verdict=verdict)


@router.post("/admin/audit/checkpoint", response_model=None)
def sign_checkpoint(
    request: Request, runtime: RuntimeDep, session: SessionDep, me: AdminDep, csrf: CsrfForm = ""
) -> Response:
    """Record who asked, then sign a checkpoint that covers that very entry."""
    check_csrf(request, runtime, csrf)
    record(runtime, session, me, "audit.checkpoint.requested")
    runtime.audit_log(session).checkpoint()
    return RedirectResponse("/admin/audit?signed=1", status_code=303)
