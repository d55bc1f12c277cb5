"""Signed documents over HTTP: the trust list, verification for anyone, signing for officers.

`POST /signing/verify` takes what a verifier has: the QR's text (JSON), or a photo or the PDF
(multipart `file`). It answers one verdict, checked against this deployment's own trust list
and, since the CA is right here, online status too, and whether the issuing department has
revoked the order in the teacher's locker (`with_document_status`).
`POST /signing/orders/transfer` lets an officer with `signing.officer` in a department sign a
transfer order with the certificate the service holds for them, and answers the signed PDF.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Annotated, Any

from cryptography import x509
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from pyhanko.sign.timestamps import TimeStamper
from sqlalchemy.orm import Session

from api import denials, metrics
from api.bearer import token_principal
from api.challenges import refusing, unauthenticated
from api.denials import Principal
from api.deps import RuntimeDep, capped_body, media_type
from api.form_stream import BrokenForm, FileTooLarge, FormStream
from api.problems import problem, problem_responses
from api.runtime import Runtime
from audit import AuditEvent, pseudonym
from identity.cnic import normalise_cnic
from identity.login import ACR_SUBSTANTIAL
from identity.oidc.errors import InvalidToken
from locker.access import Accessor
from locker.doctypes import document_type
from locker.documents import REVOKED as LOCKER_REVOKED
from signing.documents.cms import sign_detached, sign_digest
from signing.documents.orders import Signer, sign_transfer_order
from signing.documents.pades import LocalTimeStamper, http_timestamper
from signing.documents.transfer_order import DOCUMENT_TYPE, TransferOrder
from signing.files import MAX_FILE_BYTES, FileVerdict, check_file
from signing.pki.authority import Authority, serial_text
from signing.pki.profiles import OFFICER_SIGNING, QR_SIGNER
from signing.qr.dictionary import DICTIONARY_V1, DICTIONARY_V1_ID
from signing.trustlist import TrustList, load_trust_list
from signing.verdict import Outcome, Verdict, document_revoked, document_unsealed, verify_qr

router = APIRouter(prefix="/signing", tags=["signing"])

MAX_PAYLOAD_CHARS = 8192
SIGNING_SCOPE = "signing"


class VerifyText(BaseModel):
    payload: Annotated[str, Field(min_length=1, max_length=MAX_PAYLOAD_CHARS)]


class TransferOrderRequest(BaseModel):
    department: Annotated[str, Field(min_length=2, max_length=32)]
    order_no: Annotated[str, Field(min_length=1, max_length=40)]
    order_date: date
    teacher_name: Annotated[str, Field(min_length=1, max_length=100)]
    teacher_cnic: Annotated[str, Field(min_length=13, max_length=15)]
    from_school: Annotated[str, Field(min_length=1, max_length=150)]
    to_school: Annotated[str, Field(min_length=1, max_length=150)]
    post: Annotated[str, Field(min_length=1, max_length=80)]
    authority: Annotated[str, Field(min_length=1, max_length=100)]
    valid_days: Annotated[int | None, Field(ge=1, le=3650)] = None


# Trust lists by the SHA-256 of their document: checking one validates every signer's chain,
# which need not be done again for each verification.
_loaded: dict[bytes, TrustList] = {}


def _trust(runtime: Runtime) -> tuple[TrustList, x509.Certificate]:
    global _loaded
    with runtime.sessions() as session:
        authority = runtime.authority(session)
        document, root = authority.trust_list(), authority.root()
    digest = hashlib.sha256(document).digest()
    trust = _loaded.get(digest)
    if trust is None:
        trust = load_trust_list(document, root=root, now=runtime.clock())
        _loaded = {digest: trust}  # swapped whole: readers in other threads never see it empty
    return trust, root


def _online(runtime: Runtime, certificate: x509.Certificate) -> str:
    with runtime.sessions() as session:
        return runtime.authority(session).online_status(certificate)


@router.get("/trust-list", response_class=Response, summary="The signed trust list (JWS)")
def trust_list(runtime: RuntimeDep) -> Response:
    with runtime.sessions() as session:
        document = runtime.authority(session).trust_list()
    return Response(
        document, media_type="application/jose", headers={"Cache-Control": "public, max-age=300"}
    )


@router.get(
    "/qr-dictionary",
    response_class=Response,
    summary="The zlib preset dictionary SHK1 codes are compressed with",
)
def qr_dictionary() -> Response:
    """What an outside verifier loads into zlib (its id is the Adler-32 in each code's header)."""
    return Response(
        DICTIONARY_V1,
        media_type="application/octet-stream",
        headers={
            "Cache-Control": "public, max-age=86400, immutable",
            "Shanakht-Dictionary-Id": f"{DICTIONARY_V1_ID:08x}",
        },
    )


def _verdict_json(verdict: Verdict, checked: FileVerdict | None = None) -> dict[str, Any]:
    signer = verdict.signer
    body: dict[str, Any] = {
        "outcome": verdict.outcome.value,
        "authentic": verdict.authentic,
        "reason": verdict.reason,
        "fields": verdict.fields,
        "signer": None
        if signer is None
        else {
            "subject": signer.certificate.subject.rfc4514_string(),
            "serial": serial_text(signer.certificate.serial_number),
        },
        "checked_online": verdict.checked_online,
    }
    if verdict.payload is not None and verdict.authentic:
        body["issued_at"] = verdict.payload.issued_at.isoformat()
        expires = verdict.payload.expires_at
        body["expires_at"] = expires.isoformat() if expires else None
    if verdict.revoked_at is not None:
        # The issuing department revoked the document itself: when (not why; see Verdict).
        body["revocation"] = {"revoked_at": verdict.revoked_at.isoformat()}
    if checked is not None and checked.pdf is not None:
        body["pdf"] = {"signature_valid": checked.pdf.ok, "problem": checked.pdf.problem}
    return body


def verdict_on_text(runtime: Runtime, text: str) -> Verdict:
    """The verdict on a QR code's text, against this deployment's trust list and the CA's
    online status. What `POST /signing/verify` and the verifier page (/verify) both answer."""
    trust, _root = _trust(runtime)
    status = lambda certificate: _online(runtime, certificate)  # noqa: E731
    found = verify_qr(text, trust, now=runtime.clock(), status=status)
    with runtime.sessions() as session:
        return with_document_status(runtime, session, found)


def verdict_on_file(runtime: Runtime, data: bytes) -> FileVerdict:
    """The verdict on a photo of a QR code or a signed PDF, as `verdict_on_text` does it.
    Raises UnreadableFile (not a PNG, JPEG or PDF that opens) or NoQrCode (no code on it)."""
    trust, root = _trust(runtime)
    status = lambda certificate: _online(runtime, certificate)  # noqa: E731
    checked = check_file(data, trust, root=root, now=runtime.clock(), status=status)
    with runtime.sessions() as session:
        return replace(checked, verdict=with_document_status(runtime, session, checked.verdict))


def with_document_status(runtime: Runtime, session: Session, found: Verdict) -> Verdict:
    """`found`, made REVOKED if the department whose QR signer signed the code has revoked the
    document in the locker since: the cryptography cannot know that, the issuer's record does.

    The document is looked up as `sign_and_deliver` delivered it: issued by the signer's
    department (as the CA recorded it when it certified the signer, never a word the code
    carries), under the order number the code carries (its signed "no" field), and of the
    code's document type. Only an authentic or expired verdict is looked up; every other one
    refuses the code already.

    An order that was never delivered into a locker (the teacher had no Shanakht account when
    it was signed, or it was signed in a department other than the one whose transfer orders
    lockers hold) has no record here, so its revocation cannot be seen: it keeps verifying as
    authentic. A register of revocations for undelivered orders is future work.

    A record whose row seal fails (its revocation undone by SQL, say) is not taken as absent,
    which would read as authentic: the code is refused as not valid (`document_unsealed`).
    """
    if found.signer is None or found.payload is None:
        return found
    if found.outcome not in (Outcome.AUTHENTIC, Outcome.EXPIRED):
        return found
    number = found.fields.get("no")
    if not isinstance(number, str) or not number:
        return found
    certified = runtime.authority(session).get(found.signer.certificate.serial_number)
    if certified is None or certified.department is None:
        return found
    document = runtime.locker(session).recorded(certified.department, number)
    if document is not None and not document.sealed:
        return document_unsealed(found)  # absent would read as never delivered: authentic
    if (
        document is None
        or document.doctype != found.payload.document_type
        or document.status != LOCKER_REVOKED
    ):
        return found
    return document_revoked(found, revoked_at=document.revoked_at)


class UploadTooLarge(Exception):
    """The form's file is over MAX_FILE_BYTES (declared so, or found so as it was read)."""


@dataclass(frozen=True)
class Upload:
    """A multipart form's `file` (None if it has none) and its text fields (a CSRF token)."""

    data: bytes | None
    fields: dict[str, str]


async def read_upload(request: Request, *, max_fields: int = 2) -> Upload:
    """The `file` of a multipart form, held to MAX_FILE_BYTES in memory (never spooled to a
    temporary file: a document someone verifies may carry personal data): a declared length
    over it is refused before the body is read, and the file is refused as soon as it passes
    it. Raises UploadTooLarge, and BrokenForm for a body that is not a whole multipart form."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FILE_BYTES + 64 * 1024:
        raise UploadTooLarge
    form = FormStream(request, max_fields=max_fields, fields_after_file=True)
    try:
        fields, file, data = await form.whole(MAX_FILE_BYTES)
    except FileTooLarge:
        raise UploadTooLarge from None
    return Upload(data if file is not None and file.name == "file" else None, fields)


def _too_large(limit: int) -> Response:
    return problem(413, "The request is too large", f"at most {limit} bytes")


@router.post(
    "/verify",
    summary="Verify a QR code: its text, a photo, or the signed PDF",
    responses=problem_responses(400, 413, 415, 422),
)
async def verify(request: Request, runtime: RuntimeDep) -> Any:
    kind = media_type(request)
    if kind == "application/json":
        text = await capped_body(request, 2 * MAX_PAYLOAD_CHARS)
        if text is None:
            return _too_large(2 * MAX_PAYLOAD_CHARS)
        try:
            body = VerifyText.model_validate_json(text)
        except ValueError:
            return problem(400, 'Send {"payload": "SHK1:..."}')
        verdict = await run_in_threadpool(verdict_on_text, runtime, body.payload)
        return _verdict_json(verdict)
    if kind == "multipart/form-data":
        try:
            upload = await read_upload(request)
        except UploadTooLarge:
            return problem(413, "The file is too large", f"at most {MAX_FILE_BYTES} bytes")
        except BrokenForm:
            return problem(400, "The body is not a whole multipart form")
        if upload.data is None:
            return problem(400, "Send the photo or PDF as the form field `file`")
        checked = await run_in_threadpool(verdict_on_file, runtime, upload.data)
        return _verdict_json(checked.verdict, checked)
    return problem(415, "Send JSON or a multipart form", "application/json or multipart/form-data")


class NotAllowed(PermissionError):
    """An officer's token refused here (403): says whom, and what was missing, for the audit
    log (`api.denials`)."""

    def __init__(self, message: str, *, who: Principal, needed: str) -> None:
        super().__init__(message)
        self.who = who
        self.needed = needed


def _not_allowed(request: Request, runtime: Runtime, exc: NotAllowed) -> Response:
    """The 403, once recorded (the refusing transaction has ended by now)."""
    denials.record(request, runtime, exc.who, exc.needed)
    return problem(403, "Not allowed", str(exc))


def _unsigned(request: Request, exc: InvalidToken) -> Response:
    """The 401 of a request with no officer's token that verifies, with its RFC 6750 challenge."""
    refused = problem(401, "Sign in as an officer", exc.description)
    refused.headers["WWW-Authenticate"] = refusing(request, exc.description)
    return refused


def _officer(request: Request, runtime: Runtime, department: str) -> tuple[str, str]:
    """(citizen id, pseudonym) of the officer whose access token this is: a token with the
    `signing` scope (so only an e-service the officer let sign for them can), from a sign-in
    with a second factor, not DPoP-bound (no proof is checked here yet), of an officer with
    signing.officer in `department`. InvalidToken (401, counted) or NotAllowed (403) otherwise."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    try:
        if scheme.lower() != "bearer" or not value:
            raise InvalidToken("send an officer's access token")
        with runtime.transaction() as session:
            provider = runtime.provider(session)
            access = provider.tokens.verify_access_token(value.strip())
            if access.dpop_jkt:
                raise InvalidToken("DPoP-bound tokens are not accepted here yet")
            if SIGNING_SCOPE not in access.scopes:
                raise NotAllowed(
                    f"the token lacks the {SIGNING_SCOPE} scope",
                    who=token_principal(provider, access),
                    needed=f"scope:{SIGNING_SCOPE}",
                )
            if access.acr != ACR_SUBSTANTIAL:  # the token's own, not the session's since
                raise NotAllowed(
                    "signing needs a sign-in with a second factor",
                    who=token_principal(provider, access),
                    needed=denials.SUBSTANTIAL,
                )
            account = provider.accounts.by_id(access.citizen_id) if access.citizen_id else None
            if account is None:
                raise InvalidToken("that token does not speak for an officer")
            held = {(g.department, g.role) for g in provider.roles.of(account.id)}
    except InvalidToken:
        if not unauthenticated(request):  # no token at all is no bad token (RFC 6750 3.1)
            denials.invalid_token()
        raise
    if (department, "signing.officer") not in held:
        raise NotAllowed(
            f"you do not hold signing.officer in {department}",
            who=Principal.citizen(account.pseudonym, via=access.client_id),
            needed="role:signing.officer",
        )
    return account.id, account.pseudonym


def _officer_signer(
    runtime: Runtime, session: Any, department: str, officer: str
) -> tuple[Signer, int] | None:
    """The officer's current signing certificate in `department` with the key the service
    holds for it, and its serial; None if they have none."""
    authority = runtime.authority(session)
    issued = authority.current(OFFICER_SIGNING, department=department, holder=officer)
    if issued is None:
        return None
    issuing, _ = authority.issuing()
    return Signer(authority.private_key(issued), issued.certificate, [issuing]), issued.serial


def _timestamper(runtime: Runtime, authority: Authority) -> TimeStamper:
    """The configured outside time-stamp authority, or the service's own, in process."""
    url = runtime.settings.tsa_url
    return http_timestamper(url) if url else LocalTimeStamper(authority.tsa())


def _b64url(digest: bytes) -> str:
    """A digest as audit details carry it: base64url, since hex has runs of 13 digits often
    enough (1 in 60) for the audit log's CNIC guard to refuse the entry."""
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _record_signature(
    runtime: Runtime, session: Any, officer: str, subject: str | None, details: dict[str, str]
) -> None:
    metrics.signature("document")
    runtime.audit_log(session).append(
        AuditEvent(
            actor=officer,
            action="signing.document.signed",
            subject=subject,
            outcome="success",
            details=details,
        )
    )


class CannotSign(Exception):
    """Nothing to sign with yet: the officer has no signing certificate, or the department
    no QR signer; `missing` says which (OFFICER_CERTIFICATE or QR_SIGNER_CERTIFICATE)."""

    def __init__(self, message: str, *, missing: str) -> None:
        super().__init__(message)
        self.missing = missing


OFFICER_CERTIFICATE = "officer-signing"
QR_SIGNER_CERTIFICATE = "qr-signer"


@dataclass(frozen=True, slots=True)
class SignedOrder:
    pdf: bytes
    filename: str
    delivered: str  # for the `Shanakht-Locker` header: "delivered; ..." or "not-delivered; why"


def sign_and_deliver(
    runtime: Runtime, session: Any, order: TransferOrderRequest, officer_pseudonym: str
) -> SignedOrder:
    """Sign `order` as the officer (whose signing.officer role the caller has checked), record
    it, and deliver it into the teacher's locker, in the caller's transaction: what the API
    and the officer's pages both do. CannotSign, or ValueError (a field TransferOrder
    refused), otherwise."""
    teacher = pseudonym(normalise_cnic(order.teacher_cnic), key=runtime.pseudonym_key)
    fields = TransferOrder(
        order_no=order.order_no,
        order_date=order.order_date,
        teacher_name=order.teacher_name,
        teacher_pseudonym=teacher,
        from_school=order.from_school,
        to_school=order.to_school,
        post=order.post,
        authority=order.authority,
    )
    authority = runtime.authority(session)
    names = dict(runtime.provider(session).roles.departments())
    officer = _officer_signer(runtime, session, order.department, officer_pseudonym)
    qr = authority.current(QR_SIGNER, department=order.department)
    if officer is None or qr is None:
        if officer is None:
            raise CannotSign(
                f"{order.department} has no officer-signing certificate of yours",
                missing=OFFICER_CERTIFICATE,
            )
        raise CannotSign(f"{order.department} has no QR signer", missing=QR_SIGNER_CERTIFICATE)
    issuing, _ = authority.issuing()
    signer, serial = officer
    signed = sign_transfer_order(
        fields,
        department=names.get(order.department, order.department),
        officer=signer,
        qr_signer=Signer(authority.private_key(qr), qr.certificate, [issuing]),
        now=runtime.clock(),
        valid_for=timedelta(days=order.valid_days) if order.valid_days else None,
        timestamper=_timestamper(runtime, authority),
    )
    # Delivered before the signature's audit entry: the delivery encrypts, stores and seals the
    # PDF before its first write, and the audit entry is a write (on SQLite, the write lock
    # from then to the commit). The other way round, every writer of both processes waited
    # while one order was sealed: the lock was held 7-9 ms a signing instead of 2-3.
    delivered = _deliver(runtime, session, order, teacher, officer_pseudonym, signer, signed.pdf)
    _record_signature(
        runtime,
        session,
        officer_pseudonym,
        teacher,
        {
            "type": "teacher-transfer-order",
            "order": order.order_no,
            "sha256": _b64url(signed.document_hash),
            "certificate": serial_text(serial),
        },
    )
    filename = order.order_no.replace("/", "-") + ".pdf"
    return SignedOrder(signed.pdf, filename, delivered)


def _sign_order(runtime: Runtime, request: Request, order: TransferOrderRequest) -> Response:
    try:
        _citizen, officer_pseudonym = _officer(request, runtime, order.department)
    except InvalidToken as exc:
        return _unsigned(request, exc)
    except NotAllowed as exc:
        return _not_allowed(request, runtime, exc)
    try:
        with runtime.transaction() as session:
            signed = sign_and_deliver(runtime, session, order, officer_pseudonym)
    except CannotSign as exc:
        return problem(409, "Cannot sign yet", str(exc))
    return Response(
        signed.pdf,
        status_code=201,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{signed.filename}"',
            "Shanakht-Locker": signed.delivered,
        },
    )


