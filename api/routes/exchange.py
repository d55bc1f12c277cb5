"""The once-only exchange over HTTP: departments ask, citizens decide, departments fetch.

Three kinds of caller, each by access token (see `api.bearer`): a department system with a
client-credentials token carrying `locker.request` files requests and fetches under consents
given to it; a citizen's token with the `locker` scope reads the inbox and decides; an
officer's citizen token with `locker`, a sign-in with a second factor and `locker.legal` in a
department files a legal-basis access request, decides another officer's, and opens its own
once a second officer approved it. Handlers are plain functions (their database and
crypto work blocks, so it runs off the event loop); every write commits before the answer.

A content download counts its use and writes its audit entry in a transaction committed
before the first byte, and holds no database session while the body streams. A stream that
fails part way raises out of the iterator, so the connection is cut rather than ended as if
the document were complete; `Content-Length` and `Repr-Digest` let the department tell too.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import AwareDatetime, BaseModel, Field, model_validator
from sqlalchemy.orm import Session

from api import denials
from api.bearer import CitizenCaller, citizen, roles_of, service
from api.deps import BIGINT_MAX, RuntimeDep, SessionDep, settle
from api.problems import problem, problem_responses
from api.routes.locker_views import document_response
from api.runtime import Runtime
from audit import pseudonym
from identity.cnic import normalise_cnic
from identity.oidc.provider import Provider
from locker.consents import ConsentSigner, iso
from locker.doctypes import document_type
from locker.documents import Document
from locker.exchange import Consent, Exchange, RequestClosed
from locker.exchange import Request as ExchangeRequest
from locker.inbox import Inbox, Message
from locker.legal import (
    MAX_DELAY_DAYS,
    MAX_REASON,
    Grant,
    LegalAccess,
    LegalAccessRefused,
    LegalAccessRequest,
)
from locker.legal import ROLE as LEGAL_ROLE

# Every operation but the consent keys wants a token (401 without, 403 for the wrong caller or
# scope), and names a request, consent or document that may not exist (404).
router = APIRouter(
    prefix="/exchange", tags=["once-only exchange"], responses=problem_responses(401, 403, 404)
)

DEPARTMENT_SCOPE = "locker.request"
# On every fetch: when the department must have deleted what it fetched (ISO 8601, UTC), the
# consent's `data_life_days` counted from the fetch. Enforcing it is the department's.
DELETE_BY_HEADER = "Shanakht-Delete-By"
CITIZEN_SCOPE = "locker"
GRANT_HEADER = "Shanakht-Legal-Grant"
Id = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Doctypes = Annotated[list[Annotated[str, Field(min_length=1, max_length=16)]], Field(min_length=1)]


class NewRequest(BaseModel):
    cnic: Annotated[str, Field(min_length=13, max_length=15)]
    doctypes: Doctypes
    purpose_code: Annotated[str, Field(min_length=1, max_length=32)]
    purpose_text: Annotated[str, Field(min_length=1, max_length=500)]
    data_life_days: Annotated[int, Field(ge=0, le=3650)]
    valid_from: AwareDatetime | None = None
    valid_days: Annotated[int | None, Field(ge=1, le=365)] = None
    valid_until: AwareDatetime | None = None
    fetch_limit: Annotated[int, Field(ge=1, le=100)]

    @model_validator(mode="after")
    def _one_end(self) -> NewRequest:
        if (self.valid_days is None) == (self.valid_until is None):
            raise ValueError("give the window's end as valid_days or valid_until, not both")
        return self


class LegalRequest(BaseModel):
    cnic: Annotated[str, Field(min_length=13, max_length=15)]
    doctypes: Doctypes
    legal_reference: Annotated[str, Field(min_length=1, max_length=100)]
    reason: Annotated[str, Field(min_length=1, max_length=500)]
    disclosure_delay_days: Annotated[int, Field(ge=0, le=MAX_DELAY_DAYS)] = 0
    department: Annotated[str | None, Field(min_length=2, max_length=32)] = None


class LegalRefusal(BaseModel):
    reason: Annotated[str, Field(min_length=1, max_length=MAX_REASON)]


# -- wiring ------------------------------------------------------------------------------------


class _Accounts:
    """The identity service's accounts as the exchange needs them: a mobile, if any."""

    def __init__(self, provider: Provider) -> None:
        self._accounts = provider.accounts

    def mobile(self, owner: str) -> str | None:
        account = self._accounts.by_pseudonym(owner)
        return account.mobile if account is not None and account.status == "active" else None


