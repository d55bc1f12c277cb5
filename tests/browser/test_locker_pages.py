"""The citizen's locker in a real browser: documents with their badges, preview and download
byte for byte, an upload with its progress bar (and without scripts), a share link that works
and then stops, a nominee who reads read-only; in Urdu and on a phone, checked by axe."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, FilePayload, Page, expect

from api.i18n import translate
from api.runtime import Runtime
from audit import pseudonym
from identity.cnic import normalise_cnic
from identity.nadra import SCENARIOS, read_registry
from locker.access import Accessor
from tests.browser.conftest import assert_accessible, sign_in
from tests.http.oidc_kit import register_citizen
from tests.http.test_locker_pages import PDF, issue, seed_office

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(2_000)


@pytest.fixture
def stocked(site_runtime: Runtime, citizen: str, tmp_path: Path) -> dict[str, str]:
    """The citizen's locker: a sealed birth certificate, a domicile expiring soon, an upload."""
    seed_office(site_runtime, tmp_path / "root")
    birth = issue(site_runtime, citizen, "birth", "BC/2026/0042", "Birth certificate")
    soon = site_runtime.clock() + timedelta(days=12)
    domicile = issue(site_runtime, citizen, "dom", "DOM/9", "Domicile", valid_until=soon)
    owner = pseudonym(normalise_cnic(citizen), key=site_runtime.pseudonym_key)
    with site_runtime.transaction() as session:
        uploaded = site_runtime.locker(session).upload(
            owner=owner, doctype="other", title="Scan of my degree", content=[PNG],
            content_type="image/png", who=Accessor(owner, "citizen", "owner"),
        )  # fmt: skip
    return {"birth": birth, "domicile": domicile, "upload": uploaded.id}


