"""Documents in a citizen's locker: issued by a department or uploaded, stored encrypted.

A write stores the ciphertext first and then records it in the caller's transaction: if the
transaction fails, the object is an orphan for `sweep_orphans`, never a row without its
content. Object keys carry the time they were written, so the sweeper can tell an orphan from
an upload whose transaction has not committed yet without asking anything else.

Deleting shreds the data keys in the transaction; the ciphertext is removed afterwards by
`sweep`, so a failed commit never loses a document that is still recorded.

A document's row is sealed (`audit.row_seal`): every column, so its owner, status, revocation,
validity, classification, type and current version are as the service wrote them. Every write
re-seals it, a compare-and-set on the old MAC; every read verifies it. A row whose seal does not
verify (a revoked document set active by SQL, one moved to another locker, a MAC set NULL) is
no document to its owner, a nominee, a share link, a department or a legal basis, and the
issuer cannot build on it; the verifier, for which an absent record means "never delivered,
authentic", is told it is not valid instead (`recorded`). The version row is not sealed: see
`locker.models`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from audit import AuditLog, holds_cnic
from audit.row_seal import MAC_COLUMN, RowSeal
from locker.access import Accessor, record
from locker.crypto import Context, decrypt_stream, encrypt_stream, new_data_key, unwrap, wrap
from locker.doctypes import SELF, document_type
from locker.errors import LockerError
from locker.ids import new_id
from locker.kek import KekProvider
from locker.models import documents, versions
from locker.stores import ObjectStore

CONTENT_TYPES = frozenset(
    {"application/pdf", "image/png", "image/jpeg", "application/json", "application/xml"}
)
ACTIVE, REVOKED, EXPIRED, DELETED = "active", "revoked", "expired", "deleted"
DEFAULT_MAX_BYTES = 1024**3
ORPHAN_GRACE = timedelta(hours=6)  # far longer than any upload takes to commit
EXPIRY_NOTICE = timedelta(days=30)
_ISSUER_DOC_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,63}")
# documents/<2 letters of the id>/<id>.<version>-<when written>: 256 folders made once, so a
# new document costs no new folder (and no folder to sync). Keys of the earlier layout,
# documents/<id>/<version>-<when>, stay valid where recorded and are swept alike.
_OBJECT_KEY = re.compile(
    r"documents/(?:[a-p]{2}/[a-p]{32}\.|[a-p]{32}/)[0-9]+-(?P<stamp>[0-9]{8}T[0-9]{6})"
)
_STAMP = "%Y%m%dT%H%M%S"
# Built once: a new document's rows are written inside the database's write lock (SQLite).
_INSERT_DOCUMENT = insert(documents)
_INSERT_VERSION = insert(versions)
# An issued document's row, unless another request recorded the same issuer's document id
# first (any unique key: the id is fresh, and the URI is made of the issuer's id).
_INSERT_ISSUED = {
    "postgresql": postgresql.insert(documents).on_conflict_do_nothing().returning(documents.c.id),
    "sqlite": sqlite.insert(documents).on_conflict_do_nothing().returning(documents.c.id),
}

Seal = Callable[[bytes], bytes]  # plaintext SHA-256 -> detached CMS by the issuer's seal


class DocumentRefused(LockerError):
    """A document that cannot be issued, changed or read as asked; the message says why."""


class DocumentTooLarge(DocumentRefused):
    """The content passed the locker's size limit; nothing of it was kept."""

    code = "document.too_large"
    field = "file"


class UnknownDocument(LockerError):
    """No such document in this locker (or not this citizen's)."""

    code = "document.unknown"


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    owner: str
    doctype: str
    issuer: str
    issuer_doc_id: str | None
    uri: str
    title: str
    status: str  # as recorded: active, revoked or deleted; see `state` for expiry
    issued_at: datetime
    valid_until: datetime | None
    classification: str
    version: int
    revoked_at: datetime | None
    revocation_reason: str | None
    sha256: bytes
    size: int
    content_type: str
    signature: bytes | None
    mac: bytes | None = None  # the row's seal as read, for the compare-and-set of a change
    sealed: bool = True  # False only from `Locker.recorded`: the row's seal does not verify

    @property
    def uploaded(self) -> bool:
        return self.issuer == SELF

    def state(self, now: datetime) -> str:
        """active, revoked or expired, as of `now`."""
        if self.status == ACTIVE and self.valid_until is not None and self.valid_until <= now:
            return EXPIRED
        return self.status

    def expires_soon(self, now: datetime) -> bool:
        """Whether the citizen should be reminded: active, and expiring within 30 days."""
        return (
            self.state(now) == ACTIVE
            and self.valid_until is not None
            and self.valid_until - now <= EXPIRY_NOTICE
        )


