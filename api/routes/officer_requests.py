"""Once-only requests filed by an officer in the department's name: the form, the
department's requests and their state, and, under an active consent, the documents.

A request an officer files is the department's (requester "department:<id>"), so every officer
of the department who may ask sees it and fetches under its consent, and the citizen is shown
the department's name. Filing goes through the same function as a department system's
request (`api.routes.exchange.file_for`), so the checks, the SMS, the inbox message and the
audit entry are the same. A fetch spends one use of the consent: it is a POST (a form with
the CSRF token), never a link another site could make a browser follow.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError

from api.deps import RuntimeDep, SessionDep, settle
from api.i18n import Text
from api.refusals import refusal
from api.routes.exchange import DELETE_BY_HEADER, NewRequest, exchange_service, file_for
from api.routes.locker_views import document_response
from api.routes.officer_common import (
    CNIC_FORMAT,
    NO_ACCOUNT,
    REQUESTERS,
    Desk,
    day,
    desk_for,
    end_of,
    field_problems,
    page,
    see_other,
    start_of,
)
from api.signed_in import SignedIn, SignedInDep
from api.web import check_csrf
from audit import holds_cnic
from identity.cnic import normalise_cnic
from identity.errors import InvalidCnic
from locker.consents import iso
from locker.doctypes import DOCUMENT_TYPES, SELF, Classification, DocumentType
from locker.documents import Document, UnknownDocument
from locker.exchange import (
    ACTIVE,
    APPROVED,
    MAX_WINDOW,
    Consent,
    ConsentRefused,
    RequestRefused,
    UnknownCitizen,
    UnknownConsent,
    UnknownRequest,
)
from locker.exchange import Request as ExchangeRequest
from locker.release import ReleaseRefused

router = APIRouter(tags=["officer pages"], include_in_schema=False)
FormText = Annotated[str, Form()]

# What each field must be, said beside it when it is not.
PROBLEMS = {
    "cnic": CNIC_FORMAT,
    "doctypes": Text("Choose at least one document type (at most 10)."),
    "purpose_code": Text("Give a code of 1 to 32 letters, digits, '.', '_' and '-'."),
    "purpose_text": Text("Say why, in 1 to 500 characters, without a CNIC in it."),
    "data_life_days": Text("Give a whole number of days from 0 to 3650."),
    "valid_from": Text("Give a date, or leave it empty to start today."),
    "valid_until": Text("Give a date after the start, at most a year away."),
    "fetch_limit": Text("Give a whole number from 1 to 100."),
}
BADGES = {"active": "ok", "approved": "ok", "pending": "warn", "paused": "warn"}


def askable() -> list[DocumentType]:
    """The types a department may ask a citizen for: issued ones, never Secret."""
    return [
        t
        for t in DOCUMENT_TYPES.values()
        if t.department != SELF and t.classification != Classification.SECRET
    ]


def _state(found: ExchangeRequest, consent: Consent | None, now: datetime) -> str:
    """One word for where a request stands: its own state, or its consent's once approved."""
    if found.state(now) == APPROVED and consent is not None:
        return consent.state(now)
    return found.state(now)


def _row(runtime: RuntimeDep, session: SessionDep, found: ExchangeRequest) -> dict[str, Any]:
    now = runtime.clock()
    consent = (
        exchange_service(runtime, session).consent_for(found.consent_id, requester=found.requester)
        if found.consent_id
        else None
    )
    account = runtime.provider(session).accounts.by_pseudonym(found.owner)
    state = _state(found, consent, now)
    return {
        "request": found,
        "consent": consent,
        "state": state,
        "badge": BADGES.get(state, "bad"),
        "citizen": account.profile.full_name if account is not None else "",
        "types": [DOCUMENT_TYPES[c].name if c in DOCUMENT_TYPES else c for c in found.doctypes],
    }


