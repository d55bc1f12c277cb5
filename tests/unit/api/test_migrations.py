"""The migrations build exactly the tables the packages declare, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from api.runtime import Runtime
from api.schema import target_metadata


def test_migrated_schema_matches_the_models(runtime: Runtime) -> None:
    with runtime.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, target_metadata) == []
