"""Device cookies (OWASP's defence against lockout as a denial of service): strangers' failures
lock the account for strangers only; a browser the holder signed in with before is counted,
and locked out, on its own."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from audit.models import entries
from identity.devices import DeviceCookies
from identity.errors import InvalidCredentials, TooManyAttempts
from identity.login import LoginResult
from identity.nadra import SCENARIOS, CitizenRecord
from tests.unit.identity.conftest import IdentityKit
from tests.unit.identity.test_enrolment import CLIENT, PASSWORD, _register

WRONG = "Wrong#Pass1234"


@pytest.fixture
def citizen(kit: IdentityKit, registry: dict[str, CitizenRecord]) -> CitizenRecord:
    record = registry[SCENARIOS["active_male"]]
    _register(kit, record)
    return record


@pytest.fixture
def devices(kit: IdentityKit) -> DeviceCookies:
    return DeviceCookies(b"d" * 32, lifetime=kit.policy.device_cookie_lifetime, clock=kit.clock)


def _login(
    kit: IdentityKit,
    devices: DeviceCookies,
    cnic: str,
    password: str,
    cookie: str | None = None,
    client: str = CLIENT,
) -> LoginResult:
    return kit.login().login(cnic, password, client=client, devices=devices, device_cookie=cookie)


def _refused(kit: IdentityKit, devices: DeviceCookies, cnic: str, password: str, cookie=None):
    with pytest.raises(InvalidCredentials) as caught:
        _login(kit, devices, cnic, password, cookie)
    assert str(caught.value) == "the CNIC or password is not right"
    return caught.value


def _audit(kit: IdentityKit) -> list[dict]:
    with kit.runtime.engine.connect() as c:
        return [json.loads(e) for e in c.execute(select(entries.c.entry)).scalars()]


def test_a_cookie_is_for_its_account_its_key_and_its_lifetime(kit: IdentityKit) -> None:
    devices = DeviceCookies(b"d" * 32, lifetime=timedelta(days=30), clock=kit.clock)
    cookie = devices.issue("subject-a")
    assert devices.nonce(cookie, "subject-a")
    assert "subject-a" not in cookie
    assert devices.nonce(cookie, "subject-b") is None, "another account's cookie"
    other_key = DeviceCookies(b"e" * 32, lifetime=timedelta(days=30), clock=kit.clock)
    assert other_key.nonce(cookie, "subject-a") is None
    version, nonce, issued, mac = cookie.split(".")
    assert devices.nonce(f"{version}.{nonce}.{int(issued) + 1}.{mac}", "subject-a") is None
    assert devices.nonce(f"{version}.{nonce}x.{issued}.{mac}", "subject-a") is None
    for junk in ("", "x", "a.b.c.d", "d1.....", cookie + "." + cookie):
        assert devices.nonce(junk, "subject-a") is None
    assert devices.issue("subject-a") != cookie, "a new nonce each time"
    kit.clock.advance(days=31)
    assert devices.nonce(cookie, "subject-a") is None, "expired"


def test_a_stranger_locks_out_strangers_not_the_holders_browser(
    kit: IdentityKit, devices: DeviceCookies, citizen: CitizenRecord
) -> None:
    holder = _login(kit, devices, citizen.cnic, PASSWORD).device_cookie
    assert holder is not None
    for _ in range(kit.policy.lockout_threshold):
        _refused(kit, devices, citizen.cnic, WRONG)
    assert [e["action"] for e in _audit(kit)].count("identity.account.locked") == 1
    assert "locked" in kit.sms.last_to(citizen.mobile_numbers[0]).text  # type: ignore[union-attr]
    _refused(kit, devices, citizen.cnic, PASSWORD)  # a stranger, even with the password
    again = _login(kit, devices, citizen.cnic, PASSWORD, holder)
    assert again.citizen_id
    assert again.device_cookie
    # The holder's success does not lift the strangers' lockout.
    _refused(kit, devices, citizen.cnic, PASSWORD)
    kit.clock.advance(minutes=16)
    assert _login(kit, devices, citizen.cnic, PASSWORD).citizen_id


def test_a_known_browsers_failures_lock_out_that_browser_alone(
    kit: IdentityKit, devices: DeviceCookies, citizen: CitizenRecord
) -> None:
    first = _login(kit, devices, citizen.cnic, PASSWORD).device_cookie
    second = _login(kit, devices, citizen.cnic, PASSWORD).device_cookie
    for _ in range(kit.policy.lockout_threshold):
        _refused(kit, devices, citizen.cnic, WRONG, first)
    actions = [e["action"] for e in _audit(kit)]
    assert actions.count("identity.device.locked") == 1
    assert "identity.account.locked" not in actions
    assert "browser" in kit.sms.last_to(citizen.mobile_numbers[0]).text  # type: ignore[union-attr]
    _refused(kit, devices, citizen.cnic, PASSWORD, first)  # locked: even the right password
    assert _login(kit, devices, citizen.cnic, PASSWORD, second).citizen_id
    assert _login(kit, devices, citizen.cnic, PASSWORD).citizen_id, "the account is not locked"
    kit.clock.advance(minutes=16)
    assert _login(kit, devices, citizen.cnic, PASSWORD, first).citizen_id


def test_the_failure_that_locks_says_so_to_the_caller_only(
    kit: IdentityKit, devices: DeviceCookies, citizen: CitizenRecord
) -> None:
    cookie = _login(kit, devices, citizen.cnic, PASSWORD).device_cookie
    seen = [
        _refused(kit, devices, citizen.cnic, WRONG, cookie).locked_citizen
        for _ in range(kit.policy.lockout_threshold + 1)
    ]
    assert seen[:-2] == [None] * (kit.policy.lockout_threshold - 1)
    assert seen[-2] is not None, "the failure that locked"
    assert seen[-1] is None, "later refusals lock nothing new"


def test_strangers_cannot_use_up_the_holders_attempts(
    kit: IdentityKit, devices: DeviceCookies, citizen: CitizenRecord
) -> None:
    cookie = _login(kit, devices, citizen.cnic, PASSWORD).device_cookie  # counted: no cookie yet
    for n in range(kit.policy.per_account.attempts - 1):
        with pytest.raises(InvalidCredentials):
            _login(kit, devices, citizen.cnic, WRONG, client=f"198.51.100.{n}")
    with pytest.raises(TooManyAttempts):
        _login(kit, devices, citizen.cnic, WRONG, client="198.51.100.200")
    assert _login(kit, devices, citizen.cnic, PASSWORD, cookie).citizen_id


def test_a_cookie_from_another_account_changes_nothing_for_any_cnic(
    kit: IdentityKit,
    devices: DeviceCookies,
    citizen: CitizenRecord,
    registry: dict[str, CitizenRecord],
) -> None:
    """Known account or not, a cookie that is not the account's own gives the strangers'
    path: the one answer, counted against the account, nothing to tell CNICs apart."""
    theirs = _login(kit, devices, citizen.cnic, PASSWORD).device_cookie
    unknown = registry[SCENARIOS["active_female"]].cnic
    other = _refused(kit, devices, unknown, PASSWORD, theirs)
    assert other.locked_citizen is None
    failures = [e for e in _audit(kit) if e["action"] == "identity.login" and e.get("outcome")]
    assert failures[-1]["details"]["reason"] == "no such account"
    assert "known_device" not in failures[-1]["details"]
