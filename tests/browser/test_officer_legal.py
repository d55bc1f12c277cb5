"""The legal-basis page in a real browser: an officer holding locker.legal gives the SMS
second factor, reads what the access entails, opens a citizen's birth certificate with a
court order's reference and downloads it; once in English with axe-core on every page, once
in Urdu with the errors beside the fields."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from api.runtime import Runtime
from tests.browser.conftest import assert_accessible, sign_in
from tests.browser.test_officer_pages import _fits, _issue, _second_factor
from tests.http.test_officer_pages import PDF, Office, owner_of, set_up_office

REFERENCE = "Order of the Sessions Court Lahore, Crl. Misc. 4471-B/2026"


@pytest.fixture
def office(site_runtime: Runtime, tmp_path: Path) -> Office:
    office = set_up_office(site_runtime, tmp_path / "root")
    with site_runtime.transaction() as session:
        provider = site_runtime.provider(session)
        account = provider.accounts.by_pseudonym(owner_of(site_runtime, office.officer.cnic))
        assert account is not None
        provider.roles.grant(account.id, account.pseudonym, "lgcd", "locker.legal", by="admin:t")
    return office


def _ready(page: Page, runtime: Runtime, office: Office) -> None:
    """Signed in, a birth certificate issued to the citizen, the second factor given, and the
    legal-basis page open."""
    sign_in(page, office.officer.cnic, then="/officer/lgcd/issue")
    _issue(page, office, "BC/2026/31")
    expect(page.locator("p.notice")).to_be_visible()
    _second_factor(page, runtime, office, "/officer/lgcd/legal")


@pytest.mark.parametrize("page", ["desktop", "phone"], indirect=True)
def test_a_legal_officer_opens_and_downloads_a_citizens_document(
    page: Page, site_runtime: Runtime, office: Office
) -> None:
    sign_in(page, office.officer.cnic, then="/officer")
    link = page.get_by_role("link", name="Open a citizen's documents on a legal basis")
    expect(link).to_have_attribute("href", "/officer/lgcd/legal")
    _ready(page, site_runtime, office)
    expect(page.get_by_role("heading", level=1)).to_have_text("Open documents on a legal basis")
    expect(page.locator("main")).to_contain_text("recorded in the audit log as yours")
    expect(page.locator("main")).to_contain_text("The citizen is told at once")
    assert_accessible(page)
    _fits(page)
    page.fill("#cnic", office.citizen.cnic)
    page.check("#doctype-birth")
    page.fill("#legal_reference", REFERENCE)
    page.fill("#reason", "Investigation of a forged admission record")
    page.locator("main button[type=submit]").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Documents opened on a legal basis")
    expect(page.locator("p.notice")).to_contain_text("The citizen was told by SMS")
    expect(page.locator("dl.facts")).to_contain_text(REFERENCE)
    assert_accessible(page)
    _fits(page)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download Birth certificate, Lahore").click()
    assert Path(download.value.path()).read_bytes() == PDF
    page.context.clear_cookies()
    sign_in(page, office.citizen.cnic, then="/access")
    expect(page.locator("main")).to_contain_text(f"Legal basis: {REFERENCE}")


def test_the_page_in_urdu_shows_errors_beside_the_fields_then_opens(
    page: Page, site_runtime: Runtime, office: Office
) -> None:
    _ready(page, site_runtime, office)
    page.get_by_role("link", name="اردو").click()
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.get_by_role("heading", level=1)).to_have_text("قانونی بنیاد پر دستاویزات کھولیں")
    assert_accessible(page)
    page.fill("#cnic", "35202-12")
    page.check("#doctype-birth")
    page.fill("#legal_reference", " ")
    page.fill("#reason", "جعلی داخلہ ریکارڈ کی تفتیش")
    page.locator("main button[type=submit]").click()
    expect(page.locator("#cnic-error")).to_contain_text("13 ہندسوں")
    expect(page.locator("#legal_reference-error")).to_contain_text("قانونی حوالہ")
    expect(page.locator("#cnic")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#reason")).to_have_value("جعلی داخلہ ریکارڈ کی تفتیش")
    assert_accessible(page)
    page.fill("#cnic", office.citizen.cnic)
    page.fill("#legal_reference", REFERENCE)
    page.fill("#disclosure_delay_days", "30")
    page.locator("main button[type=submit]").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("قانونی بنیاد پر کھولی گئی دستاویزات")
    expect(page.locator("p.notice")).to_contain_text("تاخیر ختم ہونے پر")
    expect(page.locator("tbody tr")).to_have_count(1)
    assert_accessible(page)
