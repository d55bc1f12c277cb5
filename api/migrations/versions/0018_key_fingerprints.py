"""The fingerprint of every key, recorded when first seen, so a swapped keys folder is refused

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from audit.sqltypes import UtcDateTime

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "key_fingerprints",
        sa.Column(
            "name",
            sa.String(length=64),
            nullable=False,
            comment="a key store name, or kek:<version id> for a locker KEK version",
        ),
        sa.Column(
            "fingerprint",
            sa.String(length=64),
            nullable=False,
            comment="HMAC-SHA256 of a fixed label and the name under the key, hex",
        ),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_key_fingerprints")),
    )


def downgrade() -> None:
    op.drop_table("key_fingerprints")