@dataclass(frozen=True, slots=True)
class Issued:
    document: Document
    outcome: str  # created, updated (a new version) or unchanged (a retry)


class Locker:
    def __init__(
        self,
        session: Session,
        *,
        store: ObjectStore,
        keks: KekProvider,
        audit: AuditLog,
        clock: Callable[[], datetime],
        seal: RowSeal,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self._db = session
        self._store = store
        self._keks = keks
        self._audit = audit
        self._clock = clock
        self._seal = seal
        self._max_bytes = max_bytes

    # -- writing ------------------------------------------------------------------------------

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
        who: Accessor,
        valid_until: datetime | None = None,
        seal: Seal | None = None,
    ) -> Issued:
        """Issue a document into `owner`'s locker, or a new version of the one this issuer
        document id names. The same content again is a retry: it changes nothing and answers
        the document as it stands, so a retry never makes two."""
        kind = document_type(doctype)
        if issuer == SELF or issuer != kind.department:
            raise DocumentRefused(
                f"{kind.name}s are issued by {kind.department}, not {issuer}",
                code="document.issuer", field="doctype", doctype=doctype,
            )  # fmt: skip
        _check_issuer_doc_id(issuer_doc_id)
        _check_title(title)
        earlier = self._by_issuer_id(issuer, issuer_doc_id)
        if earlier is not None:
            _check_sealed(earlier)
            _check_same_subject(earlier, owner, doctype)
        document_id = earlier.id if earlier is not None else new_id()
        version = earlier.version + 1 if earlier is not None else 1
        stored = self._store_content(document_id, version, owner, content, content_type, seal)
        if earlier is None:
            created = self._insert_new(
                document_id, owner, kind.code, issuer, issuer_doc_id, title, valid_until,
                kind.classification.value, stored,
            )  # fmt: skip
            if created is not None:
                self._note("locker.document.issued", who, created, document=created.id, version=1)
                return Issued(created, "created")
            earlier = self._by_issuer_id(issuer, issuer_doc_id)  # another request made it first
            assert earlier is not None  # noqa: S101 (the insert failed on this very key)
            _check_sealed(earlier)
            _check_same_subject(earlier, owner, doctype)
        return self._update(earlier, stored, title, valid_until, who)

    def upload(
        self,
        *,
        owner: str,
        doctype: str,
        title: str,
        content: Iterable[bytes],
        content_type: str,
        who: Accessor,
    ) -> Document:
        """A citizen's own copy of a document: kept encrypted like an issued one, shown as
        uploaded by the citizen, never as verified."""
        kind = document_type(doctype)
        _check_title(title)
        document_id = new_id()
        stored = self._store_content(document_id, 1, owner, content, content_type, None)
        created = self._insert_new(
            document_id, owner, kind.code, SELF, None, title, None,
            kind.classification.value, stored,
        )  # fmt: skip
        assert created is not None  # noqa: S101 (a fresh id cannot collide)
        self._note("locker.document.uploaded", who, created, document=created.id, version=1)
        return created

    def revoke(self, *, issuer: str, issuer_doc_id: str, reason: str, who: Accessor) -> Document:
        """Mark an issued document revoked: it stays in the locker, shown as revoked, and is
        never released to a department again."""
        found = self._by_issuer_id(issuer, issuer_doc_id, lock=True)
        if found is None or found.status == DELETED:
            raise UnknownDocument("this issuer has no document with that id", field="doc_id")
        _check_sealed(found)
        _check_title(reason, "a revocation reason", "reason")
        if found.status != REVOKED:
            self._change(found, status=REVOKED, revoked_at=self._clock(), revocation_reason=reason)
            self._note(
                "locker.document.revoked", who, found, fields="status", document=found.id,
                version=found.version,
            )  # fmt: skip
        return self.get(found.id, owner=found.owner)

    def delete(self, document_id: str, *, owner: str, who: Accessor) -> None:
        """Delete an upload: its keys are shredded now, its ciphertext removed by `sweep`.
        Issued documents belong to the issuer's record and are revoked, not deleted."""
        found = self.get(document_id, owner=owner)
        if not found.uploaded:
            raise DocumentRefused(
                "an issued document cannot be deleted; only uploads can", code="document.issued"
            )
        self._change(found, status=DELETED)
        self._db.execute(
            update(versions).where(versions.c.document_id == document_id).values(wrapped_key=None)
        )
        self._note("locker.document.deleted", who, found, document=found.id)

    # -- reading ------------------------------------------------------------------------------

    def get(self, document_id: str, *, owner: str) -> Document:
        found = self.find(document_id)
        if found is None or found.owner != owner:
            raise UnknownDocument("no such document in this locker")
        return found

    def find(self, document_id: str) -> Document | None:
        """The document, whoever owns it (for a caller that checks access itself)."""
        row = self._db.execute(_select().where(documents.c.id == document_id)).first()
        if row is None or row.status == DELETED or not self._seal.check(documents, row._mapping):
            return None
        return _document(row)

    def issued(self, issuer: str, issuer_doc_id: str) -> Document | None:
        """The document `issuer` issued under its own id, if any (not if deleted, nor if its
        row's seal does not verify)."""
        return _honoured(self.recorded(issuer, issuer_doc_id))

    def recorded(self, issuer: str, issuer_doc_id: str) -> Document | None:
        """`issued`, but a row whose seal does not verify comes back too, with `sealed`
        False: for the verifier, which must not take a tampered record (a revocation undone
        by SQL) for a document that was never delivered, and so tells it is not valid."""
        found = self._by_issuer_id(issuer, issuer_doc_id)
        if found is None or (found.sealed and found.status == DELETED):
            return None
        return found  # a row failing its seal comes back whatever its status says

    def list(self, owner: str) -> list[Document]:
        """Everything in `owner`'s locker, newest first."""
        rows = self._db.execute(
            _select()
            .where(documents.c.owner == owner, documents.c.status != DELETED)
            .order_by(documents.c.issued_at.desc(), documents.c.id)
        )
        return [_document(row) for row in rows if self._seal.check(documents, row._mapping)]

    def open(
        self, document_id: str, *, owner: str, who: Accessor, action: str = "locker.document.read"
    ) -> tuple[Document, Iterator[bytes]]:
        """The document and its plaintext, streamed; the stream raises (DigestMismatch) before
        its end if the content is not what was stored, so a caller must not treat a stream
        cut short as a complete document."""
        found = self.get(document_id, owner=owner)
        return found, self.content(found, who=who, action=action)

    def content(
        self,
        found: Document,
        *,
        who: Accessor,
        action: str = "locker.document.read",
        details: Mapping[str, str] | None = None,
    ) -> Iterator[bytes]:
        """`found`'s current version, decrypted as it streams, recorded as read by `who`
        (with `details` added to the entry: a legal-basis grant and its disclosure delay)."""
        row = self._db.execute(
            select(versions.c.object_key, versions.c.wrapped_key).where(
                versions.c.document_id == found.id, versions.c.version == found.version
            )
        ).one()
        if row.wrapped_key is None:
            raise UnknownDocument("that document was deleted")
        context = Context(found.id, found.version, found.owner)
        data_key = unwrap(row.wrapped_key, self._keks.get, context)
        self._note(action, who, found, output="document", **(details or {}))
        return decrypt_stream(
            self._store.get(row.object_key), data_key, context, expected_sha256=found.sha256
        )

    # -- housekeeping -------------------------------------------------------------------------

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

    def sweep_orphans(self, grace: timedelta = ORPHAN_GRACE) -> int:
        """Remove objects no version records, once older than `grace`: what a write left when
        its transaction failed or its process died between the store and the commit; and the
        scraps of writes whose process died mid-put (temporary files, unfinished uploads)."""
        cutoff = self._clock() - grace
        removed = 0
        for key in self._store.keys("documents/"):
            found = _OBJECT_KEY.fullmatch(key)
            if found is None or _written_at(found["stamp"]) > cutoff:
                continue
            known = self._db.execute(
                select(versions.c.version).where(versions.c.object_key == key)
            ).first()
            if known is None:
                self._store.delete(key)
                removed += 1
        return removed + self._store.remove_scraps("documents/", cutoff)

    # -- inside -------------------------------------------------------------------------------

    def _store_content(
        self,
        document_id: str,
        version: int,
        owner: str,
        content: Iterable[bytes],
        content_type: str,
        seal: Seal | None,
    ) -> _Stored:
        """Encrypt and store the content, and seal its digest: all before the first database
        write, since on SQLite that write takes the one write lock until the commit."""
        if content_type not in CONTENT_TYPES:
            raise DocumentRefused(
                f"{content_type or 'no type'} is not one of {', '.join(sorted(CONTENT_TYPES))}",
                code="document.type", field="file",
            )  # fmt: skip
        context = Context(document_id, version, owner)
        data_key = new_data_key()
        checked = _checked(content, content_type, self._max_bytes)
        sealed = encrypt_stream(checked, data_key, context)
        now = self._clock()
        object_key = f"documents/{document_id[:2]}/{document_id}.{version}-{now.strftime(_STAMP)}"
        self._store.put(object_key, sealed)
        return _Stored(
            version=version,
            object_key=object_key,
            wrapped_key=wrap(data_key, self._keks.current(), context),
            sha256=sealed.sha256,
            size=sealed.plaintext_size,
            content_type=content_type,
            created_at=now,
            signature=seal(sealed.sha256) if seal is not None else None,
        )

    def _insert_new(
        self,
        document_id: str,
        owner: str,
        doctype: str,
        issuer: str,
        issuer_doc_id: str | None,
        title: str,
        valid_until: datetime | None,
        classification: str,
        stored: _Stored,
    ) -> Document | None:
        """Record a new document; None if another request recorded this issuer's document id
        first (its object stays an orphan for the sweeper). An upload's id is fresh and cannot
        collide; an issue's insert does nothing on a conflict (no savepoint to roll back to,
        two statements fewer inside the write lock), and says so by returning no row."""
        uri = f"{issuer}-{doctype}-{issuer_doc_id or document_id}"
        row: dict[str, Any] = {
            "id": document_id, "owner": owner, "doctype": doctype, "issuer": issuer,
            "issuer_doc_id": issuer_doc_id, "uri": uri, "title": title, "status": ACTIVE,
            "issued_at": stored.created_at, "valid_until": valid_until,
            "classification": classification, "version": 1, "revoked_at": None,
            "revocation_reason": None,
        }  # fmt: skip
        mac = self._seal.mac(documents, row)
        row[MAC_COLUMN] = mac
        if issuer_doc_id is None:
            self._db.execute(_INSERT_DOCUMENT, row)
        else:
            dialect = self._db.get_bind().dialect.name
            if self._db.execute(_INSERT_ISSUED[dialect], row).first() is None:
                return None
        self._insert_version(document_id, stored)
        return Document(
            document_id, owner, doctype, issuer, issuer_doc_id, uri, title, ACTIVE,
            stored.created_at, valid_until, classification, 1, None, None, stored.sha256,
            stored.size, stored.content_type, stored.signature, mac,
        )  # fmt: skip

    def _update(
        self,
        earlier: Document,
        stored: _Stored,
        title: str,
        valid_until: datetime | None,
        who: Accessor,
    ) -> Issued:
        current = self._by_issuer_id(earlier.issuer, earlier.issuer_doc_id or "", lock=True)
        assert current is not None  # noqa: S101 (documents are never removed, only marked)
        if not current.sealed:
            self._store.delete(stored.object_key)
            _check_sealed(current)
        if current.sha256 == stored.sha256 and current.content_type == stored.content_type:
            self._store.delete(stored.object_key)  # a retry: keep what was recorded
            return Issued(current, "unchanged")
        if current.status != ACTIVE:
            self._store.delete(stored.object_key)
            raise DocumentRefused(
                f"that document is {current.status}; issue a new one instead",
                code=f"document.{current.status}", field="doc_id",
            )  # fmt: skip
        version = current.version + 1
        if version != stored.version:  # another update got in between: number this one after
            self._store.delete(stored.object_key)
            raise DocumentRefused(
                "the document changed while this update ran; send it again",
                code="document.changed",
            )  # fmt: skip
        self._insert_version(current.id, stored)
        self._change(current, version=version, title=title, valid_until=valid_until)
        self._note("locker.document.updated", who, current, document=current.id, version=version)
        return Issued(self.get(current.id, owner=current.owner), "updated")

    def _insert_version(self, document_id: str, stored: _Stored) -> None:
        self._db.execute(
            _INSERT_VERSION,
            {
                "document_id": document_id, "version": stored.version,
                "object_key": stored.object_key, "wrapped_key": stored.wrapped_key,
                "sha256": stored.sha256, "size": stored.size,
                "content_type": stored.content_type, "created_at": stored.created_at,
                "signature": stored.signature,
            },
        )  # fmt: skip

    def _note(
        self,
        action: str,
        who: Accessor,
        found: Document,
        *,
        fields: str = "content",
        output: str = "none",
        **extra: str | int | None,
    ) -> None:
        record(
            self._audit, action, who, owner=found.owner, resource=found.uri, fields=fields,
            output=output, doctype=found.doctype, extra=extra,
        )  # fmt: skip

    def _by_issuer_id(
        self, issuer: str, issuer_doc_id: str, *, lock: bool = False
    ) -> Document | None:
        query = _BY_ISSUER_ID_FOR_UPDATE if lock else _BY_ISSUER_ID
        row = self._db.execute(query, {"issuer": issuer, "issuer_doc_id": issuer_doc_id}).first()
        if row is None:
            return None
        return _document(row, sealed=self._seal.check(documents, row._mapping))

    def _change(self, found: Document, **changes: Any) -> None:
        """Write `changes` to `found`'s row (one whose seal verified) with a new seal, unless the
        row is no longer what was read: its old MAC is the compare-and-set."""
        row = {**_columns(found), **changes}
        mac = self._seal.mac(documents, row)
        written = self._db.execute(
            update(documents)
            .where(documents.c.id == found.id, documents.c.mac == found.mac)
            .values(**changes, mac=mac)
        )
        if getattr(written, "rowcount", 0) != 1:
            raise DocumentRefused(
                "the document changed while this update ran; send it again",
                code="document.changed",
            )  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Stored:
    """A version's ciphertext, written to the store and not yet recorded."""

    version: int
    object_key: str
    wrapped_key: bytes
    sha256: bytes
    size: int
    content_type: str
    created_at: datetime
    signature: bytes | None


