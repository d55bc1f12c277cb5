"""Authenticator apps: set up with a first code, one use per code, recovery codes once each."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from sqlalchemy.orm import Session

from identity.nadra import SCENARIOS, CitizenRecord
from identity.totp import APP_CODE, REUSED_CODE, AuthenticatorApps
from tests.unit.identity.conftest import IdentityKit
from tests.unit.identity.test_enrolment import _register


@pytest.fixture
def citizen_id(kit: IdentityKit, registry: dict[str, CitizenRecord]) -> str:
    return _register(kit, registry[SCENARIOS["active_female"]])


def _apps(kit: IdentityKit, session: Session) -> AuthenticatorApps:
    return AuthenticatorApps(session, sealer=kit.sealer, code_key=b"k" * 32, clock=kit.clock)


def test_setup_needs_a_right_first_code_and_gives_recovery_codes(
    kit: IdentityKit, citizen_id: str
) -> None:
    with kit.runtime.transaction() as session:
        secret, uri = _apps(kit, session).begin(citizen_id, "Fatima Bilal")
    assert parse_qs(urlsplit(uri).query)["secret"] == [secret]
    assert uri.startswith("otpauth://totp/Shanakht:")
    app = pyotp.TOTP(secret)
    with kit.runtime.transaction() as session:
        apps = _apps(kit, session)
        assert not apps.enabled(citizen_id)
        assert (
            apps.confirm(citizen_id, "000000" if app.at(kit.clock()) != "000000" else "111111")
            is None
        )
        codes = apps.confirm(citizen_id, app.at(kit.clock()))
        assert codes is not None
        assert len(set(codes)) == 10
        assert apps.enabled(citizen_id)


def test_a_code_works_once_and_drift_of_a_step_is_forgiven(
    kit: IdentityKit, citizen_id: str
) -> None:
    with kit.runtime.transaction() as session:
        secret, _ = _apps(kit, session).begin(citizen_id, "x")
        _apps(kit, session).confirm(citizen_id, pyotp.TOTP(secret).at(kit.clock()))
    app = pyotp.TOTP(secret)
    kit.clock.advance(seconds=60)
    with kit.runtime.transaction() as session:
        apps = _apps(kit, session)
        late = app.at(kit.clock() - timedelta(seconds=30))
        assert apps.verify(citizen_id, late), "the previous step is still accepted"
        assert not apps.verify(citizen_id, late), "but only once"
        assert not apps.verify(citizen_id, app.at(kit.clock() - timedelta(minutes=5)))


def test_a_replayed_code_is_told_apart_from_a_wrong_one(kit: IdentityKit, citizen_id: str) -> None:
    with kit.runtime.transaction() as session:
        secret, _ = _apps(kit, session).begin(citizen_id, "x")
        _apps(kit, session).confirm(citizen_id, pyotp.TOTP(secret).at(kit.clock()))
    app = pyotp.TOTP(secret)
    kit.clock.advance(seconds=30)
    with kit.runtime.transaction() as session:
        apps = _apps(kit, session)
        now = app.at(kit.clock())
        assert apps.verify_kind(citizen_id, now) == APP_CODE
        assert apps.verify_kind(citizen_id, now) == REUSED_CODE, "refused as a replay"
        assert not apps.verify(citizen_id, now)
        wrong = "000000" if now != "000000" else "111111"
        assert apps.verify_kind(citizen_id, wrong) is None
        kit.clock.advance(seconds=30)
        assert apps.verify_kind(citizen_id, app.at(kit.clock())) == APP_CODE, "nothing spent"


def test_recovery_codes_work_once_each(kit: IdentityKit, citizen_id: str) -> None:
    with kit.runtime.transaction() as session:
        secret, _ = _apps(kit, session).begin(citizen_id, "x")
        codes = _apps(kit, session).confirm(citizen_id, pyotp.TOTP(secret).at(kit.clock()))
    assert codes
    with kit.runtime.transaction() as session:
        apps = _apps(kit, session)
        assert apps.verify(citizen_id, codes[3].upper())
        assert not apps.verify(citizen_id, codes[3])
        assert apps.verify(citizen_id, codes[4])
        apps.disable(citizen_id)
        assert not apps.enabled(citizen_id)
        assert not apps.verify(citizen_id, codes[5])
