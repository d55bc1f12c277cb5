"""Background jobs in the database (bulk issue, data-key re-wrap), read by every replica

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from audit.sqltypes import UtcDateTime

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "locker_jobs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False, comment="bulk-issue | rewrap"),
        sa.Column("department", sa.String(length=32), nullable=True, comment="acted for, if any"),
        sa.Column(
            "starter", sa.String(length=80), nullable=False, comment="who started it, by pseudonym"
        ),
        sa.Column(
            "state",
            sa.String(length=16),
            nullable=False,
            comment="queued | running | stopping | done | stopped | failed | interrupted",
        ),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column(
            "summary", sa.Text(), nullable=False, comment="JSON: counts and the problem, no PII"
        ),
        sa.Column(
            "lane",
            sa.String(length=32),
            nullable=True,
            comment="the kind while a one-at-a-time job is live, else NULL",
        ),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column(
            "beat_at", UtcDateTime(), nullable=False, comment="the runner's last sign of life"
        ),
        sa.Column("ended_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_locker_jobs")),
        sa.UniqueConstraint("lane", name=op.f("uq_locker_jobs_lane")),
    )
    with op.batch_alter_table("locker_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_locker_jobs_department"), ["department"], unique=False)
    op.create_table(
        "locker_job_lines",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("line", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("doc_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column(
            "reason", sa.Text(), nullable=True, comment="JSON: a message and its facts, no PII"
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["locker_jobs.id"], name=op.f("fk_locker_job_lines_job_id_locker_jobs")
        ),
        sa.PrimaryKeyConstraint("job_id", "line", name=op.f("pk_locker_job_lines")),
    )


def downgrade() -> None:
    op.drop_table("locker_job_lines")
    with op.batch_alter_table("locker_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_locker_jobs_department"))
    op.drop_table("locker_jobs")