def _deliver(
    runtime: Runtime,
    session: Any,
    order: TransferOrderRequest,
    teacher: str,
    officer: str,
    signer: Signer,
    pdf: bytes,
) -> str:
    """Issue the signed order into the teacher's locker, sealed by the officer who signed it;
    what happened, for the `Shanakht-Locker` header: "delivered", or why not."""
    if order.department != document_type(DOCUMENT_TYPE).department:
        return "not-delivered; transfer orders in lockers are issued by their department only"
    if not runtime.provider(session).accounts.exists(teacher):
        return "not-delivered; the teacher has no Shanakht account yet"
    issued = runtime.locker(session).issue(
        owner=teacher, doctype=DOCUMENT_TYPE, issuer=order.department,
        issuer_doc_id=order.order_no, title=f"Transfer order {order.order_no}",
        content=[pdf], content_type="application/pdf",
        who=Accessor(officer, order.department, "issuer", official=officer),
        seal=lambda sha256: sign_digest(
            sha256, key=signer.key, certificate=signer.certificate, chain=signer.chain
        ),
    )  # fmt: skip
    return f"delivered; document={issued.document.id}"


@router.post(
    "/cms",
    response_class=Response,
    status_code=201,
    summary="Sign any file: a detached CAdES-B signature (officers with signing.officer)",
    responses=problem_responses(400, 401, 403, 409, 413),
)
async def cms_signature(request: Request, runtime: RuntimeDep, department: str) -> Response:
    body = await capped_body(request, MAX_FILE_BYTES)
    if body is None:
        return _too_large(MAX_FILE_BYTES)
    if not body:
        return problem(400, "Send the file to sign as the request body")
    return await run_in_threadpool(_sign_file, runtime, request, department, body)


