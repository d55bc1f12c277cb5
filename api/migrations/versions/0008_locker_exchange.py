"""Locker versions, shares, nominees, inbox and the once-only exchange

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from audit.sqltypes import UtcDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain index operations: a batch (table copy) on SQLite would drop the append-only triggers.
    op.drop_index("ix_audit_entries_subject", table_name="audit_entries")
    op.create_index("ix_audit_entries_subject_seq", "audit_entries", ["subject", "seq"])

    op.create_table(
        "locker_inbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("message", sa.String(length=500), nullable=False),
        sa.Column(
            "reference",
            sa.String(length=64),
            nullable=True,
            comment="a request, consent or document id",
        ),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("visible_from", UtcDateTime(), nullable=False, comment="later under a delay"),
        sa.Column("read_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_locker_inbox")),
    )
    with op.batch_alter_table("locker_inbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_locker_inbox_owner"), ["owner"], unique=False)

    op.create_table(
        "locker_nominees",
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("nominee", sa.String(length=64), nullable=False, comment="their pseudonym"),
        sa.Column("relation", sa.String(length=16), nullable=False, comment="nominee | guardian"),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("owner", "nominee", name=op.f("pk_locker_nominees")),
    )
    with op.batch_alter_table("locker_nominees", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_locker_nominees_nominee"), ["nominee"], unique=False)

    op.create_table(
        "locker_requests",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("requester", sa.String(length=64), nullable=False, comment="a client id"),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column(
            "doctypes", sa.String(length=200), nullable=False, comment="space separated codes"
        ),
        sa.Column("purpose_code", sa.String(length=32), nullable=False),
        sa.Column("purpose_text", sa.String(length=500), nullable=False),
        sa.Column(
            "data_life_days",
            sa.Integer(),
            nullable=False,
            comment="how long the requester keeps it",
        ),
        sa.Column("valid_from", UtcDateTime(), nullable=False),
        sa.Column("valid_until", UtcDateTime(), nullable=False),
        sa.Column("fetch_limit", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column(
            "status",
            sa.String(length=16),
            nullable=False,
            comment="pending | approved | denied | expired",
        ),
        sa.Column("decided_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_locker_requests")),
    )
    with op.batch_alter_table("locker_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_locker_requests_owner"), ["owner"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_locker_requests_requester"), ["requester"], unique=False
        )

    op.create_table(
        "locker_consents",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("requester", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("doctypes", sa.String(length=200), nullable=False),
        sa.Column("purpose_code", sa.String(length=32), nullable=False),
        sa.Column("purpose_text", sa.String(length=500), nullable=False),
        sa.Column("data_life_days", sa.Integer(), nullable=False),
        sa.Column("valid_from", UtcDateTime(), nullable=False),
        sa.Column("valid_until", UtcDateTime(), nullable=False),
        sa.Column("fetch_limit", sa.Integer(), nullable=False),
        sa.Column("artifact", sa.Text(), nullable=False, comment="the signed terms, a JWS"),
        sa.Column(
            "status",
            sa.String(length=16),
            nullable=False,
            comment="active | paused | revoked | expired",
        ),
        sa.Column("uses", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("status_changed_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["locker_requests.id"],
            name=op.f("fk_locker_consents_request_id_locker_requests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_locker_consents")),
        sa.UniqueConstraint("request_id", name=op.f("uq_locker_consents_request_id")),
    )
    with op.batch_alter_table("locker_consents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_locker_consents_owner"), ["owner"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_locker_consents_requester"), ["requester"], unique=False
        )

    op.create_table(
        "locker_shares",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False, comment="SHA-256 of it"),
        sa.Column("document_id", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.Column("uses", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["locker_documents.id"],
            name=op.f("fk_locker_shares_document_id_locker_documents"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_locker_shares")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_locker_shares_token_hash")),
    )
    with op.batch_alter_table("locker_shares", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_locker_shares_document_id"), ["document_id"], unique=False
        )

    with op.batch_alter_table("locker_documents", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "classification",
                sa.String(length=16),
                server_default="confidential",
                nullable=False,
            )
        )
        batch_op.add_column(
            sa.Column(
                "version",
                sa.Integer(),
                server_default="1",
                nullable=False,
                comment="the current one",
            )
        )
        batch_op.add_column(sa.Column("revoked_at", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("revocation_reason", sa.String(length=200), nullable=True))

    with op.batch_alter_table("locker_versions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "signature",
                sa.LargeBinary(),
                nullable=True,
                comment="detached CMS by the issuer's seal",
            )
        )


def downgrade() -> None:
    op.drop_index("ix_audit_entries_subject_seq", table_name="audit_entries")
    op.create_index("ix_audit_entries_subject", "audit_entries", ["subject"])

    with op.batch_alter_table("locker_versions", schema=None) as batch_op:
        batch_op.drop_column("signature")

    with op.batch_alter_table("locker_documents", schema=None) as batch_op:
        batch_op.drop_column("revocation_reason")
        batch_op.drop_column("revoked_at")
        batch_op.drop_column("version")
        batch_op.drop_column("classification")

    with op.batch_alter_table("locker_shares", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_locker_shares_document_id"))

    op.drop_table("locker_shares")
    with op.batch_alter_table("locker_consents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_locker_consents_requester"))
        batch_op.drop_index(batch_op.f("ix_locker_consents_owner"))

    op.drop_table("locker_consents")
    with op.batch_alter_table("locker_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_locker_requests_requester"))
        batch_op.drop_index(batch_op.f("ix_locker_requests_owner"))

    op.drop_table("locker_requests")
    with op.batch_alter_table("locker_nominees", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_locker_nominees_nominee"))

    op.drop_table("locker_nominees")
    with op.batch_alter_table("locker_inbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_locker_inbox_owner"))

    op.drop_table("locker_inbox")
