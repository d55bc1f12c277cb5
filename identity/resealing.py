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

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, update
from sqlalchemy.orm import Session

from audit import AuditLog
from audit.row_resealing import (
    Census,
    Progress,
    Row,
    RowResealReport,
    Transaction,
    audited_run,
    each_batch,
)
from audit.row_seal import MAC_COLUMN, RowSeal
from identity.accounts import ERASED, mobile_context, profile_context
from identity.challenges import challenge_context
from identity.models import challenges, citizens, signing_keys, totp_factors
from identity.oidc.keys import signing_key_context
from identity.sealing import SealBroken, Sealer, sealed_under
from identity.totp import totp_context

RESEALED = "keys.pii.resealed"


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
class ResealReport(RowResealReport):
    """A whole run: what it did (counting values, not rows), and the version it sealed
    under."""

    broken: list[str] = field(default_factory=list)  # "table.column key": does not open

    def details(self) -> dict[str, Any]:
        return {**RowResealReport.details(self), "broken": len(self.broken)}


def _reseal_row(
    session: Session,
    sealer: Sealer,
    row_seal: RowSeal,
    sealed: SealedColumns,
    row: Mapping[Any, Any],
    report: ResealReport,
) -> None:
    name, key = sealed.table.name, str(row[sealed.key])
    if sealed.row_sealed and not row_seal.check(sealed.table, row):
        report.unsealed_rows.append(f"{name} {sealed.named(key)}")
        return
    changes: dict[str, bytes] = {}
    for column, context in sealed.contexts.items():
        stored = bytes(row[column])
        if stored == ERASED:  # an erased account's details: nothing is sealed there
            continue
        try:
            again = sealer.resealed(stored, context(key))
        except SealBroken:
            report.broken.append(f"{name}.{column} {sealed.named(key)}")
            return
        if again is None:
            report.current += 1
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
        report.resealed += len(changes)
    else:
        report.changed_meanwhile += 1


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

    def work() -> None:
        for sealed in SEALED_COLUMNS:

            def batch(session: Session, rows: list[Row], sealed: SealedColumns = sealed) -> None:
                for row in rows:
                    _reseal_row(session, sealer, row_seal, sealed, row, report)

            each_batch(transaction, sealed.table, batch, progress=progress)

    audited_run(transaction, audit_for, RESEALED, report, work, sealer.newest, actor=actor)
    return report


def census(transaction: Transaction, sealer: Sealer, versions: Collection[int]) -> Census:
    """Every value sealed under one of `versions`, counted (see Census), reading a batch of
    rows per transaction as the re-seal does, and changing nothing."""
    found = Census()
    for sealed in SEALED_COLUMNS:

        def count(_session: Session, rows: list[Row], sealed: SealedColumns = sealed) -> None:
            for row in rows:
                _count(sealer, sealed, row, versions, found)

        each_batch(transaction, sealed.table, count)
    return found


def _count(
    sealer: Sealer,
    sealed: SealedColumns,
    row: Row,
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
