"""A department system's department

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "identity_clients",
        sa.Column(
            "department",
            sa.String(length=32),
            nullable=True,
            comment="whom a department system speaks for",
        ),
    )


def downgrade() -> None:
    with op.batch_alter_table("identity_clients", schema=None) as batch_op:
        batch_op.drop_column("department")
