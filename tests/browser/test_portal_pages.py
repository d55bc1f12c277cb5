"""Every page a citizen meets, in English and in Urdu, on a desk and on a phone: accessible
(axe-core, WCAG 2.1 AA), switchable between languages, and loading nothing from elsewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from api.i18n import translate
from api.runtime import Runtime
from identity.nadra import SCENARIOS, read_registry
from tests.browser.conftest import assert_accessible, sign_in

PUBLIC_PAGES = ["/", "/login", "/register", "/reset"]


def _fits(page: Page) -> None:
    """Nothing wider than the screen: a phone reader never scrolls sideways."""
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{page.url} is {overflow}px wider than the screen"


@pytest.mark.parametrize("path", PUBLIC_PAGES)
@pytest.mark.parametrize("page", ["desktop", "phone"], indirect=True)
def test_public_pages_are_accessible_in_both_languages(page: Page, path: str) -> None:
    page.goto(path)
    expect(page.locator("html")).to_have_attribute("lang", "en")
    assert_accessible(page)
    _fits(page)
    page.get_by_role("link", name="اردو").click()
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.locator("html")).to_have_attribute("lang", "ur")
    assert page.url.endswith(path)
    assert_accessible(page)
    _fits(page)


def test_the_language_choice_sticks_and_can_be_undone(page: Page) -> None:
    page.goto("/login")
    page.get_by_role("link", name="اردو").click()
    page.goto("/register")
    expect(page.locator("html")).to_have_attribute("lang", "ur")
    expect(page.get_by_role("heading", level=1)).not_to_have_text("Create your Shanakht account")
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Create your Shanakht account")


def test_a_wrong_field_is_named_beside_it_in_urdu(page: Page) -> None:
    page.goto("/lang/ur?next=/register")
    page.fill("#cnic", "35202-123")
    page.fill("#full_name", "Ayesha")
    page.fill("#father_or_husband_name", "Bashir")
    page.fill("#date_of_birth", "1990-01-31")
    page.fill("#card_issue_date", "2020-01-31")
    page.fill("#mobile", "0300-1234567")
    page.locator("form button[type=submit]").click()
    error = page.locator("#cnic-error")
    expect(error).to_be_visible()
    urdu = translate("ur", "Type the 13 digits of your CNIC, as 12345-1234567-1.")
    assert urdu != "Type the 13 digits of your CNIC, as 12345-1234567-1."
    expect(error).to_have_text(urdu)
    expect(page.locator("#cnic")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#full_name")).to_have_value("Ayesha")
    assert_accessible(page)


@pytest.mark.parametrize("page", ["desktop", "phone"], indirect=True)
def test_account_page_after_signing_in(page: Page, citizen: str) -> None:
    sign_in(page, citizen)
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    assert_accessible(page)
    _fits(page)
    page.get_by_role("link", name="Change your password").click()
    page.get_by_label("Current password").fill("Not#MyPassword1")
    page.get_by_label("New password", exact=True).fill("Mango#Season2027")
    page.get_by_label("New password again").fill("Mango#Season2027")
    page.get_by_role("button", name="Save password").click()
    expect(page.locator("#current")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page)
    _fits(page)


def test_signing_out_clears_what_the_pages_stored(page: Page, citizen: str) -> None:
    """Clear-Site-Data, as Chromium applies it: after signing out on a shared computer, what a
    signed-in page kept in the browser is gone (ASVS 8.2.3)."""
    sign_in(page, citizen)
    page.evaluate("localStorage.setItem('draft', 'x'); sessionStorage.setItem('step', '2')")
    page.goto("/logout")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Signed out")).to_be_visible()
    page.goto("/")
    assert page.evaluate("[localStorage.length, sessionStorage.length]") == [0, 0]


def test_keyboard_reaches_the_form_from_the_skip_link(page: Page) -> None:
    page.goto("/login")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")  # the hidden fields take no focus: first the CNIC, then password
    focused = page.evaluate("document.activeElement.id")
    assert focused in {"cnic", "password"}


def test_a_password_reset_keeps_its_ticket_out_of_every_url(
    page: Page, citizen: str, site_runtime: Runtime, nadra_file: Path
) -> None:
    """A whole reset in a real browser: no address it visits (its history) holds the ticket,
    which lives in an HttpOnly cookie sent only to /reset; the new password then signs in."""
    record = read_registry(nadra_file)[SCENARIOS["active_female"]]
    visited: list[str] = []
    page.on("framenavigated", lambda frame: visited.append(frame.url))
    page.goto("/reset")
    page.fill("#cnic", citizen)
    page.fill("#full_name", record.full_name)
    page.fill("#father_or_husband_name", record.father_or_husband_name)
    page.fill("#date_of_birth", record.date_of_birth.isoformat())
    page.fill("#card_issue_date", record.card_issue_date.isoformat())
    page.fill("#mobile", "0" + record.mobile_numbers[0].removeprefix("+92"))
    page.locator("form button[type=submit]").click()
    page.wait_for_url("**/reset/code")
    sms = site_runtime.identity.sms.last_to(record.mobile_numbers[0])
    assert sms is not None
    page.fill("#code", re.search(r"\b(\d{6})\b", sms.text).group(1))  # type: ignore[union-attr]
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/reset/password")
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "shanakht_ticket"]
    assert (cookie["path"], cookie["httpOnly"], cookie["sameSite"]) == ("/reset", True, "Strict")
    assert page.evaluate("document.cookie").find(cookie["value"]) == -1, "no script reads it"
    page.fill("#password", "Mango#Season2027")
    page.get_by_role("button", name="Save password").click()
    expect(page.get_by_text("Your password is set. You can now sign in.")).to_be_visible()
    assert "shanakht_ticket" not in {c["name"] for c in page.context.cookies()}
    assert visited
    assert all(cookie["value"] not in url and "ticket" not in url for url in visited)
    sign_in(page, citizen, "Mango#Season2027")
