"""Indexes the retention sweeps find their rows by: ended sessions, expired tokens

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-27
"""

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # `identity.housekeeping` looks for these every minute; without an index each look reads
    # the whole table, and these two are the largest of the identity package's.
    op.create_index("ix_identity_sessions_ended_at", "identity_sessions", ["ended_at"])
    op.create_index("ix_identity_tokens_expires_at", "identity_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_identity_tokens_expires_at", table_name="identity_tokens")
    op.drop_index("ix_identity_sessions_ended_at", table_name="identity_sessions")
