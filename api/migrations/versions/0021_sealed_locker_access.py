"""Locker rows that grant access are sealed rows, like roles and consents

`locker_documents`, `locker_shares`, `locker_nominees` and `locker_legal_requests` get a `mac`
column (see `audit.row_seal`): a document's owner, status and revocation, validity and
classification decide who may read it and what a verifier is told; a share link, a nominee or
guardian, and an approved legal-access request each let someone other than the owner read it.
Without a seal a DBA could un-revoke a document, move it to another locker, lengthen a link,
name themselves a guardian, or approve a legal-access request, and nothing would notice.

The column is nullable because a migration cannot read the service's keys: the rows existing
when this revision is applied are sealed once, in the transaction of the `shanakht db upgrade`
run that applies it (`api.migrate.upgrade`, `seal_existing_rows`, `SEALINGS`), and a row
without a MAC is otherwise never honoured.

Revision ID: 0021
Revises: 0019
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0019"
branch_labels = None
depends_on = None

SEALED = ("locker_documents", "locker_shares", "locker_nominees", "locker_legal_requests")
COMMENT = "row seal: HMAC-SHA256, audit.row_seal"


def upgrade() -> None:
    for table in SEALED:
        op.add_column(table, sa.Column("mac", sa.LargeBinary(32), nullable=True, comment=COMMENT))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN, on SQLite too (3.35 and later): a copy-and-move batch would
    # drop `locker_documents`, which shares and versions reference, and foreign keys are on.
    for table in SEALED:
        with op.batch_alter_table(table, schema=None, recreate="never") as batch_op:
            batch_op.drop_column("mac")
