"""Row seals on authorization state; on PostgreSQL, an audit head that only moves forward

Roles, consents and client registrations get a `mac` column (see `audit.row_seal`). It is
nullable because a migration cannot read the service's keys: rows made before this revision
are sealed once, in the transaction of the `shanakht db upgrade` run that applies this revision
(`api.migrate.upgrade`, `seal_existing_rows`), and a row without a MAC is otherwise never
honoured.

On PostgreSQL a trigger makes `audit_head` move only forward, and only to an entry that is in
the log: an UPDATE must grow `size` and leave `chain` equal to the chain value of the entry
at `size - 1`, with every entry in between present; DELETE and TRUNCATE are refused. So a
connection that may write the head (the application role) can no longer rewind it to hide the
newest entries. The table's owner is not bound: it could disable the trigger anyway, and a
restore, which runs as the owner, replaces the seeded row.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

SEALED = ("identity_roles", "identity_clients", "locker_consents")
COMMENT = "row seal: HMAC-SHA256, audit.row_seal"

HEAD_FUNCTION = """
CREATE FUNCTION audit_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tip bytea;
    present bigint;
BEGIN
    IF pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'USAGE')
    THEN
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NEW;
    END IF;
    IF TG_OP <> 'UPDATE' OR NEW.id <> OLD.id OR NEW.size <= OLD.size THEN
        RAISE EXCEPTION 'the audit head only moves forward, to an entry in the log'
            USING ERRCODE = 'restrict_violation';
    END IF;
    SELECT count(*) INTO present FROM audit_entries
        WHERE seq >= OLD.size AND seq < NEW.size;
    SELECT chain INTO tip FROM audit_entries WHERE seq = NEW.size - 1;
    IF present <> NEW.size - OLD.size OR tip IS DISTINCT FROM NEW.chain THEN
        RAISE EXCEPTION 'the audit head only moves forward, to an entry in the log'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END $$
"""


def upgrade() -> None:
    for table in SEALED:
        op.add_column(table, sa.Column("mac", sa.LargeBinary(32), nullable=True, comment=COMMENT))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(HEAD_FUNCTION)
        op.execute(
            "CREATE TRIGGER audit_head_forward BEFORE UPDATE OR DELETE ON audit_head "
            "FOR EACH ROW EXECUTE FUNCTION audit_head_forward()"
        )
        op.execute(
            "CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_head_no_truncate ON audit_head")
        op.execute("DROP TRIGGER audit_head_forward ON audit_head")
        op.execute("DROP FUNCTION audit_head_forward()")
    for table in SEALED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("mac")
