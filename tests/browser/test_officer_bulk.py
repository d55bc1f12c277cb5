"""Bulk issue in a real browser: the officer sends a ZIP, watches the progress page (its script
running under the page's own CSP) reach the end, and reads each line's outcome; a manifest
with a bad line shows the problem beside it, in Urdu; every page checked by axe-core."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import FilePayload, Page, expect

from api.runtime import Runtime
from tests.browser.conftest import assert_accessible, sign_in
from tests.http.test_officer_bulk import HEADER, good_batch, make_zip
from tests.http.test_officer_pages import PDF, Office, owner_of, set_up_office


@pytest.fixture
def office(site_runtime: Runtime, tmp_path: Path) -> Office:
    return set_up_office(site_runtime, tmp_path / "root")


def _send(page: Page, body: bytes) -> None:
    page.set_input_files(
        "#file", files=[FilePayload(name="batch.zip", mimeType="application/zip", buffer=body)]
    )
    page.locator("main button[type=submit]").click()


def test_an_officer_issues_a_batch_and_watches_it_finish(
    page: Page, site_runtime: Runtime, office: Office
) -> None:
    sign_in(page, office.officer.cnic, then="/officer")
    page.get_by_role("link", name="Issue a batch of documents from a ZIP file").first.click()
    page.wait_for_url("**/officer/lgcd/bulk")
    assert_accessible(page)
    _send(page, good_batch(office))
    page.wait_for_url("**/officer/lgcd/bulk/*")
    expect(page.locator(".verdict.ok")).to_contain_text(
        "3 created, 0 new versions, 0 unchanged, 0 refused", timeout=20_000
    )
    expect(page.locator("#bulk-bar")).to_have_attribute("value", "3")
    expect(page.locator("table.bulk-rows tbody tr")).to_have_count(3)
    expect(page.locator("table.bulk-rows")).to_contain_text("Created")
    assert_accessible(page)
    with site_runtime.transaction() as session:
        mine = site_runtime.locker(session).list(owner_of(site_runtime, office.citizen.cnic))
    assert sorted(d.issuer_doc_id or "" for d in mine) == ["BC/1", "BC/2"]
    assert all(d.signature is not None for d in mine)
    # Again: nothing new, every line unchanged.
    page.get_by_role("link", name="Issue another batch").click()
    _send(page, good_batch(office))
    expect(page.locator(".verdict.ok")).to_contain_text("0 created", timeout=20_000)
    expect(page.locator("table.bulk-rows")).to_contain_text("Unchanged")


def test_a_bad_line_is_shown_beside_it_in_urdu_and_nothing_is_issued(
    page: Page, site_runtime: Runtime, office: Office
) -> None:
    sign_in(page, office.officer.cnic, then="/officer/lgcd/bulk")
    page.get_by_role("link", name="اردو").click()
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    manifest = HEADER + "35202-12,BC/1,birth,Birth certificate,,one.pdf\n"
    _send(page, make_zip(manifest, {"one.pdf": PDF}))
    expect(page.locator("p.error")).to_contain_text("کچھ جاری نہیں ہوا")
    expect(page.locator("tr.bulk-bad")).to_contain_text("13 ہندسوں")
    assert_accessible(page)
    with site_runtime.transaction() as session:
        assert site_runtime.locker(session).list(owner_of(site_runtime, office.citizen.cnic)) == []
