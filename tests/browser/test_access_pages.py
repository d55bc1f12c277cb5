"""The citizen's "who saw my data" page in a real browser: a department's fetch under consent
and a police access on a legal basis are listed with who, why and on what footing; the GET
filters narrow the list (and stay in the address); the CSV export downloads the same rows; a
mistyped date is explained beside its field; in English and Urdu, on a desk and on a phone."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from api.routes.exchange import exchange_service
from api.runtime import Runtime
from audit import pseudonym
from tests.browser.conftest import assert_accessible, sign_in
from tests.browser.test_requests_pages import _fits
from tests.http.test_requests_pages import (
    DEPARTMENT,
    DEPARTMENT_NAME,
    LEGAL_REFERENCE,
    birth_certificate,
    department,
    fetch,
    file_request,
    legal_access,
)


def _fetched(runtime: Runtime, cnic: str) -> None:
    """The department asks, the citizen approves (through the domain), the department fetches."""
    department(runtime)
    document_id = birth_certificate(runtime, cnic)
    asked = file_request(runtime, cnic)
    with runtime.transaction() as session:
        consent = exchange_service(runtime, session).approve(
            asked, owner=pseudonym(cnic, key=runtime.pseudonym_key), substantial=True
        )
    fetch(runtime, consent.id, document_id)


def _rows(page: Page) -> list[str]:
    return page.locator("table.access tbody tr").all_inner_texts()


@pytest.mark.parametrize("page", ["desktop", "phone"], indirect=True)
def test_who_saw_my_data_filters_and_exports(
    page: Page, site_runtime: Runtime, citizen: str
) -> None:
    _fetched(site_runtime, citizen)
    legal_access(site_runtime, citizen)
    sign_in(page, citizen, then="/access")
    expect(page.get_by_role("heading", level=1)).to_have_text("Who saw my data")
    table = page.get_by_role("table")
    expect(table).to_contain_text("Fetched a document under your consent")
    expect(table).to_contain_text(DEPARTMENT_NAME)
    expect(table).to_contain_text("Birth certificate")
    expect(table).to_contain_text(f"Legal basis: {LEGAL_REFERENCE}")
    expect(table).to_contain_text("Punjab Police")
    assert_accessible(page)
    _fits(page)
    everything = len(_rows(page))

    page.select_option("#organisation", label=DEPARTMENT_NAME)
    page.select_option("#action", "locker.exchange.fetched")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(f"**/access?organisation={DEPARTMENT}&action=locker.exchange.fetched**")
    rows = _rows(page)
    assert len(rows) == 1 < everything
    assert "Fetched a document under your consent" in rows[0]
    expect(page.locator("#organisation")).to_have_value(DEPARTMENT)
    assert_accessible(page)

    with page.expect_download() as download:
        page.get_by_role("link", name="Export these entries (CSV)").click()
    exported = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert [(r["action"], r["organisation"]) for r in exported] == [
        ("locker.exchange.fetched", DEPARTMENT)
    ]
    with page.expect_download() as proof:
        page.get_by_role("link", name=f"Proof of entry {exported[0]['seq']}").click()
    bundle = json.loads(Path(proof.value.path()).read_text())
    assert bundle["seq"] == int(exported[0]["seq"])

    page.goto("/access?basis=legal")
    rows = _rows(page)
    assert len(rows) == 1
    assert LEGAL_REFERENCE in rows[0]
    page.get_by_role("link", name="Clear the filters").click()
    page.wait_for_url("**/access")
    assert len(_rows(page)) == everything


@pytest.mark.parametrize("page", ["desktop", "phone"], indirect=True)
def test_a_bad_date_is_explained_beside_the_field(
    page: Page, site_runtime: Runtime, citizen: str
) -> None:
    sign_in(page, citizen, then="/access")
    page.fill("#since", "2026-03-02")
    page.fill("#until", "2026-03-01")
    page.get_by_role("button", name="Show").click()
    error = page.locator("#until-error")
    expect(error).to_have_text("The end date is before the start date.")
    expect(page.locator("#until")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#since")).to_have_value("2026-03-02")
    assert_accessible(page)
    _fits(page)
    page.goto("/access?since=2026-02-30")
    expect(page.locator("#since-error")).to_contain_text("2026-03-31")


@pytest.mark.parametrize("page", ["desktop", "phone"], indirect=True)
def test_who_saw_my_data_in_urdu(page: Page, site_runtime: Runtime, citizen: str) -> None:
    _fetched(site_runtime, citizen)
    sign_in(page, citizen, then="/access")
    page.get_by_role("link", name="اردو").click()
    page.wait_for_url("**/access")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.get_by_role("heading", level=1)).to_have_text("میرا ڈیٹا کس نے دیکھا")
    expect(page.get_by_role("table")).to_contain_text("آپ کی رضامندی سے دستاویز حاصل کی")
    assert_accessible(page)
    _fits(page)
    page.goto("/access?since=not-a-date")
    expect(page.locator("#since-error")).to_contain_text("سال-مہینہ-دن")
    assert_accessible(page)
