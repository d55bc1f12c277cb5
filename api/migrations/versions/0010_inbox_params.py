"""What an inbox message says, as data

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "locker_inbox",
        sa.Column(
            "params",
            sa.Text(),
            nullable=True,
            comment="the message's facts as JSON, for pages to say it in the reader's language",
        ),
    )


def downgrade() -> None:
    with op.batch_alter_table("locker_inbox", schema=None) as batch_op:
        batch_op.drop_column("params")
