"""The account page's password change: the current password first, the policy for the new one,
and every other sign-in ended; every change of a credential told to the registered mobile."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.runtime import Runtime
from audit.models import entries
from identity.nadra import SCENARIOS, read_registry
from tests.http.oidc_kit import PASSWORD, csrf_of, register_citizen
from tests.http.test_oidc_security import Clock, _sms_step_up

NEW_PASSWORD = "Mango#Season2027"


@pytest.fixture
def cnic(oidc_runtime: Runtime) -> str:
    record = read_registry(oidc_runtime.identity.nadra_file)[SCENARIOS["active_female"]]
    register_citizen(oidc_runtime, record)
    return record.cnic


def _log_in(browser: TestClient, cnic: str, password: str) -> int:
    page = browser.get("/login")
    form = {"cnic": cnic, "password": password, "csrf": csrf_of(page.text)}
    return browser.post("/login", data=form, follow_redirects=False).status_code


def _change(browser: TestClient, current: str, new: str, confirm: str | None = None) -> object:
    page = browser.get("/account/password")
    assert page.status_code == 200
    form = {
        "current": current,
        "password": new,
        "confirm": new if confirm is None else confirm,
        "csrf": csrf_of(page.text),
    }
    return browser.post("/account/password", data=form, follow_redirects=False)


def test_a_password_change_asks_for_the_current_one_and_ends_the_other_sign_ins(
    web: TestClient, cnic: str
) -> None:
    elsewhere = TestClient(web.app, base_url="https://shanakht.test")
    assert _log_in(web, cnic, PASSWORD) == 303
    assert _log_in(elsewhere, cnic, PASSWORD) == 303
    assert elsewhere.get("/account", follow_redirects=False).status_code == 200

    wrong = _change(web, "Not#MyPassword1", NEW_PASSWORD)
    assert (wrong.status_code, "That is not your current password." in wrong.text) == (422, True)
    differ = _change(web, PASSWORD, NEW_PASSWORD, confirm=NEW_PASSWORD + "x")
    assert (differ.status_code, "The two new passwords differ." in differ.text) == (422, True)
    weak = _change(web, PASSWORD, "password")
    assert weak.status_code == 422
    assert 'class="field-error"' in weak.text

    done = _change(web, PASSWORD, NEW_PASSWORD)
    assert (done.status_code, done.headers["location"]) == (303, "/account?done=password")
    assert "Your password is changed." in web.get(done.headers["location"]).text
    assert elsewhere.get("/account", follow_redirects=False).status_code == 303, "ended"
    assert _log_in(elsewhere, cnic, PASSWORD) == 401
    assert _log_in(elsewhere, cnic, NEW_PASSWORD) == 303


def test_the_change_needs_a_signed_in_browser(web: TestClient) -> None:
    response = web.get("/account/password", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


def _texts_to(runtime: Runtime, cnic: str) -> list[str]:
    mobile = read_registry(runtime.identity.nadra_file)[cnic].mobile_numbers[0]
    return [m.text for m in runtime.identity.sms.messages() if m.to == mobile]


def test_a_password_change_is_told_to_the_registered_mobile(
    web: TestClient, oidc_runtime: Runtime, cnic: str
) -> None:
    assert _log_in(web, cnic, PASSWORD) == 303
    before = len(_texts_to(oidc_runtime, cnic))
    assert _change(web, PASSWORD, NEW_PASSWORD).status_code == 303  # type: ignore[attr-defined]
    texts = _texts_to(oidc_runtime, cnic)
    assert len(texts) == before + 1
    english, urdu = texts[-1].split("\n")
    helpline = re.escape(oidc_runtime.settings.helpline)
    assert re.fullmatch(
        r"Your Shanakht password was changed at \d{4}-\d{2}-\d{2} \d{2}:\d{2} PKT\. "
        rf"If this was not you, call {helpline}\.",
        english,
    )
    assert "PKT" in urdu
    assert cnic not in texts[-1]
    assert NEW_PASSWORD not in texts[-1]


def test_a_password_change_stands_when_the_sms_gateway_is_down(
    web: TestClient, oidc_runtime: Runtime, cnic: str
) -> None:
    assert _log_in(web, cnic, PASSWORD) == 303
    oidc_runtime.identity.sms.outage = True
    done = _change(web, PASSWORD, NEW_PASSWORD)
    oidc_runtime.identity.sms.outage = False
    assert (done.status_code, done.headers["location"]) == (303, "/account?done=password")  # type: ignore[attr-defined]
    other = TestClient(web.app, base_url="https://shanakht.test")
    assert _log_in(other, cnic, NEW_PASSWORD) == 303
    with oidc_runtime.engine.connect() as connection:
        actions = [
            json.loads(e)["action"] for e in connection.execute(select(entries.c.entry)).scalars()
        ]
    assert "identity.notice.failed" in actions


def test_authenticator_changes_are_told_to_the_registered_mobile(
    web: TestClient, oidc_runtime: Runtime, cnic: str
) -> None:
    oidc_runtime.clock = Clock()  # held still: the app's codes fall in known steps
    assert _log_in(web, cnic, PASSWORD) == 303
    _sms_step_up(web, oidc_runtime, cnic, then="/account/authenticator")

    def set_up(expect_replaced: bool) -> None:
        start = web.get("/account/authenticator")
        before = len(_texts_to(oidc_runtime, cnic))
        setup = web.post("/account/authenticator/begin", data={"csrf": csrf_of(start.text)})
        if expect_replaced:
            assert _texts_to(oidc_runtime, cnic)[-1].startswith(
                "The authenticator app of your Shanakht account was replaced at "
            )
        assert len(_texts_to(oidc_runtime, cnic)) == before + int(expect_replaced)
        secret = setup.text.split('<code dir="ltr" id="totp-key">')[1].split("</code>")[0]
        code = pyotp.TOTP(secret).at(oidc_runtime.clock())
        confirmed = web.post(
            "/account/authenticator", data={"csrf": csrf_of(setup.text), "code": code}
        )
        assert "Your recovery codes" in confirmed.text
        assert _texts_to(oidc_runtime, cnic)[-1].startswith(
            "An authenticator app was set up for your Shanakht account at "
        )
        oidc_runtime.clock.now += timedelta(minutes=1)  # type: ignore[attr-defined]

    set_up(expect_replaced=False)
    set_up(expect_replaced=True)
    page = web.get("/account")
    removed = web.post(
        "/account/authenticator/disable", data={"csrf": csrf_of(page.text)}, follow_redirects=False
    )
    assert removed.status_code == 303
    last = _texts_to(oidc_runtime, cnic)[-1]
    assert last.startswith("The authenticator app and recovery codes of your Shanakht account")
    assert "PKT" in last


def test_recovery_codes_are_shown_in_groups_and_work_as_a_person_types_them(
    web: TestClient, oidc_runtime: Runtime, cnic: str
) -> None:
    """Ten codes of seven groups of four (140 bits), and the code page takes one typed in
    lower case with spaces, as someone copying it from paper would."""
    oidc_runtime.clock = Clock()
    assert _log_in(web, cnic, PASSWORD) == 303
    _sms_step_up(web, oidc_runtime, cnic, then="/account/authenticator")
    start = web.get("/account/authenticator")
    setup = web.post("/account/authenticator/begin", data={"csrf": csrf_of(start.text)})
    secret = setup.text.split('<code dir="ltr" id="totp-key">')[1].split("</code>")[0]
    code = pyotp.TOTP(secret).at(oidc_runtime.clock())
    shown = web.post("/account/authenticator", data={"csrf": csrf_of(setup.text), "code": code})
    codes = re.findall(r"<li><code>([^<]+)</code></li>", shown.text)
    assert len(codes) == 10
    group = "[0-9A-HJKMNP-TV-Z]{4}"  # Crockford's base32: no I, L, O or U
    assert all(re.fullmatch(f"{group}(-{group}){{6}}", c) for c in codes), codes
    web.cookies.clear()
    assert _log_in(web, cnic, PASSWORD) == 303
    page = web.get("/login/second-factor?next=/account")
    assert 'maxlength="48"' in page.text, "room for a recovery code"
    typed = codes[0].replace("-", " ").lower()
    posted = web.post(
        "/login/second-factor?method=app&next=%2Faccount",
        data={"code": typed, "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert posted.headers["location"] == "/account", posted.text
    assert "recovery code" in _texts_to(oidc_runtime, cnic)[-1]


def test_wrong_current_passwords_sign_out_this_browser_and_no_other(
    web: TestClient, oidc_runtime: Runtime, cnic: str
) -> None:
    """A borrowed, signed-in browser guessing the current password locks out itself (its
    device cookie) and loses its session; the citizen's other sign-ins stay."""
    elsewhere = TestClient(web.app, base_url="https://shanakht.test")
    assert _log_in(web, cnic, PASSWORD) == 303
    assert _log_in(elsewhere, cnic, PASSWORD) == 303
    for _ in range(oidc_runtime.identity.policy.lockout_threshold - 1):
        wrong = _change(web, "Not#MyPassword1", NEW_PASSWORD)
        assert wrong.status_code == 422  # type: ignore[attr-defined]
    locked = _change(web, "Not#MyPassword1", NEW_PASSWORD)
    assert (locked.status_code, locked.headers["location"]) == (303, "/login")  # type: ignore[attr-defined]
    assert web.get("/account", follow_redirects=False).status_code == 303
    assert elsewhere.get("/account", follow_redirects=False).status_code == 200
    assert _log_in(web, cnic, PASSWORD) == 401, "this browser is locked out for a while"
    assert _log_in(TestClient(web.app, base_url="https://shanakht.test"), cnic, PASSWORD) == 303