_MAGIC: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "application/json": (b"{", b"["),
    "application/xml": (b"<",),
}


_SIGNATURE_BYTES = max(len(magic) for magics in _MAGIC.values() for magic in magics)
_HEAD_MOST = 64 * 1024  # leading whitespace a JSON or XML document may have before its start


def _checked(content: Iterable[bytes], content_type: str, limit: int) -> Iterator[bytes]:
    """`content`, refused as it streams if it is empty, larger than `limit`, or does not start
    the way its declared type does (so a page cannot be stored, and later served, as a PDF).

    The start is judged on enough bytes to hold a signature, however the content was cut into
    chunks (a client's chunked body may send a PDF's first byte alone)."""
    total = 0
    head: bytes | None = b""  # kept back until the start can be judged; None once it was
    for chunk in content:
        if not chunk:
            continue
        total += len(chunk)
        if total > limit:
            raise DocumentTooLarge(f"a document is at most {limit} bytes", most=limit)
        if head is not None:
            head += chunk
            if not _judgeable(head, content_type):
                continue
            _check_start(head, content_type)
            chunk, head = head, None
        yield chunk
    if total == 0:
        raise DocumentRefused("the document is empty", code="document.empty", field="file")
    if head is not None:  # all of it was shorter than a signature
        _check_start(head, content_type)
        yield head


