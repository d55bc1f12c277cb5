"""Citizens' rows are sealed rows, like roles, consents and sessions

`identity_citizens` gets a `mac` column (see `audit.row_seal`): the row holds the password
hash a login checks, the failures and lockout that stop guessing, and whether the account is
still open. Without a seal a DBA, or the API's own database role, could put a password hash of
their own choosing on anyone's account and sign in as them, clear a lockout, or reopen a
removed account, and nothing would notice.

The column is nullable because a migration cannot read the service's keys: the accounts
existing when this revision is applied are sealed once, in the transaction of the
`shanakht db upgrade` run that applies it (`api.migrate.upgrade`, `seal_existing_rows`,
`SEALINGS`), and a row without a MAC is otherwise never honoured.

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

COMMENT = "row seal: HMAC-SHA256, audit.row_seal"


def upgrade() -> None:
    op.add_column(
        "identity_citizens", sa.Column("mac", sa.LargeBinary(32), nullable=True, comment=COMMENT)
    )


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN, on SQLite too (3.35 and later): a copy-and-move batch would
    # drop the table that sessions, grants and roles reference, and foreign keys are on.
    with op.batch_alter_table("identity_citizens", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("mac")
