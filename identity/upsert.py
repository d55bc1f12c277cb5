"""Upserts on either database. SQLAlchemy has no dialect-neutral ON CONFLICT, so the insert
construct is picked from the session's dialect; both SQLite and PostgreSQL take the same
clauses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def upsert_into(session: Session, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT into `table` that can take ON CONFLICT, for the session's database."""
    return upsert_for(session.get_bind().dialect.name, table)


def upsert_for(dialect: str, table: Table) -> postgresql.Insert | sqlite.Insert:
    """`upsert_into` by the dialect's name, for a statement built once per database."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_if_absent(
    session: Session, table: Table, values: Mapping[str, Any], key: Sequence[str]
) -> None:
    """INSERT ... ON CONFLICT DO NOTHING: the first step of a read-modify-write on a row that
    may not exist yet, so the row can then be locked (FOR UPDATE) and no two writers can both
    decide it was missing."""
    session.execute(
        upsert_into(session, table).values(**values).on_conflict_do_nothing(index_elements=key)
    )
