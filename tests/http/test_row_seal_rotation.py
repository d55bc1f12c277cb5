"""`shanakht keys rotate row-seal`, `keys reseal row-seal` and `keys retire row-seal`: after a
rotation new rows are sealed under the new version and a replica already running honours them;
the re-seal gives every stored row of authorization state a MAC under it, carrying each client
registration's fingerprint in the audit log so `audit integrity` still passes, and never
blessing a row whose seal fails or one put back from before; and once the older version is
retired, a row forged under it is not honoured."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from api import key_retirement
from api.key_versions import RECHECK_SECONDS
from api.migrate import SEALED_TABLES
from api.models import key_fingerprints, key_retirements
from api.runtime import STATE_MAC_KEY, Runtime
from api.settings import Settings
from audit.models import entries
from audit.row_resealing import RESEALED, each_batch, reseal_rows
from audit.row_seal import MAC_COLUMN, RowSeal, mac_version, retired
from identity.models import citizens, clients, roles, tokens
from identity.nadra import SCENARIOS, read_registry
from identity.oidc.tokens import TokenService
from identity.reconciled import CLIENT_RESEALED, carry_registrations
from tests.cli.test_cli import run
from tests.cli.test_pii_rotation import _replica
from tests.http.oidc_kit import (
    Browser,
    RelyingParty,
    register_citizen,
    register_client,
    token,
)
from tests.http.test_row_seals import EVIL, _add_legacy, _client_row, _locker_rows, by_sql


@pytest.fixture(autouse=True)
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests rotate and retire within a second (the wait: `test_pii_retirement`)."""
    monkeypatch.setattr(key_retirement, "SETTLE_SECONDS", 0.0)


def _mac_versions(runtime: Runtime) -> dict[str, set[int]]:
    """Each sealed table that has rows, and the key versions of their MACs (retired rows,
    which have none, left out)."""
    found: dict[str, set[int]] = {}
    with runtime.engine.connect() as connection:
        for table in SEALED_TABLES:
            for row in connection.execute(select(table)):
                values = row._mapping
                if not retired(table, values):
                    found.setdefault(table.name, set()).add(mac_version(values[MAC_COLUMN]))
    return found


def _entries(runtime: Runtime, action: str) -> list[dict[str, Any]]:
    with runtime.engine.connect() as connection:
        rows = connection.execute(select(entries.c.entry).order_by(entries.c.seq)).scalars()
        found = [json.loads(row) for row in rows]
    return [entry for entry in found if entry["action"] == action]


def _signed_in(web: TestClient, runtime: Runtime) -> tuple[RelyingParty, str]:
    """A citizen signed in to an e-service through the code flow, with tokens: a session, a
    grant, a spent code and a refresh token, each a sealed row: the e-service, and its refresh
    token."""
    record = read_registry(runtime.identity.nadra_file)[SCENARIOS["active_female"]]
    register_citizen(runtime, record)
    rp = register_client(runtime, "etransfer")
    query, verifier = Browser(web).sign_in(rp, record.cnic)
    issued = token(
        web, rp, grant_type="authorization_code", code=query["code"],
        redirect_uri=rp.redirect_uri, code_verifier=verifier,
    )  # fmt: skip
    assert issued.status_code == 200, issued.text
    return rp, issued.json()["refresh_token"]


