"""The account page's password change: the current password first, the policy for the new one,
and every other sign-in ended; every change of a credential told to the registered mobile."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import select

from api.runtime import Runtime
from audit.models import entries
from identity.nadra import SCENARIOS, read_registry
from tests.http.oidc_kit import (
    HOSTILE,
    PASSWORD,
    Browser,
    RelyingParty,
    assert_escaped,
    csrf_of,
    register_citizen,
    register_client,
    rename_in_registry,
    token,
    verify_jwt,
)
from tests.http.test_oidc_security import (
    Clock,
    _logout_tokens,
    _session_cookie,
    _sms_step_up,
    _tokens,
    _userinfo,
)

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


def _actions(runtime: Runtime) -> list[str]:
    with runtime.engine.connect() as connection:
        rows = connection.execute(select(entries.c.entry)).scalars()
        return [json.loads(e)["action"] for e in rows]


def _sids_on(page: str) -> list[str]:
    """The sessions the account page lists, by the sid each one's End button posts."""
    return re.findall(
        r'action="/account/sessions/end" class="inline">.*?name="sid" value="([^"]+)"', page
    )


@pytest.fixture
def bc(oidc_runtime: Runtime) -> RelyingParty:
    """An e-service that registered a back-channel logout URI."""
    return register_client(oidc_runtime, "bc", backchannel_logout_uri="https://bc.example/bc")


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


# -- ending sessions and withdrawing consent ------------------------------------------------