def _fits(page: Page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{page.url} is {overflow}px wider than the screen"


@pytest.mark.parametrize("page", ["desktop", "phone"], indirect=True)
def test_the_citizen_sees_badges_previews_and_downloads_byte_for_byte(
    page: Page, citizen: str, stocked: dict[str, str], tmp_path: Path
) -> None:
    sign_in(page, citizen, then="/documents")
    items = page.locator("ul.documents > li")
    expect(items).to_have_count(3)
    expect(items.nth(0)).to_contain_text("Scan of my degree")  # newest first
    expect(items.nth(0).locator(".badge.plain")).to_have_text("Uploaded by you")
    domicile = items.filter(has_text="Domicile")
    expect(domicile.locator(".badge.ok").first).to_have_text("Verified")
    expect(domicile).to_contain_text("Issued by Home Department")
    expect(domicile.locator(".badge.warn")).to_contain_text("Expires soon: ")
    birth = items.filter(has_text="Birth certificate")
    expect(birth).to_contain_text("Issued by Local Government")
    expect(birth.locator(".badge.warn")).to_have_count(0)
    assert_accessible(page)
    _fits(page)

    page.get_by_role("link", name="Birth certificate").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Birth certificate")
    expect(page.locator("dl.facts")).to_contain_text("LGCD seal")
    expect(page.get_by_text("Issued documents cannot be deleted")).to_be_visible()
    assert_accessible(page)
    _fits(page)
    preview = page.get_by_role("link", name="Preview")
    href = preview.get_attribute("href")
    assert href == f"/documents/{stocked['birth']}/content?disposition=inline"
    shown = page.request.get(href)
    assert shown.status == 200
    assert shown.headers["content-disposition"].startswith("inline")
    assert shown.body() == PDF
    with page.expect_download() as downloading:
        page.get_by_role("link", name="Download").click()
    saved = tmp_path / "download.pdf"
    downloading.value.save_as(saved)
    assert saved.read_bytes() == PDF


def _record_progress(page: Page) -> None:
    """Note every value the progress bar and its status take, across the page change."""
    page.evaluate(
        """() => {
        sessionStorage.setItem('progress', '[]');
        const note = (what) => {
            const seen = JSON.parse(sessionStorage.getItem('progress'));
            seen.push(what);
            sessionStorage.setItem('progress', JSON.stringify(seen));
        };
        new MutationObserver(() => note({
            bar: document.querySelector('progress').value,
            shown: !document.querySelector('#upload-progress-box').hidden,
            said: document.querySelector('#upload-status').textContent,
        })).observe(document.querySelector('#upload-form'),
                    {attributes: true, childList: true, subtree: true, characterData: true});
    }"""
    )


def test_an_upload_shows_its_progress_and_lands_in_the_locker(
    page: Page, citizen: str, stocked: dict[str, str], tmp_path: Path
) -> None:
    big = tmp_path / "degree.pdf"
    big.write_bytes(b"%PDF-1.7\n" + os.urandom(6 * 1024 * 1024) + b"\n%%EOF\n")
    sign_in(page, citizen, then="/documents")
    expect(page.locator("#upload-progress-box")).to_be_hidden()
    expect(page.locator("#upload-status")).to_have_attribute("aria-live", "polite")
    page.set_input_files("#file", str(big))
    page.fill("#title", "Degree certificate")
    page.select_option("#doctype", "matric")
    _record_progress(page)
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url("**/documents/*?done=uploaded")
    expect(page.locator(".notice")).to_contain_text("Your document is uploaded")
    expect(page.get_by_role("heading", level=1)).to_have_text("Degree certificate")
    seen = page.evaluate("JSON.parse(sessionStorage.getItem('progress'))")
    assert any(s["shown"] for s in seen), seen
    assert max(s["bar"] for s in seen) == 100, seen
    assert any("Uploading: " in s["said"] and "% sent" in s["said"] for s in seen), seen
    document = page.url.split("/documents/")[1].split("?")[0]
    body = page.request.get(f"/documents/{document}/content?disposition=attachment").body()
    assert body == big.read_bytes()

    # A refusal comes back beside the field, in place, with the focus on it.
    page.goto("/documents")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a document")
    page.set_input_files("#file", str(notes))
    page.fill("#title", "Notes")
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#file-error")).to_have_text("Upload a PDF, PNG, JPEG, JSON or XML file.")
    expect(page.locator("#file")).to_be_focused()
    expect(page.locator("#title")).to_have_value("Notes")
    assert_accessible(page)


def test_the_upload_form_works_without_scripts(
    chromium: Browser, base_url: str, citizen: str, stocked: dict[str, str]
) -> None:
    context = chromium.new_context(base_url=base_url, java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page, citizen, then="/documents")
        scan: FilePayload = {"name": "scan.png", "mimeType": "image/png", "buffer": PNG}
        page.set_input_files("#file", files=[scan])
        page.fill("#title", "Scanned photo")
        page.get_by_role("button", name="Upload").click()
        page.wait_for_url("**/documents/*?done=uploaded")
        expect(page.get_by_role("heading", level=1)).to_have_text("Scanned photo")
        page.goto("/documents")
        page.get_by_role("button", name="Upload").click()
        expect(page.locator("#file-error")).to_have_text("Choose a file to upload.")
    finally:
        context.close()


def test_a_share_link_works_for_anyone_until_it_is_revoked(
    page: Page, chromium: Browser, citizen: str, stocked: dict[str, str]
) -> None:
    sign_in(page, citizen, then=f"/documents/{stocked['birth']}")
    page.fill("#hours", "0")
    page.get_by_role("button", name="Make a link").click()
    expect(page.locator("#hours-error")).to_contain_text("from 1 to 720")
    page.fill("#hours", "1")
    page.fill("#max_uses", "5")
    page.get_by_role("button", name="Make a link").click()
    link = page.locator("#share-url")
    expect(link).to_be_visible()
    expect(page.get_by_text("it is shown only this once")).to_be_visible()
    url = link.input_value()
    assert "/locker/shared/" in url
    assert_accessible(page)

    stranger = chromium.new_context()
    try:
        opened = stranger.request.get(url)
        assert opened.status == 200
        assert opened.body() == PDF
        page.goto(f"/documents/{stocked['birth']}")
        expect(page.locator("#share-url")).to_have_count(0)
        row = page.locator("tbody tr")
        expect(row).to_contain_text("1 of 5")
        expect(row.locator(".badge")).to_have_text("Live")
        row.get_by_role("button", name="Revoke").click()
        expect(page.locator(".notice")).to_contain_text("The link is revoked")
        expect(page.locator("tbody tr .badge")).to_have_text("Revoked")
        assert stranger.request.get(url).status == 404
    finally:
        stranger.close()


def test_a_nominee_reads_the_locker_read_only(
    page: Page, chromium: Browser, base_url: str, site_runtime: Runtime, citizen: str,
    stocked: dict[str, str],
) -> None:  # fmt: skip
    registry = read_registry(site_runtime.identity.nadra_file)
    nominee = registry[SCENARIOS["active_male"]]
    register_citizen(site_runtime, nominee)
    owner_name = registry[citizen].full_name
    sign_in(page, citizen, then="/nominees")
    page.fill("#cnic", SCENARIOS["expired_card"])
    page.get_by_role("button", name="Name them").click()
    expect(page.locator("#cnic-error")).to_contain_text("no Shanakht account")
    page.fill("#cnic", nominee.cnic)
    page.get_by_role("radio", name="Guardian").check()
    page.get_by_role("button", name="Name them").click()
    expect(page.locator(".notice")).to_contain_text("they can now read your documents")
    expect(page.locator("tbody")).to_contain_text(nominee.full_name)
    assert_accessible(page)

    context = chromium.new_context(base_url=base_url)
    theirs = context.new_page()
    try:
        sign_in(theirs, nominee.cnic, then="/nominees")
        theirs.get_by_role("link", name=f"{owner_name}'s documents").click()
        expect(theirs.get_by_role("heading", level=1)).to_have_text(f"{owner_name}'s documents")
        expect(theirs.get_by_text("You are their guardian.")).to_be_visible()
        expect(theirs.locator("ul.documents > li")).to_have_count(3)
        expect(theirs.get_by_role("button")).to_have_count(0)  # nothing to change, share, delete
        item = theirs.locator("ul.documents > li").filter(has_text="Birth certificate")
        href = item.get_by_role("link", name="Preview").get_attribute("href")
        assert href is not None
        assert theirs.request.get(href).body() == PDF
        assert theirs.request.get(f"/documents/{stocked['birth']}").status == 404
        assert_accessible(theirs)
    finally:
        context.close()


@pytest.mark.parametrize("page", ["phone"], indirect=True)
def test_the_locker_pages_in_urdu_on_a_phone(
    page: Page, citizen: str, stocked: dict[str, str]
) -> None:
    sign_in(page, citizen, then="/documents")
    page.goto("/lang/ur?next=/documents")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    heading = translate("ur", "Your documents")
    assert heading != "Your documents"
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    verified = translate("ur", "Verified")
    expect(page.locator(".badge.ok").filter(has_text=verified)).to_have_count(2)
    assert_accessible(page)
    _fits(page)
    page.get_by_role("button", name=translate("ur", "Upload")).click()
    expect(page.locator("#file-error")).to_have_text(translate("ur", "Choose a file to upload."))
    assert_accessible(page)
    _fits(page)
    for path in (f"/documents/{stocked['birth']}", f"/documents/{stocked['upload']}/delete",
                 "/nominees"):  # fmt: skip
        page.goto(path)
        expect(page.locator("html")).to_have_attribute("lang", "ur")
        assert_accessible(page)
        _fits(page)
