"""The verifier's page, no sign-in: `/verify`, for a headmaster at the school gate with a
transfer order in hand.

Three ways in, one answer. The camera (a small script, /static/verify.js, reads the QR in the
browser with qr-scanner, served from here, and posts its text through the paste form), a photo
or the PDF (a multipart form), or the code's text pasted. Upload and paste are plain form
POSTs, so the page works without scripts; the verdict page is drawn here, from the very
function `POST /signing/verify` answers with (`verdict_on_text`, `verdict_on_file`), so the
page and the JSON API can never disagree.

The answer is one of seven words: authentic, altered, revoked, expired, unknown issuer, cannot
read (a blurred or cut-off code, a file that is no photo or PDF, garbage) and not a Shanakht
document (a QR code that is someone else's: a URL, a payment code). What the reader can be
shown (the order's fields, who signed) comes from the verdict only once the signature has
verified, and only when it is worth reading: for a revoked or altered code it is not.

Bad input is an answer, never a 500: an empty or oversized upload, or empty or oversized text,
is said beside its field (400/413, with the limits `POST /signing/verify` applies); a file that
cannot be opened or shows no QR code is the verdict "cannot read".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl

from cryptography import x509
from cryptography.x509.oid import NameOID
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.deps import RuntimeDep, capped_body, media_type
from api.form_stream import BrokenForm
from api.i18n import Text
from api.routes.signing import (
    MAX_PAYLOAD_CHARS,
    UploadTooLarge,
    read_upload,
    verdict_on_file,
    verdict_on_text,
)
from api.runtime import Runtime
from api.web import PAGE_CSP, check_csrf, render
from signing import files, verdict
from signing.documents.transfer_order import DOCUMENT_TYPE as TRANSFER_ORDER
from signing.files import MAX_FILE_BYTES, FileVerdict, NoQrCode, UnreadableFile
from signing.pki.authority import PkiNotReady, serial_text
from signing.qr import PREFIX
from signing.verdict import Outcome, Verdict

router = APIRouter(tags=["pages"], include_in_schema=False)

# The form page runs two scripts of this service's own: qr-scanner (which imports its worker
# module from /static/vendor and starts the worker from a blob: URL it makes of it) and
# verify.js. Only this page's policy allows them; every other page keeps PAGE_CSP's none.
VERIFY_CSP = PAGE_CSP + "; script-src 'self'; worker-src blob:"
# What a urlencoded paste form may weigh: the code's text percent-encoded (3 bytes a character
# at worst) and the CSRF token.
MAX_PASTE_BYTES = 3 * MAX_PAYLOAD_CHARS + 1024
PAKISTAN = timezone(timedelta(hours=5), "PKT")  # no daylight saving since 2009

AUTHENTIC, ALTERED, REVOKED, EXPIRED = "authentic", "altered", "revoked", "expired"
UNKNOWN_ISSUER, CANNOT_READ, NOT_OURS = "unknown_issuer", "cannot_read", "not_shanakht"

# (tone for the style sheet, the verdict in a word or two, what the reader should do)
ANSWERS: dict[str, tuple[str, Text, Text]] = {
    AUTHENTIC: (
        "ok",
        Text("Authentic"),
        Text("Compare the details below with the paper in front of you: they must be the same."),
    ),
    ALTERED: (
        "bad",
        Text("Altered"),
        Text("Do not accept this document. Ask the office that issued it for the original."),
    ),
    REVOKED: (
        "bad",
        Text("Revoked"),
        Text("Do not accept this document. Ask the office that issued it what has happened."),
    ),
    EXPIRED: (
        "warn",
        Text("Expired"),
        Text("The document was genuine but is no longer in force: ask for a renewed one."),
    ),
    UNKNOWN_ISSUER: (
        "bad",
        Text("Unknown issuer"),
        Text("Do not accept this document unless the office that issued it confirms it."),
    ),
    CANNOT_READ: (
        "warn",
        Text("Cannot read"),
        Text(
            "Try again: photograph the code flat, in good light, in focus and in full, "
            "or upload the PDF, or paste the code's text."
        ),
    ),
    NOT_OURS: (
        "warn",
        Text("Not a Shanakht document"),
        Text(
            "This QR code was not issued through Shanakht, so it cannot be checked here. "
            "The text of a Shanakht code begins with SHK1:."
        ),
    ),
}
ICONS = {"ok": "✔", "bad": "✖", "warn": "⚠"}

# The domain's sentences (signing/verdict.py, signing/files.py), in words a page can translate.
# The English is the domain's own, word for word: a test holds them equal.
REASONS: dict[str, Text] = {
    verdict.MALFORMED: Text(
        "This is not a readable Shanakht code: it may be damaged, cut off or from elsewhere."
    ),
    verdict.NEWER: Text(
        "This code is from a newer version of the system: update the app and scan it again."
    ),
    verdict.FAILED: Text("This code could not be checked, so it must not be trusted."),
    verdict.UNKNOWN: Text(
        "This code names a signer this app does not trust, so it cannot be confirmed."
    ),
    verdict.FORGED: Text(
        "This code's signature does not match its contents: it has been altered or forged."
    ),
    verdict.REVOKED: Text(
        "This code's signer has been revoked, so the document must not be trusted."
    ),
    verdict.DOCUMENT_REVOKED: Text(
        "The office that issued this document has revoked it: it is no longer in force."
    ),
    verdict.DOCUMENT_UNSEALED: Text(
        "The record of this document fails its integrity check, so it must not be trusted."
    ),
    verdict.OUT_OF_TERM: Text(
        "This code is dated when its signer could not sign, so it is not genuine."
    ),
    verdict.WRONG_DOCUMENT: Text(
        "This code is genuine but the document shown is not the one it was issued for."
    ),
    verdict.ONLINE_REVOKED: Text(
        "The online check says this code's signer is revoked: do not trust the document."
    ),
    verdict.ONLINE_UNKNOWN: Text(
        "The online check does not recognise this code's signer: it cannot be confirmed."
    ),
    verdict.CONFIRMED: Text(
        "This code is genuine and in force, and the online check confirms its signer."
    ),
    verdict.OFFLINE: Text(
        "This code is genuine and in force by this device's trust list; no online check was made."
    ),
    verdict.STALE: Text(
        "This code is genuine and in force by this device's trust list, which is out of date,"
        " so a recent revocation could be missed."
    ),
    verdict.UNREACHABLE: Text(
        "This code is genuine and in force by this device's trust list, but the online"
        " revocation check could not be made."
    ),
    files.PDF_ALTERED: Text(
        "The PDF has been changed since it was signed, or its signature is not ours."
    ),
    files.PDF_SIGNER_REVOKED: Text(
        "The officer's certificate that signed this PDF has been revoked."
    ),
}
NO_FILE_OPENED = Text(
    "This file cannot be opened: send a photo (PNG or JPEG) or the PDF of the document."
)
NO_QR_FOUND = Text("No QR code could be read on it.")
NOT_OURS_REASON = Text("This QR code holds something other than a Shanakht signature.")

# The QR payload's short keys, as a person reads them, in the order a transfer order has them.
FIELD_LABELS: dict[str, Text] = {
    "no": Text("Order number"),
    "dt": Text("Order date"),
    "nm": Text("Teacher"),
    "post": Text("Post"),
    "fr": Text("From school"),
    "to": Text("To school"),
    "auth": Text("Ordered by"),
}
DOCUMENT_TYPES: dict[str, Text | str] = {TRANSFER_ORDER: Text("Teacher transfer order")}


@dataclass(frozen=True)
class Finding:
    """What the verdict page shows: the verdict and what may be read with it."""

    key: str
    reason: Text | str
    facts: list[tuple[Text | str, Text | str]] = field(default_factory=list)
    checks: list[tuple[Text, Text]] = field(default_factory=list)

    @property
    def tone(self) -> str:
        return ANSWERS[self.key][0]

    @property
    def title(self) -> Text:
        return ANSWERS[self.key][1]

    @property
    def advice(self) -> Text:
        return ANSWERS[self.key][2]

    @property
    def icon(self) -> str:
        return ICONS[self.tone]


def _is_ours(text: str) -> bool:
    """Does this text claim to be a Shanakht code ("SHK1:", or a later version's "SHKn:")?
    A code that does but fails to parse is damaged (cannot read); one that does not is
    someone else's."""
    head, colon, _ = text[:8].partition(":")
    return bool(colon) and head.startswith(PREFIX[:3]) and head[3:].isdigit()


def _reason(words: str) -> Text | str:
    if words.startswith(verdict.EXPIRED):  # "... expired at <when> UTC.": drawn from the payload
        return words
    return REASONS.get(words, words)


def _when(moment: datetime) -> str:
    return moment.astimezone(PAKISTAN).strftime("%Y-%m-%d %H:%M PKT")


def _named(certificate: x509.Certificate) -> str:
    """Who a certificate is for, "common name, title, unit", in the order one says it."""
    parts = []
    for oid in (NameOID.COMMON_NAME, NameOID.TITLE, NameOID.ORGANIZATIONAL_UNIT_NAME):
        parts += [str(a.value) for a in certificate.subject.get_attributes_for_oid(oid)]
    return ", ".join(parts)


def finding(found: Verdict, checked: FileVerdict | None = None) -> Finding:
    """The page's answer from the domain's verdict (and, for a file, what the file check found)."""
    outcome = found.outcome
    if outcome is Outcome.MALFORMED:
        text = checked.qr_text if checked is not None else None
        ours = _is_ours(text) if text is not None else True
        return Finding(
            CANNOT_READ if ours else NOT_OURS, _reason(found.reason) if ours else NOT_OURS_REASON
        )
    key = {
        Outcome.AUTHENTIC: AUTHENTIC,
        Outcome.ALTERED: ALTERED,
        Outcome.REVOKED: REVOKED,
        Outcome.EXPIRED: EXPIRED,
        Outcome.UNKNOWN_SIGNER: UNKNOWN_ISSUER,
    }[outcome]
    facts: list[tuple[Text | str, Text | str]] = []
    checks: list[tuple[Text, Text]] = []
    readable = key in (AUTHENTIC, EXPIRED)  # a revoked or altered code's words prove nothing
    if readable and found.payload is not None:
        payload = found.payload
        kind = DOCUMENT_TYPES.get(payload.document_type, payload.document_type)
        facts.append((Text("Document"), kind))
        fields = dict(found.fields)
        for short, label in FIELD_LABELS.items():
            if short in fields:
                facts.append((label, str(fields.pop(short))))
        facts += [(name, str(value)) for name, value in fields.items()]  # a newer order's
        facts.append((Text("Signed on"), _when(payload.issued_at)))
        if payload.expires_at is not None:
            facts.append((Text("Valid until"), _when(payload.expires_at)))
    if found.revoked_at is not None:  # the department revoked the document itself
        facts.append((Text("Revoked on"), _when(found.revoked_at)))
    if found.signer is not None and key != ALTERED:
        certificate = found.signer.certificate
        facts.append((Text("Code signed by"), _named(certificate)))
        facts.append((Text("Certificate serial"), serial_text(certificate.serial_number)))
    if readable and checked is not None and checked.pdf is not None and checked.pdf.signer:
        facts.append((Text("PDF signed by"), _named(checked.pdf.signer)))
    if found.signer is not None:
        checks.append((Text("Signature on the QR code"), Text("valid")))
        checks.append(
            (
                Text("Online revocation check"),
                Text("made") if found.checked_online else Text("not made"),
            )
        )
    if checked is not None and checked.pdf is not None:
        checks.append(
            (Text("Signature on the PDF"), Text("valid") if checked.pdf.ok else Text("broken"))
        )
    return Finding(key, _reason(found.reason), facts, checks)


def _check_text(runtime: Runtime, text: str) -> Finding | None:
    try:
        found = verdict_on_text(runtime, text)
    except PkiNotReady:
        return None
    if found.outcome is Outcome.MALFORMED and not _is_ours(text):
        return Finding(NOT_OURS, NOT_OURS_REASON)
    return finding(found)


def _check_file(runtime: Runtime, data: bytes) -> Finding | None:
    try:
        checked = verdict_on_file(runtime, data)
    except PkiNotReady:
        return None
    except UnreadableFile:
        return Finding(CANNOT_READ, NO_FILE_OPENED)
    except NoQrCode:
        return Finding(CANNOT_READ, NO_QR_FOUND)
    return finding(checked.verdict, checked)


def _form(request: Request, runtime: Runtime, status_code: int = 200, **context: Any) -> Response:
    context.setdefault("errors", {})
    response = render(
        request,
        runtime,
        "verify.html",
        status_code,
        max_mb=MAX_FILE_BYTES // (1024 * 1024),
        max_chars=MAX_PAYLOAD_CHARS,
        **context,
    )
    response.headers["Content-Security-Policy"] = VERIFY_CSP
    return response


def _answer(request: Request, runtime: Runtime, found: Finding | None, how: Text) -> Response:
    if found is None:  # a deployment whose PKI is not set up has no trust list to check against
        return render(
            request,
            runtime,
            "message.html",
            503,
            heading=Text("Documents cannot be checked yet"),
            message=Text(
                "This service has not been set up to sign documents yet. Try again later."
            ),
            link="/",
            link_text="Home",
        )
    return render(request, runtime, "verify_result.html", finding=found, how=how)


@router.get("/verify", response_model=None)
def verify_page(request: Request, runtime: RuntimeDep) -> Response:
    return _form(request, runtime)


@router.post("/verify", response_model=None)
async def verify_submitted(request: Request, runtime: RuntimeDep) -> Response:
    kind = media_type(request)
    if kind == "multipart/form-data":
        return await _uploaded(request, runtime)
    if kind == "application/x-www-form-urlencoded":
        return await _pasted(request, runtime)
    return _form(
        request,
        runtime,
        415,
        error=Text("Send the form on this page: a photo or PDF, or the code's text."),
    )


async def _pasted(request: Request, runtime: Runtime) -> Response:
    body = await capped_body(request, MAX_PASTE_BYTES)
    too_long = Text(
        "This text is too long: a Shanakht code has at most %(limit)s characters.",
        limit=MAX_PAYLOAD_CHARS,
    )
    if body is None:
        return _form(request, runtime, 413, errors={"payload": too_long})
    try:
        fields = dict(
            parse_qsl(body.decode("ascii", "replace"), keep_blank_values=True, max_num_fields=4)
        )
    except ValueError:
        fields = {}
    check_csrf(request, runtime, fields.get("csrf"))
    # Base45 has a space in its alphabet, so only line ends (a textarea adds them) are taken
    # off the end; before the code there is nothing to lose.
    text = fields.get("payload", "").lstrip().rstrip("\r\n\t")
    if not text:
        empty = Text("Paste the text of the QR code here.")
        return _form(request, runtime, 400, errors={"payload": empty})
    if len(text) > MAX_PAYLOAD_CHARS:
        return _form(request, runtime, 413, errors={"payload": too_long}, payload=text[:200])
    found = await run_in_threadpool(_check_text, runtime, text)
    return _answer(request, runtime, found, Text("You gave the text of the code."))


async def _uploaded(request: Request, runtime: Runtime) -> Response:
    too_big = Text("This file is too large: send one of at most %(mb)s MB.",
                   mb=MAX_FILE_BYTES // (1024 * 1024))  # fmt: skip
    try:
        upload = await read_upload(request)
    except UploadTooLarge:
        return _form(request, runtime, 413, errors={"file": too_big})
    except BrokenForm:  # a multipart body that does not parse, or too many fields
        return _form(request, runtime, 400, errors={"file": NO_FILE_OPENED})
    check_csrf(request, runtime, upload.fields.get("csrf"))
    if not upload.data:
        empty = Text("Choose a photo of the QR code, or the PDF, to upload.")
        return _form(request, runtime, 400, errors={"file": empty})
    found = await run_in_threadpool(_check_file, runtime, upload.data)
    return _answer(request, runtime, found, Text("You uploaded a file."))