@router.get("/officer/{department}/requests", response_model=None)
def requests_page(
    department: str,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedInDep,
    filed: str = "",
) -> Response:
    desk = desk_for(runtime, session, me, department, *REQUESTERS)
    rows = [
        _row(runtime, session, r)
        for r in exchange_service(runtime, session).requests_by(desk.requester)
    ]
    notice = Text("The request was sent. The citizen was told by SMS and in their locker.")
    return page(
        request,
        runtime,
        session,
        me,
        "officer_requests.html",
        desk=desk,
        rows=rows,
        notice=notice if filed and any(r["request"].id == filed for r in rows) else None,
    )


def _new_page(
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
        "officer_request_new.html",
        status_code=status_code,
        desk=desk,
        types=askable(),
        **context,
    )


@router.get("/officer/{department}/requests/new", response_model=None)
def new_request_form(
    department: str, request: Request, runtime: RuntimeDep, session: SessionDep, me: SignedInDep
) -> Response:
    desk = desk_for(runtime, session, me, department, *REQUESTERS)
    today = runtime.clock().date().isoformat()
    form = {"data_life_days": "30", "fetch_limit": "1", "valid_from": today, "doctypes": []}
    return _new_page(request, runtime, session, me, desk, form=form, errors={})


@router.post("/officer/{department}/requests/new", response_model=None)
def new_request(
    department: str,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedInDep,
    cnic: FormText = "",
    doctypes: Annotated[list[str] | None, Form()] = None,
    purpose_code: FormText = "",
    purpose_text: FormText = "",
    data_life_days: FormText = "",
    valid_from: FormText = "",
    valid_until: FormText = "",
    fetch_limit: FormText = "",
    csrf: FormText = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    desk = desk_for(runtime, session, me, department, *REQUESTERS)
    form: dict[str, Any] = {
        "cnic": cnic,
        "doctypes": doctypes or [],
        "purpose_code": purpose_code.strip(),
        "purpose_text": purpose_text.strip(),
        "data_life_days": data_life_days,
        "valid_from": valid_from,
        "valid_until": valid_until,
        "fetch_limit": fetch_limit,
    }
    errors, body = _checked(form, runtime.clock())
    error = Text("Check the fields marked below.")
    if body is not None:
        try:
            filed = file_for(
                runtime, session, body, requester=desk.requester, requester_name=desk.name,
                official=me.account.pseudonym,
            )  # fmt: skip
        except InvalidCnic as exc:
            settle(session, exc)
            errors["cnic"] = CNIC_FORMAT
        except UnknownCitizen as exc:
            settle(session, exc)
            errors["cnic"] = NO_ACCOUNT
        except (ReleaseRefused, RequestRefused) as exc:
            settle(session, exc)
            said = refusal(exc)
            field = said.beside(form)
            if field is None:
                error = said.words
            else:
                errors[field] = said.words
        else:
            return see_other(f"/officer/{desk.department}/requests?filed={filed.id}")
    return _new_page(
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


def _checked(form: dict[str, Any], now: datetime) -> tuple[dict[str, Text], NewRequest | None]:
    """The form as the API's request body, or what is wrong with it, field by field."""
    errors: dict[str, Text] = {}
    try:
        normalise_cnic(form["cnic"])
    except InvalidCnic:
        errors["cnic"] = CNIC_FORMAT
    known = {t.code: t for t in askable()}
    if not form["doctypes"] or any(code not in known for code in form["doctypes"]):
        errors["doctypes"] = PROBLEMS["doctypes"]
    if holds_cnic(form["purpose_text"]) or holds_cnic(form["purpose_code"]):
        errors["purpose_text"] = PROBLEMS["purpose_text"]
    start = day(form["valid_from"]) if form["valid_from"].strip() else None
    if form["valid_from"].strip() and start is None:
        errors["valid_from"] = PROBLEMS["valid_from"]
    until = day(form["valid_until"])
    opens = max(start_of(start) if start else now, now)
    if until is None or not opens < end_of(until) <= opens + MAX_WINDOW:
        errors["valid_until"] = PROBLEMS["valid_until"]
    limit = form["fetch_limit"].strip()
    sensitive = [
        known[c].name
        for c in form["doctypes"]
        if c in known and known[c].classification == Classification.SENSITIVE
    ]
    if sensitive and limit.isdigit() and int(limit) > 1 and "doctypes" not in errors:
        errors["doctypes"] = Text(
            "%(names)s: Sensitive documents are released for one fetch only. Set the number "
            "of fetches to 1, or leave them out.",
            names=", ".join(sensitive),
        )
    try:
        body = NewRequest(
            cnic=form["cnic"],
            doctypes=form["doctypes"],
            purpose_code=form["purpose_code"],
            purpose_text=form["purpose_text"],
            data_life_days=form["data_life_days"] or -1,
            valid_from=start_of(start) if start else None,
            valid_until=end_of(until) if until else None,
            fetch_limit=form["fetch_limit"] or 0,
        )
    except ValidationError as exc:
        errors = {**field_problems(exc, PROBLEMS, "valid_until"), **errors}
        return errors, None
    return errors, (None if errors else body)


# -- one request, and its documents ------------------------------------------------------------


def _one(
    runtime: RuntimeDep, session: SessionDep, desk: Desk, request_id: str
) -> tuple[ExchangeRequest, Consent | None] | None:
    try:
        return exchange_service(runtime, session).request_for(request_id, requester=desk.requester)
    except UnknownRequest:
        return None


def _request_page(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedIn,
    desk: Desk,
    request_id: str,
    status_code: int = 200,
    error: Text | None = None,
) -> Response:
    found = _one(runtime, session, desk, request_id)
    if found is None:
        return page(
            request,
            runtime,
            session,
            me,
            "message.html",
            status_code=404,
            heading=Text("No such request"),
            message=Text("Your department filed no request with that number."),
            link=f"/officer/{desk.department}/requests",
            link_text=Text("Back to the requests"),
        )
    filed, consent = found
    now = runtime.clock()
    documents: list[Document] = []
    if consent is not None and consent.state(now) == ACTIVE and consent.valid_from <= now:
        _consent, documents = exchange_service(runtime, session).manifest(
            consent.id, requester=desk.requester
        )
    return page(
        request,
        runtime,
        session,
        me,
        "officer_request.html",
        status_code=status_code,
        desk=desk,
        row=_row(runtime, session, filed),
        documents=documents,
        error=error,
    )


@router.get("/officer/{department}/requests/{request_id}", response_model=None)
def request_page(
    department: str,
    request_id: str,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedInDep,
) -> Response:
    desk = desk_for(runtime, session, me, department, *REQUESTERS)
    return _request_page(request, runtime, session, me, desk, request_id)


@router.post(
    "/officer/{department}/requests/{request_id}/documents/{document_id}", response_model=None
)
def fetch(
    department: str,
    request_id: str,
    document_id: str,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedInDep,
    csrf: FormText = "",
) -> Response:
    """One use of the consent: the document, downloaded through the service. The use and its
    audit entry commit with this request's transaction, before the first byte is sent."""
    check_csrf(request, runtime, csrf)
    desk = desk_for(runtime, session, me, department, *REQUESTERS)
    found = _one(runtime, session, desk, request_id)
    if found is None or found[1] is None:
        return _request_page(request, runtime, session, me, desk, request_id, 404)
    consent = found[1]
    try:
        fetched = exchange_service(runtime, session).fetch(
            consent.id, document_id, requester=desk.requester, official=me.account.pseudonym
        )
    except (ConsentRefused, UnknownConsent, UnknownDocument) as exc:
        settle(session, exc)
        why = Text("The document cannot be fetched: %(why)s", why=refusal(exc).words)
        return _request_page(request, runtime, session, me, desk, request_id, 409, why)
    response = document_response(fetched.document, fetched.content, "attachment")
    response.headers[DELETE_BY_HEADER] = iso(fetched.delete_by)
    return response