def _signer(runtime: Runtime) -> ConsentSigner:
    """The newest version of the consent key signs; every earlier one still verifies. Kept by
    the runtime and rebuilt when a rotation adds a version (`api.key_versions`)."""
    return runtime.consent_signer


def _exchange(runtime: Runtime, session: Session) -> Exchange:
    return Exchange(
        session,
        locker=runtime.locker(session),
        audit=runtime.audit_log(session),
        signer=_signer(runtime),
        seal=runtime.row_seal,
        citizens=_Accounts(runtime.provider(session)),
        texts=runtime.identity.sms,
        clock=runtime.clock,
    )


def exchange_service(runtime: Runtime, session: Session) -> Exchange:
    """The once-only exchange, wired to this runtime (the officer's pages use it too)."""
    return _exchange(runtime, session)


def _legal(runtime: Runtime, session: Session) -> LegalAccess:
    return LegalAccess(
        session,
        locker=runtime.locker(session),
        audit=runtime.audit_log(session),
        signer=_signer(runtime),
        citizens=_Accounts(runtime.provider(session)),
        texts=runtime.identity.sms,
        clock=runtime.clock,
        seal=runtime.row_seal,
    )


def legal_service(runtime: Runtime, session: Session) -> LegalAccess:
    """Legal-basis access, wired to this runtime (the officer's pages read requests with it)."""
    return _legal(runtime, session)


def _owner(runtime: Runtime, cnic: str) -> str:
    return pseudonym(normalise_cnic(cnic), key=runtime.pseudonym_key)


# Requests an officer files on the officer's pages are the department's own, not a system's:
# their requester is "department:<id>" (client ids hold no ":", so the two never meet).
DEPARTMENT_REQUESTER = "department:"


def _client_name(provider: Provider, client_id: str) -> str:
    if client_id.startswith(DEPARTMENT_REQUESTER):
        department = client_id.removeprefix(DEPARTMENT_REQUESTER)
        return dict(provider.roles.departments()).get(department, department)
    client = provider.clients.get(client_id)
    return client.name if client is not None else client_id


def _legal_departments(runtime: Runtime, session: Session, caller: CitizenCaller) -> frozenset[str]:
    held = roles_of(runtime, session, caller)
    return frozenset(department for department, role in held if role == LEGAL_ROLE)


# -- what goes out -----------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _time(moment: datetime | None) -> str | None:
    return iso(moment) if moment is not None else None


def _doctypes(codes: tuple[str, ...]) -> list[dict[str, str]]:
    described = []
    for code in codes:
        try:
            kind = document_type(code)
            described.append(
                {"code": code, "name": kind.name, "classification": kind.classification.value}
            )
        except LookupError:
            described.append({"code": code, "name": code, "classification": "unknown"})
    return described


def _terms_json(found: ExchangeRequest | Consent, now: datetime, requester: str) -> dict[str, Any]:
    """What a request asks and a consent grants: the same terms, shown the same way."""
    return {
        "id": found.id,
        "status": found.state(now),
        "requester": {"id": found.requester, "name": requester},
        "doctypes": _doctypes(found.doctypes),
        "purpose": {"code": found.purpose_code, "text": found.purpose_text},
        "data_life_days": found.data_life_days,
        "valid_from": iso(found.valid_from),
        "valid_until": iso(found.valid_until),
        "fetch_limit": found.fetch_limit,
        "created_at": iso(found.created_at),
    }


def _request_json(found: ExchangeRequest, now: datetime, requester_name: str) -> dict[str, Any]:
    return {
        **_terms_json(found, now, requester_name),
        "decided_at": _time(found.decided_at),
        "consent_id": found.consent_id,
    }


def _consent_json(found: Consent, now: datetime, requester_name: str) -> dict[str, Any]:
    return {
        **_terms_json(found, now, requester_name),
        "request_id": found.request_id,
        "uses": found.uses,
        "status_changed_at": iso(found.status_changed_at),
        "artifact": found.artifact,
    }