def test_ending_another_session_ends_its_cookie_its_tokens_and_tells_its_e_services(
    web: TestClient, oidc_runtime: Runtime, bc: RelyingParty, cnic: str
) -> None:
    """A citizen who sees a sign-in they do not know ends it from here: that browser's cookie
    opens nothing more, the e-service's tokens stop working, and the e-service is told by a
    back-channel logout token naming the session. This browser stays signed in."""
    elsewhere = TestClient(web.app, base_url="https://shanakht.test")
    tokens = _tokens(web, Browser(elsewhere), bc, cnic)
    sid = verify_jwt(web, tokens["id_token"])["sid"]
    assert _log_in(web, cnic, PASSWORD) == 303
    page = web.get("/account")
    assert len(_sids_on(page.text)) == 2
    assert sid in _sids_on(page.text)

    ended = web.post(
        "/account/sessions/end",
        data={"sid": sid, "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert (ended.status_code, ended.headers["location"]) == (303, "/account")
    assert elsewhere.get("/account", follow_redirects=False).status_code == 303
    assert _userinfo(web, tokens["access_token"]) == 401
    refreshed = token(web, bc, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refreshed.json()["error"] == "invalid_grant"
    (logout,) = _logout_tokens(web, oidc_runtime)
    assert (logout["aud"], logout["sid"]) == ("bc", sid)
    assert "http://schemas.openid.net/event/backchannel-logout" in logout["events"]
    after = web.get("/account", follow_redirects=False)
    assert after.status_code == 200, "this browser's own session stays"
    assert sid not in _sids_on(after.text)
    assert len(_sids_on(after.text)) == 1


def test_a_citizen_cannot_end_someone_elses_session(
    web: TestClient, oidc_runtime: Runtime, cnic: str
) -> None:
    record = read_registry(oidc_runtime.identity.nadra_file)[SCENARIOS["active_male"]]
    register_citizen(oidc_runtime, record)
    stranger = TestClient(web.app, base_url="https://shanakht.test")
    assert _log_in(stranger, record.cnic, PASSWORD) == 303
    (their_sid,) = _sids_on(stranger.get("/account").text)
    assert _log_in(web, cnic, PASSWORD) == 303
    page = web.get("/account")
    tried = web.post(
        "/account/sessions/end",
        data={"sid": their_sid, "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert tried.status_code == 303
    assert stranger.get("/account", follow_redirects=False).status_code == 200
    assert _logout_tokens(web, oidc_runtime) == []


def test_signing_out_everywhere_ends_every_session_and_this_cookie_with_them(
    web: TestClient, oidc_runtime: Runtime, bc: RelyingParty, cnic: str
) -> None:
    elsewhere = TestClient(web.app, base_url="https://shanakht.test")
    tokens = _tokens(web, Browser(elsewhere), bc, cnic)
    assert _log_in(web, cnic, PASSWORD) == 303
    old_cookie = _session_cookie(web)
    page = web.get("/account")
    forged = web.post("/account/sessions/end-all", data={"csrf": "forged"})
    assert forged.status_code == 403, "a form from another site ends nothing"
    assert elsewhere.get("/account", follow_redirects=False).status_code == 200

    out = web.post(
        "/account/sessions/end-all", data={"csrf": csrf_of(page.text)}, follow_redirects=False
    )
    assert (out.status_code, out.headers["location"]) == (303, "/login")
    assert out.headers["clear-site-data"] == '"cache", "storage"'
    (cleared,) = [c for c in out.headers.get_list("set-cookie") if "shanakht_session" in c]
    assert cleared.startswith('__Host-shanakht_session=""')
    assert "Max-Age=0" in cleared
    assert web.get("/account", follow_redirects=False).status_code == 303
    assert elsewhere.get("/account", follow_redirects=False).status_code == 303
    replayed = TestClient(web.app, base_url="https://shanakht.test")
    replayed.cookies.set("__Host-shanakht_session", old_cookie)
    assert replayed.get("/account", follow_redirects=False).status_code == 303, "a kept copy"
    assert _userinfo(web, tokens["access_token"]) == 401
    assert [t["aud"] for t in _logout_tokens(web, oidc_runtime)] == ["bc"]


def test_withdrawing_consent_revokes_the_e_services_tokens_and_asks_again_next_time(
    web: TestClient, oidc_runtime: Runtime, bc: RelyingParty, cnic: str
) -> None:
    browser = Browser(web)
    tokens = _tokens(web, browser, bc, cnic)
    page = web.get("/account")
    assert "The bc service" in page.text
    withdrawn = web.post(
        "/account/grants/revoke",
        data={"client_id": "bc", "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert (withdrawn.status_code, withdrawn.headers["location"]) == (303, "/account")
    after = web.get("/account")
    assert "The bc service" not in after.text
    assert "None yet." in after.text
    assert _userinfo(web, tokens["access_token"]) == 401
    refreshed = token(web, bc, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refreshed.json()["error"] == "invalid_grant"
    assert _actions(oidc_runtime).count("identity.consent.revoked") == 1
    again, _verifier = browser.authorize(bc)
    assert again.headers["location"].startswith("/consent?"), "the consent is asked again"
    assert web.get("/account", follow_redirects=False).status_code == 200, "still signed in"


# -- text from elsewhere ------------------------------------------------------------------------


def test_names_from_nadra_and_from_e_services_are_shown_as_text(
    web: TestClient, oidc_runtime: Runtime, tmp_path: Path
) -> None:
    """A name NADRA hands over and an e-service's name (its registration is an outsider's
    words) reach the sign-in, consent and account pages escaped, never as markup."""
    cnic = SCENARIOS["active_female"]
    rename_in_registry(oidc_runtime, tmp_path / "nadra", {cnic: HOSTILE})
    register_citizen(oidc_runtime, read_registry(oidc_runtime.identity.nadra_file)[cnic])
    odd = register_client(oidc_runtime, "odd", name=HOSTILE)
    browser = Browser(web)
    asked, _verifier = browser.authorize(odd)
    login = browser.follow(asked)
    assert_escaped(login.text)
    consent = browser.follow(browser.follow(browser.login(login, cnic)))
    assert "/consent" in str(consent.url)
    assert_escaped(consent.text)
    assert browser.consent(consent).headers["location"].startswith(odd.redirect_uri)
    account = web.get("/account").text
    assert account.count(str(escape(HOSTILE))) == 2, "the citizen's name and the e-service's"
    assert_escaped(account)


# -- password length and Unicode ---------------------------------------------------------------

# 81 characters, with "á" as one code point (as most keyboards type it).
PASSPHRASE = "Chan\u00e1b ke kinare 7 kikar ke darakht, aur sham ki thandi hawa hai, Lahore 2027!"


def test_a_long_passphrase_is_set_and_the_same_typed_on_another_system_signs_in(
    web: TestClient, cnic: str
) -> None:
    """Past zxcvbn's own 72 characters (the change was a 500), and typed again with the accent
    as a separate combining mark (as macOS types it): the same password."""
    assert 72 < len(PASSPHRASE) <= 128
    assert _log_in(web, cnic, PASSWORD) == 303
    done = _change(web, PASSWORD, PASSPHRASE)
    assert done.status_code == 303, done.text  # type: ignore[attr-defined]
    elsewhere = TestClient(web.app, base_url="https://shanakht.test")
    assert _log_in(elsewhere, cnic, PASSPHRASE.replace("\u00e1", "a\u0301")) == 303
    assert _log_in(TestClient(web.app, base_url="https://shanakht.test"), cnic, "x" * 129) == 401


def test_a_megabyte_password_is_refused_unread_for_every_cnic(web: TestClient, cnic: str) -> None:
    """A login form past 64 KiB is refused before anything reads it (413), whatever the CNIC:
    it neither ties up a hash nor says whether an account exists; a long password within the
    limit is refused as wrong, as any is."""
    assert _log_in(web, cnic, PASSWORD + "x" * 1_000_000) == 413
    assert _log_in(web, "3520112345679", PASSWORD + "x" * 1_000_000) == 413
    assert _log_in(web, cnic, PASSWORD + "x" * 10_000) == 401
    assert _log_in(web, cnic, PASSWORD) == 303
    too_long = _change(web, PASSWORD, "Aa1#" * 33)
    assert too_long.status_code == 422  # type: ignore[attr-defined]
    assert "use at most 128 characters" in too_long.text  # type: ignore[attr-defined]
