"""The audit log: entries, head, checkpoints, and triggers that make the log append-only.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY = ("audit_entries", "audit_checkpoints")
MESSAGE = "the audit log is append-only"


def _seq() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column(
            "seq", _seq(), primary_key=True, autoincrement=False, comment="leaf index, from 0"
        ),
        sa.Column("entry", sa.LargeBinary(), nullable=False, comment="canonical JSON of the entry"),
        sa.Column(
            "chain", sa.LargeBinary(32), nullable=False, comment="SHA-256(previous chain || leaf)"
        ),
        sa.Column(
            "hashes",
            sa.LargeBinary(),
            nullable=False,
            comment="leaf hash, then the hash of each complete subtree that ends at this leaf",
        ),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_entries"),
    )
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("chain", sa.LargeBinary(32), nullable=False),
        sa.Column(
            "frontier", sa.LargeBinary(), nullable=False, comment="roots of the maximal subtrees"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_audit_head"),
        sa.CheckConstraint("id = 1", name="ck_audit_head_single_row"),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", _seq(), primary_key=True, autoincrement=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False, comment="the C2SP signed note as published"),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_checkpoints"),
    )
    op.create_index("ix_audit_checkpoints_size", "audit_checkpoints", ["size"])
    op.bulk_insert(head, [{"id": 1, "size": 0, "chain": bytes(32), "frontier": b""}])

    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'restrict_violation'; END $$"
        )
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()"
            )
    else:
        for table in APPEND_ONLY:
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
                )


def downgrade() -> None:
    raise NotImplementedError("the audit log is never dropped by a migration")
