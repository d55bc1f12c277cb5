"""A session's cookie token apart from its record, so a step-up can renew it

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "identity_sessions",
        sa.Column(
            "token_hash",
            sa.String(length=64),
            nullable=True,
            comment="SHA-256 of the cookie, hex; renewed when the session steps up",
        ),
    )
    # Sessions open today were named by their cookie's hash: it stays their name and is, until
    # they step up, their token's hash too.
    op.execute("UPDATE identity_sessions SET token_hash = id")
    with op.batch_alter_table("identity_sessions", schema=None) as batch_op:
        batch_op.alter_column(
            "token_hash",
            existing_type=sa.String(length=64),
            nullable=False,
            existing_comment="SHA-256 of the cookie, hex; renewed when the session steps up",
        )
        batch_op.alter_column(
            "id",
            existing_type=sa.String(length=64),
            comment="random hex (older rows: a cookie hash)",
            existing_comment="SHA-256 of the cookie, hex",
            existing_nullable=False,
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_identity_sessions_token_hash"), ["token_hash"]
        )


def downgrade() -> None:
    # Renewed tokens cannot be turned back into their sessions' names: those sessions end.
    op.execute(
        "UPDATE identity_sessions SET ended_at = CURRENT_TIMESTAMP, ended_reason = 'downgrade' "
        "WHERE token_hash <> id AND ended_at IS NULL"
    )
    with op.batch_alter_table("identity_sessions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_identity_sessions_token_hash"), type_="unique")
        batch_op.alter_column(
            "id",
            existing_type=sa.String(length=64),
            comment="SHA-256 of the cookie, hex",
            existing_comment="random hex (older rows: a cookie hash)",
            existing_nullable=False,
        )
        batch_op.drop_column("token_hash")
