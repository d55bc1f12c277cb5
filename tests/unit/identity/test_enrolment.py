"""Registration and password reset, driven as the web pages will drive them."""

from __future__ import annotations

import dataclasses
import re

import pytest
from sqlalchemy import func, select

from audit.models import entries
from identity.enrolment import REGISTER, RESET
from identity.errors import (
    AccountExists,
    CardNotValid,
    ChallengeFailed,
    DetailsNotVerified,
    InvalidCnic,
    RegistryUnavailable,
    TooManyAttempts,
    WeakPassword,
    WrongCode,
)
from identity.models import challenges, citizens
from identity.nadra import SCENARIOS, CardDetails, CitizenRecord
from tests.unit.identity.conftest import IdentityKit, card_of

PASSWORD = "Kinnow#Orchard2026"
CLIENT = "203.0.113.7"


def _card(record: CitizenRecord, **changes: object) -> CardDetails:
    return CardDetails(**{**card_of(record), **changes})  # type: ignore[arg-type]


def _code(kit: IdentityKit, mobile: str) -> str:
    message = kit.sms.last_to(mobile)
    assert message is not None, "a text was sent"
    found = re.search(r"\b(\d{6})\b", message.text)
    assert found, f"no code in {message.text!r}"
    return found.group(1)


def _register(kit: IdentityKit, record: CitizenRecord, password: str = PASSWORD) -> str:
    mobile = record.mobile_numbers[0]
    with kit.runtime.transaction() as session:
        ticket = kit.enrolment(session).start_registration(_card(record), mobile, client=CLIENT)
    with kit.runtime.transaction() as session:
        kit.enrolment(session).verify_code(ticket, REGISTER, _code(kit, mobile))
    with kit.runtime.transaction() as session:
        return kit.enrolment(session).complete_registration(ticket, password)


def _count(kit: IdentityKit, table) -> int:
    with kit.runtime.engine.connect() as c:
        return c.execute(select(func.count()).select_from(table)).scalar_one()


@pytest.fixture
def citizen(registry: dict[str, CitizenRecord]) -> CitizenRecord:
    return registry[SCENARIOS["active_female"]]


def test_registration_creates_a_sealed_account(kit: IdentityKit, citizen: CitizenRecord) -> None:
    citizen_id = _register(kit, citizen)
    with kit.runtime.engine.connect() as c:
        row = c.execute(select(citizens)).one()
        audit = [e.decode() for e in c.execute(select(entries.c.entry)).scalars()]
    assert row.id == citizen_id
    assert citizen.cnic.encode() not in row.profile
    assert citizen.full_name.encode() not in row.profile
    assert citizen.mobile_numbers[0].encode() not in row.mobile
    assert row.password_hash.startswith("$argon2id$")
    actions = [re.search(r'"action":"([^"]+)"', e).group(1) for e in audit]
    assert actions == ["identity.registration.started", "identity.citizen.registered"]
    assert all(citizen.cnic not in e for e in audit)


@pytest.mark.parametrize(
    "change",
    [
        {"full_name": "Someone Else"},
        {"father_or_husband_name": "Another Father"},
        {"cnic": "35202-9999999-1"},
    ],
)
def test_details_nadra_does_not_confirm_are_refused_alike(
    kit: IdentityKit, citizen: CitizenRecord, change: dict[str, object]
) -> None:
    with (
        pytest.raises(DetailsNotVerified, match="do not match the card"),
        kit.runtime.transaction() as s,
    ):
        kit.enrolment(s).start_registration(
            _card(citizen, **change), citizen.mobile_numbers[0], client=CLIENT
        )
    assert _count(kit, challenges) == 0
    assert kit.sms.messages() == []


@pytest.mark.parametrize("scenario", ["expired_card", "cancelled_card", "deceased"])
def test_invalid_cards_are_refused(
    kit: IdentityKit, registry: dict[str, CitizenRecord], scenario: str
) -> None:
    record = registry[SCENARIOS[scenario]]
    mobile = record.mobile_numbers[0] if record.mobile_numbers else "+923001112223"
    with pytest.raises(CardNotValid), kit.runtime.transaction() as s:
        kit.enrolment(s).start_registration(_card(record), mobile, client=CLIENT)


