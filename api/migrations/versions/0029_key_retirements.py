"""Key versions retired: their files are gone on purpose

`shanakht keys retire pii` removes the file of every PII key version that no longer seals
anything, so a version that may have leaked stops opening what a database writer plants under
it. This table records each, so the key check accepts the missing file and refuses one that
comes back. Rows are only ever added (`api.migrate`).

Revision ID: 0029
Revises: 0028
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

from audit.sqltypes import UtcDateTime

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "key_retirements",
        sa.Column(
            "name",
            sa.String(length=64),
            nullable=False,
            comment="the key store name of the version",
        ),
        sa.Column(
            "fingerprint",
            sa.String(length=64),
            nullable=False,
            comment="its fingerprint as key_fingerprints recorded it",
        ),
        sa.Column("retired_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_key_retirements")),
    )


def downgrade() -> None:
    op.drop_table("key_retirements")
