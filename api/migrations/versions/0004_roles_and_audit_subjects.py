"""Departments and officers' roles; an index of audit entries by subject

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from audit.sqltypes import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_departments",
        sa.Column("id", sa.String(length=32), nullable=False, comment="short code, e.g. sed"),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_departments")),
    )
    op.create_table(
        "identity_roles",
        sa.Column("citizen_id", sa.String(length=32), nullable=False),
        sa.Column("department_id", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False, comment="e.g. signing.officer"),
        sa.Column("granted_at", UtcDateTime(), nullable=False),
        sa.Column(
            "granted_by", sa.String(length=100), nullable=False, comment="who granted it (an actor)"
        ),
        sa.ForeignKeyConstraint(
            ["citizen_id"],
            ["identity_citizens.id"],
            name=op.f("fk_identity_roles_citizen_id_identity_citizens"),
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["identity_departments.id"],
            name=op.f("fk_identity_roles_department_id_identity_departments"),
        ),
        sa.PrimaryKeyConstraint(
            "citizen_id", "department_id", "role", name=op.f("pk_identity_roles")
        ),
    )
    # Plain ALTER TABLE, never a batch copy: rebuilding the log table would drop its triggers.
    op.add_column(
        "audit_entries",
        sa.Column(
            "subject",
            sa.String(length=64),
            nullable=True,
            comment="copy of the entry's subject, so a citizen's entries are found by index",
        ),
    )
    op.create_index("ix_audit_entries_subject", "audit_entries", ["subject"])


def downgrade() -> None:
    op.drop_index("ix_audit_entries_subject", table_name="audit_entries")
    op.drop_column("audit_entries", "subject")
    op.drop_table("identity_roles")
    op.drop_table("identity_departments")
