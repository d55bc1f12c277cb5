"""The locker's tables: documents, and their versions with wrapped data keys.

Content lives in the object store as ciphertext only; a version row holds where, its
plaintext SHA-256 (checked before anything is served), and the data key wrapped under a KEK.
Deleting a document shreds its keys (the wrapped key is set to NULL): what remains in the
store can never be read again, whatever happens to the object.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
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
)
