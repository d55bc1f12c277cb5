"""`shanakht keys rotate pii` and `keys reseal pii`: after a rotation the new version seals what
is written, a replica already running opens it at once, and the re-seal moves every stored
value (personal data, TOTP secrets, token-signing keys, pending challenges) onto the new
version without losing one, while a value that does not open and a row whose seal fails are
named and left exactly as they were."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import pyotp
from sqlalchemy import select, update

from api.runtime import IDENTITY_SEAL_KEY, Runtime, open_runtime
from api.settings import Settings
from audit.models import entries
from identity.accounts import ERASED
from identity.enrolment import REGISTER
from identity.models import citizens, totp_factors
from identity.nadra import SCENARIOS, ensure_registry, read_registry
from identity.resealing import RESEALED, SEALED_COLUMNS, reseal_all
from identity.sealing import MAX_VERSION, sealed_under
from tests.cli.test_cli import run
from tests.http.oidc_kit import PASSWORD, texted_code


def _versions(runtime: Runtime) -> dict[str, set[int]]:
    """Each sealed column, and the key versions its stored values are under."""
    found: dict[str, set[int]] = {}
    with runtime.engine.connect() as connection:
        for sealed in SEALED_COLUMNS:
            for column in sealed.contexts:
                values = connection.execute(select(sealed.table.c[column])).scalars()
                found[f"{sealed.table.name}.{column}"] = {sealed_under(v) for v in values}
    return found


@contextmanager
def _replica(settings: Settings) -> Iterator[Runtime]:
    other = open_runtime(settings)
    try:
        yield other
    finally:
        other.close()


def _resealed_entries(runtime: Runtime) -> list[dict[str, object]]:
    with runtime.engine.connect() as connection:
        rows = connection.execute(select(entries.c.entry).order_by(entries.c.seq)).scalars()
        found = [json.loads(row) for row in rows]
    return [entry for entry in found if entry["action"] == RESEALED]


def test_a_rotated_pii_key_seals_new_values_and_reseal_moves_every_stored_one(
    runtime: Runtime, settings: Settings, cli_env: dict[str, str], people: tuple[str, str]
) -> None:
    citizen, secret = people
    with runtime.transaction() as session:
        before = runtime.provider(session).accounts.by_id(citizen)
    assert before is not None
    assert set().union(*_versions(runtime).values()) == {1}

    code, out = run(cli_env, "keys", "rotate", "pii")
    assert code == 0, out
    assert "version 2" in out
    assert "keys reseal pii" in out

    # A replica started after the rotation seals under version 2 (a registration begun); one
    # that was running already (`runtime`, which listed the keys before) opens what it sealed.
    third = read_registry(ensure_registry(runtime.identity.nadra_file))[SCENARIOS["two_mobiles"]]
    mobile = third.mobile_numbers[0]
    with _replica(settings) as other, other.transaction() as session:
        ticket = other.enrolment(session).start_registration(third.card(), mobile, client="t")
    assert _versions(runtime)["identity_challenges.payload"] == {1, 2}
    with runtime.transaction() as session:
        runtime.enrolment(session).verify_code(ticket, REGISTER, texted_code(runtime, mobile))
        third_id = runtime.enrolment(session).complete_registration(ticket, PASSWORD)
    assert _versions(runtime)["identity_citizens.profile"] == {1, 2}

    code, out = run(cli_env, "keys", "reseal", "pii")
    assert code == 0, out
    assert "values sealed again under pii key version 2" in out
    assert "identity_citizens: 2 rows done" in out.splitlines()[0]
    assert set().union(*_versions(runtime).values()) == {2}, _versions(runtime)
    with runtime.transaction() as session:
        after = runtime.provider(session).accounts.by_id(citizen)
        assert after == before, "the same details, sealed anew"
        assert runtime.second_factor(session).apps.verify(citizen, pyotp.TOTP(secret).now())
        third_account = runtime.provider(session).accounts.by_id(third_id)
        assert third_account is not None
        assert third_account.mobile == mobile
    entry = _resealed_entries(runtime)[-1]
    assert entry["outcome"] == "success"
    details = entry["details"]
    assert isinstance(details, dict)
    # A's profile and mobile, TOTP secret and registration; B's registration; two OIDC keys.
    # Already under version 2: the third person's registration, profile and mobile.
    assert (details["version"], details["resealed"], details["current"]) == (2, 7, 3)
    assert details["changed_meanwhile"] == details["broken"] == details["unsealed_rows"] == 0

    code, out = run(cli_env, "keys", "reseal", "pii")
    assert code == 0, out
    assert "\n0 values sealed again" in out, out
    code, out = run(cli_env, "audit", "integrity")
    assert code == 0, out
    code, out = run(cli_env, "keys", "list", "pii")
    assert code == 0, out
    lines = out.splitlines()
    assert any("identity-seal " in line and "opens only" in line for line in lines), out
    assert any("identity-seal.v2" in line and "current" in line for line in lines), out


def test_a_value_that_does_not_open_or_a_row_whose_seal_fails_is_named_and_left_alone(
    runtime: Runtime, cli_env: dict[str, str], people: tuple[str, str]
) -> None:
    citizen, _secret = people
    with runtime.engine.begin() as connection:
        stored = connection.execute(select(totp_factors.c.secret)).scalar_one()
        broken = stored[:-1] + bytes([stored[-1] ^ 1])
        connection.execute(update(totp_factors).values(secret=broken))
        connection.execute(update(citizens).values(status="removed"))
        row_before = connection.execute(select(citizens)).one()

    assert run(cli_env, "keys", "rotate", "pii")[0] == 0
    code, out = run(cli_env, "keys", "reseal", "pii")
    assert code == 1, out
    assert f"left as it is: identity_totp.secret {citizen}: does not open" in out
    assert f"left as it is: identity_citizens {citizen}: its row seal fails" in out
    with runtime.engine.connect() as connection:
        assert connection.execute(select(totp_factors.c.secret)).scalar_one() == broken
        assert connection.execute(select(citizens)).one() == row_before
    versions = _versions(runtime)
    assert versions["identity_signing_keys.private_key"] == {2}
    assert versions["identity_challenges.payload"] == {2}
    assert versions["identity_citizens.profile"] == {1}
    assert _resealed_entries(runtime)[-1]["details"]["broken"] == 1  # type: ignore[index]


def test_an_erased_account_has_nothing_to_reseal_and_raises_no_alarm(
    runtime: Runtime, cli_env: dict[str, str], people: tuple[str, str]
) -> None:
    citizen, _secret = people
    with runtime.transaction() as session:
        accounts = runtime.provider(session).accounts
        accounts.remove(citizen)
        assert accounts.erase(citizen)
    assert run(cli_env, "keys", "rotate", "pii")[0] == 0
    code, out = run(cli_env, "keys", "reseal", "pii")
    assert code == 0, out
    with runtime.engine.connect() as connection:
        erased = connection.execute(select(citizens.c.profile, citizens.c.mobile)).one()
    assert tuple(erased) == (ERASED, ERASED)
    assert _versions(runtime)["identity_totp.secret"] == {2}


def test_a_row_a_request_changes_between_read_and_write_is_left_for_the_next_run(
    runtime: Runtime, cli_env: dict[str, str], people: tuple[str, str]
) -> None:
    """A failed login counted while the batch holding that citizen's row was being sealed
    anew: the row as the request wrote it stands (no older copy written over it, its row seal
    whole), and the next run seals it."""
    citizen, _secret = people
    assert run(cli_env, "keys", "rotate", "pii")[0] == 0
    sealer = runtime.identity.sealer
    resealed, interfered = sealer.resealed, []

    def with_a_request_in_between(sealed: bytes, context: str) -> bytes | None:
        if context.endswith(":mobile") and not interfered:
            interfered.append(context)
            with runtime.transaction() as session:
                runtime.provider(session).accounts.record_failure(citizen, 3, None)
        return resealed(sealed, context)

    sealer.resealed = with_a_request_in_between  # type: ignore[method-assign]
    report = reseal_all(
        runtime.transaction, sealer, runtime.row_seal, runtime.audit_log, actor="admin:test"
    )
    assert interfered
    assert report.changed_meanwhile == 1
    with runtime.transaction() as session:
        account = runtime.provider(session).accounts.by_id(citizen)
    assert account is not None, "its row seal holds"
    assert account.failed_logins == 3
    assert _versions(runtime)["identity_citizens.mobile"] == {1}
    del sealer.resealed
    again = reseal_all(
        runtime.transaction, sealer, runtime.row_seal, runtime.audit_log, actor="admin:test"
    )
    assert (again.resealed, again.changed_meanwhile) == (2, 0)
    assert _versions(runtime)["identity_citizens.mobile"] == {2}


def test_the_pii_key_stops_at_the_255_versions_a_sealed_value_can_name(
    runtime: Runtime, cli_env: dict[str, str]
) -> None:
    while len(runtime.keys.versions(IDENTITY_SEAL_KEY)) < MAX_VERSION:
        runtime.keys.add_version(IDENTITY_SEAL_KEY)
    code, out = run(cli_env, "keys", "rotate", "pii")
    assert code == 2, out
    assert "255 versions, as many as what it seals can name" in out
    assert len(runtime.keys.versions(IDENTITY_SEAL_KEY)) == MAX_VERSION