def _document_json(found: Document, base: str, content_url: str) -> dict[str, Any]:
    return {
        "id": found.id,
        "uri": found.uri,
        "doctype": found.doctype,
        "title": found.title,
        "issuer": found.issuer,
        "issued_at": iso(found.issued_at),
        "valid_until": _time(found.valid_until),
        "content_type": found.content_type,
        "size": found.size,
        "sha256": _b64url(found.sha256),
        "signature": base64.b64encode(found.signature).decode() if found.signature else None,
        "content_url": base + content_url,
    }


def _stream(found: Document, content: Iterator[bytes], signature_path: str | None) -> Response:
    link = None
    if signature_path is not None and found.signature is not None:
        link = f'<{signature_path}>; rel="describedby"; type="application/pkcs7-signature"'
    return document_response(found, content, link=link)


# -- the exchange's public key -----------------------------------------------------------------


@router.get(
    "/consent-keys",
    summary="The key consent artifacts are signed with (a JWKS)",
    response_class=Response,
    responses={200: {"description": "A JWK set", "content": {"application/jwk-set+json": {}}}},
)
def consent_keys(runtime: RuntimeDep) -> JSONResponse:
    return JSONResponse(
        _signer(runtime).jwks(),
        media_type="application/jwk-set+json",
        headers={"Cache-Control": "public, max-age=3600"},
    )


# -- department systems ------------------------------------------------------------------------


@router.post("/requests", status_code=201, summary="Ask a citizen for documents (department)")
def file_request(
    body: NewRequest,
    request: Request,
    response: Response,
    runtime: RuntimeDep,
    session: SessionDep,
) -> dict[str, Any]:
    caller = service(request, runtime, session, DEPARTMENT_SCOPE)
    name = _client_name(runtime.provider(session), caller.client_id)
    filed = file_for(runtime, session, body, requester=caller.client_id, requester_name=name)
    response.headers["Location"] = f"/exchange/requests/{filed.id}"
    return _request_json(filed, runtime.clock(), name)


def file_for(
    runtime: Runtime,
    session: Session,
    body: NewRequest,
    *,
    requester: str,
    requester_name: str,
    official: str | None = None,
) -> ExchangeRequest:
    """File `body` in `requester`'s name: what a department system (POST /exchange/requests)
    and an officer (the officer's pages, naming themself as `official`) both do."""
    now = runtime.clock()
    end = body.valid_until
    if end is None:
        assert body.valid_days is not None  # noqa: S101 (the model requires one of them)
        end = max(body.valid_from or now, now) + timedelta(days=body.valid_days)
    return _exchange(runtime, session).file_request(
        requester=requester, requester_name=requester_name, owner=_owner(runtime, body.cnic),
        doctypes=body.doctypes, purpose_code=body.purpose_code, purpose_text=body.purpose_text,
        data_life_days=body.data_life_days, valid_from=body.valid_from, valid_until=end,
        fetch_limit=body.fetch_limit, official=official,
    )  # fmt: skip


@router.get("/requests/{request_id}", summary="A request's state, and its consent once given")
def request_state(
    request_id: Id, request: Request, runtime: RuntimeDep, session: SessionDep
) -> dict[str, Any]:
    caller = service(request, runtime, session, DEPARTMENT_SCOPE)
    found, consent = _exchange(runtime, session).request_for(request_id, requester=caller.client_id)
    now = runtime.clock()
    name = _client_name(runtime.provider(session), caller.client_id)
    body = _request_json(found, now, name)
    body["consent"] = _consent_json(consent, now, name) if consent is not None else None
    return body


@router.get("/consents/{consent_id}", summary="A consent's status, uses and artifact")
def consent_state(
    consent_id: Id, request: Request, runtime: RuntimeDep, session: SessionDep
) -> dict[str, Any]:
    caller = service(request, runtime, session, DEPARTMENT_SCOPE)
    found = _exchange(runtime, session).consent_for(consent_id, requester=caller.client_id)
    name = _client_name(runtime.provider(session), caller.client_id)
    return _consent_json(found, runtime.clock(), name)


