"""Remembered consents to e-services are sealed rows, like the exchange's consents

`identity_grants` gets a `mac` column (see `audit.row_seal`): a row's scopes are what an
e-service is given at the citizen's next sign-in without asking them. Without a seal a DBA, or
the API's own database role, could add `cnic` or `address` to an e-service's remembered
consent, and nothing would notice.

The column is nullable because a migration cannot read the service's keys: the consents
existing when this revision is applied are sealed once, in the transaction of the
`shanakht db upgrade` run that applies it (`api.migrate.upgrade`, `seal_existing_rows`,
`SEALINGS`), and a row without a MAC is otherwise never honoured.

Revision ID: 0026
Revises: 0025
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

COMMENT = "row seal: HMAC-SHA256, audit.row_seal"


def upgrade() -> None:
    op.add_column(
        "identity_grants", sa.Column("mac", sa.LargeBinary(32), nullable=True, comment=COMMENT)
    )


def downgrade() -> None:
    with op.batch_alter_table("identity_grants", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("mac")
