"""Prepared statements (audit.prepared) against SQLAlchemy's own execution of the same
statements, on the backend of the pass (SQLite or PostgreSQL): the same rows written and read,
the same listeners told, the same errors raised."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from api.database import create_db_engine
from audit.prepared import Prepared
from audit.sqltypes import UtcDateTime

metadata = MetaData()
things = Table(
    "prepared_things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(40), nullable=False),
    Column("note", Text, nullable=True),
    Column("blob", LargeBinary, nullable=True),
    Column("flag", Boolean, nullable=False),
    Column("at", UtcDateTime(), nullable=True),
)
defaulted = Table(
    "prepared_defaulted",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("made", String(8), default="python"),
)

_INSERT = Prepared(insert(things))
_BY_ID = Prepared(select(things).where(things.c.id == bindparam("id")))
_BY_FLAG = Prepared(select(things.c.id, things.c.name).where(things.c.flag == bindparam("flag")))
_LOCKED = Prepared(select(things.c.name).where(things.c.id == 1).with_for_update())
_RENAME = Prepared(
    update(things).where(things.c.id == bindparam("key")).values(name=bindparam("to"))
)

AT = datetime(2026, 11, 27, 10, 30, 15, 123456, tzinfo=UTC)
ROWS: list[dict[str, Any]] = [
    {"id": 1, "name": "first", "note": "ۺ unicode", "blob": b"\x00\xff", "flag": True, "at": AT},
    {"id": 2, "name": "second", "note": None, "blob": None, "flag": False, "at": None},
    {"id": 3, "name": "third", "note": "", "blob": b"", "flag": True, "at": AT + timedelta(1)},
]


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def test_rows_written_prepared_read_back_through_sqlalchemy_and_the_other_way(
    engine: Engine,
) -> None:
    with engine.begin() as connection:
        assert _INSERT.execute(connection, ROWS[:2]) == 2
        connection.execute(insert(things), ROWS[2:])
    with engine.connect() as connection:
        by_sqlalchemy = [row._asdict() for row in connection.execute(select(things))]
        prepared = [_BY_ID.one(connection, {"id": row["id"]}) for row in ROWS]
    assert sorted(by_sqlalchemy, key=lambda row: row["id"]) == ROWS
    assert [row._mapping for row in prepared] == ROWS
    assert prepared[0].at == AT
    assert prepared[0].at.tzinfo is not None
    assert prepared[0].blob == b"\x00\xff"
    assert prepared[1].flag is False


def test_a_select_gives_named_rows_and_says_when_it_matched_too_many_or_none(
    engine: Engine,
) -> None:
    with engine.begin() as connection:
        _INSERT.execute(connection, ROWS)
        assert sorted(_BY_FLAG.all(connection, {"flag": True})) == [(1, "first"), (3, "third")]
        assert _BY_ID.one_or_none(connection, {"id": 99}) is None
        with pytest.raises(LookupError, match="no row"):
            _BY_ID.one(connection, {"id": 99})
        with pytest.raises(LookupError, match="more than one"):
            _BY_FLAG.one_or_none(connection, {"flag": True})


def test_an_update_counts_the_rows_it_matched(engine: Engine) -> None:
    with engine.begin() as connection:
        _INSERT.execute(connection, ROWS)
        assert _RENAME.execute(connection, {"key": 2, "to": "renamed"}) == 1
        assert _RENAME.execute(connection, {"key": 99, "to": "nobody"}) == 0
        assert _BY_ID.one(connection, {"id": 2}).name == "renamed"


def test_listeners_hear_each_statement_with_what_it_is(engine: Engine) -> None:
    heard: list[tuple[str, bool, bool, bool]] = []

    def before(_conn: Any, _cursor: Any, sql: str, _params: Any, context: Any, many: bool) -> None:
        heard.append((sql.split()[0].upper(), context.isinsert, context.isupdate, many))

    after: list[str] = []
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", lambda *args: after.append(args[2]))
    with engine.begin() as connection:
        _INSERT.execute(connection, ROWS)
        _RENAME.execute(connection, {"key": 1, "to": "x"})
        _BY_ID.one(connection, {"id": 1})
    assert heard == [
        ("INSERT", True, False, True),
        ("UPDATE", False, True, False),
        ("SELECT", False, False, False),
    ]
    assert len(after) == 3


def test_a_select_for_update_locks_before_it_reads(engine: Engine) -> None:
    """PostgreSQL locks the row (FOR UPDATE in the SQL); SQLite has no row locks, so the
    statement takes its write lock first (BEGIN IMMEDIATE, from api.database's listener)."""
    with engine.begin() as connection:
        _INSERT.execute(connection, ROWS)
    sent: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    with engine.connect() as connection:
        dbapi = connection.connection.dbapi_connection
        assert _LOCKED.one(connection).name == "first"
        if engine.dialect.name == "sqlite":
            assert dbapi is not None
            assert dbapi.in_transaction
        else:
            assert "FOR UPDATE" in sent[-1]
        connection.rollback()


def test_a_driver_error_is_sqlalchemys_and_the_transaction_rolls_back(engine: Engine) -> None:
    with engine.begin() as connection:
        _INSERT.execute(connection, ROWS[:1])
    with engine.connect() as connection:
        connection.begin()
        _INSERT.execute(connection, ROWS[1:2])
        with pytest.raises(IntegrityError):
            _INSERT.execute(connection, ROWS[:1])  # the same primary key again
        connection.rollback()
    with engine.connect() as connection:
        assert [row.id for row in _BY_FLAG.all(connection, {"flag": True})] == [1]
        assert _BY_ID.one_or_none(connection, {"id": 2}) is None


def test_statements_it_cannot_run_as_sqlalchemy_would_are_refused(engine: Engine) -> None:
    with engine.begin() as connection:
        with pytest.raises(TypeError, match="no Python-side defaults"):
            Prepared(insert(defaulted)).execute(connection, {"id": 1})
        with pytest.raises(TypeError, match="expanding"):
            Prepared(select(things).where(things.c.id.in_(bindparam("ids", expanding=True)))).all(
                connection, {"ids": [1]}
            )
        with pytest.raises(KeyError, match="'id'"):
            _BY_ID.all(connection, {})
        assert _INSERT.execute(connection, []) == 0


def test_a_returning_clause_gives_its_columns_converted(engine: Engine) -> None:
    added = Prepared(insert(things).returning(things.c.id, things.c.at))
    with engine.begin() as connection:
        row = added.one(connection, ROWS[0])
    assert row.id == 1
    assert row.at == AT
    assert row.at.tzinfo is not None
