"""The locker over HTTP: department systems issue into it, citizens keep and share from it.

Documents travel as raw request and response bodies, streamed: an upload is encrypted and
stored as it arrives and a download decrypted as it leaves, so a 1 GB document never sits in
memory. What describes an upload goes in the query (document id, title, validity) except the
subject's CNIC, which goes in the `Shanakht-Cnic` header: URLs end up in access logs, and a
CNIC must not.

A download that fails part way (an object altered in the store, a store that stops answering)
is cut off, never ended cleanly: a client must never mistake a truncated document for a whole
one. The transaction that records a download (its audit entry) commits before the first byte
is sent, and no database session is held while the body streams.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import datetime
from typing import Annotated, Any

import anyio.from_thread
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from api import metrics
from api.bearer import CitizenCaller, citizen, forbidden, service
from api.deps import RuntimeDep
from api.problems import problem, problem_responses
from api.routes import locker_views as views
from api.routes.locker_views import BLOCK, document_response, document_view, seal_status
from api.runtime import Runtime
from audit import pseudonym
from identity.cnic import normalise_cnic
from locker.access import Accessor
from locker.doctypes import DOCUMENT_TYPES, SELF, DocumentType, document_type
from locker.documents import CONTENT_TYPES, Document, Issued, Seal, UnknownDocument
from locker.sharing import ShareUnusable, Sharing
from signing.documents.cms import sign_digest
from signing.pki.profiles import DEPARTMENT_SEAL

# Every operation but the public types list and share links wants a token (401 without, 403
# for the wrong caller or scope) and names something that may not exist (404).
router = APIRouter(prefix="/locker", tags=["locker"], responses=problem_responses(401, 403, 404))

LOCKER_SCOPE = "locker"
ISSUE_SCOPE = "locker.issue."  # + the document type's code
CNIC_HEADER = "shanakht-cnic"
DownloadKind = Annotated[str, Query(pattern="^(inline|attachment)$")]
# The types departments issue, listed in the schema; another is answered 404 ("no such type"),
# as before, rather than refused as a malformed request.
IssuedType = Annotated[
    str,
    Path(
        description="a document type a department issues",
        json_schema_extra={
            "enum": sorted(c for c, t in DOCUMENT_TYPES.items() if t.department != SELF)
        },
    ),
]

# The raw body an upload streams (FastAPI cannot see it), declared so clients learn what they
# may send, and the API fuzzer sends it.
DOCUMENT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            kind: {"schema": {"type": "string", "format": "binary"}}
            for kind in sorted(CONTENT_TYPES)
        },
    }
}
CNIC_PARAMETER = {
    "name": "Shanakht-Cnic",
    "in": "header",
    "required": True,
    "schema": {"type": "string"},
}


# -- streaming bodies --------------------------------------------------------------------------


class _Body:
    """The request body as a plain iterator for a worker thread: each step hops to the event
    loop for up to 1 MiB, so the thread that encrypts never waits on one small chunk."""

    def __init__(self, request: Request) -> None:
        self._chunks: AsyncIterator[bytes] = request.stream().__aiter__()

    async def _block(self) -> bytes:
        block = bytearray()
        while len(block) < BLOCK:
            try:
                block += await self._chunks.__anext__()
            except StopAsyncIteration:
                break
        return bytes(block)

    def __iter__(self) -> Iterator[bytes]:
        while block := anyio.from_thread.run(self._block):
            yield block


async def _content(request: Request) -> Iterable[bytes]:
    """The body for a worker thread: a small one (a declared length up to one block) read
    here, on the event loop, so the thread never hops back for it (two hops of a worker
    thread to the loop cost more than a 100 KB document's encryption); a larger or unsized
    one streamed through `_Body`, so memory stays flat."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) <= BLOCK:
        small = await request.body()
        return [small] if small else []
    return _Body(request)


def _declared_too_large(request: Request, runtime: Runtime) -> Response | None:
    declared = request.headers.get("content-length", "")
    limit = runtime.settings.locker_max_bytes
    if declared.isdigit() and int(declared) > limit:
        return problem(413, "The document is too large", f"a document is at most {limit} bytes")
    return None


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


# -- department systems ------------------------------------------------------------------------


def _kind(code: str) -> DocumentType:
    try:
        kind = document_type(code)
    except LookupError as exc:
        raise UnknownDocument(str(exc)) from None
    if kind.department == SELF:
        raise UnknownDocument("departments do not issue that type")
    return kind


def _issuer(request: Request, runtime: Runtime, session: Session, kind: DocumentType) -> str:
    """The client id of the department system issuing `kind`: it needs the type's scope and
    must speak for the type's department, so a scope granted by mistake to another
    department's system still issues nothing in this department's name."""
    caller = service(request, runtime, session, ISSUE_SCOPE + kind.code)
    if caller.department != kind.department:
        speaks_for = caller.department or "no department"
        raise forbidden(
            caller,
            f"{caller.client_id} speaks for {speaks_for}, not {kind.department}",
            needed=f"department:{kind.department}",
        )
    return caller.client_id


def _owner(runtime: Runtime, session: Session, cnic: str | None) -> str:
    """The locker of the citizen with `cnic`: their pseudonym, if they have an account."""
    if not cnic:
        raise HTTPException(400, f"Say whose document it is: send the CNIC in {CNIC_HEADER}")
    owner = pseudonym(normalise_cnic(cnic), key=runtime.pseudonym_key)
    if not runtime.provider(session).accounts.exists(owner):
        raise HTTPException(404, "No locker for that CNIC: that citizen has no account")
    return owner


def department_seal(runtime: Runtime, session: Session, department: str) -> Seal | None:
    """The department's seal as a function of a document's SHA-256 (its detached CMS), or
    None while it has no seal certificate. Department systems and officers' pages seal alike."""
    signer = runtime.authority(session).signer(DEPARTMENT_SEAL, department=department)
    if signer is None:
        return None

    def seal(sha256: bytes) -> bytes:
        metrics.signature("seal")
        return sign_digest(
            sha256, key=signer.key, certificate=signer.certificate, chain=[signer.issuer]
        )

    return seal


def _seal(runtime: Runtime, session: Session, department: str) -> Seal:
    seal = department_seal(runtime, session, department)
    if seal is None:
        raise HTTPException(409, f"Cannot issue yet: {department} has no seal certificate")
    return seal


def issue_sealed(
    runtime: Runtime,
    session: Session,
    kind: DocumentType,
    seal: Seal,
    *,
    owner: str,
    doc_id: str,
    title: str,
    valid_until: datetime | None,
    content: Iterable[bytes],
    content_type: str,
    who: Accessor,
) -> Issued:
    """Issue `kind` into `owner`'s locker in its department's name, sealed: what a department
    system (PUT /locker/issued) and an officer (the officer's pages) both do."""
    issued = runtime.locker(session).issue(
        owner=owner, doctype=kind.code, issuer=kind.department, issuer_doc_id=doc_id,
        title=title, content=content, content_type=content_type, who=who,
        valid_until=valid_until, seal=seal,
    )  # fmt: skip
    if issued.outcome != "unchanged":  # a retry stores nothing
        metrics.locker_bytes("in", issued.document.size)
    return issued


def _issue(
    runtime: Runtime,
    request: Request,
    doctype: str,
    doc_id: str,
    title: str,
    valid_until: datetime | None,
    body: Iterable[bytes],
) -> Response:
    kind = _kind(doctype)
    with runtime.transaction() as session:
        issuer = _issuer(request, runtime, session, kind)
        owner = _owner(runtime, session, request.headers.get(CNIC_HEADER))
        issued = issue_sealed(
            runtime, session, kind, _seal(runtime, session, kind.department), owner=owner,
            doc_id=doc_id, title=title, valid_until=valid_until, content=body,
            content_type=_content_type(request),
            who=Accessor(f"client:{issuer}", kind.department, "issuer"),
        )  # fmt: skip
        view = document_view(issued.document, runtime.clock())
    status = 201 if issued.outcome == "created" else 200
    return JSONResponse({**view, "outcome": issued.outcome}, status_code=status)


@router.put(
    "/issued/{doctype}",
    summary="Issue a document into a citizen's locker, or a new version of it (idempotent)",
    response_model=None,
    responses={
        201: {"description": "The first version", "content": {"application/json": {}}},
        **problem_responses(400, 413, 422, 503),
    },
    openapi_extra={**DOCUMENT_BODY, "parameters": [CNIC_PARAMETER]},
)
async def issue(
    doctype: IssuedType,
    request: Request,
    runtime: RuntimeDep,
    doc_id: Annotated[str, Query(min_length=1, max_length=64)],
    title: Annotated[str, Query(min_length=1, max_length=200)],
    valid_until: datetime | None = None,
) -> Response:
    too_large = _declared_too_large(request, runtime)
    if too_large is not None:
        return too_large
    if valid_until is not None and valid_until.utcoffset() is None:
        return problem(400, "valid_until needs a time zone", "for example 2030-01-01T00:00Z")
    body = await _content(request)
    return await run_in_threadpool(
        _issue, runtime, request, doctype, doc_id, title, valid_until, body
    )


class Revocation(BaseModel):
    reason: Annotated[str, Field(min_length=1, max_length=200)]


@router.post("/issued/{doctype}/revoke", summary="Revoke an issued document")
def revoke(
    doctype: IssuedType,
    revocation: Revocation,
    request: Request,
    runtime: RuntimeDep,
    doc_id: Annotated[str, Query(min_length=1, max_length=64)],
) -> dict[str, Any]:
    kind = _kind(doctype)
    with runtime.transaction() as session:
        issuer = _issuer(request, runtime, session, kind)
        found = runtime.locker(session).revoke(
            issuer=kind.department, issuer_doc_id=doc_id, reason=revocation.reason,
            who=Accessor(f"client:{issuer}", kind.department, "issuer"),
        )  # fmt: skip
        return document_view(found, runtime.clock())


@router.get("/issued/{doctype}", summary="An issued document's state, for its issuer")
def issued_state(
    doctype: IssuedType,
    request: Request,
    runtime: RuntimeDep,
    doc_id: Annotated[str, Query(min_length=1, max_length=64)],
) -> dict[str, Any]:
    kind = _kind(doctype)
    with runtime.transaction() as session:
        _issuer(request, runtime, session, kind)
        found = runtime.locker(session).issued(kind.department, doc_id)
        if found is None or found.doctype != kind.code:
            raise UnknownDocument("this issuer has no document with that id")
        return document_view(found, runtime.clock())


# -- citizens ----------------------------------------------------------------------------------


def _me(caller: CitizenCaller) -> Accessor:
    return views.owner_accessor(caller.pseudonym)


def _citizen(request: Request, runtime: Runtime, session: Session) -> CitizenCaller:
    return citizen(request, runtime, session, LOCKER_SCOPE)


@router.get("/documents", summary="Everything in my locker")
def my_documents(request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.transaction() as session:
        caller = _citizen(request, runtime, session)
        found = runtime.locker(session).list(caller.pseudonym)
        now = runtime.clock()
        return {
            "documents": [
                {**document_view(d, now), "seal": seal_status(runtime, session, d)} for d in found
            ]
        }


@router.get("/documents/{document_id}", summary="One of my documents")
def my_document(document_id: str, request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.transaction() as session:
        caller = _citizen(request, runtime, session)
        found = runtime.locker(session).get(document_id, owner=caller.pseudonym)
        return {
            **document_view(found, runtime.clock()),
            "seal": seal_status(runtime, session, found),
        }


def _open(
    runtime: Runtime, request: Request, document_id: str, owner_ref: str | None
) -> tuple[Document, Iterator[bytes]]:
    """The document and its plaintext stream, for its owner or (with `owner_ref`) a nominee;
    recorded in a transaction that has committed when this returns."""
    with runtime.transaction() as session:
        caller = _citizen(request, runtime, session)
        return views.open_readable(runtime, session, caller.pseudonym, document_id, owner_ref)


@router.get(
    "/documents/{document_id}/content",
    summary="Download or preview one of my documents",
    response_class=StreamingResponse,
)
async def my_content(
    document_id: str, request: Request, runtime: RuntimeDep, disposition: DownloadKind = "inline"
) -> Response:
    found, plaintext = await run_in_threadpool(_open, runtime, request, document_id, None)
    return document_response(found, plaintext, disposition)


@router.get("/documents/{document_id}/signature", summary="The issuer's detached CMS seal")
def my_signature(document_id: str, request: Request, runtime: RuntimeDep) -> Response:
    with runtime.transaction() as session:
        caller = _citizen(request, runtime, session)
        found = runtime.locker(session).get(document_id, owner=caller.pseudonym)
    if found.signature is None:
        return problem(404, "No signature", "documents you uploaded carry no issuer's seal")
    return Response(found.signature, media_type="application/pkcs7-signature")


def _upload(
    runtime: Runtime, request: Request, doctype: str, title: str, body: Iterable[bytes]
) -> dict[str, Any]:
    try:
        document_type(doctype)
    except LookupError as exc:
        raise UnknownDocument(str(exc)) from None
    with runtime.transaction() as session:
        caller = _citizen(request, runtime, session)
        created = views.upload_own(
            runtime, session, caller.pseudonym, doctype=doctype, title=title, content=body,
            content_type=_content_type(request),
        )  # fmt: skip
        return document_view(created, runtime.clock())


@router.post(
    "/documents",
    status_code=201,
    summary="Upload a document of my own",
    responses=problem_responses(400, 413, 422, 503),
    openapi_extra=DOCUMENT_BODY,
)
async def upload(
    request: Request,
    runtime: RuntimeDep,
    title: Annotated[str, Query(min_length=1, max_length=200)],
    doctype: Annotated[str, Query(min_length=1, max_length=16)] = "other",
) -> Any:
    too_large = _declared_too_large(request, runtime)
    if too_large is not None:
        return too_large
    body = await _content(request)
    view = await run_in_threadpool(_upload, runtime, request, doctype, title, body)
    return JSONResponse(view, status_code=201)


@router.delete("/documents/{document_id}", status_code=204, summary="Delete one of my uploads")
def delete(document_id: str, request: Request, runtime: RuntimeDep) -> Response:
    with runtime.transaction() as session:
        caller = _citizen(request, runtime, session)
        runtime.locker(session).delete(document_id, owner=caller.pseudonym, who=_me(caller))
    return Response(status_code=204)


# -- share links -------------------------------------------------------------------------------


class NewShare(BaseModel):
    hours: Annotated[int, Field(ge=1, le=720)] = 24
    max_uses: Annotated[int | None, Field(ge=1, le=1000)] = None


_share_view = views.share_view


@router.post("/documents/{document_id}/shares", status_code=201, summary="Share a document")
def share(document_id: str, new: NewShare, request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.transaction() as session:
        caller = _citizen(request, runtime, session)
        return views.share_document(
            runtime, session, caller.pseudonym, document_id, hours=new.hours, max_uses=new.max_uses
        )


@router.get("/shares", summary="My share links")
def my_shares(request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.transaction() as session:
        caller = _citizen(request, runtime, session)
        found = _sharing(runtime, session).shares(caller.pseudonym)
    now = runtime.clock()
    return {"shares": [_share_view(s, now) for s in found]}


@router.delete("/shares/{share_id}", status_code=204, summary="Revoke a share link")
def unshare(share_id: str, request: Request, runtime: RuntimeDep) -> Response:
    with runtime.transaction() as session:
        caller = _citizen(request, runtime, session)
        _sharing(runtime, session).revoke(share_id, owner=caller.pseudonym, who=_me(caller))
    return Response(status_code=204)


def _redeem(runtime: Runtime, token: str) -> tuple[Document, Iterator[bytes]]:
    with runtime.transaction() as session:
        used = _sharing(runtime, session).redeem(token)
        locker = runtime.locker(session)
        found = locker.find(used.document_id)
        if found is None or found.owner != used.owner or found.state(runtime.clock()) != "active":
            raise ShareUnusable("this link is not valid: the document is no longer available")
        who = Accessor(f"share:{used.id}", "share link", f"share:{used.id}")
        # The entry names the link, whose use it counts (`locker.reconciled.shares_kind`).
        named = {"share": used.id}
        return found, locker.content(found, who=who, action="locker.share.used", details=named)


@router.get(
    "/shared/{token}",
    summary="A document someone shared with you (no sign-in)",
    response_class=StreamingResponse,
)
async def shared(token: str, runtime: RuntimeDep, disposition: DownloadKind = "inline") -> Response:
    if len(token) > 64:
        return problem(404, "No such link")
    try:
        found, plaintext = await run_in_threadpool(_redeem, runtime, token)
    except ShareUnusable as exc:
        return problem(404, "No such link", str(exc))
    return document_response(found, plaintext, disposition)


def _sharing(runtime: Runtime, session: Session) -> Sharing:
    return views.sharing(runtime, session)


# -- nominees ----------------------------------------------------------------------------------


class NewNominee(BaseModel):
    cnic: Annotated[str, Field(min_length=13, max_length=15)]
    relation: Annotated[str, Field(pattern="^(nominee|guardian)$")] = "nominee"


@router.put("/nominees", summary="Name a nominee or guardian who may read my documents")
def nominate(new: NewNominee, request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.transaction() as session:
        caller = _citizen(request, runtime, session)
        named = views.nominate(runtime, session, caller.pseudonym, new.cnic, new.relation)
        if named is None:
            raise HTTPException(404, "That citizen has no Shanakht account")
        return named


@router.get("/nominees", summary="Whom I named, and who named me")
def nominees(request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.transaction() as session:
        caller = _citizen(request, runtime, session)
        return dict(views.people(runtime, session, caller.pseudonym))


@router.delete("/nominees/{nominee_id}", status_code=204, summary="Remove a nominee")
def remove_nominee(nominee_id: str, request: Request, runtime: RuntimeDep) -> Response:
    with runtime.transaction() as session:
        caller = _citizen(request, runtime, session)
        _sharing(runtime, session).remove_nominee(caller.pseudonym, nominee_id, who=_me(caller))
    return Response(status_code=204)


@router.get("/lockers/{owner_id}/documents", summary="Documents in a locker I was named for")
def their_documents(owner_id: str, request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.transaction() as session:
        caller = _citizen(request, runtime, session)
        found = views.readable_documents(runtime, session, caller.pseudonym, owner_id)
        if found is None:
            raise forbidden(caller, "you are not named for that locker", needed="nominee")
        now = runtime.clock()
        return {"documents": [document_view(d, now) for d in found]}


@router.get(
    "/lockers/{owner_id}/documents/{document_id}/content",
    summary="Read a document in a locker I was named for",
    response_class=StreamingResponse,
)
async def their_content(
    owner_id: str,
    document_id: str,
    request: Request,
    runtime: RuntimeDep,
    disposition: DownloadKind = "inline",
) -> Response:
    found, plaintext = await run_in_threadpool(_open, runtime, request, document_id, owner_id)
    return document_response(found, plaintext, disposition)


@router.get("/types", summary="The document types a locker holds")
def types() -> dict[str, Any]:
    return {
        "types": [
            {
                "code": t.code,
                "name": t.name,
                "issuer": t.department,
                "classification": t.classification.value,
            }
            for t in DOCUMENT_TYPES.values()
        ]
    }