@router.get(
    "/consents/{consent_id}/documents",
    summary="The documents a consent releases now (reading this spends no fetch)",
)
def manifest(
    consent_id: Id, request: Request, runtime: RuntimeDep, session: SessionDep
) -> dict[str, Any]:
    caller = service(request, runtime, session, DEPARTMENT_SCOPE)
    consent, found = _exchange(runtime, session).manifest(consent_id, requester=caller.client_id)
    base = runtime.settings.public_url.rstrip("/")
    documents = []
    for document in found:
        path = f"/exchange/consents/{consent.id}/documents/{document.id}"
        entry = _document_json(document, base, path)
        entry["signature_url"] = base + path + "/signature" if document.signature else None
        documents.append(entry)
    return {
        "consent_id": consent.id,
        "status": consent.state(runtime.clock()),
        "uses": consent.uses,
        "fetch_limit": consent.fetch_limit,
        "documents": documents,
    }


@router.get(
    "/consents/{consent_id}/documents/{document_id}",
    response_class=StreamingResponse,
    summary="A document's content: one use of the consent",
    responses={
        200: {
            "description": "The content, streamed",
            "headers": {
                DELETE_BY_HEADER: {
                    "description": "When the department must have deleted this document and "
                    "what it took from it: the consent's data_life_days counted from this "
                    "fetch (ISO 8601, UTC). Deleting it is the department's duty.",
                    "schema": {"type": "string", "format": "date-time"},
                }
            },
        }
    },
)
def fetch(consent_id: Id, document_id: Id, request: Request, runtime: RuntimeDep) -> Response:
    with runtime.transaction() as session:
        caller = service(request, runtime, session, DEPARTMENT_SCOPE)
        fetched = _exchange(runtime, session).fetch(
            consent_id, document_id, requester=caller.client_id
        )
    path = f"/exchange/consents/{consent_id}/documents/{document_id}/signature"
    response = _stream(fetched.document, fetched.content, path)
    response.headers[DELETE_BY_HEADER] = iso(fetched.delete_by)
    return response


@router.get(
    "/consents/{consent_id}/documents/{document_id}/signature",
    response_class=Response,
    summary="The issuer's detached CMS signature over a released document",
)
def signature(
    consent_id: Id, document_id: Id, request: Request, runtime: RuntimeDep, session: SessionDep
) -> Response:
    caller = service(request, runtime, session, DEPARTMENT_SCOPE)
    found = _exchange(runtime, session).signature(
        consent_id, document_id, requester=caller.client_id
    )
    assert found.signature is not None  # noqa: S101 (the exchange answers signed ones only)
    return Response(
        found.signature,
        media_type="application/pkcs7-signature",
        headers={"Cache-Control": "no-store"},
    )


# -- citizens ----------------------------------------------------------------------------------


@router.get("/inbox", summary="The citizen's locker inbox, newest first")
def inbox(request: Request, runtime: RuntimeDep, session: SessionDep) -> dict[str, Any]:
    caller = citizen(request, runtime, session, CITIZEN_SCOPE)
    return {"messages": inbox_of(runtime, session, caller.pseudonym)}


@router.post("/inbox/{message_id}/read", status_code=204, summary="Mark an inbox message read")
def read_message(
    message_id: Annotated[int, Path(ge=0, le=BIGINT_MAX)],
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
) -> Response:
    caller = citizen(request, runtime, session, CITIZEN_SCOPE)
    if not Inbox(session, clock=runtime.clock).mark_read(caller.pseudonym, message_id):
        return problem(404, "No such message")
    return Response(status_code=204)


def _message_json(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "kind": message.kind,
        "message": message.message,
        "params": message.params,
        "reference": message.reference,
        "at": iso(message.visible_from),
        "read": message.read_at is not None,
    }


@router.get("/requests", summary="The citizen's requests, with who asks, for what and why")
def my_requests(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    status: Annotated[Literal["pending", "approved", "denied", "expired"] | None, Query()] = None,
) -> dict[str, Any]:
    caller = citizen(request, runtime, session, CITIZEN_SCOPE)
    return {"requests": requests_of(runtime, session, caller.pseudonym, status)}


@router.post(
    "/requests/{request_id}/approve",
    status_code=201,
    summary="Approve a request: a consent, signed (needs a second-factor sign-in)",
)
def approve(
    request_id: Id, request: Request, runtime: RuntimeDep, session: SessionDep
) -> dict[str, Any]:
    caller = citizen(request, runtime, session, CITIZEN_SCOPE)
    with _decided_once(request, runtime, session, caller):
        return approve_for(
            runtime, session, request_id, owner=caller.pseudonym, substantial=caller.substantial
        )


