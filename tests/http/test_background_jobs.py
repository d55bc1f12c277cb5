"""The jobs a running server does on its own, beside the requests."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

import api.app
from api.app import create_app
from api.database import checkpoint_wal
from api.runtime import Runtime
from audit import AuditEvent


def _entries_in_the_file_alone(database: Path, tmp_path: Path) -> int:
    """Audit entries the database file holds without its WAL: what checkpoints copied."""
    alone = tmp_path / "alone.db"
    alone.write_bytes(database.read_bytes())
    with sqlite3.connect(alone) as connection:
        (count,) = connection.execute("SELECT count(*) FROM audit_entries").fetchone()
    return int(count)


def test_the_server_checkpoints_sqlite_s_wal_itself(
    runtime: Runtime, backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commits leave the WAL alone (api.database), so the server must copy it back into the
    database file: on SQLite within a few of its periods, on PostgreSQL never."""
    checkpointed: list[Engine] = []

    def recorded(engine: Engine) -> None:
        checkpointed.append(engine)
        checkpoint_wal(engine)

    monkeypatch.setattr(api.app, "CHECKPOINT_INTERVAL", 0.05)
    monkeypatch.setattr(api.app, "checkpoint_wal", recorded)
    with TestClient(create_app(runtime)):
        with runtime.transaction() as session:
            runtime.audit_log(session).append(AuditEvent(actor="test", action="test.wrote"))
        with runtime.transaction() as session:
            size = runtime.audit_log(session).size()
        if backend != "sqlite":
            time.sleep(0.3)
            assert checkpointed == []
            return
        database = Path(str(runtime.engine.url.database))
        deadline = time.monotonic() + 10
        while _entries_in_the_file_alone(database, tmp_path) < size:
            assert time.monotonic() < deadline, "the WAL was not checkpointed"
            time.sleep(0.05)
    assert set(checkpointed) == {runtime.engine}
