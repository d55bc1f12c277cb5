"""Moving every data key to the newest KEK after a rotation, without touching any content.

A rotation only changes what new data keys are wrapped under; the keys already stored keep
their old KEK until this job re-wraps them, and the old version cannot be retired before then.
The job walks `locker_versions` in primary-key order, a batch at a time, each batch its own
short transaction:

- the batch is read without locks and re-wrapped in memory (the crypto holds no lock), then
  written back with a compare-and-set per row (`WHERE wrapped_key = <what was read>`), which
  locks only those rows and only until the commit. A row shredded (set NULL) or re-wrapped by
  someone else between the read and the write is left as it now is: a delete is never undone.
- every key is at all times wrapped under an old or the new KEK, both of which unwrap, so the
  job can be stopped anywhere (an error, Ctrl-C, a killed process) and run again: keys already
  under the newest KEK are counted and skipped. A batch that did not commit changed nothing.
- the KEK to move to is asked for after each batch is read, so a key written by another
  process under a version newer than the one this job started with is never moved back to an
  older one; a rotation during a run leaves the earlier batches for the next run.

One audit entry records the run (its counts and the KEK version), not one per key; a run that
stops on an exception records what it had done with outcome "failure". Only a killed process
leaves no entry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select, tuple_, update
from sqlalchemy.orm import Session

from audit import AuditEvent, AuditLog
from locker.crypto import rewrap_under
from locker.errors import LockerError
from locker.kek import Kek, KekProvider
from locker.models import versions

BATCH_SIZE = 500
REWRAPPED = "locker.keys.rewrapped"

Transaction = Callable[[], AbstractContextManager[Session]]
"""Opens one committed unit of work (`Runtime.transaction`)."""
Progress = Callable[[int, int], None]
"""Told (keys done, keys in all) after each batch has committed."""

_log = logging.getLogger(__name__)


class RewrapFailed(LockerError):
    """A stored data key could not be re-wrapped (altered, or its KEK version is missing).
    The message names the document version, never the key."""


@dataclass(frozen=True, slots=True)
class RewrapReport:
    kek_version: str  # what the last batch moved keys to
    total: int  # keys that were not shredded when the run began
    rewrapped: int
    already_current: int
    changed: int  # shredded or re-wrapped by someone else between read and write: left alone

    @property
    def done(self) -> int:
        return self.rewrapped + self.already_current + self.changed

    def details(self) -> dict[str, Any]:
        return {
            "kek_version": self.kek_version,
            "total": self.total,
            "rewrapped": self.rewrapped,
            "already_current": self.already_current,
            "changed": self.changed,
        }


@dataclass(frozen=True, slots=True)
class _Batch:
    last: tuple[str, int] | None  # the key to continue after; None when nothing was left
    kek_version: str
    rewrapped: int
    already_current: int
    changed: int


def rewrap_all(
    transaction: Transaction,
    keks: KekProvider,
    audit_for: Callable[[Session], AuditLog],
    *,
    actor: str,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> RewrapReport:
    """Re-wrap every stored data key under the newest KEK, batch by batch (see the module's
    docstring for why it is safe to interrupt). `actor` is who asked, for the audit entry."""
    if batch_size < 1:
        raise ValueError("a batch holds at least one key")
    total = _count(transaction)
    report = RewrapReport(keks.current().version_id, total, 0, 0, 0)
    try:
        last: tuple[str, int] | None = None
        while True:
            batch = _rewrap_batch(transaction, keks, last, batch_size)
            if batch.last is None:
                break
            last = batch.last
            report = _add(report, batch)
            if progress is not None:
                progress(report.done, max(total, report.done))  # rows added meanwhile count
    except BaseException:
        _record_safely(transaction, audit_for, actor, report, "failure")
        raise
    _record(transaction, audit_for, actor, report, "success")
    return report


def _count(transaction: Transaction) -> int:
    with transaction() as session:
        counted = session.execute(
            select(func.count()).select_from(versions).where(versions.c.wrapped_key.is_not(None))
        ).scalar_one()
    return int(counted)


def _rewrap_batch(
    transaction: Transaction, keks: KekProvider, after: tuple[str, int] | None, size: int
) -> _Batch:
    """Read the next `size` keys after `after`, re-wrap them, compare-and-set them back."""
    with transaction() as session:
        rows = _read(session, after, size)
        kek = keks.current()  # after the read: no key read here is under a newer version
        if not rows:
            return _Batch(None, kek.version_id, 0, 0, 0)
        moves = _moves(rows, kek, keks)
        written = _write(session, moves)
    return _Batch(
        last=(rows[-1].document_id, rows[-1].version),
        kek_version=kek.version_id,
        rewrapped=written,
        already_current=len(rows) - len(moves),
        changed=len(moves) - written,
    )


def _read(session: Session, after: tuple[str, int] | None, size: int) -> Sequence[Any]:
    """The next keys in primary-key order: a keyset page, so each batch starts where the last
    ended with an index seek, however far along the run is."""
    query = (
        select(versions.c.document_id, versions.c.version, versions.c.wrapped_key)
        .where(versions.c.wrapped_key.is_not(None))
        .order_by(versions.c.document_id, versions.c.version)
        .limit(size)
    )
    if after is not None:
        query = query.where(tuple_(versions.c.document_id, versions.c.version) > tuple_(*after))
    return session.execute(query).all()


def _moves(rows: Sequence[Any], kek: Kek, keks: KekProvider) -> list[dict[str, Any]]:
    """The compare-and-set parameters of every row not already under `kek`."""
    moves = []
    for row in rows:
        old = bytes(row.wrapped_key)
        try:
            new = rewrap_under(old, kek, keks.get)
        except LockerError as error:
            raise RewrapFailed(
                f"document {row.document_id} version {row.version}: {error}",
                code="rewrap.failed", document=row.document_id, version=row.version,
            ) from error  # fmt: skip
        if new is not None:
            moves.append({"d": row.document_id, "v": row.version, "old": old, "new": new})
    return moves


def _write(session: Session, moves: list[dict[str, Any]]) -> int:
    """Write the new wrapped keys where the rows still hold what was read; how many did."""
    if not moves:
        return 0
    statement = (
        update(versions)
        .where(
            versions.c.document_id == bindparam("d"),
            versions.c.version == bindparam("v"),
            versions.c.wrapped_key == bindparam("old"),
        )
        .values(wrapped_key=bindparam("new"))
    )
    result = session.connection().execute(statement, moves)
    return int(result.rowcount)


def _add(report: RewrapReport, batch: _Batch) -> RewrapReport:
    return RewrapReport(
        kek_version=batch.kek_version,
        total=report.total,
        rewrapped=report.rewrapped + batch.rewrapped,
        already_current=report.already_current + batch.already_current,
        changed=report.changed + batch.changed,
    )


def _record(
    transaction: Transaction,
    audit_for: Callable[[Session], AuditLog],
    actor: str,
    report: RewrapReport,
    outcome: str,
) -> None:
    with transaction() as session:
        audit_for(session).append(
            AuditEvent(actor=actor, action=REWRAPPED, outcome=outcome, details=report.details())
        )


def _record_safely(
    transaction: Transaction,
    audit_for: Callable[[Session], AuditLog],
    actor: str,
    report: RewrapReport,
    outcome: str,
) -> None:
    """Record a run that is failing without hiding why it failed: if the entry cannot be
    written either (the database went away, say), that is logged and the first error goes on."""
    try:
        _record(transaction, audit_for, actor, report, outcome)
    except Exception:
        _log.exception("the audit entry of an interrupted key re-wrap could not be written")
