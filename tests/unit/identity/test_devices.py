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


def test_a_cookie_is_for_its_account_its_key_its_password_and_its_lifetime(
    kit: IdentityKit,
) -> None:
    devices = DeviceCookies(b"d" * 32, lifetime=timedelta(days=30), clock=kit.clock)
    cookie = devices.issue("subject-a", "g1")
    assert devices.nonce(cookie, "subject-a", "g1")
    assert "subject-a" not in cookie
    assert devices.nonce(cookie, "subject-b", "g1") is None, "another account's cookie"
    assert devices.nonce(cookie, "subject-a", "g2") is None, "from before the password changed"
    other_key = DeviceCookies(b"e" * 32, lifetime=timedelta(days=30), clock=kit.clock)
    assert other_key.nonce(cookie, "subject-a", "g1") is None
    version, nonce, issued, mac = cookie.split(".")
    assert devices.nonce(f"{version}.{nonce}.{int(issued) + 1}.{mac}", "subject-a", "g1") is None
    assert devices.nonce(f"{version}.{nonce}x.{issued}.{mac}", "subject-a", "g1") is None
    for junk in ("", "x", "a.b.c.d", "d1.....", cookie + "." + cookie):
        assert devices.nonce(junk, "subject-a", "g1") is None
    assert devices.issue("subject-a", "g1") != cookie, "a new browser gets a new nonce"
    again = devices.issue("subject-a", "g1", nonce=nonce)
    assert devices.nonce(again, "subject-a", "g1") == nonce, "a known browser keeps its own"
    kit.clock.advance(days=31)
    assert devices.nonce(cookie, "subject-a", "g1") is None, "expired"


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


def _set_password(kit: IdentityKit, citizen_id: str, password: str) -> None:
    from identity.accounts import Accounts

    kit.clock.advance(seconds=1)
    with kit.runtime.transaction() as session:
        Accounts(session, kit.runtime.identity.sealer, kit.runtime.row_seal).set_password(
            citizen_id, kit.hasher.hash(password), now=kit.clock()
        )


def test_a_new_password_voids_every_cookie_made_before_it(
    kit: IdentityKit, devices: DeviceCookies, citizen: CitizenRecord
) -> None:
    """Cookies gathered with the old password bring no guessing budget of their own."""
    done = _login(kit, devices, citizen.cnic, PASSWORD)
    old = done.device_cookie
    _set_password(kit, done.citizen_id, "Fresh#Password2027")
    for _ in range(kit.policy.lockout_threshold):
        _refused(kit, devices, citizen.cnic, WRONG, old)
    actions = [e["action"] for e in _audit(kit)]
    assert "identity.account.locked" in actions, "counted as a stranger's: the account locks"
    assert "identity.device.locked" not in actions


def test_a_known_browser_keeps_its_nonce_and_a_success_clears_its_failures(
    kit: IdentityKit, devices: DeviceCookies, citizen: CitizenRecord
) -> None:
    cookie = _login(kit, devices, citizen.cnic, PASSWORD).device_cookie
    assert cookie is not None
    for _ in range(kit.policy.lockout_threshold - 1):
        _refused(kit, devices, citizen.cnic, WRONG, cookie)
    again = _login(kit, devices, citizen.cnic, PASSWORD, cookie).device_cookie
    assert again is not None
    assert again.split(".")[1] == cookie.split(".")[1], "one browser, one counter"
    for _ in range(kit.policy.lockout_threshold - 1):  # counted afresh: not locked
        _refused(kit, devices, citizen.cnic, WRONG, again)
    assert _login(kit, devices, citizen.cnic, PASSWORD, again).citizen_id


def test_a_browsers_lockout_lasts_its_whole_time_from_the_failure_that_caused_it(
    kit: IdentityKit, devices: DeviceCookies, citizen: CitizenRecord
) -> None:
    cookie = _login(kit, devices, citizen.cnic, PASSWORD).device_cookie
    _refused(kit, devices, citizen.cnic, WRONG, cookie)
    kit.clock.advance(minutes=14)
    for _ in range(kit.policy.lockout_threshold - 1):
        _refused(kit, devices, citizen.cnic, WRONG, cookie)
    kit.clock.advance(minutes=2)  # 16 minutes after the first failure, 2 after the locking one
    _refused(kit, devices, citizen.cnic, PASSWORD, cookie)
    kit.clock.advance(minutes=14)
    assert _login(kit, devices, citizen.cnic, PASSWORD, cookie).citizen_id


def test_housekeeping_forgets_old_attempt_counters(
    kit: IdentityKit, devices: DeviceCookies, citizen: CitizenRecord
) -> None:
    from identity.housekeeping import purge_expired
    from identity.models import throttles

    _login(kit, devices, citizen.cnic, PASSWORD)
    kit.clock.advance(days=2)
    with kit.runtime.transaction() as session:
        assert purge_expired(session, kit.clock())[throttles.name] > 0
    with kit.runtime.engine.connect() as c:
        assert c.execute(select(throttles)).first() is None
