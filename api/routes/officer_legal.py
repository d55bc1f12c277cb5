"""Legal-basis access from the officer's desk (locker.legal, with a second factor in the
session), under the two-person rule of `locker.legal`: one officer files, a second officer of
the department approves or refuses, and only then the first opens the documents.

    /officer/{department}/legal                                   the form; POST files a request
    /officer/{department}/legal/requests                          awaiting my decision; mine
    /officer/{department}/legal/requests/{request}/approve        POST: a second officer approves
    /officer/{department}/legal/requests/{request}/refuse         POST: ... or refuses, saying why
    /officer/{department}/legal/requests/{request}/open           POST: the filer opens it
    /officer/{department}/legal/{grant}/documents/{document}      POST: one document

The officer acts for the department named in the path, and only there. Filing, deciding,
opening and downloading go through the same functions as the API (`api.routes.exchange`
`legal_file_for`, `legal_decide_for`, `legal_open_for` and `legal_download_for`), so the
checks, the citizen's inbox message and SMS at the first opening (or their delay), the audit
entries naming both officers for the department with the legal reference, and the streamed
content are the API's. The grant (a 15-minute JWS naming this officer and the approver) rides
in each download's form, which is a POST with the CSRF token: a download is a recorded act,
never a link another site could make a browser follow; so are a decision and an opening.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError

from api import denials
from api.administration import names_of
from api.deps import RuntimeDep, SessionDep, settle
from api.i18n import Text
from api.refusals import refusal
from api.routes.exchange import (
    LegalRequest,
    legal_decide_for,
    legal_download_for,
    legal_file_for,
    legal_open_for,
    legal_service,
)
from api.routes.officer_common import (
    CNIC_FORMAT,
    LEGAL,
    NO_ACCOUNT,
    Desk,
    department_names,
    desk_for,
    field_problems,
    page,
    see_other,
)
from api.routes.officer_requests import askable
from api.signed_in import SignedIn, SubstantialDep
from api.web import check_csrf
from audit import holds_cnic
from identity.cnic import normalise_cnic
from identity.errors import InvalidCnic
from locker.documents import UnknownDocument
from locker.exchange import NeedsSecondFactor, RequestClosed, RequestRefused, UnknownCitizen
from locker.legal import (
    DECISION_WINDOW,
    MAX_DELAY_DAYS,
    MAX_REASON,
    MAX_REFERENCE,
    OPENING_WINDOW,
    Grant,
    GrantInvalid,
    LegalAccessRefused,
    LegalAccessRequest,
    UnknownLegalRequest,
)
from locker.release import ReleaseRefused

router = APIRouter(tags=["officer pages"], include_in_schema=False)
FormText = Annotated[str, Form()]

# What each field must be, said beside it when it is not.
PROBLEMS = {
    "cnic": CNIC_FORMAT,
    "doctypes": Text("Choose at least one document type (at most 10)."),
    "legal_reference": Text(
        "Give the legal reference, for example the court order's number: 1 to 100 "
        "characters, without a CNIC in it."
    ),
    "reason": Text("Say what the basis allows and why, in 1 to 500 characters, without a CNIC."),
    "disclosure_delay_days": Text(
        "Give a whole number of days from 0 to %(most)s.", most=MAX_DELAY_DAYS
    ),
}


def _form_page(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedIn,
    desk: Desk,
    status_code: int = 200,
    **context: Any,
) -> Response:
    return page(
        request,
        runtime,
        session,
        me,
        "officer_legal.html",
        status_code=status_code,
        desk=desk,
        types=askable(),
        limits={
            "reference": MAX_REFERENCE,
            "reason": MAX_REASON,
            "delay": MAX_DELAY_DAYS,
            "decide_days": DECISION_WINDOW.days,
            "open_hours": int(OPENING_WINDOW.total_seconds() // 3600),
        },
        **context,
    )


@router.get("/officer/{department}/legal", response_model=None)
def legal_form(
    department: str, request: Request, runtime: RuntimeDep, session: SessionDep, me: SubstantialDep
) -> Response:
    desk = desk_for(runtime, session, me, department, LEGAL)
    form = {"doctypes": [], "disclosure_delay_days": "0"}
    return _form_page(request, runtime, session, me, desk, form=form, errors={})


@router.post("/officer/{department}/legal", response_model=None)
def file_on_legal_basis(
    department: str,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SubstantialDep,
    cnic: FormText = "",
    doctypes: Annotated[list[str] | None, Form()] = None,
    legal_reference: FormText = "",
    reason: FormText = "",
    disclosure_delay_days: FormText = "0",
    csrf: FormText = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    desk = desk_for(runtime, session, me, department, LEGAL)
    form: dict[str, Any] = {
        "cnic": cnic,
        "doctypes": doctypes or [],
        "legal_reference": legal_reference.strip(),
        "reason": reason.strip(),
        "disclosure_delay_days": disclosure_delay_days.strip() or "0",
    }
    errors, body = _checked(form, desk)
    error = Text("Check the fields marked below.")
    if body is not None:
        try:
            filed = legal_file_for(
                runtime,
                session,
                body,
                officer=me.account.pseudonym,
                substantial=me.substantial,
                departments=frozenset({desk.department}),
            )
        except InvalidCnic as exc:
            settle(session, exc)
            errors["cnic"] = CNIC_FORMAT
        except UnknownCitizen as exc:
            settle(session, exc)
            errors["cnic"] = NO_ACCOUNT
        except (ReleaseRefused, RequestRefused, LegalAccessRefused, NeedsSecondFactor) as exc:
            settle(session, exc)
            said = refusal(exc)
            field = said.beside(form)
            if field is None:
                error = said.words
            else:
                errors[field] = said.words
        else:
            return _requests_page(request, runtime, session, me, desk, filed=filed)
    return _form_page(
        request,
        runtime,
        session,
        me,
        desk,
        status_code=400,
        form=form,
        errors=errors,
        error=error,
    )


def _checked(form: dict[str, Any], desk: Desk) -> tuple[dict[str, Text], LegalRequest | None]:
    """The form as the API's request body, or what is wrong with it, field by field."""
    errors: dict[str, Text] = {}
    try:
        normalise_cnic(form["cnic"])
    except InvalidCnic:
        errors["cnic"] = CNIC_FORMAT
    known = {t.code for t in askable()}
    if not form["doctypes"] or any(code not in known for code in form["doctypes"]):
        errors["doctypes"] = Text(
            "Choose at least one of the document types listed (at most 10); no other type "
            "can be opened on a legal basis."
        )
    for name in ("legal_reference", "reason"):
        if holds_cnic(form[name]):
            errors[name] = PROBLEMS[name]
    delay = form["disclosure_delay_days"]
    if not delay.isdigit() or not 0 <= int(delay) <= MAX_DELAY_DAYS:
        errors["disclosure_delay_days"] = PROBLEMS["disclosure_delay_days"]
    try:
        body = LegalRequest(
            cnic=form["cnic"],
            doctypes=form["doctypes"],
            legal_reference=form["legal_reference"],
            reason=form["reason"],
            disclosure_delay_days=int(delay) if delay.isdigit() else -1,
            department=desk.department,
        )
    except ValidationError as exc:
        errors = {**field_problems(exc, PROBLEMS, "cnic"), **errors}
        return errors, None
    return errors, (None if errors else body)


