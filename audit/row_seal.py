"""Row seals: an HMAC over a row of authorization state, under a key the database never holds.

Role grants, consents, client registrations and the locker's documents, share links, nominees
and legal-access requests say who may do what. They are ordinary rows,
which the application role (and a DBA) can UPDATE, so without this a `SET status = 'active'`
resumes a revoked consent and an INSERT gives a citizen a role, and nothing notices. Each such
row now carries `mac`: HMAC-SHA256, under the service's state MAC key (kept with its other
keys, outside the database), of a canonical encoding of every other column of the row, its
primary key among them, and the table's name, so a MAC moves neither to another row nor to
another table. Whoever writes the row seals it; whatever grants authority from it verifies
it first and treats a row that does not verify (a MAC wrong, or missing) as absent.

A seal proves a row was written by the service as it stands; it cannot prove it is the
newest such row. Whoever kept an earlier row and its MAC (a consent before its revocation, a
role before it was revoked) can put them back: the audit log, which records every change, is
where that shows (docs/threat-model.md section 7, item 9).

Some rows end their useful life and stay a while as a record: a refresh token rotated or
revoked, an authorization code redeemed. Such a table names the columns that mark the end in
`Table.info[RETIRED_BY]`, and the write that sets one also clears the row's MAC (`RETIRE`)
rather than re-sealing it. A retired row grants nothing whatever its MAC, and with no MAC it
is not made to grant again by an UPDATE: putting back `revoked_at = NULL` leaves a row with
no seal. So an end that touches many rows at once (a whole family of tokens revoked, every
token of a session ended) stays one UPDATE, with no MAC to compute per row, and `bad_rows`
does not list a retired row for lacking one. Like any sealed row, a copy taken while it was
usable and put back whole, MAC and all, does pass (above).

The key rotates (`shanakht keys rotate row-seal`), for the reason any key does: one that may
have leaked must stop vouching for rows. The first version's MACs are the bare 32 bytes of the
HMAC, as they always were; a later version's start with its number, one byte (2 to 255), so
the length tells them apart and no stored MAC changes meaning. The newest version seals, every
version checks its own, and `shanakht keys reseal row-seal` (`audit.row_resealing`) then seals
the stored rows anew under the newest.

Since the message is every column, a migration that adds a column to a sealed table changes
what every existing row's MAC must cover: it has to re-seal those rows in the same upgrade, as
the upgrade to a sealing revision seals the rows written before it (`api.migrate` `SEALINGS`),
or they all stop being honoured at once.
"""

from __future__ import annotations

import base64
import hmac
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from types import MappingProxyType
from typing import Any, Protocol

from sqlalchemy import Connection, Table, select, update
from sqlalchemy.orm import Session

from audit.canonical import MAX_SAFE_INTEGER, check_json, encode_checked

MAC_COLUMN = "mac"
RETIRED_BY = "retired_by"  # Table.info key: the columns whose being set retires a row
RETIRE: Mapping[str, Any] = MappingProxyType({MAC_COLUMN: None})  # set by each write retiring a row
_DOMAIN = "shanakht-row-seal:v1"
_log = logging.getLogger("shanakht.integrity")


_PLAIN = frozenset({str, bool, type(None)})


def _value(value: Any) -> Any:
    """A column's value as canonical JSON can hold it: times in UTC to the microsecond,
    bytes as base64. A column's type is fixed, so the two never meet a string in one slot.

    Checked here, one value at a time, so the message is encoded without `canonical_json`'s
    walk of the whole (the same bytes, in a fraction of the time: documents are sealed on
    the issue path, and verified on every download)."""
    kind = type(value)
    if kind in _PLAIN or (kind is int and -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER):
        return value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    check_json(value)  # an integer too large to keep exact, or a type JSON cannot hold
    return value