@router.post("/requests/{request_id}/deny", summary="Deny a request")
def deny(
    request_id: Id, request: Request, runtime: RuntimeDep, session: SessionDep
) -> dict[str, Any]:
    caller = citizen(request, runtime, session, CITIZEN_SCOPE)
    with _decided_once(request, runtime, session, caller):
        return deny_for(runtime, session, request_id, owner=caller.pseudonym)


@router.get("/consents", summary="The consents the citizen gave, newest first")
def my_consents(request: Request, runtime: RuntimeDep, session: SessionDep) -> dict[str, Any]:
    caller = citizen(request, runtime, session, CITIZEN_SCOPE)
    return {"consents": consents_of(runtime, session, caller.pseudonym)}


@router.post("/consents/{consent_id}/{action}", summary="Pause, resume or revoke a consent")
def change_consent(
    consent_id: Id,
    action: Literal["pause", "resume", "revoke"],
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
) -> dict[str, Any]:
    caller = citizen(request, runtime, session, CITIZEN_SCOPE)
    return change_for(runtime, session, consent_id, action, owner=caller.pseudonym)


# What the citizen's calls above do, shared with the citizen's pages (api/routes/consent_pages.py):
# the same domain calls, answered in the same terms, whether the caller holds a token or a cookie.


def client_name(provider: Provider, client_id: str) -> str:
    """Who asks, as the citizen reads it: the e-service's or the department's name."""
    return _client_name(provider, client_id)


def inbox_of(runtime: Runtime, session: Session, owner: str) -> list[dict[str, Any]]:
    return [_message_json(m) for m in Inbox(session, clock=runtime.clock).visible(owner)]


def requests_of(
    runtime: Runtime, session: Session, owner: str, status: str | None = None
) -> list[dict[str, Any]]:
    found = _exchange(runtime, session).requests_of(owner, state=status)
    provider, now = runtime.provider(session), runtime.clock()
    names = {r.requester: _client_name(provider, r.requester) for r in found}
    return [_request_json(r, now, names[r.requester]) for r in found]


def consents_of(runtime: Runtime, session: Session, owner: str) -> list[dict[str, Any]]:
    found = _exchange(runtime, session).consents_of(owner)
    provider, now = runtime.provider(session), runtime.clock()
    return [_consent_json(c, now, _client_name(provider, c.requester)) for c in found]


def approve_for(
    runtime: Runtime, session: Session, request_id: str, *, owner: str, substantial: bool
) -> dict[str, Any]:
    consent = _exchange(runtime, session).approve(request_id, owner=owner, substantial=substantial)
    name = _client_name(runtime.provider(session), consent.requester)
    return _consent_json(consent, runtime.clock(), name)


def deny_for(runtime: Runtime, session: Session, request_id: str, *, owner: str) -> dict[str, Any]:
    denied = _exchange(runtime, session).deny(request_id, owner=owner)
    name = _client_name(runtime.provider(session), denied.requester)
    return _request_json(denied, runtime.clock(), name)


def change_for(
    runtime: Runtime, session: Session, consent_id: str, action: str, *, owner: str
) -> dict[str, Any]:
    changed = _exchange(runtime, session).change(consent_id, action, owner=owner)
    name = _client_name(runtime.provider(session), changed.requester)
    return _consent_json(changed, runtime.clock(), name)


# -- legal basis -------------------------------------------------------------------------------


# Legal-basis access is a two-person rule (see `locker.legal`): one officer files, a second
# officer of the same department approves or refuses, and only then the first opens, within a
# day. Every caller is an officer's citizen token with `locker`, a second-factor sign-in and
# `locker.legal`; the functions after the routes are the officer's pages' way to do the same.


@router.post(
    "/legal-access",
    status_code=201,
    summary="File a legal-basis access request; a second officer must approve it (locker.legal)",
    responses=problem_responses(400, 409, 422),
)
def legal_access(
    body: LegalRequest,
    request: Request,
    response: Response,
    runtime: RuntimeDep,
    session: SessionDep,
) -> dict[str, Any]:
    caller = citizen(request, runtime, session, CITIZEN_SCOPE)
    filed = legal_file_for(
        runtime, session, body, officer=caller.pseudonym, substantial=caller.substantial,
        departments=_legal_departments(runtime, session, caller),
    )  # fmt: skip
    response.headers["Location"] = f"/exchange/legal-access/{filed.id}"
    return legal_request_json(filed, runtime.clock())