def _grant_page(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedIn,
    desk: Desk,
    grant: Grant,
    found: LegalAccessRequest,
) -> Response:
    names = department_names(runtime, session)
    kinds = {t.code: t.name for t in askable()}
    return page(
        request,
        runtime,
        session,
        me,
        "officer_legal_grant.html",
        status_code=201,
        desk=desk,
        grant=grant,
        reference=found.legal_reference,
        reason=found.reason,
        approver=names_of(runtime, session, [found.decider or ""]).get(found.decider or "", ""),
        types=[kinds.get(code, code) for code in dict.fromkeys(found.doctypes)],
        documents=[
            {
                "document": d,
                "type": kinds.get(d.doctype, d.doctype),
                "issuer": names.get(d.issuer, d.issuer),
            }
            for d in grant.documents
        ],
    )


# -- the requests: awaiting a second officer, and the officer's own ------------------------------


def _requests_page(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedIn,
    desk: Desk,
    *,
    filed: LegalAccessRequest | None = None,
    done: str | None = None,
    status_code: int | None = None,
    errors: dict[str, dict[str, Text]] | None = None,
    error: Text | None = None,
    typed: dict[str, str] | None = None,
) -> Response:
    """The desk's legal-access requests: those awaiting this officer's decision (filed by
    others of the department), and this officer's own with what they may do next."""
    legal = legal_service(runtime, session)
    departments = frozenset({desk.department})
    officer = me.account.pseudonym
    awaiting = legal.awaiting(officer=officer, departments=departments)
    mine = legal.filed_by(officer=officer, departments=departments)
    now = runtime.clock()
    names = names_of(
        runtime,
        session,
        [r.filer for r in awaiting]
        + [r.owner for r in awaiting + mine]
        + [r.decider or "" for r in mine],
    )
    kinds = {t.code: t.name for t in askable()}

    def row(found: LegalAccessRequest) -> dict[str, Any]:
        return {
            "request": found,
            "state": found.state(now),
            "filer": names.get(found.filer, ""),
            "citizen": names.get(found.owner, ""),
            "decider": names.get(found.decider or "", ""),
            "types": [kinds.get(code, code) for code in found.doctypes],
        }

    notice = None
    if filed is not None:
        notice = Text(
            "The request is filed, waiting for a second officer of %(department)s to approve "
            "it. Nothing is opened, and nobody is told, until then.",
            department=desk.name,
        )
    elif done == "approved":
        notice = Text("You approved the request. Its officer may now open the documents.")
    elif done == "refused":
        notice = Text("You refused the request. It can never be opened.")
    return page(
        request,
        runtime,
        session,
        me,
        "officer_legal_requests.html",
        status_code=status_code or (201 if filed is not None else 200),
        desk=desk,
        awaiting=[row(r) for r in awaiting],
        mine=[row(r) for r in mine],
        filed=filed.id if filed is not None else None,
        notice=notice,
        error=error,
        errors=errors or {},
        typed=typed or {},
        limits={"reason": MAX_REASON},
    )


