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
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from fastapi import Response
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from api import metrics
from api.runtime import Runtime
from audit import pseudonym
from identity.cnic import normalise_cnic
from locker.access import Accessor
from locker.doctypes import document_type
from locker.documents import Document, UnknownDocument
from locker.sharing import Share, Sharing
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
            metrics.locker_bytes("out", len(block))
            yield bytes(block)
            block.clear()
    if block:
        metrics.locker_bytes("out", len(block))
        yield bytes(block)


# -- what the JSON routes and the citizen's pages both do -----------------------------------------


def owner_accessor(owner: str) -> Accessor:
    """The citizen acting on their own locker."""
    return Accessor(owner, "citizen", "owner")


def sharing(runtime: Runtime, session: Session) -> Sharing:
    return Sharing(
        session, audit=runtime.audit_log(session), clock=runtime.clock, seal=runtime.row_seal
    )


def open_readable(
    runtime: Runtime, session: Session, reader: str, document_id: str, owner: str | None = None
) -> tuple[Document, Iterator[bytes]]:
    """The document and its plaintext stream, for `reader` in their own locker or (with
    `owner`) in a locker they were named for, recorded as read by them on that footing."""
    if owner is None:
        return runtime.locker(session).open(document_id, owner=reader, who=owner_accessor(reader))
    if sharing(runtime, session).relation(owner, reader) is None:
        raise UnknownDocument("no such document in a locker you may read")
    who = Accessor(reader, "citizen", "nominee")
    return runtime.locker(session).open(document_id, owner=owner, who=who)


def readable_documents(
    runtime: Runtime, session: Session, reader: str, owner: str
) -> list[Document] | None:
    """`owner`'s documents for `reader`, named their nominee or guardian; None if not named."""
    if sharing(runtime, session).relation(owner, reader) is None:
        return None
    return runtime.locker(session).list(owner)


def upload_own(
    runtime: Runtime,
    session: Session,
    owner: str,
    *,
    doctype: str,
    title: str,
    content: Iterable[bytes],
    content_type: str,
) -> Document:
    """A citizen's own upload into their locker (any registered type, shown as theirs)."""
    try:
        document_type(doctype)
    except LookupError as exc:
        raise UnknownDocument(str(exc)) from None
    created = runtime.locker(session).upload(
        owner=owner, doctype=doctype, title=title, content=content,
        content_type=content_type, who=owner_accessor(owner),
    )  # fmt: skip
    metrics.locker_bytes("in", created.size)
    return created


def share_view(share: Share, now: datetime) -> dict[str, Any]:
    return {
        "id": share.id,
        "document_id": share.document_id,
        "created_at": share.created_at.isoformat(),
        "expires_at": share.expires_at.isoformat(),
        "revoked": share.revoked_at is not None,
        "uses": share.uses,
        "max_uses": share.max_uses,
        "live": share.live(now),
    }


def share_document(
    runtime: Runtime,
    session: Session,
    owner: str,
    document_id: str,
    *,
    hours: int,
    max_uses: int | None,
) -> dict[str, Any]:
    """A new share link to one of `owner`'s documents: its view and its URL (shown once)."""
    found = runtime.locker(session).get(document_id, owner=owner)
    made, token = sharing(runtime, session).share(
        found, who=owner_accessor(owner), life=timedelta(hours=hours), max_uses=max_uses
    )
    base = runtime.settings.public_url.rstrip("/")
    return {**share_view(made, runtime.clock()), "url": f"{base}/locker/shared/{token}"}


def nominate(
    runtime: Runtime, session: Session, owner: str, cnic: str, relation: str
) -> dict[str, Any] | None:
    """Name the citizen with `cnic` as `owner`'s nominee or guardian; None if that CNIC has no
    account (which the caller says plainly: naming someone needs them to have one)."""
    nominee = pseudonym(normalise_cnic(cnic), key=runtime.pseudonym_key)
    account = runtime.provider(session).accounts.by_pseudonym(nominee)
    if account is None:
        return None
    named = sharing(runtime, session).nominate(owner, nominee, relation, who=owner_accessor(owner))
    return {"id": named.nominee, "name": account.profile.full_name, "relation": relation}


def people(runtime: Runtime, session: Session, me: str) -> dict[str, list[dict[str, Any]]]:
    """Whom `me` named, and whose lockers `me` was named for, with their names."""
    shared, accounts = sharing(runtime, session), runtime.provider(session).accounts

    def person(ref: str, relation: str) -> dict[str, Any]:
        account = accounts.by_pseudonym(ref)
        name = account.profile.full_name if account is not None else None
        return {"id": ref, "name": name, "relation": relation}

    return {
        "named": [person(n.nominee, n.relation) for n in shared.nominees(me)],
        "lockers": [person(n.owner, n.relation) for n in shared.nominated_by(me)],
    }
