"""What every administration page shares: who may read it, who may change things, the
section menu, and how an administrator's act is recorded.

Administration is `identity.admin` (in any department: the role is the service's, not a
department's) and, for reading and checking the audit log only, `audit.reader`. Reading an
administration page asks for the role first, so a citizen without it is told so plainly
instead of being asked for a code first; anything that changes state, and every page of an
administrator's, also needs a second factor in this session (substantial assurance).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from api.deps import RuntimeDep, SessionDep
from api.i18n import Text
from api.runtime import Runtime
from api.signed_in import RoleMissing, SignedIn, SignedInDep, menu
from api.web import NotSignedIn, render
from audit import AuditEvent

ADMIN = "identity.admin"
READER = "audit.reader"

CsrfForm = Annotated[str, Form()]
FormText = Annotated[str, Form()]

# The section menu of the administration pages: (path, label, who may open it).
SECTIONS = (
    ("/admin/departments", "Departments", ADMIN),
    ("/admin/officers", "Officers and roles", ADMIN),
    ("/admin/proposals", "Grants to approve", ADMIN),
    ("/admin/clients", "E-service clients", ADMIN),
    ("/admin/keys", "Keys", ADMIN),
    ("/admin/audit", "Audit checkpoints", READER),
)
SECTION_TEXT = {
    "Departments": Text("Departments"),
    "Officers and roles": Text("Officers and roles"),
    "Grants to approve": Text("Grants to approve"),
    "E-service clients": Text("E-service clients"),
    "Keys": Text("Keys"),
    "Audit checkpoints": Text("Audit checkpoints"),
}

# What each role lets its holder do, in words an administrator checks a grant against.
ROLE_TEXT = {
    "locker.issuer": Text("Issues documents into citizens' lockers"),
    "locker.legal": Text("Fetches documents under a recorded legal basis"),
    "signing.officer": Text("Signs official documents and orders"),
    "audit.reader": Text("Reads and checks the audit log"),
    "identity.admin": Text("Administers Shanakht: departments, roles, clients, keys"),
}


def held_roles(runtime: Runtime, session: Session, me: SignedIn) -> set[str]:
    return {g.role for g in runtime.provider(session).roles.of(me.account.id)}


def _section_of(request: Request) -> str:
    """Where to come back to after a second factor: the section's page, since a form's POST
    cannot be replayed by a redirect."""
    if request.method == "GET":
        return request.url.path + (f"?{request.url.query}" if request.url.query else "")
    parts = request.url.path.split("/")
    return "/".join(parts[:3]) if len(parts) > 2 else "/admin"


def administrator(
    request: Request, runtime: RuntimeDep, session: SessionDep, me: SignedInDep
) -> SignedIn:
    """An `identity.admin` with a second factor in this session; the role is asked for first."""
    if ADMIN not in held_roles(runtime, session, me):
        raise RoleMissing(ADMIN, pseudonym=me.account.pseudonym)
    if not me.substantial:
        raise NotSignedIn("a second factor first", next_page=_section_of(request), step_up=True)
    return me


def audit_reader(
    request: Request, runtime: RuntimeDep, session: SessionDep, me: SignedInDep
) -> SignedIn:
    """An `audit.reader` or an `identity.admin`: may read checkpoints and verify the log."""
    if not held_roles(runtime, session, me) & {ADMIN, READER}:
        raise RoleMissing(READER, pseudonym=me.account.pseudonym)
    return me


AdminDep = Annotated[SignedIn, Depends(administrator)]
ReaderDep = Annotated[SignedIn, Depends(audit_reader)]


def actor(me: SignedIn) -> str:
    """How an administrator is named in the audit log: by pseudonym, never by CNIC."""
    return f"citizen:{me.account.pseudonym}"


def record(runtime: Runtime, session: Session, me: SignedIn, action: str, **fields: Any) -> None:
    """One audit entry for an administrator's act (no secrets in `fields`)."""
    runtime.audit_log(session).append(AuditEvent(actor=actor(me), action=action, **fields))


def page(
    request: Request,
    runtime: Runtime,
    session: Session,
    me: SignedIn,
    template: str,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """An administration page, with the portal's menu and the sections this reader may open."""
    held = held_roles(runtime, session, me)
    sections = [
        (path, SECTION_TEXT[label])
        for path, label, role in SECTIONS
        if ADMIN in held or role in held
    ]
    return render(
        request,
        runtime,
        template,
        status_code=status_code,
        menu=menu(runtime, session, me),
        sections=sections,
        is_admin=ADMIN in held,
        **context,
    )