@cache
def _layout(table: Table) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """`table`'s primary key columns and the columns its seal covers (all but the MAC), by
    name: a table's columns are fixed while the process runs."""
    primary = tuple(column.name for column in table.primary_key.columns)
    fields = tuple(column.name for column in table.columns if column.name != MAC_COLUMN)
    return primary, fields


DIGEST_BYTES = 32  # HMAC-SHA256
MAX_VERSION = 255  # one byte names the version


class RowSealKeys:
    """Every version of the row-seal key at hand, by number (the key store's, as
    `identity.sealing.SealingKeys`): the newest seals."""

    def __init__(self, keys: Mapping[int, bytes]) -> None:
        if not keys or not all(1 <= number <= MAX_VERSION for number in keys):
            raise ValueError(f"key versions are numbered 1 to {MAX_VERSION}: {sorted(keys)}")
        if any(len(key) < DIGEST_BYTES for key in keys.values()):
            raise ValueError("a row seal key is at least 32 bytes")
        self._keys = dict(keys)
        self.current = max(keys)

    def get(self, version: int) -> bytes | None:
        return self._keys.get(version)


class RowSealKeySource(Protocol):
    """Where a RowSeal finds its keys: the versions as last seen, or (`fresh`) as they are
    now, which may cost a look at the key store."""

    def get(self, fresh: bool = False) -> RowSealKeys: ...


class _FixedKeys:
    def __init__(self, keys: RowSealKeys) -> None:
        self._keys = keys

    def get(self, fresh: bool = False) -> RowSealKeys:
        return self._keys


def mac_version(stored: bytes) -> int:
    """The key version a stored MAC names: 1 for a bare digest, else its first byte; 0 for
    one of neither length, which no version made."""
    if len(stored) == DIGEST_BYTES:
        return 1
    return stored[0] if len(stored) == DIGEST_BYTES + 1 and stored[0] >= 2 else 0


class RowSeal:
    """Seals and checks rows of the tables that hold authorization state."""

    def __init__(self, keys: RowSealKeySource) -> None:
        self._keys = keys

    @classmethod
    def of(cls, *keys: bytes) -> RowSeal:
        """A seal with these key versions, oldest first, for good."""
        return cls.numbered(dict(enumerate(keys, start=1)))

    @classmethod
    def numbered(cls, keys: Mapping[int, bytes]) -> RowSeal:
        """A seal with these key versions, by number, for good."""
        return cls(_FixedKeys(RowSealKeys(keys)))

    @property
    def current(self) -> int:
        """The version that seals now."""
        return self._keys.get().current

    def newest(self) -> int:
        """The newest version in the key source as it is now, which seals from then on."""
        return self._keys.get(fresh=True).current

    def _message(self, table: Table, row: Mapping[Any, Any]) -> bytes:
        keys, names = _layout(table)
        primary = [_value(row[name]) for name in keys]
        fields = {name: _value(row[name]) for name in names}
        return encode_checked([_DOMAIN, table.name, primary, fields])

    def mac(self, table: Table, row: Mapping[Any, Any]) -> bytes:
        """The MAC of `row` (every column of `table` but the MAC itself) as it will be stored,
        under the current version. The standard library's one-shot HMAC: the same
        HMAC-SHA256, without an object to make per row."""
        keys = self._keys.get()
        key = keys.get(keys.current)
        assert key is not None  # noqa: S101 (the current version is one of them)
        digest = hmac.digest(key, self._message(table, row), "sha256")
        return digest if keys.current == 1 else bytes([keys.current]) + digest

    def sealed(self, table: Table, row: Mapping[Any, Any]) -> dict[str, Any]:
        """`row` with its MAC: what an INSERT or an UPDATE of the whole row writes."""
        return {**row, MAC_COLUMN: self.mac(table, row)}

    def resealed(
        self, table: Table, row: Mapping[Any, Any], changes: Mapping[str, Any]
    ) -> dict[str, Any]:
        """`changes` to `row` (as read, its MAC among its columns) with the MAC of the row
        they make: what an UPDATE of part of a sealed row writes."""
        values = {**row, **changes}
        values.pop(MAC_COLUMN, None)
        return {**changes, MAC_COLUMN: self.mac(table, values)}

    def holds(self, table: Table, row: Mapping[Any, Any]) -> bool:
        """Whether `row`, as read with every column, is one the service wrote (compared in
        constant time)."""
        stored = row.get(MAC_COLUMN)
        if not stored:
            return False
        stored = bytes(stored)
        version = mac_version(stored)
        keys = self._keys.get()
        if version > keys.current:  # sealed by a process that saw a rotation first
            keys = self._keys.get(fresh=True)
        key = keys.get(version)
        if key is None:
            return False
        digest = hmac.digest(key, self._message(table, row), "sha256")
        return hmac.compare_digest(digest, stored[-DIGEST_BYTES:])

    def check(self, table: Table, row: Mapping[Any, Any]) -> bool:
        """`holds`, and a warning naming the table and the row's key when it does not: the
        row is then not honoured, and `shanakht audit integrity` lists it. Keys of these
        tables are account, consent and client ids, never personal data."""
        if self.holds(table, row):
            return True
        _log.warning(
            "integrity: %s row %s has a %s MAC; it is not honoured",
            table.name,
            _key(table, row),
            "wrong" if row.get(MAC_COLUMN) else "missing",
        )
        return False

    def honoured(self, table: Table, row: Any) -> Any:
        """`row` (a row as read, or None) if it passes `check`, else None: the one test before
        a row of `table` is honoured."""
        if row is None or not self.check(table, row._mapping):
            return None
        return row


