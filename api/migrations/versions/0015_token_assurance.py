"""Each token keeps the assurance (acr, amr) of the sign-in it was issued from

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-27
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_tokens = sa.table(
    "identity_tokens",
    sa.column("family", sa.String),
    sa.column("acr", sa.String),
    sa.column("amr", sa.Text),
)
_codes = sa.table("identity_codes", sa.column("id", sa.String), sa.column("params", sa.Text))


def upgrade() -> None:
    with op.batch_alter_table("identity_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "acr",
                sa.String(length=64),
                nullable=True,
                comment="the sign-in's acr when the grant was made; none for client credentials",
            )
        )
        batch_op.add_column(sa.Column("amr", sa.Text(), nullable=True, comment="JSON list, as acr"))
    # Tokens already out were issued from an authorization code (their family is the code's
    # hash), which recorded the sign-in's acr and amr when it was issued: that is the grant's
    # level, not what the session may have stepped up to since. Codes are kept a day past
    # expiry and refresh tokens live 12 hours, so every token still usable finds its code;
    # one that does not keeps no acr and so counts as a password-only sign-in.
    bind = op.get_bind()
    found = bind.execute(
        sa.select(_codes.c.id, _codes.c.params).where(
            _codes.c.id.in_(sa.select(_tokens.c.family).where(_tokens.c.acr.is_(None)))
        )
    ).all()
    updates = []
    for family, params in found:
        grant = json.loads(params)
        acr, amr = grant.get("acr"), json.dumps(grant.get("amr", []))
        updates.append({"fam": family, "new_acr": acr, "new_amr": amr})
    if updates:
        bind.execute(
            _tokens.update()
            .where(_tokens.c.family == sa.bindparam("fam"))
            .values(acr=sa.bindparam("new_acr"), amr=sa.bindparam("new_amr")),
            updates,
        )


def downgrade() -> None:
    with op.batch_alter_table("identity_tokens", schema=None) as batch_op:
        batch_op.drop_column("amr")
        batch_op.drop_column("acr")
