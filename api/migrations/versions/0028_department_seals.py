"""Departments are sealed rows

`identity_departments` gets a `mac` column (see `audit.row_seal`). A department's name is what
citizens read where a department asks for their documents, on a consent and on a signed order,
and its id is what roles, department systems and role proposals name; without a seal a DBA, or
the API's own database role, could rename one, or add one, and have it speak under a name of
their choosing. Departments are never changed once added, so the seal alone keeps them as
added.

The column is nullable because a migration cannot read the service's keys: the rows existing
when this revision is applied are sealed once, in the transaction of the `shanakht db upgrade`
run that applies it (`api.migrate.upgrade`, `SEALINGS`); a row without a MAC is otherwise no
department.

Revision ID: 0028
Revises: 0027
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

COMMENT = "row seal: HMAC-SHA256, audit.row_seal"
TABLE = "identity_departments"


def upgrade() -> None:
    op.add_column(TABLE, sa.Column("mac", sa.LargeBinary(32), nullable=True, comment=COMMENT))


def downgrade() -> None:
    with op.batch_alter_table(TABLE, schema=None, recreate="never") as batch_op:
        batch_op.drop_column("mac")
