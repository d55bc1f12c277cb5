"""Proposals of the powerful roles are sealed rows, like the grants they lead to

`identity_role_proposals` gets a `mac` column (see `audit.row_seal`). A proposal names the
role, the officer and the proposing administrator that a second administrator's approval turns
into a sealed role, so a proposal written by SQL (naming a real administrator as its proposer)
or changed by SQL (another role, another officer) must not reach that approval.

The column is nullable because a migration cannot read the service's keys: the proposals
existing when this revision is applied are sealed once, in the transaction of the `shanakht db
upgrade` run that applies it (`api.migrate.upgrade`, `seal_existing_rows`, `SEALINGS`), and a
proposal without a MAC is otherwise never honoured (it is listed by `shanakht audit
integrity`).

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

COMMENT = "row seal: HMAC-SHA256, audit.row_seal"


def upgrade() -> None:
    op.add_column(
        "identity_role_proposals",
        sa.Column("mac", sa.LargeBinary(32), nullable=True, comment=COMMENT),
    )


def downgrade() -> None:
    with op.batch_alter_table("identity_role_proposals", schema=None) as batch_op:
        batch_op.drop_column("mac")