def test_a_rotated_row_seal_key_seals_new_rows_and_reseal_moves_every_stored_one(
    web: TestClient, oidc_runtime: Runtime, settings: Settings, cli_env: dict[str, str]
) -> None:
    _signed_in(web, oidc_runtime)
    _add_legacy(cli_env, "https://legacy.example/cb")
    _locker_rows(oidc_runtime)
    before = _mac_versions(oidc_runtime)
    assert set().union(*before.values()) == {1}
    assert {"identity_citizens", "identity_clients", "identity_sessions", "identity_grants",
            "identity_tokens", "locker_documents", "locker_shares", "locker_nominees",
            "locker_legal_requests"} <= before.keys()  # fmt: skip

    code, out = run(cli_env, "keys", "rotate", "row-seal")
    assert code == 0, out
    assert "version 2" in out
    assert "keys reseal row-seal" in out

    # A replica started after the rotation seals under version 2; one already running
    # (`oidc_runtime`, which listed the keys before) honours what it sealed.
    with _replica(settings) as other:
        register_client(other, "after")
    assert _mac_versions(oidc_runtime)["identity_clients"] == {1, 2}
    with oidc_runtime.transaction() as session:
        assert oidc_runtime.provider(session).clients.get("after") is not None

    code, out = run(cli_env, "keys", "reseal", "row-seal")
    assert code == 0, out
    assert "rows sealed again under row-seal key version 2" in out
    assert set().union(*_mac_versions(oidc_runtime).values()) == {2}
    (entry,) = _entries(oidc_runtime, RESEALED)
    assert entry["details"]["resealed"] > 10
    assert entry["details"]["current"] == 1  # "after"
    carried = _entries(oidc_runtime, CLIENT_RESEALED)
    assert sorted(e["resource"] for e in carried) == ["client:etransfer", "client:legacy"]
    code, out = run(cli_env, "audit", "integrity")
    assert code == 0, out
    with oidc_runtime.transaction() as session:
        assert oidc_runtime.provider(session).clients.get("legacy") is not None
    code, out = run(cli_env, "keys", "reseal", "row-seal")
    assert code == 0, out
    assert "\n0 rows sealed again" in out, out

    code, out = run(cli_env, "keys", "retire", "row-seal")
    assert code == 0, out
    assert "retired row-seal key versions 1" in out
    assert not (settings.data_dir / "keys" / f"{STATE_MAC_KEY}.json").exists()
    code, out = run(cli_env, "audit", "integrity")
    assert code == 0, out
    code, out = run(cli_env, "keys", "list", "row-seal")
    assert code == 0, out
    lines = out.splitlines()
    assert any(line.startswith("1 ") and "retired" in line for line in lines), out
    assert any("state-mac.v2" in line and "current" in line for line in lines), out


def test_a_row_forged_under_a_retired_version_is_not_honoured(
    oidc_runtime: Runtime, settings: Settings, cli_env: dict[str, str]
) -> None:
    """Whoever holds the leaked version 1 and can write the database grants themself a role
    with a MAC that holds under it: honoured until the version is retired, then not, by a
    process started afterwards and by one already running."""
    leaked = RowSeal.of(oidc_runtime.keys.secret(STATE_MAC_KEY))
    record = read_registry(oidc_runtime.identity.nadra_file)[SCENARIOS["active_male"]]
    citizen = register_citizen(oidc_runtime, record)
    with oidc_runtime.transaction() as session:
        oidc_runtime.provider(session).roles.add_department("sed", "School Education")
    code, out = run(cli_env, "keys", "rotate", "row-seal")
    assert code == 0, out
    code, out = run(cli_env, "keys", "reseal", "row-seal")
    assert code == 0, out
    forged = {"citizen_id": citizen, "department_id": "sed", "role": "signing.officer",
              "granted_by": "admin:cli", "granted_at": oidc_runtime.clock()}  # fmt: skip
    row = {column.name: forged.get(column.name) for column in roles.c if column.name != MAC_COLUMN}
    assert oidc_runtime.row_seal.holds(roles, leaked.sealed(roles, row)), "the attack today"

    code, out = run(cli_env, "keys", "retire", "row-seal")
    assert code == 0, out
    by_sql(oidc_runtime, roles.insert().values(leaked.sealed(roles, row)))
    time.sleep(RECHECK_SECONDS * 1.1)  # the running process lists the keys folder again
    with _replica(settings) as later:
        for process in (later, oidc_runtime):
            with process.engine.connect() as connection:
                (stored,) = connection.execute(select(roles)).all()
            assert not process.row_seal.holds(roles, stored._mapping)
    code, out = run(cli_env, "audit", "integrity")
    assert code == 1, out
    assert "identity_roles" in out


def test_nothing_is_retired_while_a_row_under_an_older_version_holds(
    oidc_runtime: Runtime, cli_env: dict[str, str]
) -> None:
    register_client(oidc_runtime, "etransfer")
    assert run(cli_env, "keys", "rotate", "row-seal")[0] == 0
    code, out = run(cli_env, "keys", "retire", "row-seal")
    assert code == 1, out
    assert "version 1 still seals" in out
    assert "rows in use" in out
    with oidc_runtime.transaction() as session:
        assert oidc_runtime.provider(session).clients.get("etransfer") is not None


def test_a_row_whose_seal_fails_is_named_and_left_as_it_is(
    oidc_runtime: Runtime, cli_env: dict[str, str]
) -> None:
    register_client(oidc_runtime, "etransfer")
    register_client(oidc_runtime, "other")
    by_sql(oidc_runtime, update(clients).where(clients.c.id == "etransfer").values(name="Evil"))
    changed = _client_row(oidc_runtime, "etransfer")

    assert run(cli_env, "keys", "rotate", "row-seal")[0] == 0
    code, out = run(cli_env, "keys", "reseal", "row-seal")

    assert code == 1, out
    assert "left as it is: identity_clients etransfer: its row seal fails" in out
    assert _client_row(oidc_runtime, "etransfer") == changed
    assert mac_version(_client_row(oidc_runtime, "other")[MAC_COLUMN]) == 2  # type: ignore[arg-type]


