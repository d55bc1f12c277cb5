"""Grants of the powerful roles waiting for a second administrator (`identity.role_proposals`).

    /admin/proposals                      the proposals this administrator may decide
    /admin/proposals/{proposal}/approve   POST: the role is granted now
    /admin/proposals/{proposal}/refuse    POST: ... or not, saying why

An administrator proposes on the officer's page (`admin_pages.grant_role`); the others see the
proposal here, and on the administration desk a count of those waiting. Deciding needs what
every administrator's act needs (the role and a second factor in this session, `AdminDep`), and
the domain checks again that the decider is neither the proposer nor the grantee. The approve
form carries the officer, department and role the page showed, and the domain grants only if
the proposal still says them. A refusal is said in the reader's language, beside the reason
when it is about that.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from api import denials
from api.administration import names_of
from api.deps import RuntimeDep, SessionDep, settle
from api.i18n import Text
from api.refusals import refusal
from api.routes.admin_common import ROLE_TEXT, AdminDep, CsrfForm, FormText, page
from api.signed_in import SignedIn
from api.web import check_csrf
from audit.two_person import MAX_REASON
from identity.role_proposals import ProposalRefused, RoleProposal
from identity.roles import RoleError

router = APIRouter(tags=["administration pages"], include_in_schema=False)

DONE = {
    "approved": Text("You approved the grant. The officer holds the role now."),
    "refused": Text("You refused the grant. The officer was not given the role."),
}


def _proposals_page(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedIn,
    *,
    status_code: int = 200,
    notice: Text | None = None,
    error: Text | None = None,
    errors: dict[str, dict[str, Text]] | None = None,
    typed: dict[str, str] | None = None,
) -> Response:
    """The proposals awaiting this administrator's decision, with whom and what each names."""
    awaiting = runtime.provider(session).role_proposals.awaiting(admin=me.account.pseudonym)
    names = names_of(
        runtime, session, [p.grantee for p in awaiting] + [p.proposer for p in awaiting]
    )

    def row(found: RoleProposal) -> dict[str, Any]:
        return {
            "proposal": found,
            "grantee": names.get(found.grantee, ""),
            "proposer": names.get(found.proposer, ""),
        }

    return page(
        request, runtime, session, me, "admin_proposals.html", status_code=status_code,
        awaiting=[row(p) for p in awaiting], role_text=ROLE_TEXT, notice=notice, error=error,
        errors=errors or {}, typed=typed or {}, limits={"reason": MAX_REASON},
    )  # fmt: skip


@router.get("/admin/proposals", response_model=None)
def proposals_page(
    request: Request, runtime: RuntimeDep, session: SessionDep, me: AdminDep, done: str = ""
) -> Response:
    return _proposals_page(request, runtime, session, me, notice=DONE.get(done))


@router.post("/admin/proposals/{proposal_id}/approve", response_model=None)
def approve(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: AdminDep,
    proposal_id: str,
    grantee: FormText = "",
    department: FormText = "",
    role: FormText = "",
    csrf: CsrfForm = "",
) -> Response:
    """An approval of what the page showed: a form that names anything else (or nothing) is
    refused by the domain, and nothing is granted."""
    check_csrf(request, runtime, csrf)
    shown = (grantee, department, role)
    return _decide(request, runtime, session, me, proposal_id, shown=shown)


@router.post("/admin/proposals/{proposal_id}/refuse", response_model=None)
def refuse(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: AdminDep,
    proposal_id: str,
    refusal_reason: FormText = "",
    csrf: CsrfForm = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    return _decide(request, runtime, session, me, proposal_id, reason=refusal_reason)


def _decide(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedIn,
    proposal_id: str,
    *,
    shown: tuple[str, str, str] | None = None,
    reason: str = "",
) -> Response:
    """A second administrator's decision: an approval of what was `shown`, or (without it) a
    refusal for `reason`. `shown` is the officer's pseudonym, the department and the role
    the approver's page named. A refusal of the decision is said on the proposals page."""
    proposals = runtime.provider(session).role_proposals
    admin, substantial = me.account.pseudonym, me.substantial
    approve = shown is not None
    try:
        if shown is not None:
            grantee, department, role = shown
            proposals.approve(
                proposal_id, admin=admin, substantial=substantial,
                grantee=grantee, department=department, role=role,
            )  # fmt: skip
        else:
            proposals.refuse(
                proposal_id, admin=admin, substantial=substantial, reason=reason.strip()
            )
    except RoleError as exc:
        settle(session, exc)
        denials.refused_on_page(request, runtime, admin, exc)
        said = refusal(exc)
        field = said.beside({"refusal_reason"})
        status = 409
        if isinstance(exc, ProposalRefused) and exc.code == "role.proposal_unknown":
            status = 404
        elif field is not None:
            status = 422
        elif exc.code in {"role.own_proposal", "role.proposed_for_you", "role.not_admin"}:
            status = 403
        return _proposals_page(
            request, runtime, session, me, status_code=status,
            error=said.words if field is None else Text("Check the field marked below."),
            errors={proposal_id: {field: said.words}} if field is not None else {},
            typed={proposal_id: reason},
        )  # fmt: skip
    done = "approved" if approve else "refused"
    return RedirectResponse(f"/admin/proposals?done={done}", status_code=303)
