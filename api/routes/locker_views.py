"""How a locker document is shown over HTTP: its fields, its content as a stream, and whether
its issuer's seal holds.

"Verified" is earned, not stored: the seal (a detached CMS over the document's SHA-256) must
validate to this deployment's root now, and its certificate must not be revoked. Validation
is memoised per seal for a few minutes, since a locker listing shows the same seals on every
visit; revocation is read fresh each time, so a revoked seal stops showing as verified at once.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from cryptography import x509
from fastapi import Response
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from api.runtime import Runtime
from locker.doctypes import document_type
from locker.documents import Document
from signing.documents.cms import verify_digest
from signing.errors import SigningError
from signing.pki.authority import PkiNotReady, serial_text

EXTENSIONS = {
    "application/pdf": "pdf",
    "image/png": "png",
    "image/jpeg": "jpg",
    "application/json": "json",
    "application/xml": "xml",
}
BLOCK = 1024 * 1024  # what crosses between the event loop and a worker thread at a time
_MEMO_SECONDS = 300.0
_MEMO_LIMIT = 10_000
_memo: dict[bytes, tuple[float, x509.Certificate | str]] = {}
_memo_lock = threading.Lock()


def document_view(document: Document, now: datetime) -> dict[str, Any]:
    return {
        "id": document.id,
        "uri": document.uri,
        "doctype": document.doctype,
        "type_name": document_type(document.doctype).name,
        "title": document.title,
        "issuer": document.issuer,
        "uploaded": document.uploaded,
        "classification": document.classification,
        "status": document.state(now),
        "issued_at": document.issued_at.isoformat(),
        "valid_until": document.valid_until.isoformat() if document.valid_until else None,
        "expires_soon": document.expires_soon(now),
        "revocation_reason": document.revocation_reason,
        "version": document.version,
        "size": document.size,
        "content_type": document.content_type,
        "sha256": base64.urlsafe_b64encode(document.sha256).rstrip(b"=").decode(),
    }


def _validated(runtime: Runtime, session: Session, document: Document) -> x509.Certificate | str:
    """The seal's certificate if the seal validates to the root now; why not otherwise."""
    assert document.signature is not None  # noqa: S101 (callers check)
    key = hashlib.sha256(document.signature + document.sha256).digest()
    now = time.monotonic()
    with _memo_lock:
        held = _memo.get(key)
    if held is not None and now - held[0] < _MEMO_SECONDS:
        return held[1]
    try:
        root = runtime.authority(session).root()
        outcome: x509.Certificate | str = verify_digest(
            document.signature, document.sha256, trust_roots=[root], now=runtime.clock()
        )
    except PkiNotReady:
        return "the PKI is not set up"
    except SigningError as exc:
        outcome = str(exc)
    with _memo_lock:
        if len(_memo) >= _MEMO_LIMIT:
            _memo.clear()
        _memo[key] = (now, outcome)
    return outcome


def seal_status(runtime: Runtime, session: Session, document: Document) -> dict[str, Any] | None:
    """Whether the issuer's seal holds; None for a citizen's own upload (it has none)."""
    if document.signature is None:
        return None
    validated = _validated(runtime, session, document)
    if isinstance(validated, str):
        return {"verified": False, "problem": validated}
    status = runtime.authority(session).online_status(validated)
    return {
        "verified": status == "good",
        "signer": validated.subject.rfc4514_string(),
        "serial": serial_text(validated.serial_number),
        "certificate_status": status,
    }


def document_response(
    document: Document,
    plaintext: Iterator[bytes],
    disposition: str = "attachment",
    link: str | None = None,
) -> Response:
    """A document streamed as it is decrypted. A plain iterator: Starlette reads it in a
    worker thread, and an exception it raises cuts the response off instead of ending it.
    `link` is a Link header's value (where the issuer's signature is)."""
    name = f"{document.uri.replace('/', '_')}.{EXTENSIONS[document.content_type]}"
    headers = {
        "Content-Length": str(document.size),
        "Content-Disposition": f'{disposition}; filename="{name}"',
        "Repr-Digest": f"sha-256=:{base64.b64encode(document.sha256).decode()}:",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        # A document shown in the browser runs nothing and reaches nothing.
        "Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self'; "
        "style-src 'unsafe-inline'",
    }
    if link is not None:
        headers["Link"] = link
    return StreamingResponse(_blocks(plaintext), media_type=document.content_type, headers=headers)


def _blocks(plaintext: Iterator[bytes]) -> Iterator[bytes]:
    """The plaintext regrouped into 1 MiB blocks: Starlette moves each item of a plain
    iterator to a worker thread and back, and one hop per 64 KiB chunk halved the rate."""
    block = bytearray()
    for chunk in plaintext:
        block += chunk
        if len(block) >= BLOCK:
            yield bytes(block)
            block.clear()
    if block:
        yield bytes(block)
