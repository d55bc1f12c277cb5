"""Opening a citizen's documents on a legal basis from the officer's desk (locker.legal, with a
second factor in the session): the form, the grant it gives and the documents under it.

    /officer/{department}/legal                                   the form; POST opens
    /officer/{department}/legal/{grant}/documents/{document}      POST: one document

The officer acts for the department named in the path, and only there. Opening and
downloading go through the same functions as the department systems' API
(`api.routes.exchange.legal_open_for` and `legal_download_for`), so the checks, the citizen's
inbox message and SMS (or their delay), the audit entries naming this officer for the
department with the legal reference, and the streamed content are the API's. The grant (a
15-minute JWS naming this officer) rides in each download's form, which is a POST with the
CSRF token: a download is a recorded act, never a link another site could make a browser
follow.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError

from api.deps import RuntimeDep, SessionDep, settle
from api.i18n import Text
from api.routes.exchange import LegalRequest, legal_download_for, legal_open_for
from api.routes.officer_common import (
    CNIC_FORMAT,
    LEGAL,
    NO_ACCOUNT,
    Desk,
    department_names,
    desk_for,
    field_problems,
    page,
)
from api.routes.officer_requests import askable
from api.signed_in import SignedIn, SubstantialDep
from api.web import check_csrf
from audit import holds_cnic
from identity.cnic import normalise_cnic
from identity.errors import InvalidCnic
from locker.documents import UnknownDocument
from locker.exchange import NeedsSecondFactor, RequestRefused, UnknownCitizen
from locker.legal import (
    MAX_DELAY_DAYS,
    MAX_REASON,
    MAX_REFERENCE,
    Grant,
    GrantInvalid,
    LegalAccessRefused,
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
    "disclosure_delay_days": Text("Give a whole number of days from 0 to 365."),
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
        limits={"reference": MAX_REFERENCE, "reason": MAX_REASON, "delay": MAX_DELAY_DAYS},
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
def open_on_legal_basis(
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
    if body is not None:
        try:
            grant = legal_open_for(
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
        except ReleaseRefused as exc:
            settle(session, exc)
            errors["doctypes"] = Text(
                "These documents cannot be opened this way: %(why)s", why=str(exc)
            )
        except (RequestRefused, LegalAccessRefused, NeedsSecondFactor) as exc:
            settle(session, exc)
            errors[_field_of(str(exc))] = Text("Refused: %(why)s", why=str(exc))
        else:
            return _grant_page(request, runtime, session, me, desk, grant, body)
    return _form_page(
        request,
        runtime,
        session,
        me,
        desk,
        status_code=400,
        form=form,
        errors=errors,
        error=Text("Check the fields marked below."),
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


def _field_of(message: str) -> str:
    for words, field in (
        ("legal reference", "legal_reference"),
        ("reason", "reason"),
        ("disclosure delay", "disclosure_delay_days"),
        ("document type", "doctypes"),
    ):
        if words in message:
            return field
    return "legal_reference"


def _grant_page(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedIn,
    desk: Desk,
    grant: Grant,
    body: LegalRequest,
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
        reference=body.legal_reference,
        reason=body.reason,
        types=[kinds.get(code, code) for code in dict.fromkeys(body.doctypes)],
        documents=[
            {
                "document": d,
                "type": kinds.get(d.doctype, d.doctype),
                "issuer": names.get(d.issuer, d.issuer),
            }
            for d in grant.documents
        ],
    )


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
                "The grant has ended (it lasts 15 minutes) or is not yours. Open the documents "
                "again with the legal reference; that access is recorded too."
            )
            if expired
            else Text("The grant does not reach a document with that number."),
            link=f"/officer/{desk.department}/legal",
            link_text=Text("Open documents on a legal basis"),
        )