def _judgeable(head: bytes, content_type: str) -> bool:
    return len(_without_preamble(head, content_type)) >= _SIGNATURE_BYTES or len(head) >= _HEAD_MOST


def starts_as(head: bytes, content_type: str) -> bool:
    """Whether `head` begins the way `content_type` does (after any whitespace and byte-order
    mark, for JSON and XML): the one check of a declared type, here and in bulk uploads."""
    return _without_preamble(head, content_type).startswith(_MAGIC[content_type])


def _check_start(head: bytes, content_type: str) -> None:
    if not starts_as(head, content_type):
        raise DocumentRefused(
            f"the content is not {content_type}",
            code="document.content", field="file", content_type=content_type,
        )  # fmt: skip


def _without_preamble(head: bytes, content_type: str) -> bytes:
    """The head without what may come before a JSON or XML document's start: whitespace and a
    byte-order mark."""
    if content_type in ("application/json", "application/xml"):
        return head.lstrip(b" \t\r\n").removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
    return head


def _check_issuer_doc_id(issuer_doc_id: str) -> None:
    if not _ISSUER_DOC_ID.fullmatch(issuer_doc_id):
        raise DocumentRefused(
            "an issuer document id is 1 to 64 letters, digits, '.', '_', '/' and '-'",
            code="document.number", field="doc_id",
        )  # fmt: skip
    if holds_cnic(issuer_doc_id):
        raise DocumentRefused(
            "an issuer document id must not hold a CNIC", code="text.cnic", field="doc_id"
        )


