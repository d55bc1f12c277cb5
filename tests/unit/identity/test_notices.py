"""The SMS that confirms a changed credential: what it says, to whom, and that a gateway
failure never undoes the change."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pyotp
import pytest
from sqlalchemy import select

from audit import pseudonym
from audit.models import entries
from identity.accounts import Accounts
from identity.enrolment import RESET
from identity.nadra import SCENARIOS, CitizenRecord
from identity.notices import (
    APP_ADDED,
    APP_REMOVED,
    APP_REPLACED,
    PASSWORD_CHANGED,
    RECOVERY_CODE_USED,
    CredentialNotices,
    notice_text,
)
from identity.second_factor import SecondFactor
from tests.unit.identity.conftest import IdentityKit
from tests.unit.identity.test_enrolment import CLIENT, _card, _code, _register

NEW_PASSWORD = "Mango#Season2027"


@pytest.fixture
def citizen(kit: IdentityKit, registry: dict[str, CitizenRecord]) -> CitizenRecord:
    record = registry[SCENARIOS["two_mobiles"]]
    _register(kit, record)  # registered with its first number
    return record


def _actions(kit: IdentityKit) -> list[str]:
    with kit.runtime.engine.connect() as c:
        return [json.loads(e)["action"] for e in c.execute(select(entries.c.entry)).scalars()]


@pytest.mark.parametrize(
    "event", [PASSWORD_CHANGED, APP_ADDED, APP_REPLACED, APP_REMOVED, RECOVERY_CODE_USED]
)
def test_the_text_says_what_and_when_in_pkt_in_english_and_urdu(event: str) -> None:
    text = notice_text(event, datetime(2026, 11, 26, 9, 5, tzinfo=UTC), "051-111-786-100")
    english, urdu = text.split("\n")
    assert "Shanakht" in english
    assert "2026-11-26 14:05 PKT" in english
    assert "2026-11-26 14:05 PKT" in urdu
    assert english.endswith("If this was not you, call 051-111-786-100.")
    assert "051-111-786-100" in urdu
    assert re.search(r"[\u0600-\u06ff]", urdu), "Urdu script"
    assert not re.search(r"\d{6}", text.replace("-", " ")), "no code or number beyond the time"


def test_password_changed_text_reads_as_asked() -> None:
    text = notice_text(PASSWORD_CHANGED, datetime(2026, 5, 1, 10, 0, tzinfo=UTC), "1")
    assert text.startswith("Your Shanakht password was changed at 2026-05-01 15:00 PKT. ")


def test_a_reset_tells_the_registered_mobile(kit: IdentityKit, citizen: CitizenRecord) -> None:
    registered, other = citizen.mobile_numbers[0], citizen.mobile_numbers[-1]
    with kit.runtime.transaction() as session:
        ticket = kit.enrolment(session).start_reset(_card(citizen), other, client=CLIENT)
    with kit.runtime.transaction() as session:
        kit.enrolment(session).verify_code(ticket, RESET, _code(kit, other))
    with kit.runtime.transaction() as session:
        kit.enrolment(session).complete_reset(ticket, NEW_PASSWORD)
    told = kit.sms.last_to(registered)
    assert told is not None
    assert told.text.startswith("Your Shanakht password was changed at 2026-11-26 14:00 PKT.")
    assert citizen.cnic not in told.text
    assert NEW_PASSWORD not in told.text


def test_a_failing_gateway_does_not_undo_the_change_and_is_audited(
    kit: IdentityKit, citizen: CitizenRecord, caplog: pytest.LogCaptureFixture
) -> None:
    mobile = citizen.mobile_numbers[0]
    with kit.runtime.transaction() as session:
        ticket = kit.enrolment(session).start_reset(_card(citizen), mobile, client=CLIENT)
    with kit.runtime.transaction() as session:
        kit.enrolment(session).verify_code(ticket, RESET, _code(kit, mobile))
    kit.sms.outage = True
    with kit.runtime.transaction() as session:
        assert kit.enrolment(session).complete_reset(ticket, NEW_PASSWORD)
    kit.sms.outage = False
    assert kit.login().login(citizen.cnic, NEW_PASSWORD, client=CLIENT).citizen_id
    assert _actions(kit)[-3:-1] == ["identity.password.reset", "identity.notice.failed"]
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "password_changed" in logged
    assert mobile not in logged
    assert mobile.removeprefix("+92") not in logged


def test_any_gateway_error_is_contained(kit: IdentityKit) -> None:
    class Broken:
        def send(self, to: str, text: str) -> None:
            raise OSError("connection reset")

    with kit.runtime.transaction() as session:
        notices = CredentialNotices(
            sms=Broken(), audit=kit.runtime.audit_log(session), policy=kit.policy, clock=kit.clock
        )
        assert notices.send("+923001234567", "pseudonym", APP_REMOVED) is False
    assert _actions(kit)[-1] == "identity.notice.failed"


def test_a_recovery_code_used_to_sign_in_is_told(kit: IdentityKit, citizen: CitizenRecord) -> None:
    subject = pseudonym(citizen.cnic, key=kit.runtime.pseudonym_key)
    with kit.runtime.transaction() as session:
        factor = SecondFactor(
            session,
            sms=kit.sms,
            sealer=kit.sealer,
            code_key=b"k" * 32,
            pseudonym_key=kit.runtime.pseudonym_key,
            audit=kit.runtime.audit_log(session),
            policy=kit.policy,
            clock=kit.clock,
        )
        me = Accounts(session, kit.sealer, kit.runtime.row_seal).by_pseudonym(subject)
        assert me is not None
        secret, _ = factor.apps.begin(me.id, "x")
        codes = factor.apps.confirm(me.id, pyotp.TOTP(secret).at(kit.clock()))
        assert codes
        texts = len(kit.sms.messages())
        kit.clock.advance(seconds=90)
        factor.finish_app(me, pyotp.TOTP(secret).at(kit.clock()), client="203.0.113.7")
        assert len(kit.sms.messages()) == texts, "an app code tells nothing"
        factor.finish_app(me, codes[0], client="203.0.113.7")
    told = kit.sms.last_to(citizen.mobile_numbers[0])
    assert told is not None
    assert told.text.startswith("A recovery code was used to sign in to your Shanakht account")
    assert codes[0] not in told.text