def test_a_mobile_not_registered_to_the_cnic_is_refused(
    kit: IdentityKit, citizen: CitizenRecord
) -> None:
    with pytest.raises(DetailsNotVerified, match="mobile"), kit.runtime.transaction() as s:
        kit.enrolment(s).start_registration(_card(citizen), "+923459999999", client=CLIENT)


def test_a_malformed_cnic_never_reaches_nadra(kit: IdentityKit, citizen: CitizenRecord) -> None:
    kit.nadra.outage = True  # any call would raise RegistryUnavailable instead
    with pytest.raises(InvalidCnic), kit.runtime.transaction() as s:
        kit.enrolment(s).start_registration(
            _card(citizen, cnic="3520-123"), citizen.mobile_numbers[0], client=CLIENT
        )


def test_a_nadra_outage_leaves_nothing_behind(kit: IdentityKit, citizen: CitizenRecord) -> None:
    kit.nadra.outage = True
    with pytest.raises(RegistryUnavailable), kit.runtime.transaction() as s:
        kit.enrolment(s).start_registration(
            _card(citizen), citizen.mobile_numbers[0], client=CLIENT
        )
    assert _count(kit, challenges) == 0
    assert _count(kit, entries) == 0
    assert _count(kit, citizens) == 0


def test_an_existing_account_is_not_revealed_to_the_caller(
    kit: IdentityKit, citizen: CitizenRecord
) -> None:
    _register(kit, citizen)
    mobile = citizen.mobile_numbers[0]
    with kit.runtime.transaction() as session:
        ticket = kit.enrolment(session).start_registration(_card(citizen), mobile, client=CLIENT)
    assert len(ticket) == 32
    text = kit.sms.last_to(mobile).text
    assert "already have an account" in text
    assert not re.search(r"\d{6}", text), "no code goes out for an existing account"
    with pytest.raises(WrongCode), kit.runtime.transaction() as session:
        kit.enrolment(session).verify_code(ticket, REGISTER, "000000")


def test_two_racing_registrations_make_one_account(
    kit: IdentityKit, citizen: CitizenRecord
) -> None:
    mobile = citizen.mobile_numbers[0]
    tickets = []
    for _ in range(2):
        with kit.runtime.transaction() as session:
            ticket = kit.enrolment(session).start_registration(
                _card(citizen), mobile, client=CLIENT
            )
        with kit.runtime.transaction() as session:
            kit.enrolment(session).verify_code(ticket, REGISTER, _code(kit, mobile))
        tickets.append(ticket)
    with kit.runtime.transaction() as session:
        kit.enrolment(session).complete_registration(tickets[0], PASSWORD)
    with pytest.raises(AccountExists), kit.runtime.transaction() as session:
        kit.enrolment(session).complete_registration(tickets[1], PASSWORD)
    assert _count(kit, citizens) == 1


def test_wrong_codes_are_counted_and_burn_the_ticket(
    kit: IdentityKit, citizen: CitizenRecord
) -> None:
    mobile = citizen.mobile_numbers[0]
    with kit.runtime.transaction() as session:
        ticket = kit.enrolment(session).start_registration(_card(citizen), mobile, client=CLIENT)
    right = _code(kit, mobile)
    wrong = f"{(int(right) + 1) % 10**6:06d}"
    for left in (4, 3, 2, 1, 0):
        with pytest.raises(WrongCode) as caught, kit.runtime.transaction() as session:
            kit.enrolment(session).verify_code(ticket, REGISTER, wrong)
        assert caught.value.attempts_left == left
    with pytest.raises(ChallengeFailed), kit.runtime.transaction() as session:
        kit.enrolment(session).verify_code(ticket, REGISTER, right)


def test_codes_expire(kit: IdentityKit, citizen: CitizenRecord) -> None:
    mobile = citizen.mobile_numbers[0]
    with kit.runtime.transaction() as session:
        ticket = kit.enrolment(session).start_registration(_card(citizen), mobile, client=CLIENT)
    kit.clock.advance(minutes=6)
    with pytest.raises(ChallengeFailed, match="expired"), kit.runtime.transaction() as session:
        kit.enrolment(session).verify_code(ticket, REGISTER, _code(kit, mobile))


