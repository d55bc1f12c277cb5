"""Every sealed column, and sealing what it holds again under the PII key's newest version.

After `keys rotate pii` the new version seals what is written from then on, but what was stored
before stays sealed under the version that may have leaked. `shanakht keys reseal pii` walks
the columns below in batches of rows, each batch a transaction of its own, and seals again
each value that an older version sealed: a run stopped part way is run again, and it passes
over what is done.

Nothing is sealed anew that does not open, nor any row whose row seal (`audit.row_seal`) fails:
sealing such a row again would give an altered row a seal it never had, or a broken value a
version that hides when it broke. Those are reported and left as they are. A value a live
request changed between the read and the write is left for the next run (the write is a
compare-and-set), never overwritten with an older one.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from audit import AuditEvent, AuditLog
from audit.row_seal import MAC_COLUMN, RowSeal
from identity.accounts import ERASED, mobile_context, profile_context
from identity.challenges import challenge_context
from identity.models import challenges, citizens, signing_keys, totp_factors
from identity.oidc.keys import signing_key_context
from identity.sealing import SealBroken, Sealer, sealed_under
from identity.totp import totp_context

BATCH_ROWS = 200  # a batch is one transaction: on SQLite, the write lock for ~10 ms
RESEALED = "keys.pii.resealed"

Transaction = Callable[[], AbstractContextManager[Session]]
"""Opens one committed unit of work (`Runtime.transaction`)."""
Progress = Callable[[str, int], None]
"""Told (table, rows done in it) after each batch has committed."""

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SealedColumns:
    """A table's sealed columns, each with what its values are bound to (from the row's key).
    `secret_keys`: the key is a secret itself (a challenge's id is the browser's ticket), so
    a row left alone is not named by it."""

    table: Table
    key: str  # the primary key's one column
    contexts: Mapping[str, Callable[[str], str]]
    secret_keys: bool = False

    def named(self, key: str) -> str:
        return "(a row whose key is a secret)" if self.secret_keys else key

    @property
    def row_sealed(self) -> bool:
        return MAC_COLUMN in self.table.c


SEALED_COLUMNS = (
    SealedColumns(citizens, "id", {"profile": profile_context, "mobile": mobile_context}),
    SealedColumns(totp_factors, "citizen_id", {"secret": totp_context}),
    SealedColumns(signing_keys, "kid", {"private_key": signing_key_context}),
    SealedColumns(challenges, "id", {"payload": challenge_context}, secret_keys=True),
)


@dataclass(slots=True)
class Tally:
    """What a batch, or a run, found and did."""

    resealed: int = 0  # values sealed again under the current version
    current: int = 0  # values already under it
    changed_meanwhile: int = 0  # rows changed or deleted between read and write: next run
    broken: list[str] = field(default_factory=list)  # "table.column key": does not open
    unsealed_rows: list[str] = field(default_factory=list)  # "table key": its row seal fails


@dataclass(slots=True)
class Batch(Tally):
    """One batch: how many rows it read, and the last one's key (None: the table is done)."""

    rows: int = 0
    last_key: str | None = None


def reseal_batch(
    session: Session,
    sealer: Sealer,
    row_seal: RowSeal,
    sealed: SealedColumns,
    after: str | None,
    rows: int = BATCH_ROWS,
) -> Batch:
    """Seal again, under the current version, the values of the next `rows` rows of `sealed`
    after the key `after` (None: from the first)."""
    found = _rows_after(session, sealed, after, rows)
    batch = Batch(rows=len(found), last_key=str(found[-1][sealed.key]) if found else None)
    for row in found:
        _reseal_row(session, sealer, row_seal, sealed, row, batch)
    return batch


def _rows_after(
    session: Session, sealed: SealedColumns, after: str | None, rows: int
) -> list[Mapping[Any, Any]]:
    """The next `rows` rows of `sealed`'s table by key, after the key `after` (None: from the
    first)."""
    key = sealed.table.c[sealed.key]
    query = select(sealed.table).order_by(key).limit(rows)
    found = session.execute(query if after is None else query.where(key > after)).all()
    return [row._mapping for row in found]


