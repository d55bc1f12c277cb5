"""Alembic environment: runs on the connection `api.migrate.upgrade` hands it."""

from __future__ import annotations

from alembic import context

from api.migrate import hold_migration_lock
from api.schema import target_metadata

connection = context.config.attributes["connection"]
hold_migration_lock(connection)  # `upgrade` holds it already; a bare `alembic` run takes it
context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
