"""Single sign-on sessions are sealed rows, like roles and consents

`identity_sessions` gets a `mac` column (see `audit.row_seal`): a session row is what a cookie
opens, with the assurance (`acr`) it was signed in at. Without a seal a DBA, or the API's own
database role, could insert a session for any citizen under a cookie of their choosing, raise
a session's `acr` past a second factor never given, or revive an ended session, and nothing
would notice.

The column is nullable because a migration cannot read the service's keys: the sessions
existing when this revision is applied are sealed once, in the transaction of the
`shanakht db upgrade` run that applies it (`api.migrate.upgrade`, `seal_existing_rows`,
`SEALINGS`), and a row without a MAC is otherwise never honoured.

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

COMMENT = "row seal: HMAC-SHA256, audit.row_seal"


def upgrade() -> None:
    op.add_column(
        "identity_sessions", sa.Column("mac", sa.LargeBinary(32), nullable=True, comment=COMMENT)
    )


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN, on SQLite too (3.35 and later): a copy-and-move batch would
    # drop the table that codes, tokens and session notes reference, and foreign keys are on.
    with op.batch_alter_table("identity_sessions", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("mac")
