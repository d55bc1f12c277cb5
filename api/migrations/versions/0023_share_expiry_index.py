"""An index the share-link retention sweep finds its rows by: expired links

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-27
"""

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # `locker.housekeeping.sweep_shares` (run by `api.retention`) looks for links expired
    # past their keep every sweep; without an index each look reads every link ever made.
    op.create_index("ix_locker_shares_expires_at", "locker_shares", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_locker_shares_expires_at", table_name="locker_shares")
