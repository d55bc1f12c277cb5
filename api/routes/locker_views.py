"""How a locker document is shown over HTTP: its fields, and whether its issuer's seal holds.

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
from datetime import datetime
from typing import Any

from cryptography import x509
from sqlalchemy.orm import Session

from api.runtime import Runtime
from locker.doctypes import document_type
from locker.documents import Document
from signing.documents.cms import verify_digest
from signing.errors import SigningError
from signing.pki.authority import PkiNotReady, serial_text

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
