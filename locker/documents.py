"""Documents in a citizen's locker: issued by a department or uploaded, stored encrypted.

A write stores the ciphertext first and then records it in the caller's transaction: if the
transaction fails, the object is an orphan for the sweeper, never a row without its content.
Deleting shreds the data keys in the transaction; the ciphertext is removed afterwards by
`sweep`, so a failed commit never loses a document that is still recorded.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from audit import AuditEvent, AuditLog
from locker.crypto import Context, decrypt_stream, encrypt_stream, new_data_key, unwrap, wrap
from locker.doctypes import document_type
from locker.errors import LockerError
from locker.kek import KekProvider
from locker.models import documents, versions
from locker.stores import ObjectStore

CONTENT_TYPES = frozenset(
    {"application/pdf", "image/png", "image/jpeg", "application/json", "application/xml"}
)
SELF = "self"  # the issuer of what a citizen uploads
ACTIVE, REVOKED, DELETED = "active", "revoked", "deleted"


class DocumentRefused(LockerError):
    """A document that cannot be issued or read as asked; the message says why."""


class UnknownDocument(LockerError):
    """No such document in this locker (or not this citizen's)."""


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    owner: str
    doctype: str
    issuer: str
    issuer_doc_id: str | None
    uri: str
    title: str
    status: str
    issued_at: datetime
    valid_until: datetime | None
    sha256: bytes
    size: int
    content_type: str


class Locker:
    def __init__(
        self,
        session: Session,
        *,
        store: ObjectStore,
        keks: KekProvider,
        audit: AuditLog,
        clock: Callable[[], datetime],
    ) -> None:
        self._db = session
        self._store = store
        self._keks = keks
        self._audit = audit
        self._clock = clock

    def issue(
        self,
        *,
        owner: str,
        doctype: str,
        issuer: str,
        issuer_doc_id: str,
        title: str,
        content: Iterable[bytes],
        content_type: str,
        actor: str,
        valid_until: datetime | None = None,
    ) -> Document:
        """Issue a document into `owner`'s locker; the same issuer document id again returns
        the document it made the first time (a retry never makes two)."""
        kind = document_type(doctype)
        if issuer not in (kind.department, SELF):
            raise DocumentRefused(f"{kind.name}s are issued by {kind.department}, not {issuer}")
        if content_type not in CONTENT_TYPES:
            raise DocumentRefused(
                f"{content_type} is not one of {', '.join(sorted(CONTENT_TYPES))}"
            )
        earlier = self._by_issuer_id(issuer, issuer_doc_id)
        if earlier is not None:
            if (earlier.owner, earlier.doctype) != (owner, doctype):
                raise DocumentRefused("that issuer document id was used for another document")
            return earlier
        document_id = uuid.uuid4().hex
        context = Context(document_id, 1, owner)
        data_key = new_data_key()
        sealed = encrypt_stream(content, data_key, context)
        object_key = f"documents/{document_id}/1"
        self._store.put(object_key, sealed)
        now = self._clock()
        uri = f"{issuer}-{doctype}-{issuer_doc_id}"
        self._db.execute(
            insert(documents).values(
                id=document_id, owner=owner, doctype=doctype, issuer=issuer,
                issuer_doc_id=issuer_doc_id, uri=uri, title=title, status=ACTIVE,
                issued_at=now, valid_until=valid_until,
            )
        )  # fmt: skip
        self._db.execute(
            insert(versions).values(
                document_id=document_id, version=1, object_key=object_key,
                wrapped_key=wrap(data_key, self._keks.current(), context),
                sha256=sealed.sha256, size=sealed.plaintext_size, content_type=content_type,
                created_at=now,
            )
        )  # fmt: skip
        self._record("locker.document.issued", actor, owner, uri, doctype)
        found = self.get(document_id, owner=owner)
        return found

    def get(self, document_id: str, *, owner: str) -> Document:
        row = self._db.execute(_select().where(documents.c.id == document_id)).first()
        if row is None or row.owner != owner or row.status == DELETED:
            raise UnknownDocument("no such document in this locker")
        return _document(row)

    def open(self, document_id: str, *, owner: str, actor: str) -> tuple[Document, Iterator[bytes]]:
        """The document and its plaintext, streamed; the stream raises (DigestMismatch) before
        its end if the content is not what was stored."""
        found = self.get(document_id, owner=owner)
        row = self._db.execute(
            select(versions.c.object_key, versions.c.wrapped_key).where(
                versions.c.document_id == document_id, versions.c.version == 1
            )
        ).one()
        context = Context(document_id, 1, owner)
        data_key = unwrap(row.wrapped_key, self._keks.get, context)
        self._record("locker.document.read", actor, owner, found.uri, found.doctype)
        plaintext = decrypt_stream(
            self._store.get(row.object_key), data_key, context, expected_sha256=found.sha256
        )
        return found, plaintext

    def delete(self, document_id: str, *, owner: str, actor: str) -> None:
        """Shred the document's keys now; `sweep` removes its ciphertext later."""
        found = self.get(document_id, owner=owner)
        self._db.execute(
            update(versions).where(versions.c.document_id == document_id).values(wrapped_key=None)
        )
        self._db.execute(
            update(documents).where(documents.c.id == document_id).values(status=DELETED)
        )
        self._record("locker.document.deleted", actor, owner, found.uri, found.doctype)

    def sweep(self) -> int:
        """Remove the ciphertext of shredded versions (call after the deletes committed)."""
        rows = self._db.execute(
            select(versions.c.object_key).where(versions.c.wrapped_key.is_(None))
        ).scalars()
        removed = 0
        for object_key in rows:
            if self._store.exists(object_key):
                self._store.delete(object_key)
                removed += 1
        return removed

    def _by_issuer_id(self, issuer: str, issuer_doc_id: str) -> Document | None:
        row = self._db.execute(
            _select().where(
                documents.c.issuer == issuer, documents.c.issuer_doc_id == issuer_doc_id
            )
        ).first()
        return _document(row) if row is not None else None

    def _record(self, action: str, actor: str, owner: str, uri: str, doctype: str) -> None:
        self._audit.append(
            AuditEvent(
                actor=actor,
                action=action,
                subject=owner,
                resource=uri,
                details={"doctype": doctype},
            )
        )


def _select() -> Any:
    return select(
        documents,
        versions.c.sha256,
        versions.c.size,
        versions.c.content_type,
    ).join(versions, (versions.c.document_id == documents.c.id) & (versions.c.version == 1))


def _document(row: Any) -> Document:
    return Document(
        row.id, row.owner, row.doctype, row.issuer, row.issuer_doc_id, row.uri, row.title,
        row.status, row.issued_at, row.valid_until, bytes(row.sha256), row.size,
        row.content_type,
    )  # fmt: skip
