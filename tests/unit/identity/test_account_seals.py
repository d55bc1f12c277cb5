"""Sealed citizens' rows (migration 0025; docs/threat-model.md section 7, item 9): a password
hash, a lockout or a removal changed by SQL lets nobody in, and every write of the service's own
keeps the account honoured."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update

from api.migrate import prepare, sealing_record
from audit import pseudonym
from audit.row_seal import bad_rows
from identity.accounts import ERASED
from identity.errors import InvalidCredentials
from identity.models import citizens
from identity.nadra import SCENARIOS, CitizenRecord
from identity.passwords import HashParameters, PasswordHasher
from tests.http.test_row_seals import set_back
from tests.unit.identity.conftest import IdentityKit
from tests.unit.identity.test_enrolment import CLIENT, PASSWORD, _register

KNOWN = "Dba#Chose-Th1s"  # a password the one who writes the table knows


@pytest.fixture
def citizen(kit: IdentityKit, registry: dict[str, CitizenRecord]) -> CitizenRecord:
    record = registry[SCENARIOS["active_male"]]
    _register(kit, record)
    return record


def _login(kit: IdentityKit, cnic: str, password: str) -> str:
    return kit.login().login(cnic, password, client=CLIENT).citizen_id


def _refused(kit: IdentityKit, cnic: str, password: str) -> bool:
    try:
        _login(kit, cnic, password)
    except InvalidCredentials as refusal:
        return str(refusal) == "the CNIC or password is not right"
    return False


def _by_sql(kit: IdentityKit, statement: Any) -> None:
    """What a DBA can do, without the service's keys."""
    with kit.runtime.transaction() as session:
        session.execute(statement)


def _row(kit: IdentityKit) -> dict[str, Any]:
    with kit.runtime.sessions() as session:
        return dict(session.execute(select(citizens)).one()._mapping)


def _unhonoured(kit: IdentityKit) -> set[str]:
    with kit.runtime.sessions() as session:
        return {bad.key for bad in bad_rows(session, kit.runtime.row_seal, [citizens])}


def test_a_password_hash_planted_by_sql_signs_nobody_in(
    kit: IdentityKit, citizen: CitizenRecord
) -> None:
    """The hash of a password the DBA chose opens nothing, and neither does the citizen's own
    any more: the row is no account until it is set right (a reset, from a sealed backup)."""
    planted = kit.hasher.hash(KNOWN)
    _by_sql(kit, update(citizens).values(password_hash=planted))
    assert _refused(kit, citizen.cnic, KNOWN)
    assert _refused(kit, citizen.cnic, PASSWORD)
    assert _unhonoured(kit) == {_row(kit)["id"]}
    with kit.runtime.transaction() as session:
        accounts = kit.runtime.provider(session).accounts
        assert accounts.by_id(_row(kit)["id"]) is None
        assert accounts.standing(_row(kit)["id"]) is None


def test_an_account_planted_by_sql_signs_nobody_in(
    kit: IdentityKit, citizen: CitizenRecord, registry: dict[str, CitizenRecord]
) -> None:
    """A row inserted for a CNIC without an account, under a password the DBA knows, with a
    registered account's MAC copied or with none."""
    other = registry[SCENARIOS["active_female"]]
    honest = _row(kit)
    for mac in (honest["mac"], None):
        forged = {
            **honest,
            "id": "f" * 32,
            "pseudonym": pseudonym(other.cnic, key=kit.runtime.pseudonym_key),
            "password_hash": kit.hasher.hash(KNOWN),
            "mac": mac,
        }
        _by_sql(kit, insert(citizens).values(forged))
        assert _refused(kit, other.cnic, KNOWN)
        with kit.runtime.transaction() as session:
            assert kit.runtime.provider(session).accounts.standing("f" * 32) is None
        assert "f" * 32 in _unhonoured(kit)
        _by_sql(kit, delete(citizens).where(citizens.c.id == "f" * 32))
    assert _login(kit, citizen.cnic, PASSWORD) == honest["id"], "the honest account is whole"


