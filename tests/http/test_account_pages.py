"""The account page's password change: the current password first, the policy for the new one,
and every other sign-in ended."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.runtime import Runtime
from identity.nadra import SCENARIOS, read_registry
from tests.http.oidc_kit import PASSWORD, csrf_of, register_citizen

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
