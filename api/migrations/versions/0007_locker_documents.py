"""Locker documents

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from audit.sqltypes import UtcDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "locker_documents",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False, comment="the citizen's pseudonym"),
        sa.Column("doctype", sa.String(length=16), nullable=False),
        sa.Column(
            "issuer", sa.String(length=32), nullable=False, comment="a department id, or 'self'"
        ),
        sa.Column(
            "issuer_doc_id", sa.String(length=64), nullable=True, comment="the issuer's own id"
        ),
        sa.Column("uri", sa.String(length=160), nullable=False, comment="issuer-doctype-docid"),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column(
            "status", sa.String(length=16), nullable=False, comment="active | revoked | deleted"
        ),
        sa.Column("issued_at", UtcDateTime(), nullable=False),
        sa.Column("valid_until", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_locker_documents")),
        sa.UniqueConstraint("issuer", "issuer_doc_id", name="uq_locker_documents_issuer_doc_id"),
        sa.UniqueConstraint("uri", name=op.f("uq_locker_documents_uri")),
    )
    op.create_index(op.f("ix_locker_documents_owner"), "locker_documents", ["owner"], unique=False)

    op.create_table(
        "locker_versions",
        sa.Column("document_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("object_key", sa.String(length=200), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True, comment="NULL once shredded"),
        sa.Column("sha256", sa.LargeBinary(length=32), nullable=False, comment="of the plaintext"),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["locker_documents.id"],
            name=op.f("fk_locker_versions_document_id_locker_documents"),
        ),
        sa.PrimaryKeyConstraint("document_id", "version", name=op.f("pk_locker_versions")),
    )


def downgrade() -> None:
    op.drop_table("locker_versions")
    op.drop_index(op.f("ix_locker_documents_owner"), table_name="locker_documents")

    op.drop_table("locker_documents")
