"""Database engines: SQLite for the embedded default, PostgreSQL in production.

SQLite runs in WAL mode (readers never block the writer) with foreign keys on, and every
transaction starts with BEGIN IMMEDIATE. SQLite allows one writer at a time, and a transaction
that reads first and writes later can fail outright with SQLITE_BUSY_SNAPSHOT when another
writer got in between; taking the write lock at BEGIN makes writers queue on the busy timeout
instead (the choice Rails 8 made for the same reason). Reads of other connections go on in
parallel under WAL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

BUSY_TIMEOUT_SECONDS = 30


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy's BEGIN below instead of pysqlite's own.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # NORMAL in WAL mode: a commit survives a crash of the process; only a power loss or
        # kernel crash can drop the last transactions, and never corrupts the file.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_db_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An engine for `url`, with the SQLite settings above when it is SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT_SECONDS}, **kwargs)
        _configure_sqlite(engine)
        return engine
    return create_engine(parsed, pool_pre_ping=True, **kwargs)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
