"""Authenticator apps (TOTP) and recovery codes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from audit.sqltypes import UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_recovery_codes",
        sa.Column("citizen_id", sa.String(length=32), nullable=False),
        sa.Column(
            "code_hash", sa.LargeBinary(length=32), nullable=False, comment="HMAC of the code"
        ),
        sa.Column("used_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["citizen_id"],
            ["identity_citizens.id"],
            name=op.f("fk_identity_recovery_codes_citizen_id_identity_citizens"),
        ),
        sa.PrimaryKeyConstraint("citizen_id", "code_hash", name=op.f("pk_identity_recovery_codes")),
    )
    op.create_table(
        "identity_totp",
        sa.Column("citizen_id", sa.String(length=32), nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=False, comment="sealed RFC 6238 secret"),
        sa.Column("confirmed_at", UtcDateTime(), nullable=True, comment="null until a first code"),
        sa.Column(
            "last_step", sa.Integer(), server_default="0", nullable=False, comment="replay guard"
        ),
        sa.ForeignKeyConstraint(
            ["citizen_id"],
            ["identity_citizens.id"],
            name=op.f("fk_identity_totp_citizen_id_identity_citizens"),
        ),
        sa.PrimaryKeyConstraint("citizen_id", name=op.f("pk_identity_totp")),
    )


def downgrade() -> None:
    op.drop_table("identity_totp")
    op.drop_table("identity_recovery_codes")