@router.get(
    "/legal-access/pending",
    summary="Legal-access requests awaiting this officer's decision (others', same department)",
)
def legal_pending(request: Request, runtime: RuntimeDep, session: SessionDep) -> dict[str, Any]:
    caller = citizen(request, runtime, session, CITIZEN_SCOPE)
    departments = _legal_departments(runtime, session, caller)
    if not departments:
        raise LegalAccessRefused(f"you hold {LEGAL_ROLE} in no department", role=LEGAL_ROLE)
    found = _legal(runtime, session).awaiting(officer=caller.pseudonym, departments=departments)
    now = runtime.clock()
    return {"requests": [legal_request_json(r, now) for r in found]}


@router.get(
    "/legal-access/{request_id}", summary="A legal-access request (officers of its department)"
)
def legal_request_state(
    request_id: Id, request: Request, runtime: RuntimeDep, session: SessionDep
) -> dict[str, Any]:
    caller = citizen(request, runtime, session, CITIZEN_SCOPE)
    found = _legal(runtime, session).get(
        request_id, departments=_legal_departments(runtime, session, caller)
    )
    return legal_request_json(found, runtime.clock())


@router.post(
    "/legal-access/{request_id}/approve",
    summary="Approve another officer's legal-access request (a second officer, same department)",
    responses=problem_responses(400, 409, 422),
)
def legal_approve(
    request_id: Id, request: Request, runtime: RuntimeDep, session: SessionDep
) -> dict[str, Any]:
    caller = citizen(request, runtime, session, CITIZEN_SCOPE)
    with _decided_once(request, runtime, session, caller):
        decided = legal_decide_for(
            runtime, session, request_id, approve=True, officer=caller.pseudonym,
            substantial=caller.substantial,
            departments=_legal_departments(runtime, session, caller),
        )  # fmt: skip
    return legal_request_json(decided, runtime.clock())


@router.post(
    "/legal-access/{request_id}/refuse",
    summary="Refuse another officer's legal-access request, saying why",
    responses=problem_responses(400, 409, 422),
)
def legal_refuse(
    request_id: Id,
    body: LegalRefusal,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
) -> dict[str, Any]:
    caller = citizen(request, runtime, session, CITIZEN_SCOPE)
    with _decided_once(request, runtime, session, caller):
        decided = legal_decide_for(
            runtime, session, request_id, approve=False, reason=body.reason,
            officer=caller.pseudonym, substantial=caller.substantial,
            departments=_legal_departments(runtime, session, caller),
        )  # fmt: skip
    return legal_request_json(decided, runtime.clock())


@contextmanager
def _decided_once(
    request: Request, runtime: Runtime, session: Session, caller: CitizenCaller
) -> Iterator[None]:
    """A decision on a request decided already (a legal-access request by its officers, a
    department's request by its citizen) is refused, 409 as before, and audited as the pages
    audit it (`rule:decided-once`): rolled back first, so the entry stands in a transaction of
    its own and nothing of the refused decision does. An expired request is refused alike,
    and not audited: nobody decided it."""
    try:
        yield
    except RequestClosed as exc:
        settle(session, exc)
        denials.refused_by_rule(request, runtime, caller.principal, exc, deciding=True)
        raise


@router.post(
    "/legal-access/{request_id}/open",
    status_code=201,
    summary="Open an approved request: the documents and a 15-minute grant (its filer, for a day)",
    responses=problem_responses(400, 409, 422),
)
def legal_open(
    request_id: Id, request: Request, runtime: RuntimeDep, session: SessionDep
) -> dict[str, Any]:
    caller = citizen(request, runtime, session, CITIZEN_SCOPE)
    grant = legal_open_for(
        runtime, session, request_id, officer=caller.pseudonym, substantial=caller.substantial,
        departments=_legal_departments(runtime, session, caller),
    )  # fmt: skip
    return _grant_json(grant, runtime.settings.public_url.rstrip("/"))


