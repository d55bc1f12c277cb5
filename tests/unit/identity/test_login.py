"""Password login: success, the one answer for every failure, lockout, throttles, expiry."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from audit import address_pseudonym
from audit.models import entries
from identity.errors import InvalidCredentials, TooManyAttempts
from identity.login import ACR_LOW
from identity.models import throttles
from identity.nadra import SCENARIOS, CitizenRecord
from identity.passwords import PasswordHasher
from tests.unit.identity.conftest import FAST_HASH, IdentityKit
from tests.unit.identity.test_enrolment import CLIENT, PASSWORD, _register


@pytest.fixture
def citizen(kit: IdentityKit, registry: dict[str, CitizenRecord]) -> CitizenRecord:
    record = registry[SCENARIOS["active_male"]]
    _register(kit, record)
    return record


def _login(kit: IdentityKit, cnic: str, password: str, client: str = CLIENT):
    return kit.login().login(cnic, password, client=client)


def _audit_actions(kit: IdentityKit) -> list[str]:
    import json

    with kit.runtime.engine.connect() as c:
        return [json.loads(e)["action"] for e in c.execute(select(entries.c.entry)).scalars()]


def test_the_right_password_logs_in_at_the_low_level(
    kit: IdentityKit, citizen: CitizenRecord
) -> None:
    dashed = f"{citizen.cnic[:5]}-{citizen.cnic[5:12]}-{citizen.cnic[12]}"
    result = _login(kit, dashed, PASSWORD)
    assert result.acr == ACR_LOW
    assert not result.password_expired
    assert _audit_actions(kit)[-1] == "identity.login"


@pytest.mark.parametrize("who", ["wrong password", "unknown cnic", "malformed cnic"])
def test_every_failure_gives_the_same_answer(
    kit: IdentityKit, citizen: CitizenRecord, registry: dict[str, CitizenRecord], who: str
) -> None:
    cnic = {
        "wrong password": citizen.cnic,
        "unknown cnic": registry[SCENARIOS["active_female"]].cnic,
        "malformed cnic": "12-34",
    }[who]
    with pytest.raises(InvalidCredentials) as caught:
        _login(kit, cnic, PASSWORD if who != "wrong password" else "Wrong#Pass1234")
    assert str(caught.value) == "the CNIC or password is not right"


def test_unknown_accounts_cost_the_same_hashing(
    kit: IdentityKit, citizen: CitizenRecord, registry: dict[str, CitizenRecord]
) -> None:
    """Timing cannot tell them apart: each refusal runs exactly one argon2 verification."""
    calls: list[str | None] = []
    real = kit.hasher.verify

    def counting(encoded: str | None, password: str) -> bool:
        calls.append(encoded)
        return real(encoded, password)

    kit.hasher.verify = counting  # type: ignore[method-assign]
    for cnic in (citizen.cnic, registry[SCENARIOS["active_female"]].cnic, "nonsense"):
        with pytest.raises(InvalidCredentials):
            _login(kit, cnic, "Wrong#Pass1234")
    assert len(calls) == 3


def test_repeated_failures_lock_the_account_and_say_so_by_sms(
    kit: IdentityKit, citizen: CitizenRecord
) -> None:
    for _ in range(kit.policy.lockout_threshold):
        with pytest.raises(InvalidCredentials):
            _login(kit, citizen.cnic, "Wrong#Pass1234")
    assert "locked" in kit.sms.last_to(citizen.mobile_numbers[0]).text
    assert "identity.account.locked" in _audit_actions(kit)
    with pytest.raises(InvalidCredentials):
        _login(kit, citizen.cnic, PASSWORD)  # even the right password, while locked
    kit.clock.advance(minutes=16)
    assert _login(kit, citizen.cnic, PASSWORD).citizen_id


def test_failures_are_recorded_even_though_the_login_is_refused(
    kit: IdentityKit, citizen: CitizenRecord
) -> None:
    with pytest.raises(InvalidCredentials):
        _login(kit, citizen.cnic, "Wrong#Pass1234")
    failures = [a for a in _audit_actions(kit) if a == "identity.login"]
    assert len(failures) == 1


def test_attempts_per_account_are_throttled(kit: IdentityKit, citizen: CitizenRecord) -> None:
    kit.policy = type(kit.policy)(lockout_threshold=1000)
    for i in range(kit.policy.per_account.attempts):
        with pytest.raises(InvalidCredentials):
            _login(kit, citizen.cnic, "Wrong#Pass1234", client=f"198.51.100.{i}")
    with pytest.raises(TooManyAttempts) as caught:
        _login(kit, citizen.cnic, PASSWORD, client="198.51.100.200")
    assert caught.value.retry_after > 0


def test_attempts_per_address_are_throttled(
    kit: IdentityKit, citizen: CitizenRecord, registry: dict[str, CitizenRecord]
) -> None:
    cnics = list(registry)[100 : 100 + kit.policy.per_address.attempts]
    for cnic in cnics:
        with pytest.raises(InvalidCredentials):
            _login(kit, cnic, "Spray#Password2026")
    with pytest.raises(TooManyAttempts):
        _login(kit, citizen.cnic, PASSWORD)
    assert _login(kit, citizen.cnic, PASSWORD, client="192.0.2.1").citizen_id


def test_login_entries_name_the_address_by_its_keyed_pseudonym_only(
    kit: IdentityKit, citizen: CitizenRecord
) -> None:
    import json

    with pytest.raises(InvalidCredentials):
        _login(kit, citizen.cnic, "Wrong#Pass1234")
    _login(kit, citizen.cnic, PASSWORD)
    with kit.runtime.engine.connect() as c:
        logins = [
            json.loads(e)
            for e in c.execute(select(entries.c.entry)).scalars()
            if json.loads(e)["action"] == "identity.login"
        ]
    named = address_pseudonym(CLIENT, key=kit.runtime.pseudonym_key)
    assert [e["outcome"] for e in logins] == ["failure", "success"]
    assert [e["details"]["client"] for e in logins] == [named, named]
    assert all(CLIENT not in json.dumps(e) for e in logins)
    # The throttle still counts the raw address: it is what a refusal must key on.
    with kit.runtime.engine.connect() as c:
        keys = set(c.execute(select(throttles.c.key)).scalars())
    assert f"login:address:{CLIENT}" in keys


def test_an_old_password_is_flagged_expired(kit: IdentityKit, citizen: CitizenRecord) -> None:
    kit.clock.advance(days=91)
    assert _login(kit, citizen.cnic, PASSWORD).password_expired


def test_with_expiry_turned_off_no_password_ever_expires(
    kit: IdentityKit, citizen: CitizenRecord
) -> None:
    """The province's 90-day expiry is a deviation from ASVS 2.1.10 that a deployment can
    undo: SHANAKHT_PASSWORD_EXPIRY_DAYS=0 gives a policy without expiry (see
    tests/unit/api/test_password_expiry_setting.py), and then ten years change nothing."""
    kit.policy = replace(kit.policy, password_expiry=None)
    kit.clock.advance(days=3650)
    assert not _login(kit, citizen.cnic, PASSWORD).password_expired


def test_hashes_with_old_parameters_are_upgraded_at_login(
    kit: IdentityKit, citizen: CitizenRecord
) -> None:
    from identity.models import citizens
    from identity.passwords import HashParameters

    kit.hasher = PasswordHasher(HashParameters(time_cost=2, memory_kib=128, parallelism=1))
    _login(kit, citizen.cnic, PASSWORD)
    with kit.runtime.engine.connect() as c:
        stored = c.execute(select(citizens.c.password_hash)).scalar_one()
    assert "m=128,t=2" in stored


def test_the_default_hash_is_no_weaker_than_keycloaks() -> None:
    encoded = PasswordHasher().hash("Kinnow#Orchard2026")
    assert encoded.startswith("$argon2id$v=19$m=7168,t=5,p=1$")


def test_a_hash_from_before_the_pepper_is_peppered_at_login(
    kit: IdentityKit, citizen: CitizenRecord
) -> None:
    from identity.models import citizens
    from identity.passwords import PEPPERED

    kit.hasher = PasswordHasher(FAST_HASH, pepper=b"p" * 32)
    _login(kit, citizen.cnic, PASSWORD)
    with kit.runtime.engine.connect() as c:
        stored = c.execute(select(citizens.c.password_hash)).scalar_one()
    assert stored.startswith(PEPPERED)
    assert kit.hasher.verify(stored, PASSWORD)
    assert not PasswordHasher(FAST_HASH).verify(stored, PASSWORD)