def test_nothing_is_sealed_anew_while_a_row_differs_from_the_log(
    oidc_runtime: Runtime, cli_env: dict[str, str]
) -> None:
    """A client registration put back from before its last one holds its seal: sealed anew,
    it would pass as the service's own under the new version. The re-seal runs the
    integrity check first and seals nothing while a row differs from the audit log."""
    _add_legacy(cli_env, "https://legacy.example/cb", EVIL)
    kept = _client_row(oidc_runtime, "legacy")
    assert run(cli_env, "clients", "remove", "legacy")[0] == 0
    _add_legacy(cli_env, "https://legacy.example/cb")
    by_sql(oidc_runtime, update(clients).where(clients.c.id == "legacy").values(**kept))
    before = _mac_versions(oidc_runtime)

    assert run(cli_env, "keys", "rotate", "row-seal")[0] == 0
    code, out = run(cli_env, "keys", "reseal", "row-seal")

    assert code == 1, out
    assert "identity_clients legacy: its registration is not the one the log last recorded" in out
    assert "nothing was changed" in out
    assert _mac_versions(oidc_runtime) == before
    assert _entries(oidc_runtime, RESEALED) == []


def test_tables_with_keys_of_several_columns_are_walked_whole_in_small_batches(
    oidc_runtime: Runtime,
) -> None:
    """Roles are keyed by (citizen, department, role): batches of two rows, compared as
    tuples, still visit every row once."""
    registry = read_registry(oidc_runtime.identity.nadra_file)
    people = [register_citizen(oidc_runtime, registry[SCENARIOS[name]])
              for name in ("active_male", "active_female")]  # fmt: skip
    with oidc_runtime.transaction() as session:
        roles_ = oidc_runtime.provider(session).roles
        for department in ("sed", "lgcd"):
            roles_.add_department(department, department.upper())
        for citizen in people:
            for department in ("sed", "lgcd"):
                for role in ("audit.reader", "signing.officer"):
                    roles_.grant(citizen, "p", department, role, by="admin:test")
    seen: list[tuple[Any, ...]] = []

    def visit(_session: Any, rows: list[Any]) -> None:
        assert len(rows) <= 2
        seen.extend((r["citizen_id"], r["department_id"], r["role"]) for r in rows)

    each_batch(oidc_runtime.transaction, roles, visit, rows=2)
    with oidc_runtime.engine.connect() as connection:
        every = [
            tuple(r)
            for r in connection.execute(
                select(roles.c.citizen_id, roles.c.department_id, roles.c.role)
            )
        ]
    assert len(seen) == 8
    assert sorted(seen) == sorted(every)


def test_a_row_a_request_changes_between_read_and_write_is_left_for_the_next_run(
    oidc_runtime: Runtime, cli_env: dict[str, str]
) -> None:
    """A failed login counted while the batch holding that citizen's row was being sealed
    anew: the row as the request wrote it stands, its seal whole, and the write of the re-seal
    is not made (compare-and-set on the MAC)."""
    record = read_registry(oidc_runtime.identity.nadra_file)[SCENARIOS["active_male"]]
    citizen = register_citizen(oidc_runtime, record)
    assert run(cli_env, "keys", "rotate", "row-seal")[0] == 0
    seal = oidc_runtime.row_seal
    mac, interfered = seal.mac, []

    def with_a_request_in_between(table: Any, row: Any) -> bytes:
        if table is citizens and not interfered:
            interfered.append(table)
            with oidc_runtime.transaction() as session:
                oidc_runtime.provider(session).accounts.record_failure(citizen, 3, None)
        return mac(table, row)

    seal.mac = with_a_request_in_between  # type: ignore[method-assign]
    try:
        report = reseal_rows(
            oidc_runtime.transaction, seal, SEALED_TABLES, oidc_runtime.audit_log,
            actor="admin:test", resealed=carry_registrations(oidc_runtime.audit_log, "admin:test"),
        )  # fmt: skip
    finally:
        del seal.mac
    assert interfered
    assert report.changed_meanwhile == 1
    with oidc_runtime.transaction() as session:
        account = oidc_runtime.provider(session).accounts.by_id(citizen)
    assert account is not None, "its row seal holds"
    assert account.failed_logins == 3