def _sign_file(runtime: Runtime, request: Request, department: str, data: bytes) -> Response:
    try:
        _citizen, officer_pseudonym = _officer(request, runtime, department)
    except InvalidToken as exc:
        return _unsigned(request, exc)
    except NotAllowed as exc:
        return _not_allowed(request, runtime, exc)
    with runtime.transaction() as session:
        officer = _officer_signer(runtime, session, department, officer_pseudonym)
        if officer is None:
            return problem(409, "Cannot sign yet", "you have no officer-signing certificate")
        signer, serial = officer
        signature = sign_detached(
            data, key=signer.key, certificate=signer.certificate, chain=signer.chain
        )
        _record_signature(
            runtime,
            session,
            officer_pseudonym,
            None,
            {
                "type": "cms",
                "sha256": _b64url(hashlib.sha256(data).digest()),
                "certificate": serial_text(serial),
            },
        )
    return Response(signature, status_code=201, media_type="application/pkcs7-signature")


@router.post(
    "/orders/transfer",
    response_class=Response,
    status_code=201,
    summary="Sign a teacher transfer order (officers with signing.officer)",
    responses=problem_responses(400, 401, 403, 409, 422),
)
def transfer_order(order: TransferOrderRequest, request: Request, runtime: RuntimeDep) -> Response:
    try:
        return _sign_order(runtime, request, order)
    except InvalidToken as exc:
        return _unsigned(request, exc)
    except ValueError as exc:  # a field TransferOrder refused
        return problem(422, "The order is not valid", str(exc))
