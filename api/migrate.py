"""Alembic, driven from code: `shanakht db upgrade` and `serve` call `upgrade`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from api.runtime import Runtime

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the schema to `revision` inside one transaction."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def prepare(runtime: Runtime) -> None:
    """Everything a fresh data directory needs before serving: the schema, then signing keys."""
    upgrade(runtime.engine)
    with runtime.transaction() as session:
        runtime.provider(session).keys.ensure()
