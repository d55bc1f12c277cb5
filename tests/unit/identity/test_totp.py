"""Authenticator apps: set up with a first code, one use per code, recovery codes once each."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from identity.models import recovery_codes, totp_factors
from identity.nadra import SCENARIOS, CitizenRecord
from identity.totp import APP_CODE, RECOVERY_CODE, REUSED_CODE, AuthenticatorApps
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


def _set_up(kit: IdentityKit, citizen_id: str) -> list[str]:
    with kit.runtime.transaction() as session:
        secret, _ = _apps(kit, session).begin(citizen_id, "x")
        codes = _apps(kit, session).confirm(citizen_id, pyotp.TOTP(secret).at(kit.clock()))
    assert codes is not None
    return codes


def test_recovery_codes_are_140_bits_in_groups_and_forgive_how_they_are_typed(
    kit: IdentityKit, citizen_id: str
) -> None:
    codes = _set_up(kit, citizen_id)
    group = "[0-9A-HJKMNP-TV-Z]{4}"  # Crockford's base32, 5 bits a character: 28 x 5 = 140
    assert all(re.fullmatch(f"{group}(-{group}){{6}}", c) for c in codes), codes
    with kit.runtime.transaction() as session:
        stored = session.execute(select(recovery_codes.c.code_hash)).scalars().all()
    assert len(stored) == 10
    assert all(len(h) == 32 for h in stored), "HMAC-SHA-256 only"
    assert not any(c.replace("-", "").encode() in h for c in codes for h in stored)
    misread = str.maketrans("01", "ol")  # a 0 read as O, a 1 as l, from paper
    typed = [
        codes[0].lower(),
        f"  {codes[1].replace('-', ' ')} ",
        codes[2].replace("-", "").translate(misread),
    ]
    with kit.runtime.transaction() as session:
        apps = _apps(kit, session)
        for code in typed:
            assert apps.verify_kind(citizen_id, code) == RECOVERY_CODE, code
            assert apps.verify_kind(citizen_id, code) is None, "once"
        assert apps.verify_kind(citizen_id, codes[0][:-1] + "-") is None


def test_recovery_codes_issued_before_the_128_bit_ones_still_work(
    kit: IdentityKit, citizen_id: str
) -> None:
    """A 64-bit code of the old shape (two groups of eight hex digits), stored as its HMAC
    was then, works once, typed as it was shown or in capitals."""
    _set_up(kit, citizen_id)
    old = ["9f3a04c1-7be2d580", "00e1b7c2-44aa9d03"]
    with kit.runtime.transaction() as session:
        for code in old:
            message = f"{citizen_id}:{code.replace('-', '')}".encode()
            mac = hmac.new(b"k" * 32, message, hashlib.sha256).digest()
            session.execute(insert(recovery_codes).values(citizen_id=citizen_id, code_hash=mac))
    with kit.runtime.transaction() as session:
        apps = _apps(kit, session)
        assert apps.verify_kind(citizen_id, old[0]) == RECOVERY_CODE
        assert apps.verify_kind(citizen_id, old[0]) is None
        assert apps.verify_kind(citizen_id, old[1].upper()) == RECOVERY_CODE


def test_a_secret_that_does_not_open_refuses_its_codes_and_nothing_else(
    kit: IdentityKit, citizen_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A secret changed by SQL (or sealed under a retired key version) is no error page: its
    codes are refused and logged, a recovery code still works, and setting the app up again
    replaces it."""
    with kit.runtime.transaction() as session:
        secret, _ = _apps(kit, session).begin(citizen_id, "x")
        codes = _apps(kit, session).confirm(citizen_id, pyotp.TOTP(secret).at(kit.clock()))
    assert codes is not None
    with kit.runtime.transaction() as session:
        sealed = session.execute(
            select(totp_factors.c.secret).where(totp_factors.c.citizen_id == citizen_id)
        ).scalar_one()
        session.execute(
            update(totp_factors)
            .where(totp_factors.c.citizen_id == citizen_id)
            .values(secret=sealed[:-1] + bytes([sealed[-1] ^ 1]))
        )
    kit.clock.advance(seconds=30)
    with kit.runtime.transaction() as session:
        apps = _apps(kit, session)
        assert apps.verify_kind(citizen_id, pyotp.TOTP(secret).at(kit.clock())) is None
        assert apps.verify_kind(citizen_id, codes[0]) == RECOVERY_CODE
        assert apps.enabled(citizen_id)
    assert f"authenticator app secret of citizen {citizen_id} does not open" in caplog.text
    with kit.runtime.transaction() as session:
        fresh, _ = _apps(kit, session).begin(citizen_id, "x")
        assert _apps(kit, session).confirm(citizen_id, pyotp.TOTP(fresh).at(kit.clock()))
    kit.clock.advance(seconds=30)
    with kit.runtime.transaction() as session:
        assert _apps(kit, session).verify_kind(citizen_id, pyotp.TOTP(fresh).at(kit.clock())) == (
            APP_CODE
        )
