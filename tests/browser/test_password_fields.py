"""The password fields in a real browser: a show-password button on each (ASVS 2.1.12), a
checklist and strength meter where a new password is chosen (ASVS 2.1.8), in English and
Urdu, run under the pages' own Content-Security-Policy; and every page still submits with
scripts turned off."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from api.i18n import translate
from api.runtime import Runtime
from identity.nadra import SCENARIOS, CitizenRecord, read_registry
from tests.browser.conftest import assert_accessible, sign_in
from tests.http.oidc_kit import PASSWORD

CHOSEN = "Mango#Season2027"
EASY = "this password is easy to guess; make it longer or less predictable"
MET = "Every rule is met. The password is checked again when you save it."


@pytest.fixture
def refused(page: Page) -> Iterator[list[str]]:
    """What the browser refused under the page's CSP (Chromium says so on the console); the
    test fails if anything was."""
    found: list[str] = []

    def note(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            found.append(message.text)

    page.on("console", note)
    yield found
    assert found == [], found


@pytest.fixture
def newcomer(nadra_file: Path) -> CitizenRecord:
    """Someone on NADRA's register without an account yet."""
    return read_registry(nadra_file)[SCENARIOS["two_mobiles"]]


def _words(lang: str, english: str) -> str:
    return translate(lang, english)


def _choose_password_page(page: Page, runtime: Runtime, record: CitizenRecord, flow: str) -> None:
    """Walk /register or /reset up to the page where the new password is typed."""
    page.goto(f"/{flow}")
    page.fill("#cnic", record.cnic)
    page.fill("#full_name", record.full_name)
    page.fill("#father_or_husband_name", record.father_or_husband_name)
    page.fill("#date_of_birth", record.date_of_birth.isoformat())
    page.fill("#card_issue_date", record.card_issue_date.isoformat())
    page.fill("#mobile", "0" + record.mobile_numbers[-1].removeprefix("+92"))
    page.locator("form button[type=submit]").click()
    page.wait_for_url(f"**/{flow}/code")
    sms = runtime.identity.sms.last_to(record.mobile_numbers[-1])
    assert sms is not None
    page.fill("#code", re.search(r"\b(\d{6})\b", sms.text).group(1))  # type: ignore[union-attr]
    page.locator("form button[type=submit]").click()
    page.wait_for_url(f"**/{flow}/password")


@pytest.mark.parametrize("lang", ["en", "ur"])
def test_the_show_password_button_toggles_the_field_in_either_language(
    page: Page, refused: list[str], lang: str
) -> None:
    page.goto(f"/lang/{lang}?next=/login")
    field = page.locator("#password")
    field.fill(CHOSEN)
    show = page.get_by_role("button", name=_words(lang, "Show password"), exact=True)
    expect(show).to_have_attribute("aria-controls", "password")
    expect(field).to_have_attribute("type", "password")
    show.click()
    expect(field).to_have_attribute("type", "text")
    hide = page.get_by_role("button", name=_words(lang, "Hide password"), exact=True)
    expect(hide).to_be_visible()
    expect(field).to_have_value(CHOSEN)
    assert_accessible(page)
    hide.click()
    expect(field).to_have_attribute("type", "password")
    expect(show).to_be_visible()
    assert _words("ur", "Show password") != "Show password"


def test_a_revealed_password_still_signs_in_and_is_masked_as_it_is_sent(
    page: Page, refused: list[str], citizen: str
) -> None:
    page.goto("/login")
    page.fill("#cnic", citizen)
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Show password").click()
    expect(page.locator("#password")).to_have_attribute("type", "text")
    # Held back once, to see the field as the form is sent: masked again, so no browser keeps
    # or offers the password as the text of an ordinary field.
    page.evaluate(
        "document.querySelector('form').addEventListener('submit', event => {"
        " event.preventDefault(); window.sentAs = document.getElementById('password').type;"
        " }, {once: true})"
    )
    page.locator("form button[type=submit]").click()
    assert page.evaluate("window.sentAs") == "password"
    expect(page.get_by_role("button", name="Show password")).to_be_visible()
    page.locator("form button[type=submit]").click()
    page.wait_for_url("**/account")


def test_each_field_of_the_change_page_has_its_own_button(
    page: Page, refused: list[str], citizen: str
) -> None:
    sign_in(page, citizen, then="/account/password")
    buttons = page.get_by_role("button", name="Show password", exact=True)
    expect(buttons).to_have_count(3)
    buttons.nth(1).click()
    expect(page.locator("#password")).to_have_attribute("type", "text")
    expect(page.locator("#current")).to_have_attribute("type", "password")
    expect(page.locator("#confirm")).to_have_attribute("type", "password")
    expect(page.locator(".password-meter")).to_have_count(1)
    assert_accessible(page)


