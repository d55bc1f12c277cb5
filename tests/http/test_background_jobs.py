"""The jobs a running server does on its own, beside the requests."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import api.app
from api.app import create_app
from api.database import WalCheckpointer
from api.runtime import Runtime
from audit import AuditEvent
from tests.unit.api.test_database import rows_in_the_file_alone


def test_the_server_checkpoints_sqlite_s_wal_itself(
    runtime: Runtime, backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commits leave the WAL alone (api.database), so the server must copy it back into the
    database file: on SQLite every period, on PostgreSQL never."""
    finished: list[str] = []
    checkpoint = WalCheckpointer.checkpoint

    def recorded(self: WalCheckpointer, connection: sqlite3.Connection) -> int:
        left = checkpoint(self, connection)
        finished.append(self.database)
        return left

    monkeypatch.setattr(api.app, "CHECKPOINT_INTERVAL", 0.05)
    monkeypatch.setattr(WalCheckpointer, "checkpoint", recorded)
    with TestClient(create_app(runtime)):
        with runtime.transaction() as session:
            runtime.audit_log(session).append(AuditEvent(actor="test", action="test.wrote"))
            size = runtime.audit_log(session).size()
        # Checkpoints run one after another: the second to finish from now began after the
        # entry was committed.
        before = len(finished)
        deadline = time.monotonic() + (10 if backend == "sqlite" else 0.3)
        while len(finished) < before + 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    # The server has stopped, and its checkpoints with it: nothing writes to the file now.
    if backend != "sqlite":
        assert finished == []
        return
    database = str(runtime.engine.url.database)
    assert set(finished) == {database}
    copy = tmp_path / "copy.db"
    assert rows_in_the_file_alone(Path(database), copy, "audit_entries") == size