def _reseal_row(
    session: Session,
    sealer: Sealer,
    row_seal: RowSeal,
    sealed: SealedColumns,
    row: Mapping[Any, Any],
    batch: Batch,
) -> None:
    name, key = sealed.table.name, str(row[sealed.key])
    if sealed.row_sealed and not row_seal.check(sealed.table, row):
        batch.unsealed_rows.append(f"{name} {sealed.named(key)}")
        return
    changes: dict[str, bytes] = {}
    for column, context in sealed.contexts.items():
        stored = bytes(row[column])
        if stored == ERASED:  # an erased account's details: nothing is sealed there
            continue
        try:
            again = sealer.resealed(stored, context(key))
        except SealBroken:
            batch.broken.append(f"{name}.{column} {sealed.named(key)}")
            return
        if again is None:
            batch.current += 1
        else:
            changes[column] = again
    if not changes:
        return
    values: Mapping[str, Any] = changes
    if sealed.row_sealed:
        values = row_seal.resealed(sealed.table, row, changes)
    # Only if the row is still as read: the sealed columns and, for a sealed row, its MAC.
    unchanged = [sealed.table.c[c] == row[c] for c in (*changes, MAC_COLUMN) if c in values]
    result = session.execute(
        update(sealed.table).where(sealed.table.c[sealed.key] == key, *unchanged).values(values)
    )
    if getattr(result, "rowcount", 0) == 1:
        batch.resealed += len(changes)
    else:
        batch.changed_meanwhile += 1


@dataclass(slots=True)
class ResealReport(Tally):
    """A whole run: what its batches did, and the version it sealed under."""

    version: int = 0
    rotated_meanwhile: bool = False  # a newer version came during the run: run it again

    def add(self, batch: Tally) -> None:
        self.resealed += batch.resealed
        self.current += batch.current
        self.changed_meanwhile += batch.changed_meanwhile
        self.broken += batch.broken
        self.unsealed_rows += batch.unsealed_rows

    def details(self) -> dict[str, Any]:
        """For the audit entry: counts only (the rows left are named in the command's output
        and in the integrity check)."""
        return {
            "version": self.version,
            "resealed": self.resealed,
            "current": self.current,
            "changed_meanwhile": self.changed_meanwhile,
            "broken": len(self.broken),
            "unsealed_rows": len(self.unsealed_rows),
            "rotated_meanwhile": self.rotated_meanwhile,
        }


def reseal_all(
    transaction: Transaction,
    sealer: Sealer,
    row_seal: RowSeal,
    audit_for: Callable[[Session], AuditLog],
    *,
    actor: str,
    progress: Progress | None = None,
) -> ResealReport:
    """Seal every sealed column's values again under the current version of the PII key, a
    batch at a time (see the module's docstring). One audit entry records the run; a run that
    stops on an exception records what it had done, with outcome "failure"."""
    report = ResealReport(version=sealer.newest())
    try:
        for sealed in SEALED_COLUMNS:
            _reseal_table(transaction, sealer, row_seal, sealed, report, progress)
        report.rotated_meanwhile = sealer.newest() != report.version
    except BaseException:
        try:
            _record(transaction, audit_for, actor, report, "failure")
        except Exception:
            _log.exception("the audit entry of an interrupted re-seal could not be written")
        raise
    _record(transaction, audit_for, actor, report, "success")
    return report


def _reseal_table(
    transaction: Transaction,
    sealer: Sealer,
    row_seal: RowSeal,
    sealed: SealedColumns,
    report: ResealReport,
    progress: Progress | None,
) -> None:
    after: str | None = None
    done = 0
    while True:
        with transaction() as session:
            batch = reseal_batch(session, sealer, row_seal, sealed, after)
        if batch.last_key is None:
            return
        report.add(batch)
        after = batch.last_key
        done += batch.rows
        if progress is not None:
            progress(sealed.table.name, done)


def _record(
    transaction: Transaction,
    audit_for: Callable[[Session], AuditLog],
    actor: str,
    report: ResealReport,
    outcome: str,
) -> None:
    with transaction() as session:
        audit_for(session).append(
            AuditEvent(actor=actor, action=RESEALED, outcome=outcome, details=report.details())
        )


@dataclass(slots=True)
class Census:
    """What some versions of the PII key still seal, by version: values that open, which
    removing their version would lose, and values that do not open, lost already."""

    held: Counter[int] = field(default_factory=Counter)
    broken: Counter[int] = field(default_factory=Counter)


def census(transaction: Transaction, sealer: Sealer, versions: Collection[int]) -> Census:
    """Every value sealed under one of `versions`, counted (see Census), reading a batch of
    rows per transaction as the re-seal does, and changing nothing."""
    found = Census()
    for sealed in SEALED_COLUMNS:
        after: str | None = None
        while True:
            with transaction() as session:
                rows = _rows_after(session, sealed, after, BATCH_ROWS)
            if not rows:
                break
            after = str(rows[-1][sealed.key])
            for row in rows:
                _count(sealer, sealed, row, versions, found)
    return found


def _count(
    sealer: Sealer,
    sealed: SealedColumns,
    row: Mapping[Any, Any],
    versions: Collection[int],
    found: Census,
) -> None:
    key = str(row[sealed.key])
    for column, context in sealed.contexts.items():
        stored = bytes(row[column])
        version = sealed_under(stored)
        if version not in versions:
            continue
        try:
            sealer.open(stored, context(key))
        except SealBroken:
            found.broken[version] += 1
        else:
            found.held[version] += 1
