"""Tokens and authorization codes are sealed rows while they can still be used

`identity_tokens` and `identity_codes` get a `mac` column (see `audit.row_seal`). Without it a
DBA, or the API's own database role, could undo a revocation (`SET revoked_at = NULL`) and
have a stolen access token work again until it expires, or insert a refresh token or a code
row of their own making and redeem it with the client's credentials. A row is sealed when it
is written; the write that spends or revokes it clears its MAC (`RETIRED_BY`), so a retired
row made unused again by SQL has no seal, and a revocation of many rows stays one UPDATE.
(A copy of the row taken while it was usable, put back whole with its MAC, still passes: see
`audit.row_seal`.)

The column is nullable because a migration cannot read the service's keys: the rows existing
when this revision is applied are sealed once, in the transaction of the `shanakht db upgrade`
run that applies it (`api.migrate.upgrade`, `seal_existing_rows`, `SEALINGS`), so nobody is
signed out of an e-service by the upgrade; a usable row without a MAC is otherwise never
honoured.

Revision ID: 0027
Revises: 0026
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

COMMENT = "row seal: HMAC-SHA256, audit.row_seal"
TABLES = ("identity_tokens", "identity_codes")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("mac", sa.LargeBinary(32), nullable=True, comment=COMMENT))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None, recreate="never") as batch_op:
            batch_op.drop_column("mac")
