"""Sealing the rows of authorization state again under the row-seal key's newest version.

After `keys rotate row-seal` the new version seals every row written from then on, but a row
written before still carries a MAC under the version that may have leaked, and a row of that
version still passes. `shanakht keys reseal row-seal` walks every sealed table in batches of
rows, each batch a transaction of its own, and gives each row an older version sealed a new
MAC: a run stopped part way is run again, and it passes over what is done.

Nothing is sealed anew whose seal does not hold: that would bless a row someone changed in the
database. Those rows are reported and left as they are. A row a live request changed between
the read and the write is left for the next run (the write is a compare-and-set on the MAC),
never overwritten with what was read. A retired row (a spent token, `audit.row_seal`) has no
MAC and grants nothing: it is passed over.

Each table's batches are also what `census` reads to tell whether an older version still
seals a row that holds, before `keys retire row-seal` deletes it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, select, tuple_, update
from sqlalchemy.orm import Session

from audit.entry import AuditEvent
from audit.row_seal import MAC_COLUMN, RowSeal, mac_version, retired
from audit.services import AuditLog

BATCH_ROWS = 200  # a batch is one transaction: on SQLite, the write lock for ~10 ms
RESEALED = "keys.row_seal.resealed"

Row = Mapping[Any, Any]
Transaction = Callable[[], AbstractContextManager[Session]]
"""Opens one committed unit of work (`Runtime.transaction`)."""
Progress = Callable[[str, int], None]
"""Told (table, rows done in it) after each batch has committed."""
Resealed = Callable[[Session, Table, Row, bytes], None]
"""Told of each row sealed anew (its table, the row as read, its new MAC), in the batch's
transaction: for what must change with it (a client registration's audit entry)."""

_log = logging.getLogger(__name__)


def each_batch(
    transaction: Transaction,
    table: Table,
    work: Callable[[Session, list[Row]], None],
    *,
    rows: int = BATCH_ROWS,
    progress: Progress | None = None,
) -> None:
    """`work(session, batch)` for each batch of `rows` rows of `table`, in primary key order,
    each in a transaction of its own (a key of several columns is ordered as a tuple)."""
    order = list(table.primary_key.columns)
    after: list[Any] | None = None
    done = 0
    while True:
        with transaction() as session:
            query = select(table).order_by(*order).limit(rows)
            if after is not None:
                query = query.where(tuple_(*order) > tuple_(*after))
            batch: list[Row] = [row._mapping for row in session.execute(query)]
            if not batch:
                return
            work(session, batch)
        after = [batch[-1][column.name] for column in order]
        done += len(batch)
        if progress is not None:
            progress(table.name, done)


def row_key(table: Table, row: Row) -> str:
    """A row's primary key as the report names it (ids of accounts, clients, consents...;
    never personal data)."""
    return "/".join(str(row[column.name]) for column in table.primary_key.columns)


@dataclass(slots=True)
class RowResealReport:
    """A whole run: what it did, and the version it sealed under."""

    version: int
    resealed: int = 0  # rows sealed again under the current version
    current: int = 0  # rows already under it
    changed_meanwhile: int = 0  # rows changed or deleted between read and write: next run
    unsealed_rows: list[str] = field(default_factory=list)  # "table key": its seal fails
    rotated_meanwhile: bool = False  # a newer version came during the run: run it again

    def details(self) -> dict[str, Any]:
        """For the audit entry: counts only (the rows left are named in the command's output
        and in the integrity check)."""
        return {
            "version": self.version,
            "resealed": self.resealed,
            "current": self.current,
            "changed_meanwhile": self.changed_meanwhile,
            "unsealed_rows": len(self.unsealed_rows),
            "rotated_meanwhile": self.rotated_meanwhile,
        }


def reseal_rows(
    transaction: Transaction,
    seal: RowSeal,
    tables: Iterable[Table],
    audit_for: Callable[[Session], AuditLog],
    *,
    actor: str,
    resealed: Resealed | None = None,
    progress: Progress | None = None,
) -> RowResealReport:
    """Seal every row of `tables` again under the current version of the row-seal key, a
    batch at a time (see the module's docstring). One audit entry records the run; a run that
    stops on an exception records what it had done, with outcome "failure"."""
    report = RowResealReport(version=seal.newest())

    def work() -> None:
        for table in tables:

            def batch(session: Session, rows: list[Row], table: Table = table) -> None:
                for row in rows:
                    _reseal_row(session, seal, table, row, report, resealed)

            each_batch(transaction, table, batch, progress=progress)

    audited_run(transaction, audit_for, RESEALED, report, work, seal.newest, actor=actor)
    return report


def audited_run(
    transaction: Transaction,
    audit_for: Callable[[Session], AuditLog],
    action: str,
    report: RowResealReport,
    work: Callable[[], None],
    newest: Callable[[], int],
    *,
    actor: str,
) -> None:
    """`work()`, a re-seal under `report.version`, then one audit entry `action` with its
    report (`newest` tells whether the key rotated again meanwhile); if it stops on an
    exception, the entry records what it had done, with outcome "failure"."""
    try:
        work()
        report.rotated_meanwhile = newest() != report.version
    except BaseException:
        try:
            _record(transaction, audit_for, actor, action, report, "failure")
        except Exception:
            _log.exception("the audit entry of an interrupted re-seal could not be written")
        raise
    _record(transaction, audit_for, actor, action, report, "success")


def _reseal_row(
    session: Session,
    seal: RowSeal,
    table: Table,
    row: Row,
    report: RowResealReport,
    resealed: Resealed | None,
) -> None:
    stored = row[MAC_COLUMN]
    if retired(table, row):
        return
    if stored is not None and mac_version(bytes(stored)) == report.version:
        report.current += 1
        return
    if not seal.holds(table, row):
        report.unsealed_rows.append(f"{table.name} {row_key(table, row)}")
        return
    new = seal.mac(table, row)
    key = [column == row[column.name] for column in table.primary_key.columns]
    result = session.execute(
        update(table).where(*key, table.c[MAC_COLUMN] == stored).values({MAC_COLUMN: new})
    )
    if getattr(result, "rowcount", 0) != 1:
        report.changed_meanwhile += 1
        return
    report.resealed += 1
    if resealed is not None:
        resealed(session, table, row, new)


def _record(
    transaction: Transaction,
    audit_for: Callable[[Session], AuditLog],
    actor: str,
    action: str,
    report: RowResealReport,
    outcome: str,
) -> None:
    with transaction() as session:
        audit_for(session).append(
            AuditEvent(actor=actor, action=action, outcome=outcome, details=report.details())
        )


@dataclass(slots=True)
class Census:
    """What some versions of a key still seal, by version: what holds, which deleting the
    version would lose, and what does not hold, lost already."""

    held: Counter[int] = field(default_factory=Counter)
    broken: Counter[int] = field(default_factory=Counter)


def census(
    transaction: Transaction, seal: RowSeal, tables: Iterable[Table], versions: Collection[int]
) -> Census:
    """The rows of `tables` sealed under one of `versions`, counted (see Census), reading a
    batch per transaction and changing nothing. A retired row, without a MAC, is none's."""
    found = Census()
    for table in tables:

        def count(_session: Session, rows: list[Row], table: Table = table) -> None:
            for row in rows:
                stored = row[MAC_COLUMN]
                version = mac_version(bytes(stored)) if stored else 0
                if version not in versions:
                    continue
                if seal.holds(table, row):
                    found.held[version] += 1
                else:
                    found.broken[version] += 1

        each_batch(transaction, table, count)
    return found
