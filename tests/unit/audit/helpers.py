"""Helpers for tests that need a populated log or a tampered one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, text

from api.runtime import Runtime
from audit import AuditEvent

APPEND_ONLY = ("audit_entries", "audit_checkpoints")


def event(i: int) -> AuditEvent:
    return AuditEvent(
        actor="client:test-department",
        action="locker.document.read",
        subject=f"p:subject-{i % 7}",
        resource=f"doc-{i}",
        purpose="test",
        details={"i": i},
    )


def append(runtime: Runtime, count: int, *, batch: int = 50) -> None:
    """Append `count` events, committed in batches."""
    done = 0
    while done < count:
        n = min(batch, count - done)
        with runtime.sessions() as session, session.begin():
            runtime.audit_log(session).append_many(event(done + i) for i in range(n))
        done += n


def checkpoint(runtime: Runtime) -> None:
    with runtime.sessions() as session, session.begin():
        runtime.audit_log(session).checkpoint()


@contextmanager
def tampering(runtime: Runtime) -> Iterator[Connection]:
    """A connection with the append-only triggers out of the way, as a malicious DBA would."""
    with runtime.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            for table in APPEND_ONLY:
                connection.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
            yield connection
            for table in APPEND_ONLY:
                connection.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
        else:
            names = connection.execute(
                text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
            ).all()
            for name, _sql in names:
                connection.execute(text(f"DROP TRIGGER {name}"))
            yield connection
            for _name, sql in names:
                connection.execute(text(sql))
