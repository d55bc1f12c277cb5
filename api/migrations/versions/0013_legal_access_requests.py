"""Legal-basis access under a two-person rule: the requests officers file and others decide

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from audit.sqltypes import UtcDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "locker_legal_requests",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("department", sa.String(length=32), nullable=False, comment="acted for"),
        sa.Column("filer", sa.String(length=64), nullable=False, comment="the officer's pseudonym"),
        sa.Column("owner", sa.String(length=64), nullable=False, comment="the citizen's pseudonym"),
        sa.Column(
            "doctypes", sa.String(length=200), nullable=False, comment="space separated codes"
        ),
        sa.Column("legal_reference", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("disclosure_delay_days", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column(
            "status",
            sa.String(length=16),
            nullable=False,
            comment="pending | approved | refused",
        ),
        sa.Column("decided_at", UtcDateTime(), nullable=True),
        sa.Column(
            "decider",
            sa.String(length=64),
            nullable=True,
            comment="the second officer's pseudonym",
        ),
        sa.Column(
            "refusal",
            sa.String(length=500),
            nullable=True,
            comment="why the second officer refused",
        ),
        sa.Column("opened_at", UtcDateTime(), nullable=True, comment="the first opening"),
        sa.Column(
            "disclose_after", UtcDateTime(), nullable=True, comment="set at the first opening"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_locker_legal_requests")),
    )
    with op.batch_alter_table("locker_legal_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_locker_legal_requests_department"), ["department"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_locker_legal_requests_filer"), ["filer"], unique=False)
        batch_op.create_index(batch_op.f("ix_locker_legal_requests_owner"), ["owner"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("locker_legal_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_locker_legal_requests_owner"))
        batch_op.drop_index(batch_op.f("ix_locker_legal_requests_filer"))
        batch_op.drop_index(batch_op.f("ix_locker_legal_requests_department"))

    op.drop_table("locker_legal_requests")