def test_a_lockout_cleared_by_sql_lets_nobody_in(kit: IdentityKit, citizen: CitizenRecord) -> None:
    for _ in range(kit.policy.lockout_threshold):
        assert _refused(kit, citizen.cnic, "Wrong#Pass1234")
    assert _row(kit)["locked_until"] is not None
    assert _unhonoured(kit) == set(), "each failure and the lockout re-sealed the row"
    _by_sql(kit, update(citizens).values(failed_logins=0, locked_until=None))
    assert _refused(kit, citizen.cnic, PASSWORD), "still shut: the row is no account"
    assert _row(kit)["failed_logins"] == 0, "and nothing was written to it"


def test_a_removal_undone_by_sql_opens_nothing(kit: IdentityKit, citizen: CitizenRecord) -> None:
    citizen_id = _row(kit)["id"]
    with kit.runtime.transaction() as session:
        kit.runtime.provider(session).accounts.remove(citizen_id)
    assert _unhonoured(kit) == set()
    _by_sql(kit, update(citizens).values(status="active"))
    assert _refused(kit, citizen.cnic, PASSWORD)
    with kit.runtime.transaction() as session:
        assert kit.runtime.provider(session).accounts.standing(citizen_id) is None


def test_the_services_own_writes_keep_an_account_honoured(
    kit: IdentityKit, citizen: CitizenRecord
) -> None:
    """Registration, failures and a lockout, a success after it that clears them and rehashes,
    a new password, a removal and the erasure of its details: sealed at every step."""
    citizen_id = _row(kit)["id"]
    for _ in range(kit.policy.lockout_threshold):
        assert _refused(kit, citizen.cnic, "Wrong#Pass1234")
    assert _row(kit)["locked_until"] is not None
    kit.clock.advance(minutes=16)
    kit.hasher = PasswordHasher(HashParameters(time_cost=2, memory_kib=128, parallelism=1))
    assert _login(kit, citizen.cnic, PASSWORD) == citizen_id, "the lockout is over"
    assert _row(kit)["failed_logins"] == 0, "cleared"
    assert "m=128,t=2" in _row(kit)["password_hash"], "rehashed"
    assert _unhonoured(kit) == set()
    with kit.runtime.transaction() as session:
        kit.runtime.provider(session).accounts.set_password(
            citizen_id, kit.hasher.hash("N3w#Password-2026"), now=kit.clock()
        )
    assert _login(kit, citizen.cnic, "N3w#Password-2026") == citizen_id
    assert _unhonoured(kit) == set()
    with kit.runtime.transaction() as session:
        kit.runtime.provider(session).accounts.remove(citizen_id)
    assert _refused(kit, citizen.cnic, "N3w#Password-2026"), "removed"
    with kit.runtime.transaction() as session:
        assert kit.runtime.provider(session).accounts.erase(citizen_id)
    assert _row(kit)["profile"] == ERASED
    assert _unhonoured(kit) == set()


def test_a_removal_of_a_row_that_fails_its_seal_is_written_but_blesses_nothing(
    kit: IdentityKit, citizen: CitizenRecord
) -> None:
    citizen_id = _row(kit)["id"]
    _by_sql(kit, update(citizens).values(failed_logins=3))
    with kit.runtime.transaction() as session:
        accounts = kit.runtime.provider(session).accounts
        accounts.set_password(citizen_id, kit.hasher.hash(KNOWN), now=kit.clock())
        accounts.remove(citizen_id)
    row = _row(kit)
    assert row["status"] == "removed", "a removal takes away: written all the same"
    assert kit.hasher.verify(row["password_hash"], PASSWORD), "no new password on it"
    assert _unhonoured(kit) == {citizen_id}, "and not re-sealed"


def test_accounts_from_before_0025_are_sealed_by_the_upgrade_that_applies_it(
    kit: IdentityKit, citizen: CitizenRecord
) -> None:
    """Nobody is locked out by the upgrade: the run that applies 0025 seals the accounts it
    finds, once."""
    set_back(kit.runtime, "0024")
    assert not kit.runtime.keys.done(sealing_record("0025"))
    prepare(kit.runtime)
    assert kit.runtime.keys.done(sealing_record("0025"))
    assert _unhonoured(kit) == set()
    assert _login(kit, citizen.cnic, PASSWORD) == _row(kit)["id"]
