"""The locker's tables: documents, and their versions with wrapped data keys.

Content lives in the object store as ciphertext only; a version row holds where, its
plaintext SHA-256 (checked before anything is served), and the data key wrapped under a KEK.
Deleting a document shreds its keys (the wrapped key is set to NULL): what remains in the
store can never be read again, whatever happens to the object.

The rows that say who may read what are sealed (`audit.row_seal`, `mac`): a document's row
(its owner, status and revocation, validity, classification, type, current version), share
links, nominees and guardians, legal-access requests, as well as consents. A version row is
not: its digest, data key and signature are bound to the document's id, version and owner by
the data key's wrapping and the content's encryption (`locker.crypto.Context`), so a changed
one fails to decrypt or to match its digest; it refuses a read, it grants none.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from audit.models import NAMING_CONVENTION
from audit.sqltypes import UtcDateTime

metadata = MetaData(naming_convention=NAMING_CONVENTION)

documents = Table(
    "locker_documents",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("owner", String(64), nullable=False, index=True, comment="the citizen's pseudonym"),
    Column("doctype", String(16), nullable=False),
    Column("issuer", String(32), nullable=False, comment="a department id, or 'self'"),
    Column("issuer_doc_id", String(64), nullable=True, comment="the issuer's own id"),
    Column("uri", String(160), nullable=False, unique=True, comment="issuer-doctype-docid"),
    Column("title", String(200), nullable=False),
    Column("status", String(16), nullable=False, comment="active | revoked | deleted"),
    Column("issued_at", UtcDateTime(), nullable=False),
    Column("valid_until", UtcDateTime(), nullable=True),
    Column("classification", String(16), nullable=False, server_default="confidential"),
    Column("version", Integer, nullable=False, server_default="1", comment="the current one"),
    Column("revoked_at", UtcDateTime(), nullable=True),
    Column("revocation_reason", String(200), nullable=True),
    Column("mac", LargeBinary(32), nullable=True, comment="row seal: HMAC-SHA256, audit.row_seal"),
    UniqueConstraint("issuer", "issuer_doc_id", name="uq_locker_documents_issuer_doc_id"),
)

versions = Table(
    "locker_versions",
    metadata,
    Column("document_id", String(32), ForeignKey(documents.c.id), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("object_key", String(200), nullable=False),
    Column("wrapped_key", LargeBinary, nullable=True, comment="NULL once shredded"),
    Column("sha256", LargeBinary(32), nullable=False, comment="of the plaintext"),
    Column("size", BigInteger, nullable=False),
    Column("content_type", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("signature", LargeBinary, nullable=True, comment="detached CMS by the issuer's seal"),
)

shares = Table(
    "locker_shares",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("token_hash", LargeBinary(32), nullable=False, unique=True, comment="SHA-256 of it"),
    Column("document_id", String(32), ForeignKey(documents.c.id), nullable=False, index=True),
    Column("owner", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
    Column("uses", Integer, nullable=False, server_default="0"),
    Column("max_uses", Integer, nullable=True),
    Column("mac", LargeBinary(32), nullable=True, comment="row seal: HMAC-SHA256, audit.row_seal"),
    Index("ix_locker_shares_expires_at", "expires_at"),  # the retention sweep's
)

nominees = Table(
    "locker_nominees",
    metadata,
    Column("owner", String(64), primary_key=True),
    Column("nominee", String(64), primary_key=True, index=True, comment="their pseudonym"),
    Column("relation", String(16), nullable=False, comment="nominee | guardian"),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("mac", LargeBinary(32), nullable=True, comment="row seal: HMAC-SHA256, audit.row_seal"),
)

inbox = Table(
    "locker_inbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("owner", String(64), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("message", String(500), nullable=False),
    Column(
        "params",
        Text,
        nullable=True,
        comment="the message's facts as JSON, for pages to say it in the reader's language",
    ),
    Column("reference", String(64), nullable=True, comment="a request, consent or document id"),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("visible_from", UtcDateTime(), nullable=False, comment="later under a delay"),
    Column("read_at", UtcDateTime(), nullable=True),
)

requests = Table(
    "locker_requests",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("requester", String(64), nullable=False, index=True, comment="a client id"),
    Column("owner", String(64), nullable=False, index=True),
    Column("doctypes", String(200), nullable=False, comment="space separated codes"),
    Column("purpose_code", String(32), nullable=False),
    Column("purpose_text", String(500), nullable=False),
    Column("data_life_days", Integer, nullable=False, comment="how long the requester keeps it"),
    Column("valid_from", UtcDateTime(), nullable=False),
    Column("valid_until", UtcDateTime(), nullable=False),
    Column("fetch_limit", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("status", String(16), nullable=False, comment="pending | approved | denied | expired"),
    Column("decided_at", UtcDateTime(), nullable=True),
)

consents = Table(
    "locker_consents",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("request_id", String(32), ForeignKey(requests.c.id), nullable=False, unique=True),
    Column("requester", String(64), nullable=False, index=True),
    Column("owner", String(64), nullable=False, index=True),
    Column("doctypes", String(200), nullable=False),
    Column("purpose_code", String(32), nullable=False),
    Column("purpose_text", String(500), nullable=False),
    Column("data_life_days", Integer, nullable=False),
    Column("valid_from", UtcDateTime(), nullable=False),
    Column("valid_until", UtcDateTime(), nullable=False),
    Column("fetch_limit", Integer, nullable=False),
    Column("artifact", Text, nullable=False, comment="the signed terms, a JWS"),
    Column("status", String(16), nullable=False, comment="active | paused | revoked | expired"),
    Column("uses", Integer, nullable=False, server_default="0"),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("status_changed_at", UtcDateTime(), nullable=False),
    Column("mac", LargeBinary(32), nullable=True, comment="row seal: HMAC-SHA256, audit.row_seal"),
)

legal_requests = Table(
    "locker_legal_requests",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("department", String(32), nullable=False, index=True, comment="acted for"),
    Column("filer", String(64), nullable=False, index=True, comment="the officer's pseudonym"),
    Column("owner", String(64), nullable=False, index=True, comment="the citizen's pseudonym"),
    Column("doctypes", String(200), nullable=False, comment="space separated codes"),
    Column("legal_reference", String(100), nullable=False),
    Column("reason", String(500), nullable=False),
    Column("disclosure_delay_days", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("status", String(16), nullable=False, comment="pending | approved | refused"),
    Column("decided_at", UtcDateTime(), nullable=True),
    Column("decider", String(64), nullable=True, comment="the second officer's pseudonym"),
    Column("refusal", String(500), nullable=True, comment="why the second officer refused"),
    Column("opened_at", UtcDateTime(), nullable=True, comment="the first opening"),
    Column("disclose_after", UtcDateTime(), nullable=True, comment="set at the first opening"),
    Column("mac", LargeBinary(32), nullable=True, comment="row seal: HMAC-SHA256, audit.row_seal"),
)

jobs = Table(
    "locker_jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(32), nullable=False, comment="bulk-issue | rewrap"),
    Column("department", String(32), nullable=True, index=True, comment="acted for, if any"),
    Column("starter", String(80), nullable=False, comment="who started it, by pseudonym"),
    Column(
        "state",
        String(16),
        nullable=False,
        comment="queued | running | stopping | done | stopped | failed | interrupted",
    ),
    Column("done", Integer, nullable=False),
    Column("total", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("summary", Text, nullable=False, comment="JSON: counts and the problem, no PII"),
    Column(
        "lane",
        String(32),
        nullable=True,
        unique=True,
        comment="the kind while a one-at-a-time job is live, else NULL",
    ),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("beat_at", UtcDateTime(), nullable=False, comment="the runner's last sign of life"),
    Column("ended_at", UtcDateTime(), nullable=True),
)

job_lines = Table(
    "locker_job_lines",
    metadata,
    Column("job_id", String(32), ForeignKey(jobs.c.id), primary_key=True),
    Column("line", Integer, primary_key=True, autoincrement=False),
    Column("doc_id", String(64), nullable=False),
    Column("title", String(200), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("reason", Text, nullable=True, comment="JSON: a message and its facts, no PII"),
)
