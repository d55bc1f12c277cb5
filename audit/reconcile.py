"""Reconciliation: each sealed row against what the audit log last recorded of it.

A row seal (`audit.row_seal`) proves the service wrote a row, not that the row is the newest
it wrote. Whoever kept an earlier sealed row (a consent before its revocation, a role grant
since revoked, a client before a redirect URI went) can put it back with its MAC, and a sealed
row deleted leaves no row to check. The log, hash-chained and verified, records every change of
these rows, so it says what each should be now; this module reads it once, in order, and lists
every row that is not what the log last said (docs/threat-model.md section 7, item 9).

Each row's seal is checked once, here: a row whose seal fails is reported as `row_seal.bad_rows`
reports it, and is then read as absent, as the service reads it.

`audit` knows none of the tables: each domain describes its own sealed table as a `Kind` (which
actions speak of its rows, what each says, what a row says), and the caller passes them in.
The pass keeps one small state per row the log names, never the entries themselves, so memory
grows with the rows, not with the log.

Where the log cannot tell (entries written before they carried what a comparison needs) a kind
says nothing rather than raise a false alarm.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Select, Table, select

from audit.note import OpensNotes
from audit.row_seal import MAC_COLUMN, BadRow, RowSeal, unhonoured
from audit.verify import VerifyReport, verify_log

State = TypeVar("State")
Entry = Mapping[str, Any]
Row = Mapping[Any, Any]

# Entries are canonical JSON with sorted keys, so every one starts with its action: reading it
# from the bytes spares parsing the many entries no kind folds (sign-ins, reads, fetches of
# other kinds).
_ACTION_AT = b'{"action":"'
# Rows per fetch, as `audit.verify` reads the log.
_BATCH = 5_000


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A sealed row that differs from the log's last word on it: table, row key, what differs.
    Keys name rows by id or pseudonym, never by personal data."""

    table: str
    key: str
    problem: str
    honoured: bool = False  # the row is there and its seal holds: the service acts on it


@dataclass(frozen=True, slots=True)
class Kind(Generic[State]):
    """One sealed table, as the reconciliation reads it.

    `fold(said, entry)` updates `said` (row key -> what the log says of that row so far) for one
    entry whose action is in `actions` and whose outcome is success. `stored(row)` is a row's
    key and what it says, in the same terms; `rows` selects the table's rows with every column
    (and anything `stored` needs beside them). `differ(logged, stored)` is the problem when they
    disagree, None when they agree or the log cannot tell; either side is None when absent."""

    table: Table
    actions: frozenset[str]
    fold: Callable[[MutableMapping[str, State], Entry], None]
    stored: Callable[[Row], tuple[str, State]]
    differ: Callable[[State | None, State | None], str | None]
    rows: Select[Any] | None = None


def fingerprint(mac: bytes) -> str:
    """What an entry records of a sealed row as written: half its MAC, base64url. It tells one
    version of a row from another, and is no MAC that could seal a row."""
    return base64.urlsafe_b64encode(bytes(mac)[:16]).rstrip(b"=").decode()


def row_fingerprint(row: Row) -> str:
    """The fingerprint of a row as read, from its stored MAC."""
    return fingerprint(bytes(row[MAC_COLUMN] or b""))


class Reconciliation:
    """Folds the log's entries, fed one at a time in order, then compares with the rows."""

    def __init__(self, kinds: Iterable[Kind[Any]]) -> None:
        self._kinds = tuple(kinds)
        self._said: dict[str, dict[str, Any]] = {k.table.name: {} for k in self._kinds}
        self._by_action: dict[bytes, list[Kind[Any]]] = {}
        for kind in self._kinds:
            for action in kind.actions:
                self._by_action.setdefault(action.encode(), []).append(kind)

    def read(self, data: bytes) -> None:
        """One entry, as stored (canonical JSON)."""
        if not data.startswith(_ACTION_AT):
            return
        kinds = self._by_action.get(data[len(_ACTION_AT) : data.find(b'"', len(_ACTION_AT))])
        if not kinds:
            return
        entry = json.loads(data)
        if entry.get("outcome") != "success":
            return
        for kind in kinds:
            kind.fold(self._said[kind.table.name], entry)

    def compare(self, connection: Connection, seal: RowSeal) -> tuple[list[BadRow], list[Mismatch]]:
        """The rows whose seal fails (as `row_seal.bad_rows` finds them: each row's seal is
        checked once), then every row that is not what the log last said and every row the
        log says stands that is gone; table by table, rows in key order."""
        bad: list[BadRow] = []
        found: list[Mismatch] = []
        for kind in self._kinds:
            found.extend(_compare(kind, self._said[kind.table.name], connection, seal, bad))
        return bad, found


@dataclass(frozen=True, slots=True)
class Reconciled:
    """The log as verified, the rows of the reconciled tables whose seal fails, and the
    sealed rows that differ from the log's last word on them."""

    log: VerifyReport
    bad: list[BadRow]
    mismatches: list[Mismatch]


def _compare(
    kind: Kind[Any],
    said: dict[str, Any],
    connection: Connection,
    seal: RowSeal,
    bad: list[BadRow],
) -> Iterable[Mismatch]:
    table = kind.table
    query = kind.rows if kind.rows is not None else select(table)
    order = list(table.primary_key.columns)
    result = connection.execution_options(yield_per=_BATCH).execute(query.order_by(*order))
    try:
        for row in result:
            values = row._mapping
            if not seal.holds(table, values):
                bad.append(unhonoured(table, values))
                continue  # not honoured: as absent, as the service reads it
            key, state = kind.stored(values)
            problem = kind.differ(said.pop(key, None), state)
            if problem is not None:
                yield Mismatch(table.name, key, problem, honoured=True)
    finally:
        result.close()
    for key in sorted(said):
        problem = kind.differ(said[key], None)
        if problem is not None:
            yield Mismatch(table.name, key, problem)


def reconcile(
    connection: Connection,
    seal: RowSeal,
    kinds: Iterable[Kind[Any]],
    *,
    verifier: OpensNotes,
    origin: str,
) -> Reconciled:
    """Verify the log and fold each entry in the same pass, then compare the rows: one read of
    the log, on `connection`, which should be a snapshot (`api.database.snapshot`) so that the
    rows compared are those of the log read. Raises TamperError as `verify_log` does: a log that
    does not verify says nothing of the rows."""
    reconciliation = Reconciliation(kinds)
    report = verify_log(connection, verifier, origin, each=reconciliation.read)
    return Reconciled(report, *reconciliation.compare(connection, seal))
