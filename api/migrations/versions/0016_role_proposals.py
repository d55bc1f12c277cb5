"""Grants of the powerful roles under a two-person rule: one administrator proposes, another
approves or refuses

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from audit.sqltypes import UtcDateTime

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_role_proposals",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column(
            "grantee", sa.String(length=45), nullable=False, comment="the officer's pseudonym"
        ),
        sa.Column("department_id", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column(
            "proposer",
            sa.String(length=45),
            nullable=False,
            comment="the first administrator's pseudonym",
        ),
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
            sa.String(length=45),
            nullable=True,
            comment="the second administrator's pseudonym",
        ),
        sa.Column(
            "refusal",
            sa.String(length=500),
            nullable=True,
            comment="why the second administrator refused",
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["identity_departments.id"],
            name=op.f("fk_identity_role_proposals_department_id_identity_departments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_role_proposals")),
    )
    with op.batch_alter_table("identity_role_proposals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_identity_role_proposals_grantee"), ["grantee"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_identity_role_proposals_status"), ["status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("identity_role_proposals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_role_proposals_status"))
        batch_op.drop_index(batch_op.f("ix_identity_role_proposals_grantee"))

    op.drop_table("identity_role_proposals")
