"""The application role: DML on ordinary tables, SELECT and INSERT only on the audit log.

On PostgreSQL, with SHANAKHT_DATABASE_APP_ROLE set, the role this migration runs as (the one
that owns the schema) grants the application role what `api.migrate.grant_app_role` lists,
and the same by default for the tables and sequences it creates later. The application role
owns nothing, so it can neither ALTER nor DROP a table nor DROP or DISABLE a trigger, and it has
no UPDATE, DELETE or TRUNCATE on `audit_entries` or `audit_checkpoints`. Without the setting,
and on SQLite, nothing changes. Every `shanakht db upgrade` applies the policy again.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27
"""

from alembic import op

from api.migrate import grant_app_role

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _app_role() -> str | None:
    config = op.get_context().config
    return None if config is None else config.attributes.get("app_role")


def upgrade() -> None:
    role = _app_role()
    if role is not None:
        grant_app_role(op.get_bind(), role)


def downgrade() -> None:
    """Grants are not taken back: the application role keeps what it had, which a downgraded
    schema's code also needs."""