def legal_file_for(
    runtime: Runtime,
    session: Session,
    body: LegalRequest,
    *,
    officer: str,
    substantial: bool,
    departments: frozenset[str],
) -> LegalAccessRequest:
    """File a legal-access request by `officer` (who holds `locker.legal` in `departments`),
    pending a second officer's approval: the API's and the officer's page's one way to."""
    return _legal(runtime, session).file(
        officer=officer, substantial=substantial,
        departments=departments, department=body.department,
        owner=_owner(runtime, body.cnic), doctypes=body.doctypes,
        legal_reference=body.legal_reference, reason=body.reason,
        disclosure_delay_days=body.disclosure_delay_days,
    )  # fmt: skip


def legal_decide_for(
    runtime: Runtime,
    session: Session,
    request_id: str,
    *,
    approve: bool,
    officer: str,
    substantial: bool,
    departments: frozenset[str],
    reason: str = "",
) -> LegalAccessRequest:
    """Approve or refuse another officer's request: the API's and the pages' one way to."""
    legal = _legal(runtime, session)
    if approve:
        return legal.approve(
            request_id, officer=officer, substantial=substantial, departments=departments
        )
    return legal.refuse(
        request_id, officer=officer, substantial=substantial, departments=departments,
        reason=reason,
    )  # fmt: skip


def legal_open_for(
    runtime: Runtime,
    session: Session,
    request_id: str,
    *,
    officer: str,
    substantial: bool,
    departments: frozenset[str],
) -> Grant:
    """Open an approved request (its filer, within a day of the approval), record the access
    and grant its download: the API's and the officer's page's one way to do it."""
    return _legal(runtime, session).open(
        request_id, officer=officer, substantial=substantial, departments=departments,
        department_names=dict(runtime.provider(session).roles.departments()),
    )  # fmt: skip


def legal_request_json(found: LegalAccessRequest, now: datetime) -> dict[str, Any]:
    return {
        "id": found.id,
        "status": found.state(now),
        "department": found.department,
        "filed_by": found.filer,
        "doctypes": _doctypes(found.doctypes),
        "legal_reference": found.legal_reference,
        "reason": found.reason,
        "disclosure_delay_days": found.disclosure_delay_days,
        "created_at": iso(found.created_at),
        "decide_by": iso(found.decide_by),
        "decided_at": _time(found.decided_at),
        "decided_by": found.decider,
        "refusal_reason": found.refusal,
        "open_until": _time(found.open_until),
        "opened_at": _time(found.opened_at),
        "disclose_after": _time(found.disclose_after),
    }


def _grant_json(grant: Grant, base: str) -> dict[str, Any]:
    path = f"/exchange/legal-access/{grant.id}/documents/"
    return {
        "grant_id": grant.id,
        "grant": grant.token,
        "grant_header": GRANT_HEADER,
        "request_id": grant.request_id,
        "approved_by": grant.approver,
        "department": grant.department,
        "expires_at": iso(grant.expires_at),
        "disclose_after": _time(grant.disclose_after),
        "documents": [_document_json(d, base, path + d.id) for d in grant.documents],
    }


@router.get(
    "/legal-access/{grant_id}/documents/{document_id}",
    response_class=StreamingResponse,
    summary=f"A document under a legal-access grant (the grant in {GRANT_HEADER})",
)
def legal_download(
    grant_id: Id,
    document_id: Id,
    request: Request,
    runtime: RuntimeDep,
    grant: Annotated[str, Header(alias=GRANT_HEADER, max_length=16384)],
) -> Response:
    with runtime.transaction() as session:
        caller = citizen(request, runtime, session, CITIZEN_SCOPE)
        return legal_download_for(
            runtime, session, grant_id, grant, document_id, officer=caller.pseudonym,
            substantial=caller.substantial,
            departments=_legal_departments(runtime, session, caller),
        )  # fmt: skip


def legal_download_for(
    runtime: Runtime,
    session: Session,
    grant_id: str,
    grant: str,
    document_id: str,
    *,
    officer: str,
    substantial: bool,
    departments: frozenset[str],
) -> Response:
    """One document under a legal-access grant, streamed through the service: the API's and
    the officer's page's one way to do it. The fetch and its audit entry are written in
    `session`, which the caller commits before the response's first byte goes out."""
    found, content = _legal(runtime, session).download(
        grant_id, grant, document_id, officer=officer, substantial=substantial,
        departments=departments,
    )  # fmt: skip
    return _stream(found, content, None)