@dataclass(frozen=True, slots=True)
class BadRow:
    """A sealed table's row that is not honoured: its MAC is `missing` or `wrong`."""

    table: str
    key: str
    problem: str


def _key(table: Table, row: Mapping[Any, Any]) -> str:
    return "/".join(str(row[column.name]) for column in table.primary_key.columns)


def retired(table: Table, row: Mapping[Any, Any]) -> bool:
    """Whether `row` was retired as the service retires rows: a column of the table's
    `RETIRED_BY` set, and its MAC cleared. It is then no one's to honour or to report."""
    ends: tuple[str, ...] = table.info.get(RETIRED_BY, ())
    return not row.get(MAC_COLUMN) and any(row[name] is not None for name in ends)


def unhonoured(table: Table, row: Mapping[Any, Any]) -> BadRow:
    """The report of a row of `table` whose seal does not hold."""
    return BadRow(table.name, _key(table, row), "wrong" if row.get(MAC_COLUMN) else "missing")


def bad_rows(session: Session | Connection, seal: RowSeal, tables: Iterable[Table]) -> list[BadRow]:
    """Every row of `tables` whose seal does not verify, for an administrator to look into:
    the same test the service applies before it honours one."""
    found: list[BadRow] = []
    for table in tables:
        order = list(table.primary_key.columns)
        for row in session.execute(select(table).order_by(*order)):
            values = row._mapping
            if not seal.holds(table, values) and not retired(table, values):
                found.append(unhonoured(table, values))
    return found


def seal_unsealed(session: Session, seal: RowSeal, tables: Iterable[Table]) -> dict[str, int]:
    """Seal every row of `tables` that has no MAC yet; how many, per table.

    Only for the one time a deployment first gets its state MAC key, when its older rows were
    written before rows had seals: afterwards a row without one is a row the service did not
    write, and sealing it would bless a forgery. The caller makes sure it runs only then.
    """
    counts: dict[str, int] = {}
    for table in tables:
        found = session.execute(select(table).where(table.c[MAC_COLUMN].is_(None))).all()
        rows = [row for row in found if not retired(table, row._mapping)]
        for row in rows:
            values = row._mapping
            where = [column == values[column.name] for column in table.primary_key.columns]
            session.execute(
                update(table).where(*where).values({MAC_COLUMN: seal.mac(table, values)})
            )
        counts[table.name] = len(rows)
    return counts
