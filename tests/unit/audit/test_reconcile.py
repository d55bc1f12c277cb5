"""The reconciliation's machinery, on a sealed table of its own: a kind is one small function,
only its actions' successful entries are parsed, a row whose seal fails is left to `bad_rows`,
a row the log says stands but which is gone is listed, and a log that does not verify says
nothing of the rows. The sealed tables themselves are tested where they live
(tests/unit/identity/test_role_proposals.py, tests/unit/locker/test_exchange.py,
tests/http/test_row_seals.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator, MutableMapping
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Column, LargeBinary, MetaData, String, Table, insert, text

from api.database import snapshot
from api.runtime import Runtime
from audit import AuditEvent, TamperError, reconcile
from audit.reconcile import Entry, Kind, Mismatch, Row
from audit.row_seal import BadRow
from tests.unit.audit.helpers import append, tampering

flags = Table(
    "test_reconcile_flags",
    MetaData(),
    Column("id", String(16), primary_key=True),
    Column("state", String(8), nullable=False),
    Column("mac", LargeBinary(32), nullable=True),
)


def flags_kind() -> Kind[str]:
    """A whole kind: which entries set a flag, what they set, what a row says."""

    def fold(said: MutableMapping[str, str], entry: Entry) -> None:
        said[str(entry["resource"])] = str(entry["details"]["state"])

    def stored(row: Row) -> tuple[str, str]:
        return str(row["id"]), str(row["state"])

    def differ(logged: str | None, stored: str | None) -> str | None:
        return None if logged == stored else f"{stored}, but the log last recorded {logged}"

    return Kind(flags, frozenset({"test.flag.set"}), fold, stored, differ)


@pytest.fixture
def flagged(runtime: Runtime) -> Iterator[Runtime]:
    flags.metadata.create_all(runtime.engine)
    yield runtime
    flags.metadata.drop_all(runtime.engine)


def _set(runtime: Runtime, flag: str, state: str, outcome: str = "success") -> None:
    with runtime.transaction() as session:
        said = AuditEvent(actor="admin:test", action="test.flag.set", outcome=outcome,
                          resource=flag, details={"state": state})  # fmt: skip
        runtime.audit_log(session).append(said)


def _row(runtime: Runtime, flag: str, state: str, *, sealed: bool = True) -> None:
    row = {"id": flag, "state": state}
    with runtime.transaction() as session:
        values = runtime.row_seal.sealed(flags, row) if sealed else {**row, "mac": b"x" * 32}
        session.execute(insert(flags).values(values))


def _checked(runtime: Runtime) -> reconcile.Reconciled:
    with snapshot(runtime.engine) as connection:
        return reconcile.reconcile(
            connection, runtime.row_seal, [flags_kind()], verifier=runtime.audit_verifier,
            origin=runtime.settings.resolved_audit_origin,
        )  # fmt: skip


def _reconciled(runtime: Runtime) -> list[Mismatch]:
    return _checked(runtime).mismatches


def test_only_successful_entries_of_the_kinds_actions_are_parsed(
    flagged: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    append(flagged, 30)  # other actions: never parsed
    _set(flagged, "a", "on")
    _set(flagged, "a", "off", outcome="failure")  # an attempt that changed nothing
    _set(flagged, "b", "on")
    _row(flagged, "a", "on")
    _row(flagged, "c", "off", sealed=False)  # not honoured: reported as such, and as absent
    parsed: list[Any] = []
    loads = json.loads

    def counted(data: Any) -> Any:
        parsed.append(data)
        return loads(data)

    monkeypatch.setattr(reconcile, "json", SimpleNamespace(loads=counted))
    found = _checked(flagged)
    assert found.mismatches == [Mismatch(flags.name, "b", "None, but the log last recorded on")]
    assert found.bad == [BadRow(flags.name, "c", "wrong")]
    assert len(parsed) == 3, "of 33 entries, only the kind's three were parsed"


def test_a_row_put_back_is_listed_and_a_log_that_does_not_verify_says_nothing(
    flagged: Runtime,
) -> None:
    _set(flagged, "a", "on")
    _row(flagged, "a", "on")
    assert _reconciled(flagged) == []
    _set(flagged, "a", "off")  # the row was not changed with it: as if the old one came back
    assert _reconciled(flagged) == [
        Mismatch(flags.name, "a", "on, but the log last recorded off", honoured=True)
    ]
    with tampering(flagged) as connection:
        connection.execute(text("DELETE FROM audit_entries WHERE seq = 0"))
    with pytest.raises(TamperError):
        _reconciled(flagged)
