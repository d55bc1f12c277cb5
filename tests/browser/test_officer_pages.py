"""The officer's desk in a real browser: issuing a document (with the upload's progress
script running under the page's own CSP), filing a once-only request, signing a transfer order
after the SMS second factor, revoking a document and a certificate; the 403 page for a plain
citizen and for another department; in English and Urdu, on a desk and on a 360 px phone,
each page checked by axe-core."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import FilePayload, Page, expect

from api.runtime import Runtime
from signing.pki.authority import serial_hex
from tests.browser.conftest import assert_accessible, sign_in
from tests.http.test_officer_pages import PDF, Office, owner_of, set_up_office


@pytest.fixture
def office(site_runtime: Runtime, tmp_path: Path) -> Office:
    return set_up_office(site_runtime, tmp_path / "root")


def _fits(page: Page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{page.url} is {overflow}px wider than the screen"


def _second_factor(page: Page, runtime: Runtime, office: Office, then: str) -> None:
    page.goto(then)
    page.wait_for_url("**/login/second-factor**")
    page.locator('main form[action^="/login/second-factor/send"] button').click()
    expect(page.locator("#code")).to_be_visible()
    message = runtime.identity.sms.last_to(office.officer.mobile_numbers[0])
    assert message is not None
    text = message.text
    code = re.search(r"\b(\d{6})\b", text).group(1)  # type: ignore[union-attr]
    page.fill("#code", code)
    page.locator("main form:has(#code) button[type=submit]").click()
    page.wait_for_url(f"**{then}")


def _issue(page: Page, office: Office, number: str) -> None:
    page.select_option("#doctype", "birth")
    page.fill("#cnic", office.citizen.cnic)
    page.fill("#doc_id", number)
    page.fill("#title", "Birth certificate, Lahore")
    page.set_input_files(
        "#file", files=[FilePayload(name="birth.pdf", mimeType="application/pdf", buffer=PDF)]
    )
    page.locator("main button[type=submit]").click()


@pytest.mark.parametrize("page", ["desktop", "phone"], indirect=True)
def test_an_officer_issues_a_document_that_lands_in_the_citizens_locker(
    page: Page, site_runtime: Runtime, office: Office
) -> None:
    sign_in(page, office.officer.cnic, then="/officer")
    expect(page.get_by_role("heading", level=1)).to_have_text("Officer desk")
    assert_accessible(page)
    _fits(page)
    page.get_by_role("link", name="Issue a document to a citizen").first.click()
    page.wait_for_url("**/officer/lgcd/issue")
    assert_accessible(page)
    _fits(page)
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.resource_type) if r.method == "POST" else None)
    _issue(page, office, "BC/2026/77")
    expect(page.locator("p.notice")).to_contain_text("Issued: Birth certificate, Lahore")
    assert posts == ["xhr"]  # sent by static/officer.js (progress bar), allowed by the page's CSP
    assert "issued=BC%2F2026%2F77" in page.url
    with site_runtime.transaction() as session:
        (document,) = site_runtime.locker(session).list(owner_of(site_runtime, office.citizen.cnic))
    assert (document.issuer, document.issuer_doc_id, document.signature is not None) == (
        "lgcd",
        "BC/2026/77",
        True,
    )
    assert_accessible(page)


def test_the_upload_shows_its_errors_beside_the_field_in_urdu(
    page: Page, site_runtime: Runtime, office: Office
) -> None:
    sign_in(page, office.officer.cnic, then="/officer/lgcd/issue")
    page.get_by_role("link", name="اردو").click()
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    page.select_option("#doctype", "birth")
    page.fill("#cnic", "35202-12")
    page.fill("#doc_id", "BC/1")
    page.fill("#title", "Birth certificate")
    page.set_input_files(
        "#file", files=[FilePayload(name="notes.txt", mimeType="text/plain", buffer=b"hello")]
    )
    page.locator("main button[type=submit]").click()
    expect(page.locator("#cnic-error")).to_contain_text("13 ہندسوں")
    expect(page.locator("#file-error")).to_contain_text("قبول نہیں")
    expect(page.locator("#cnic")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#title")).to_have_value("Birth certificate")
    assert_accessible(page)


@pytest.mark.parametrize("page", ["desktop", "phone"], indirect=True)
def test_an_officer_files_a_request_and_sees_its_state(
    page: Page, site_runtime: Runtime, office: Office
) -> None:
    sign_in(page, office.officer.cnic, then="/officer/lgcd/requests/new")
    assert_accessible(page)
    _fits(page)
    page.fill("#cnic", office.citizen.cnic)
    page.check("#doctype-birth")
    page.fill("#purpose_code", "SCHOOL-ADM")
    page.fill("#purpose_text", "Admission to a government school")
    until = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    page.fill("#valid_until", until)
    page.locator("main button[type=submit]").click()
    expect(page.locator("p.notice")).to_contain_text("The request was sent")
    expect(page.locator("table")).to_contain_text("Waiting for the citizen")
    assert_accessible(page)
    _fits(page)
    page.locator("tbody a").first.click()
    expect(page.locator("dl.facts")).to_contain_text("Admission to a government school")
    assert_accessible(page)


@pytest.mark.parametrize("page", ["desktop", "phone"], indirect=True)
def test_an_officer_signs_an_order_after_the_sms_code(
    page: Page, site_runtime: Runtime, office: Office
) -> None:
    sign_in(page, office.officer.cnic, then="/officer")
    _second_factor(page, site_runtime, office, "/officer/sed/sign")
    assert_accessible(page)
    _fits(page)
    for field, value in {
        "#order_no": "SED/TR/2026/000123",
        "#teacher_name": "Ayesha Bibi",
        "#teacher_cnic": office.citizen.cnic,
        "#post": "SST (Science)",
        "#from_school": "Govt. High School, Model Town",
        "#to_school": "Govt. Girls School, Shahdara",
        "#authority": "CEO (DEA) Lahore",
    }.items():
        page.fill(field, value)
    page.locator("main button[type=submit]").click()
    expect(page.locator("p.notice")).to_contain_text("SED/TR/2026/000123 is signed")
    expect(page.locator("main")).to_contain_text("teacher's Shanakht locker now")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the signed PDF").click()
    assert download.value.suggested_filename == "SED-TR-2026-000123.pdf"
    assert Path(download.value.path()).read_bytes().startswith(b"%PDF")
    assert_accessible(page)
    _fits(page)
    with site_runtime.transaction() as session:
        found = site_runtime.locker(session).list(owner_of(site_runtime, office.citizen.cnic))
    assert [d.doctype for d in found] == ["tto"]


def test_an_officer_revokes_a_document_and_a_certificate_in_urdu(
    page: Page, site_runtime: Runtime, office: Office
) -> None:
    sign_in(page, office.officer.cnic, then="/officer/lgcd/issue")
    _issue(page, office, "BC/2026/9")
    expect(page.locator("p.notice")).to_be_visible()
    page.goto("/lang/ur?next=/officer/lgcd/revoke")
    assert_accessible(page)
    page.fill("#doc_id", "BC/2026/9")
    page.fill("#reason", "غلطی سے جاری ہوئی")
    page.locator("main button[type=submit]").click()
    expect(page.locator("p.notice")).to_contain_text("منسوخ")
    with site_runtime.transaction() as session:
        found = site_runtime.locker(session).issued("lgcd", "BC/2026/9")
    assert found is not None
    assert found.status == "revoked"
    page.goto("/officer/sed/certificates")
    assert_accessible(page)
    target = f"/officer/sed/certificates/{serial_hex(office.qr_serial)}"
    expect(page.locator(f'a[href="{target}"]')).to_be_visible()
    _second_factor(page, site_runtime, office, target)  # revoking asks for the second factor
    expect(page.locator("main h2")).to_have_text("منسوخی کا اثر")
    assert_accessible(page)
    page.select_option("#reason", "key_compromise")
    page.locator("main button.danger").click()
    expect(page.locator("p.notice")).to_be_visible()
    with site_runtime.transaction() as session:
        revoked = site_runtime.authority(session).get(office.qr_serial)
    assert revoked is not None
    assert revoked.reason == "key_compromise"


@pytest.mark.parametrize("page", ["desktop", "phone"], indirect=True)
def test_a_plain_citizen_and_another_department_get_the_403_page(
    page: Page, office: Office
) -> None:
    sign_in(page, office.citizen.cnic, then="/account")
    page.goto("/officer")
    expect(page.get_by_role("heading", level=1)).to_have_text("This page is not for your account")
    assert_accessible(page)
    _fits(page)
    page.context.clear_cookies()
    sign_in(page, office.other.cnic, then="/officer")
    page.goto("/officer/lgcd/issue")  # lgcd's birth certificates are not home's to issue
    expect(page.get_by_role("heading", level=1)).to_have_text("This page is not for your account")
    page.goto("/officer/home/issue")
    expect(page.locator("main")).to_contain_text("no seal certificate yet")
    assert list(page.locator("#doctype option").all_inner_texts()) == ["Domicile certificate"]
    assert_accessible(page)