def test_the_meter_names_what_is_missing_as_the_citizen_types(
    page: Page, refused: list[str], site_runtime: Runtime, newcomer: CitizenRecord
) -> None:
    _choose_password_page(page, site_runtime, newcomer, "register")
    field = page.locator("#password")
    needs = page.locator("#password-needs")
    expect(field).to_have_attribute("aria-describedby", re.compile(r"\bpassword-needs\b"))
    field.press_sequentially("abc")
    expect(needs).to_have_text(
        "Still needed: use at least 8 characters, add an upper-case letter, add a digit, "
        "add a special character such as @ # $ %"
    )
    expect(page.locator("li[data-rule=lower]")).to_have_class("met")
    expect(page.locator("li[data-rule=upper]")).not_to_have_class("met")
    field.press_sequentially("Defg1")
    expect(needs).to_have_text("Still needed: add a special character such as @ # $ %")
    expect(page.locator("li.met")).to_have_count(4)
    # The estimate comes once zxcvbn-ts has loaded (on the first keystroke): a common password
    # that meets every rule is still called weak, as the server would refuse it.
    field.fill("Password1!")
    expect(needs).to_have_text(EASY)
    strength = page.locator(".password-strength")
    expect(strength).to_be_visible()
    expect(page.locator(".password-level")).to_have_text(re.compile("^(very weak|weak)$"))
    field.fill(CHOSEN)
    expect(needs).to_have_text(MET)
    expect(page.locator(".password-level")).to_have_text(re.compile("^(good|strong)$"))
    assert int(page.locator("meter").evaluate("m => m.value")) >= 3
    assert_accessible(page)
    page.get_by_role("button", name="Save password").click()
    expect(page.get_by_text("Your password is set. You can now sign in.")).to_be_visible()


def test_the_meter_speaks_urdu_on_an_urdu_page(
    page: Page, refused: list[str], site_runtime: Runtime, citizen: str
) -> None:
    """On the reset page (a registered citizen), in Urdu: the checklist's words, the summary and
    the strength are the Urdu catalogue's, joined with the Urdu comma."""
    active = read_registry(site_runtime.identity.nadra_file)[SCENARIOS["active_female"]]
    page.goto("/lang/ur?next=/reset")
    _choose_password_page(page, site_runtime, active, "reset")
    page.locator("#password").press_sequentially("abcdefgh")
    still = _words("ur", "Still needed:")
    upper = _words("ur", "add an upper-case letter")
    digit = _words("ur", "add a digit")
    sign = _words("ur", "add a special character such as @ # $ %")
    expect(page.locator("#password-needs")).to_have_text(f"{still} {upper}، {digit}، {sign}")
    page.locator("#password").fill(CHOSEN)
    expect(page.locator("#password-needs")).to_have_text(_words("ur", MET))
    expect(page.locator(".password-level")).to_have_text(
        re.compile(f"^({_words('ur', 'good')}|{_words('ur', 'strong')})$")
    )
    assert_accessible(page)


def test_every_password_page_submits_with_scripts_turned_off(
    chromium: Browser, base_url: str, site_runtime: Runtime, newcomer: CitizenRecord
) -> None:
    """Registration, login, change and reset, as a browser without scripts does them: no
    button or meter appears, and each form posts and is answered as before."""
    context = chromium.new_context(base_url=base_url, java_script_enabled=False)
    page = context.new_page()
    try:
        _choose_password_page(page, site_runtime, newcomer, "register")
        expect(page.get_by_role("button", name="Show password")).to_have_count(0)
        expect(page.locator(".password-meter")).to_have_count(0)
        page.fill("#password", CHOSEN)
        page.get_by_role("button", name="Save password").click()
        expect(page.get_by_text("Your password is set. You can now sign in.")).to_be_visible()

        sign_in(page, newcomer.cnic, CHOSEN, then="/account/password")
        expect(page.get_by_role("button", name="Show password")).to_have_count(0)
        page.fill("#current", CHOSEN)
        page.fill("#password", "Basmati!Harvest2026")
        page.fill("#confirm", "Basmati!Harvest2026")
        page.get_by_role("button", name="Save password").click()
        page.wait_for_url("**/account?done=password")

        page.context.clear_cookies()
        _choose_password_page(page, site_runtime, newcomer, "reset")
        page.fill("#password", "Chenab#Bridge2028")
        page.get_by_role("button", name="Save password").click()
        expect(page.get_by_text("Your password is set. You can now sign in.")).to_be_visible()
        sign_in(page, newcomer.cnic, "Chenab#Bridge2028")
    finally:
        context.close()