def test_a_refresh_whose_token_is_sealed_anew_meanwhile_still_succeeds(
    web: TestClient,
    oidc_runtime: Runtime,
    cli_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The re-seal gives the refresh token's row a new MAC between the refresh's read and its
    spend (a compare-and-set on the MAC read): the refresh tries once more with the new MAC,
    so the citizen is not signed out of the e-service by a key rotation."""
    rp, refresh_token = _signed_in(web, oidc_runtime)
    assert run(cli_env, "keys", "rotate", "row-seal")[0] == 0
    make_event, resealed = TokenService._event, []

    def sealed_anew_meanwhile(self: TokenService, action: str, *args: Any, **kw: Any) -> Any:
        """The re-seal's write to the token's row, as it would commit between the refresh's
        read and its spend (here in the refresh's own transaction: SQLite lets one writer in)."""
        if action == "identity.token.refreshed" and not resealed:
            session = self._db
            for row in session.execute(select(tokens).where(tokens.c.kind == "refresh")):
                values = row._mapping
                if values[MAC_COLUMN] is not None:
                    new = oidc_runtime.row_seal.mac(tokens, values)
                    session.execute(
                        update(tokens).where(tokens.c.id == values["id"]).values(mac=new)
                    )
                    resealed.append(values["id"])
        return make_event(self, action, *args, **kw)

    monkeypatch.setattr(TokenService, "_event", sealed_anew_meanwhile)
    refreshed = token(web, rp, grant_type="refresh_token", refresh_token=refresh_token)
    assert resealed, "the token's row was sealed anew between the refresh's read and its spend"
    assert refreshed.status_code == 200, refreshed.text


def test_a_retirement_row_written_by_sql_costs_no_row(
    oidc_runtime: Runtime, settings: Settings, cli_env: dict[str, str]
) -> None:
    """Before the re-seal, whoever can write the database records version 1 as retired: the
    retirement still counts the rows under it with version 1's own key, refuses, says the
    record is not its own, and deletes nothing."""
    register_client(oidc_runtime, "etransfer")
    assert run(cli_env, "keys", "rotate", "row-seal")[0] == 0
    with oidc_runtime.engine.connect() as connection:
        recorded = connection.execute(
            select(key_fingerprints.c.fingerprint).where(key_fingerprints.c.name == STATE_MAC_KEY)
        ).scalar_one()
    by_sql(
        oidc_runtime,
        key_retirements.insert().values(
            name=STATE_MAC_KEY, fingerprint=recorded, retired_at=oidc_runtime.clock()
        ),
    )
    code, out = run(cli_env, "keys", "retire", "row-seal")
    assert code == 1, out
    assert "version 1 still seals" in out
    assert "version 1 is recorded as retired, but not by `keys retire`" in out
    assert (settings.data_dir / "keys" / f"{STATE_MAC_KEY}.json").is_file()


def test_a_client_put_back_while_the_reseal_runs_is_sealed_anew_but_still_listed(
    oidc_runtime: Runtime, cli_env: dict[str, str]
) -> None:
    """A registration put back after the re-seal's reconciliation, before its batch is read,
    holds its seal and is sealed anew; its carrying entry starts from a fingerprint the log
    never recorded last, so the integrity check still lists it."""
    _add_legacy(cli_env, "https://legacy.example/cb", EVIL)
    kept = _client_row(oidc_runtime, "legacy")
    assert run(cli_env, "clients", "remove", "legacy")[0] == 0
    _add_legacy(cli_env, "https://legacy.example/cb")
    assert run(cli_env, "keys", "rotate", "row-seal")[0] == 0
    put_back: list[bool] = []

    def put_back_first() -> Any:
        if not put_back:
            put_back.append(True)
            by_sql(oidc_runtime, update(clients).where(clients.c.id == "legacy").values(**kept))
        return oidc_runtime.transaction()

    report = reseal_rows(
        put_back_first, oidc_runtime.row_seal, [clients], oidc_runtime.audit_log,
        actor="admin:test", resealed=carry_registrations(oidc_runtime.audit_log, "admin:test"),
    )  # fmt: skip
    assert report.resealed == 1
    assert mac_version(_client_row(oidc_runtime, "legacy")[MAC_COLUMN]) == 2  # type: ignore[arg-type]
    code, out = run(cli_env, "audit", "integrity")
    assert code == 1, out
    assert "identity_clients legacy: its registration is not the one the log last recorded" in out