@router.get("/officer/{department}/legal/requests", response_model=None)
def legal_requests(
    department: str,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SubstantialDep,
    done: str | None = None,
) -> Response:
    desk = desk_for(runtime, session, me, department, LEGAL)
    return _requests_page(request, runtime, session, me, desk, done=done)


@router.post("/officer/{department}/legal/requests/{request_id}/approve", response_model=None)
def approve(
    department: str,
    request_id: str,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SubstantialDep,
    csrf: FormText = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    desk = desk_for(runtime, session, me, department, LEGAL)
    return _decide(request, runtime, session, me, desk, request_id, approve=True)


@router.post("/officer/{department}/legal/requests/{request_id}/refuse", response_model=None)
def refuse(
    department: str,
    request_id: str,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SubstantialDep,
    refusal_reason: FormText = "",
    csrf: FormText = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    desk = desk_for(runtime, session, me, department, LEGAL)
    return _decide(
        request, runtime, session, me, desk, request_id, approve=False, reason=refusal_reason
    )


def _decide(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedIn,
    desk: Desk,
    request_id: str,
    *,
    approve: bool,
    reason: str = "",
) -> Response:
    """A second officer's decision; a refusal is said on the requests page, beside the
    refusal's reason when it is about that, in the reader's language."""
    try:
        legal_decide_for(
            runtime,
            session,
            request_id,
            approve=approve,
            reason=reason.strip(),
            officer=me.account.pseudonym,
            substantial=me.substantial,
            departments=frozenset({desk.department}),
        )
    except (
        UnknownLegalRequest,
        LegalAccessRefused,
        RequestClosed,
        RequestRefused,
        ReleaseRefused,
        NeedsSecondFactor,
    ) as exc:
        settle(session, exc)
        denials.refused_on_page(request, runtime, me.account.pseudonym, exc, deciding=True)
        said = refusal(exc)
        field = said.beside({"refusal_reason"})
        status = 404 if isinstance(exc, UnknownLegalRequest) else 400
        if isinstance(exc, LegalAccessRefused):
            status = 403
        elif isinstance(exc, RequestClosed):
            status = 409
        return _requests_page(
            request,
            runtime,
            session,
            me,
            desk,
            status_code=status,
            error=said.words if field is None else Text("Check the field marked below."),
            errors={request_id: {field: said.words}} if field is not None else {},
            typed={request_id: reason},
        )
    done = "approved" if approve else "refused"
    return see_other(f"/officer/{desk.department}/legal/requests?done={done}")


@router.post("/officer/{department}/legal/requests/{request_id}/open", response_model=None)
def open_request(
    department: str,
    request_id: str,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SubstantialDep,
    csrf: FormText = "",
) -> Response:
    """The filer opens their approved request: the access is recorded, the citizen told at
    the first opening, and the documents offered under a 15-minute grant."""
    check_csrf(request, runtime, csrf)
    desk = desk_for(runtime, session, me, department, LEGAL)
    departments = frozenset({desk.department})
    try:
        grant = legal_open_for(
            runtime,
            session,
            request_id,
            officer=me.account.pseudonym,
            substantial=me.substantial,
            departments=departments,
        )
    except (
        UnknownLegalRequest,
        LegalAccessRefused,
        RequestClosed,
        ReleaseRefused,
        UnknownCitizen,
        NeedsSecondFactor,
    ) as exc:
        settle(session, exc)
        denials.refused_on_page(request, runtime, me.account.pseudonym, exc)
        status = 404 if isinstance(exc, UnknownLegalRequest | UnknownCitizen) else 409
        if isinstance(exc, LegalAccessRefused):
            status = 403
        return _requests_page(
            request, runtime, session, me, desk, status_code=status, error=refusal(exc).words
        )
    found = legal_service(runtime, session).get(request_id, departments=departments)
    return _grant_page(request, runtime, session, me, desk, grant, found)


@router.post("/officer/{department}/legal/{grant_id}/documents/{document_id}", response_model=None)
def download(
    department: str,
    grant_id: str,
    document_id: str,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SubstantialDep,
    grant: FormText = "",
    csrf: FormText = "",
) -> Response:
    """One document under the grant, streamed as the API streams it. The fetch's audit entry
    commits with this request's transaction, before the first byte is sent."""
    check_csrf(request, runtime, csrf)
    desk = desk_for(runtime, session, me, department, LEGAL)
    try:
        return legal_download_for(
            runtime,
            session,
            grant_id,
            grant,
            document_id,
            officer=me.account.pseudonym,
            substantial=me.substantial,
            departments=frozenset({desk.department}),
        )
    except (GrantInvalid, UnknownDocument, NeedsSecondFactor) as exc:
        settle(session, exc)
        denials.refused_on_page(request, runtime, me.account.pseudonym, exc)
        expired = isinstance(exc, GrantInvalid)
        return page(
            request,
            runtime,
            session,
            me,
            "message.html",
            status_code=403 if expired else 404,
            heading=Text("The document cannot be opened"),
            message=Text(
                "The grant has ended (it lasts 15 minutes) or is not yours. Open the approved "
                "request again while its approval lasts (24 hours); that opening is recorded too."
            )
            if expired
            else Text("The grant does not reach a document with that number."),
            link=f"/officer/{desk.department}/legal/requests",
            link_text=Text("Legal-basis requests"),
        )
