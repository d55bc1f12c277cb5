"""INSERT ... ON CONFLICT DO NOTHING on either database: the first step of a read-modify-write
on a row that may not exist yet, so the row can then be locked (FOR UPDATE) and no two
writers can both decide it was missing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_if_absent(
    session: Session, table: Table, values: Mapping[str, Any], key: Sequence[str]
) -> None:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(table).values(**values).on_conflict_do_nothing(index_elements=key))
