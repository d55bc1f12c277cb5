"""The legal-basis pages in a real browser, under the two-person rule: an officer holding
locker.legal gives the SMS second factor, reads what the access entails and files a request
with a court order's reference; a second officer of the department approves it; the first
then opens the citizen's birth certificate and downloads it. Once in English with axe-core on
every page, once in Urdu with the errors beside the fields."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from api.runtime import Runtime
from identity.nadra import CitizenRecord
from tests.browser.conftest import assert_accessible, sign_in
from tests.browser.test_officer_pages import _fits, _issue
from tests.http.test_officer_pages import PDF, Office, owner_of, set_up_office

REFERENCE = "Order of the Sessions Court Lahore, Crl. Misc. 4471-B/2026"


@pytest.fixture
def office(site_runtime: Runtime, tmp_path: Path) -> Office:
    """The officer pages' office; the officer and the other officer both hold locker.legal in
    lgcd, so that one files and the other decides."""
    office = set_up_office(site_runtime, tmp_path / "root")
    with site_runtime.transaction() as session:
        provider = site_runtime.provider(session)
        for record in (office.officer, office.other):
            account = provider.accounts.by_pseudonym(owner_of(site_runtime, record.cnic))
            assert account is not None
            provider.roles.grant(
                account.id, account.pseudonym, "lgcd", "locker.legal", by="admin:t"
            )
    return office


def _second_factor(page: Page, runtime: Runtime, record: CitizenRecord, then: str) -> None:
    """Go to `then`, give the SMS code on the way (asking for it first where the page asks)."""
    page.goto(then)
    page.wait_for_url("**/login/second-factor**")
    send = page.locator("main form[action*='/login/second-factor/send'] button")
    if page.locator("#code").count() == 0 and send.count():
        send.first.click()
    message = runtime.identity.sms.last_to(record.mobile_numbers[0])
    assert message is not None
    code = re.search(r"\b(\d{6})\b", message.text).group(1)  # type: ignore[union-attr]
    page.fill("#code", code)
    page.locator("main form:has(#code) button[type=submit]").click()
    page.wait_for_url(f"**{then}")


def _ready(page: Page, runtime: Runtime, office: Office) -> None:
    """Signed in, a birth certificate issued to the citizen, the second factor given, and the
    legal-basis page open."""
    sign_in(page, office.officer.cnic, then="/officer/lgcd/issue")
    _issue(page, office, "BC/2026/31")
    expect(page.locator("p.notice")).to_be_visible()
    _second_factor(page, runtime, office.officer, "/officer/lgcd/legal")


def _as_second_officer_approve(page: Page, runtime: Runtime, office: Office) -> None:
    page.context.clear_cookies()
    sign_in(page, office.other.cnic, then="/officer")
    _second_factor(page, runtime, office.other, "/officer/lgcd/legal/requests")


@pytest.mark.parametrize("page", ["desktop", "phone"], indirect=True)
def test_a_request_is_filed_approved_by_a_second_officer_then_opened_and_downloaded(
    page: Page, site_runtime: Runtime, office: Office
) -> None:
    sign_in(page, office.officer.cnic, then="/officer")
    link = page.get_by_role("link", name="Open a citizen's documents on a legal basis")
    expect(link).to_have_attribute("href", "/officer/lgcd/legal")
    _ready(page, site_runtime, office)
    expect(page.get_by_role("heading", level=1)).to_have_text("Open documents on a legal basis")
    expect(page.locator("main")).to_contain_text("nothing is opened until a second officer")
    expect(page.locator("main")).to_contain_text("The citizen is told when you first open")
    assert_accessible(page)
    _fits(page)
    page.fill("#cnic", office.citizen.cnic)
    page.check("#doctype-birth")
    page.fill("#legal_reference", REFERENCE)
    page.fill("#reason", "Investigation of a forged admission record")
    page.locator("main button[type=submit]").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Legal-basis requests")
    expect(page.locator("p.notice")).to_contain_text("waiting for a second officer")
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    assert_accessible(page)
    _fits(page)

    _as_second_officer_approve(page, site_runtime, office)
    expect(page.get_by_role("region", name="Awaiting your decision")).to_contain_text(REFERENCE)
    expect(page.get_by_label("Why you refuse")).to_be_visible()
    assert_accessible(page)
    _fits(page)
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("p.notice")).to_contain_text("You approved the request")

    page.context.clear_cookies()
    sign_in(page, office.officer.cnic, then="/officer")
    _second_factor(page, site_runtime, office.officer, "/officer/lgcd/legal/requests")
    page.get_by_role("button", name=f"Open the documents under {REFERENCE}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Documents opened on a legal basis")
    expect(page.locator("p.notice")).to_contain_text("The citizen was told by SMS")
    expect(page.locator("dl.facts")).to_contain_text(REFERENCE)
    expect(page.locator("dl.facts")).to_contain_text(office.other.full_name)
    assert_accessible(page)
    _fits(page)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download Birth certificate, Lahore").click()
    assert Path(download.value.path()).read_bytes() == PDF
    page.context.clear_cookies()
    sign_in(page, office.citizen.cnic, then="/access")
    expect(page.locator("main")).to_contain_text(f"Legal basis: {REFERENCE}")


def test_the_page_in_urdu_shows_errors_beside_the_fields_then_files(
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
    expect(page.get_by_role("heading", level=1)).to_have_text("قانونی بنیاد پر درخواستیں")
    expect(page.locator("p.notice")).to_contain_text("دوسرے افسر کی منظوری کی منتظر")
    expect(page.locator("tbody tr")).to_have_count(1)
    assert_accessible(page)
