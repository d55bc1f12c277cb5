"""Alembic environment: runs on the connection `api.migrate.upgrade` hands it."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from api.database import begin_writing
from api.schema import target_metadata

# One advisory lock number for "migrating Shanakht", so replicas starting together on
# PostgreSQL migrate one after the other instead of racing; on SQLite, the write lock taken
# before the first read does the same.
MIGRATION_LOCK = 0x5348414E  # "SHAN"

connection = context.config.attributes["connection"]
if connection.dialect.name == "postgresql":
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
begin_writing(connection)
context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