def _check_title(text: str, what: str = "a title", field: str = "title") -> None:
    if not text.strip() or len(text) > 200:
        raise DocumentRefused(
            f"{what} is 1 to 200 characters", code=f"document.{field}", field=field, most=200
        )
    if holds_cnic(text):
        raise DocumentRefused(f"{what} must not hold a CNIC", code="text.cnic", field=field)


def _check_same_subject(earlier: Document, owner: str, doctype: str) -> None:
    if (earlier.owner, earlier.doctype) != (owner, doctype):
        raise DocumentRefused(
            "that issuer document id was used for another document",
            code="document.number_taken", field="doc_id",
        )  # fmt: skip


def _written_at(stamp: str) -> datetime:
    return datetime.strptime(stamp, _STAMP).replace(tzinfo=UTC)


def _select(*, outer: bool = False) -> Any:
    """Documents with their current version. `outer` keeps a document whose version row is
    missing (deleted by SQL: version rows carry no seal), for the lookups to which an absent
    document means something (`Locker._by_issuer_id`): it comes back as failing its seal."""
    return select(
        documents,
        versions.c.sha256,
        versions.c.size,
        versions.c.content_type,
        versions.c.signature,
    ).join(
        versions,
        (versions.c.document_id == documents.c.id) & (versions.c.version == documents.c.version),
        isouter=outer,
    )


