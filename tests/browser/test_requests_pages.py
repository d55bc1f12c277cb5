"""The citizen's requests page in a real browser: a department asks (through the domain, as its
system would), the citizen reads exactly what the consent will say, approves through the SMS
code and back, pauses, resumes and revokes the consent (and the department's next fetch is
refused), and denies another request; in English and Urdu, on a desk and on a phone."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from api.runtime import Runtime
from identity.nadra import read_registry
from locker.exchange import ConsentRefused
from tests.browser.conftest import assert_accessible, sign_in
from tests.http.test_requests_pages import (
    DEPARTMENT_NAME,
    PURPOSE,
    birth_certificate,
    consent_of,
    department,
    fetch,
    file_request,
)


def _fits(page: Page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{page.url} is {overflow}px wider than the screen"


def _code(runtime: Runtime, cnic: str) -> str:
    mobile = read_registry(runtime.identity.nadra_file)[cnic].mobile_numbers[0]
    text = runtime.identity.sms.last_to(mobile).text  # type: ignore[union-attr]
    return re.search(r"\b(\d{6})\b", text).group(1)  # type: ignore[union-attr]


def _card(page: Page, request_id: str):  # type: ignore[no-untyped-def]
    return page.locator(f"#request-{request_id}")


@pytest.mark.parametrize("page", ["desktop", "phone"], indirect=True)
def test_a_citizen_approves_pauses_resumes_revokes_and_denies(
    page: Page, site_runtime: Runtime, citizen: str
) -> None:
    runtime = site_runtime
    department(runtime)
    document_id = birth_certificate(runtime, citizen)
    asked = file_request(runtime, citizen)
    other = file_request(runtime, citizen, purpose="Scholarship: proof of age")

    sign_in(page, citizen, then="/requests")
    card = _card(page, asked)
    expect(card).to_contain_text(DEPARTMENT_NAME)
    expect(card).to_contain_text(PURPOSE)
    expect(card).to_contain_text("edu.admission")
    expect(card).to_contain_text("Birth certificate")
    expect(card).to_contain_text("30 days after fetching")
    expect(page.get_by_text("asks for your Birth certificate").first).to_be_visible()
    assert_accessible(page)
    _fits(page)

    # Approving: a password-only session is taken through the SMS code, then back.
    card.get_by_role("link", name=re.compile("^Approve")).click()
    page.wait_for_url("**/login/second-factor**")
    page.locator('main form[action^="/login/second-factor/send"] button').click()
    expect(page.locator("#code")).to_be_visible()
    page.fill("#code", _code(runtime, citizen))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"**/requests/{asked}/approve")
    expect(page.get_by_role("heading", level=1)).to_have_text("Approve this request?")
    expect(page.locator("main")).to_contain_text(PURPOSE)
    assert_accessible(page)
    page.get_by_role("button", name="Approve").click()
    page.wait_for_url("**/requests?done=approved**")
    consent = consent_of(runtime, asked)
    mine = page.locator(f"#consent-{consent.id}")
    expect(mine).to_contain_text("Active")
    expect(mine).to_contain_text("0 of 3 fetches")
    expect(page.get_by_text("fetches stop at once", exact=False).first).to_be_visible()
    assert fetch(runtime, consent.id, document_id).startswith(b"%PDF")
    page.reload()
    expect(mine).to_contain_text("1 of 3 fetches")

    mine.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("status")).to_contain_text("Fetches stop at once")
    expect(mine).to_contain_text("Paused")
    with pytest.raises(ConsentRefused):
        fetch(runtime, consent.id, document_id)
    mine.get_by_role("button", name="Resume").click()
    expect(mine).to_contain_text("Active")
    assert fetch(runtime, consent.id, document_id).startswith(b"%PDF")

    # The signed consent can be read and downloaded.
    mine.get_by_role("link", name="The signed consent").click()
    expect(page.locator("pre.artifact")).to_have_text(consent.artifact)
    assert_accessible(page)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the signed consent (JWS)").click()
    assert download.value.suggested_filename == f"consent-{consent.id}.jws"
    page.goto("/requests")

    mine.get_by_role("link", name="Revoke").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Revoke this consent?")
    assert_accessible(page)
    page.get_by_role("button", name="Revoke").click()
    page.wait_for_url("**/requests?done=revoked**")
    expect(mine).to_contain_text("Revoked")
    expect(mine.get_by_role("button")).to_have_count(0)
    with pytest.raises(ConsentRefused):
        fetch(runtime, consent.id, document_id)

    # Denying the other request asks first, then says so.
    _card(page, other).get_by_role("link", name=re.compile("^Deny")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Deny this request?")
    expect(page.locator("main")).to_contain_text("Scholarship: proof of age")
    page.get_by_role("button", name="Deny").click()
    page.wait_for_url("**/requests?done=denied**")
    expect(page.get_by_role("status")).to_contain_text("You denied the request")
    expect(_card(page, other)).to_have_count(0)
    expect(page.get_by_role("table")).to_contain_text("Denied")
    assert_accessible(page)
    _fits(page)


def test_cancelling_a_denial_changes_nothing(
    page: Page, site_runtime: Runtime, citizen: str
) -> None:
    department(site_runtime)
    asked = file_request(site_runtime, citizen)
    sign_in(page, citizen, then="/requests")
    _card(page, asked).get_by_role("link", name=re.compile("^Deny")).click()
    page.get_by_role("link", name="Cancel").click()
    page.wait_for_url("**/requests")
    expect(_card(page, asked)).to_contain_text(PURPOSE)


@pytest.mark.parametrize("page", ["desktop", "phone"], indirect=True)
def test_the_requests_pages_in_urdu(page: Page, site_runtime: Runtime, citizen: str) -> None:
    department(site_runtime)
    birth_certificate(site_runtime, citizen)
    asked = file_request(site_runtime, citizen)
    sign_in(page, citizen, then="/requests")
    page.get_by_role("link", name="اردو").click()
    page.wait_for_url("**/requests")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.get_by_role("heading", level=1)).to_have_text("درخواستیں اور رضامندیاں")
    expect(_card(page, asked)).to_contain_text("پیدائش کا سرٹیفکیٹ")
    expect(_card(page, asked)).to_contain_text(PURPOSE)
    assert_accessible(page)
    _fits(page)
    _card(page, asked).get_by_role("link", name=re.compile("^انکار")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("کیا اس درخواست سے انکار کریں؟")
    assert_accessible(page)
    _fits(page)