def test_a_ticket_is_used_once_and_for_its_purpose(
    kit: IdentityKit, citizen: CitizenRecord
) -> None:
    mobile = citizen.mobile_numbers[0]
    with kit.runtime.transaction() as session:
        ticket = kit.enrolment(session).start_registration(_card(citizen), mobile, client=CLIENT)
    with pytest.raises(ChallengeFailed), kit.runtime.transaction() as session:
        kit.enrolment(session).complete_registration(ticket, PASSWORD)  # code not yet proven
    with pytest.raises(ChallengeFailed), kit.runtime.transaction() as session:
        kit.enrolment(session).verify_code(ticket, RESET, _code(kit, mobile))
    with kit.runtime.transaction() as session:
        kit.enrolment(session).verify_code(ticket, REGISTER, _code(kit, mobile))
        kit.enrolment(session).complete_registration(ticket, PASSWORD)
    with pytest.raises(ChallengeFailed), kit.runtime.transaction() as session:
        kit.enrolment(session).complete_registration(ticket, PASSWORD)


def test_a_weak_password_can_be_replaced_without_a_new_code(
    kit: IdentityKit, citizen: CitizenRecord
) -> None:
    mobile = citizen.mobile_numbers[0]
    with kit.runtime.transaction() as session:
        ticket = kit.enrolment(session).start_registration(_card(citizen), mobile, client=CLIENT)
    with kit.runtime.transaction() as session:
        kit.enrolment(session).verify_code(ticket, REGISTER, _code(kit, mobile))
    first_name = citizen.full_name.split()[0]
    for weak in ("Password@123", "short1!", f"{first_name}#2026!x"):
        with pytest.raises(WeakPassword), kit.runtime.transaction() as session:
            kit.enrolment(session).complete_registration(ticket, weak)
    with kit.runtime.transaction() as session:
        kit.enrolment(session).complete_registration(ticket, PASSWORD)
    assert _count(kit, citizens) == 1


def test_registration_attempts_are_throttled_per_cnic(
    kit: IdentityKit, citizen: CitizenRecord
) -> None:
    mobile = citizen.mobile_numbers[0]
    for _ in range(kit.policy.per_cnic_enrolment.attempts):
        with kit.runtime.transaction() as session:
            kit.enrolment(session).start_registration(_card(citizen), mobile, client=CLIENT)
    with pytest.raises(TooManyAttempts) as caught, kit.runtime.transaction() as session:
        kit.enrolment(session).start_registration(_card(citizen), mobile, client=CLIENT)
    assert 0 < caught.value.retry_after <= 3600
    kit.clock.advance(hours=1)
    with kit.runtime.transaction() as session:
        kit.enrolment(session).start_registration(_card(citizen), mobile, client=CLIENT)


def test_password_reset_sets_a_new_password(kit: IdentityKit, citizen: CitizenRecord) -> None:
    citizen_id = _register(kit, citizen)
    mobile = citizen.mobile_numbers[0]
    with kit.runtime.transaction() as session:
        ticket = kit.enrolment(session).start_reset(_card(citizen), mobile, client=CLIENT)
    with kit.runtime.transaction() as session:
        kit.enrolment(session).verify_code(ticket, RESET, _code(kit, mobile))
        assert kit.enrolment(session).complete_reset(ticket, "Fresh-Mango!Season9") == citizen_id
    assert kit.login().login(citizen.cnic, "Fresh-Mango!Season9", client=CLIENT)


def test_a_reset_for_a_cnic_without_account_looks_the_same(
    kit: IdentityKit, citizen: CitizenRecord
) -> None:
    mobile = citizen.mobile_numbers[0]
    with kit.runtime.transaction() as session:
        ticket = kit.enrolment(session).start_reset(_card(citizen), mobile, client=CLIENT)
    assert len(ticket) == 32
    assert "no account" in kit.sms.last_to(mobile).text


def test_card_details_compare_as_nadra_does(kit: IdentityKit, citizen: CitizenRecord) -> None:
    shouted = dataclasses.replace(_card(citizen), full_name=f"  {citizen.full_name.upper()} ")
    with kit.runtime.transaction() as session:
        kit.enrolment(session).start_registration(shouted, citizen.mobile_numbers[0], client=CLIENT)