# A document by its issuer's id, built once: every issue looks for it (the retry check), and
# the verifier, for which no record means an order never delivered: a record hidden by
# deleting its version row must not pass for that.
_BY_ISSUER_ID = _select(outer=True).where(
    documents.c.issuer == bindparam("issuer"),
    documents.c.issuer_doc_id == bindparam("issuer_doc_id"),
)
_BY_ISSUER_ID_FOR_UPDATE = _BY_ISSUER_ID.with_for_update(of=documents)


def _document(row: Any, *, sealed: bool = True) -> Document:
    """The document of a `_select` row; one whose version row is missing fails its seal."""
    whole = row.sha256 is not None
    return Document(
        row.id, row.owner, row.doctype, row.issuer, row.issuer_doc_id, row.uri, row.title,
        row.status, row.issued_at, row.valid_until, row.classification, row.version,
        row.revoked_at, row.revocation_reason, bytes(row.sha256) if whole else b"",
        row.size or 0, row.content_type or "",
        bytes(row.signature) if row.signature is not None else None,
        bytes(row.mac) if row.mac is not None else None, sealed and whole,
    )  # fmt: skip


def _columns(found: Document) -> dict[str, Any]:
    """`found`'s row in `locker_documents` as stored, but its MAC: what its seal covers."""
    return {
        "id": found.id, "owner": found.owner, "doctype": found.doctype, "issuer": found.issuer,
        "issuer_doc_id": found.issuer_doc_id, "uri": found.uri, "title": found.title,
        "status": found.status, "issued_at": found.issued_at, "valid_until": found.valid_until,
        "classification": found.classification, "version": found.version,
        "revoked_at": found.revoked_at, "revocation_reason": found.revocation_reason,
    }  # fmt: skip


def _check_sealed(found: Document) -> None:
    """Refuse to build on a document whose row's seal does not verify: changed or written by
    someone without the service's keys, it is for an administrator to look into (`shanakht
    audit integrity` lists it), not for an issuer to update, revoke or issue over."""
    if not found.sealed:
        raise DocumentRefused(
            "the locker's record of that document fails its integrity check; "
            "the service's administrators must look into it",
            code="document.unsealed", field="doc_id",
        )  # fmt: skip


def _honoured(found: Document | None) -> Document | None:
    """`found` if its row's seal verified; a document whose seal does not is none."""
    return found if found is not None and found.sealed else None
