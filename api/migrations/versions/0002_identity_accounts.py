"""Identity: citizens, one-time-code challenges, throttles.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from audit.sqltypes import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_citizens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("pseudonym", sa.String(45), nullable=False, comment="audit.pseudonym(cnic)"),
        sa.Column(
            "profile", sa.LargeBinary(), nullable=False, comment="sealed NADRA-verified details"
        ),
        sa.Column(
            "mobile", sa.LargeBinary(), nullable=False, comment="sealed E.164 number, OTP-verified"
        ),
        sa.Column("password_hash", sa.String(200), nullable=False, comment="argon2id"),
        sa.Column("password_changed_at", UtcDateTime(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("locked_until", UtcDateTime(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False, comment="active | removed"),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_identity_citizens"),
        sa.UniqueConstraint("pseudonym", name="uq_identity_citizens_pseudonym"),
    )
    op.create_table(
        "identity_challenges",
        sa.Column(
            "id", sa.String(32), primary_key=True, comment="unguessable: it is the browser's ticket"
        ),
        sa.Column("purpose", sa.String(16), nullable=False, comment="register | reset"),
        sa.Column("pseudonym", sa.String(45), nullable=False),
        sa.Column(
            "code_hash", sa.LargeBinary(32), nullable=False, comment="HMAC of the one-time code"
        ),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("payload", sa.LargeBinary(), nullable=False, comment="sealed details to act on"),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("verified_at", UtcDateTime(), nullable=True),
        sa.Column("consumed_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_identity_challenges"),
    )
    op.create_index("ix_identity_challenges_pseudonym", "identity_challenges", ["pseudonym"])
    op.create_index("ix_identity_challenges_expires_at", "identity_challenges", ["expires_at"])
    op.create_table(
        "identity_throttles",
        sa.Column(
            "key", sa.String(120), primary_key=True, comment="what is counted, never raw PII"
        ),
        sa.Column("window_start", UtcDateTime(), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_identity_throttles"),
    )


def downgrade() -> None:
    op.drop_table("identity_throttles")
    op.drop_table("identity_challenges")
    op.drop_table("identity_citizens")
