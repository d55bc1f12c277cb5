"""The administrator's pages in a real browser: an administrator signs in with the SMS code and
does each task (departments, roles, another administrator's proposed grants, clients, keys
with the re-wrap's progress, checkpoints), in English and Urdu, at desk and phone size, each
page checked by axe-core; an auditor may only read and verify; a citizen without a role gets
the 403 page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from api.routes import admin_keys
from api.runtime import Runtime
from audit import pseudonym
from identity.nadra import SCENARIOS, read_registry
from locker.access import Accessor
from tests.browser.conftest import assert_accessible, sign_in
from tests.http.oidc_kit import register_citizen

DEPARTMENT = "pitb"


def _fits(page: Page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{page.url} is {overflow}px wider than the screen"


def _grant(runtime: Runtime, cnic: str, *roles: str) -> None:
    """Roles given through the domain, as `shanakht roles grant` does."""
    with runtime.transaction() as session:
        provider = runtime.provider(session)
        if DEPARTMENT not in {d for d, _ in provider.roles.departments()}:
            provider.roles.add_department(DEPARTMENT, "Punjab IT Board")
        account = provider.accounts.by_pseudonym(pseudonym(cnic, key=runtime.pseudonym_key))
        assert account is not None
        for role in roles:
            provider.roles.grant(account.id, account.pseudonym, DEPARTMENT, role, by="admin:test")


def _second_factor(page: Page, runtime: Runtime, nadra_file: Path, cnic: str) -> None:
    """On the code page: ask for a code, then type the one the (simulated) gateway sent."""
    page.locator('main form[action^="/login/second-factor/send"] button').click()
    expect(page.locator("#code")).to_be_visible()
    mobile = read_registry(nadra_file)[cnic].mobile_numbers[0]
    text = runtime.identity.sms.last_to(mobile).text  # type: ignore[union-attr]
    page.fill("#code", re.search(r"\b(\d{6})\b", text).group(1))  # type: ignore[union-attr]
    page.locator("main form:has(#code) button[type=submit]").click()


def _as_admin(page: Page, runtime: Runtime, nadra_file: Path, cnic: str, then: str) -> None:
    _grant(runtime, cnic, "identity.admin")
    sign_in(page, cnic)
    page.goto("/admin/keys")  # an administrator's page: it asks for the code first
    _second_factor(page, runtime, nadra_file, cnic)
    page.wait_for_url("**/admin/keys")
    if then != "/admin/keys":
        page.goto(then)


@pytest.fixture
def officer(site_runtime: Runtime, nadra_file: Path) -> str:
    record = read_registry(nadra_file)[SCENARIOS["active_male"]]
    register_citizen(site_runtime, record)
    return record.cnic


def _check(page: Page) -> None:
    assert_accessible(page)
    _fits(page)


@pytest.mark.parametrize("page", ["desktop", "phone"], indirect=True)
def test_departments_and_roles(
    page: Page, site_runtime: Runtime, nadra_file: Path, citizen: str, officer: str
) -> None:
    _as_admin(page, site_runtime, nadra_file, citizen, "/admin")
    expect(page.get_by_role("heading", level=1)).to_have_text("Administration")
    _check(page)
    page.get_by_role("navigation", name="Administration").get_by_role(
        "link", name="Departments"
    ).click()
    page.fill("#department_id", "School Ed")
    page.fill("#name", "School Education Department")
    page.get_by_role("button", name="Add department").click()
    expect(page.locator("#department_id-error")).to_contain_text("lower-case letters")
    expect(page.locator("#department_id")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#name")).to_have_value("School Education Department")
    _check(page)
    page.fill("#department_id", "sed")
    page.get_by_role("button", name="Add department").click()
    expect(page.get_by_role("status")).to_have_text("Department sed added.")
    expect(page.get_by_role("cell", name="School Education Department")).to_be_visible()

    page.goto("/admin/officers")
    page.fill("#cnic", "35202-9999999-1")
    page.get_by_role("button", name="Find").click()
    expect(page.locator("#cnic-error")).to_contain_text("No Shanakht account holds this CNIC")
    _check(page)
    page.fill("#cnic", officer)
    page.get_by_role("button", name="Find").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Roles of")
    assert officer not in page.url
    page.select_option("#department", "sed")
    page.select_option("#role", "signing.officer")
    page.get_by_role("button", name="Grant role").click()
    expect(page.get_by_role("status")).to_have_text("Role granted.")
    expect(page.get_by_role("cell", name="signing.officer", exact=True)).to_be_visible()
    _check(page)
    page.get_by_role("button", name="Take away").click()
    expect(page.get_by_role("status")).to_have_text("Role taken away.")
    expect(page.get_by_text("No roles: an ordinary citizen's account.")).to_be_visible()


def _proposed_by_another(runtime: Runtime, nadra_file: Path, officer: str) -> None:
    """Another administrator proposes locker.legal and identity.admin for `officer`."""
    other = read_registry(nadra_file)[SCENARIOS["two_mobiles"]]
    register_citizen(runtime, other)
    _grant(runtime, other.cnic, "identity.admin")
    with runtime.transaction() as session:
        proposals = runtime.provider(session).role_proposals
        for role in ("locker.legal", "identity.admin"):
            proposals.propose(
                pseudonym(officer, key=runtime.pseudonym_key), DEPARTMENT, role,
                proposer=pseudonym(other.cnic, key=runtime.pseudonym_key),
            )  # fmt: skip


@pytest.mark.parametrize("page", ["desktop", "phone"], indirect=True)
def test_approve_and_refuse_a_grant_by_keyboard_in_english_and_urdu(
    page: Page, site_runtime: Runtime, nadra_file: Path, citizen: str, officer: str
) -> None:
    _as_admin(page, site_runtime, nadra_file, citizen, "/admin")
    _proposed_by_another(site_runtime, nadra_file, officer)
    page.reload()
    page.get_by_role("link", name="Grants waiting for your approval: 2").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/admin/proposals")
    expect(page.get_by_role("heading", level=1)).to_have_text("Grants to approve")
    expect(page.get_by_role("article")).to_have_count(2)
    _check(page)
    legal = page.get_by_role("article", name=re.compile("^locker.legal for "))
    legal.get_by_role("button", name="Approve").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text(
        "You approved the grant. The officer holds the role now."
    )
    expect(page.get_by_role("article")).to_have_count(1)

    page.get_by_role("link", name="اردو").click()
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.get_by_role("heading", level=1)).to_have_text("منظوری کے منتظر کردار")
    _check(page)
    page.get_by_label("آپ کیوں مسترد کرتے ہیں").fill("Not staff of the board")
    page.get_by_role("button", name="مسترد کریں").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("آپ نے کردار مسترد کر دیا")
    expect(page.get_by_role("main")).to_contain_text("کوئی کردار آپ کی منظوری کا منتظر نہیں")
    _check(page)
    with site_runtime.transaction() as session:
        provider = site_runtime.provider(session)
        account = provider.accounts.by_pseudonym(pseudonym(officer, key=site_runtime.pseudonym_key))
        assert account is not None
        assert [g.role for g in provider.roles.of(account.id)] == ["locker.legal"]


@pytest.mark.parametrize("page", ["desktop", "phone"], indirect=True)
def test_register_a_client_whose_secret_is_shown_once_then_remove_it(
    page: Page, site_runtime: Runtime, nadra_file: Path, citizen: str
) -> None:
    _as_admin(page, site_runtime, nadra_file, citizen, "/admin/clients")
    expect(page.get_by_text("No clients are registered.")).to_be_visible()
    page.get_by_role("link", name="Register a client").click()
    _check(page)
    page.fill("#client_id", "e-transfer")
    page.fill("#name", "e-Transfer")
    page.fill("#redirect_uris", "http://etransfer.example/callback")
    page.select_option("#auth_method", "client_secret_basic")
    page.fill("#backchannel_logout_uri", "https://etransfer.example/bc")
    page.check("#require_par")
    page.get_by_role("button", name="Register client").click()
    expect(page.locator("#redirect_uris-error")).to_contain_text("use an https address")
    expect(page.locator("#redirect_uris")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#client_id")).to_have_value("e-transfer")
    expect(page.locator("#require_par")).to_be_checked()
    _check(page)
    page.fill("#redirect_uris", "https://etransfer.example/callback")
    page.get_by_role("button", name="Register client").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Client registered")
    secret = page.locator("#client-secret").inner_text()
    assert len(secret) >= 40
    assert page.content().count(secret) == 1
    _check(page)
    page.get_by_role("link", name="Back to the clients").click()
    expect(page.get_by_role("cell", name="e-transfer", exact=True)).to_be_visible()
    assert secret not in page.content()
    page.reload()
    assert secret not in page.content()
    page.get_by_role("link", name="Remove e-transfer").click()
    _check(page)
    page.get_by_role("button", name="Remove client").click()
    expect(page.get_by_role("status")).to_have_text("Client removed.")
    expect(page.get_by_text("No clients are registered.")).to_be_visible()


def _documents(runtime: Runtime, count: int) -> None:
    owner = "p:" + "C" * 43
    for n in range(count):
        with runtime.transaction() as session:
            runtime.locker(session).upload(
                owner=owner, doctype="other", title=f"Copy {n}",
                content=[b"%PDF-1.4 " + bytes([n]) * 64], content_type="application/pdf",
                who=Accessor(owner, "citizen", "owner"),
            )  # fmt: skip


@pytest.mark.parametrize("page", ["desktop", "phone"], indirect=True)
def test_rotate_keys_and_rewrap_with_progress(
    page: Page,
    site_runtime: Runtime,
    nadra_file: Path,
    citizen: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(admin_keys, "REWRAP_BATCH", 2)
    _documents(site_runtime, 7)
    _as_admin(page, site_runtime, nadra_file, citizen, "/admin/keys")
    _check(page)
    page.get_by_role("button", name="Rotate signing keys").click()
    expect(page.get_by_role("status")).to_contain_text("New signing keys are in use")
    page.get_by_role("button", name="Rotate locker key").click()
    expect(page.get_by_role("status")).to_contain_text("A new locker key (KEK)")
    expect(page.get_by_role("cell", name="local:2")).to_be_visible()
    _check(page)
    page.get_by_role("button", name="Re-wrap every data key").click()
    page.wait_for_url("**/admin/keys/rewrap")
    # the script (from /static) follows the run and shows its result when it ends
    expect(page.locator(".verdict.ok")).to_have_text(
        "Done: every data key is under local:2.", timeout=20_000
    )
    bar = page.locator("#rewrap-bar")
    expect(bar).to_have_attribute("max", "7")
    expect(bar).to_have_attribute("value", "7")
    expect(page.locator("#rewrap-count")).to_contain_text("7 / 7")
    _check(page)


def test_the_progress_page_follows_a_running_rewrap(
    page: Page,
    site_runtime: Runtime,
    nadra_file: Path,
    citizen: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run held between batches: the page shows it running, its script moves the bar."""
    monkeypatch.setattr(admin_keys, "REWRAP_BATCH", 1)
    _documents(site_runtime, 3)
    site_runtime.keks.rotate()
    job = admin_keys.rewrap_job(site_runtime)
    import threading

    release = threading.Event()
    original = job._progress

    def held(runtime: Runtime, job_id: str, done: int, total: int) -> None:
        original(runtime, job_id, done, total)
        if done == 1:
            release.wait(20)

    monkeypatch.setattr(job, "_progress", held)
    _as_admin(page, site_runtime, nadra_file, citizen, "/admin/keys")
    page.get_by_role("button", name="Re-wrap every data key").click()
    page.wait_for_url("**/admin/keys/rewrap")
    expect(page.locator("#rewrap-done")).to_have_text("1")
    expect(page.get_by_text("Running…")).to_be_visible()
    _check(page)
    release.set()
    expect(page.locator(".verdict.ok")).to_be_visible(timeout=20_000)
    expect(page.locator("#rewrap-count")).to_contain_text("3 / 3")


@pytest.mark.parametrize("page", ["desktop", "phone"], indirect=True)
def test_sign_a_checkpoint_and_verify_the_log(
    page: Page, site_runtime: Runtime, nadra_file: Path, citizen: str
) -> None:
    _as_admin(page, site_runtime, nadra_file, citizen, "/admin/audit")
    _check(page)
    page.get_by_role("button", name="Sign a checkpoint now").click()
    expect(page.get_by_role("status")).to_have_text("Checkpoint signed.")
    with site_runtime.transaction() as session:
        size = site_runtime.audit_log(session).size()
    expect(page.locator("#log-size")).to_have_text(str(size))
    expect(page.locator("pre.note")).to_contain_text(f"\n{size}\n")
    page.get_by_role("button", name="Verify the log now").click()
    expect(page.locator("#verdict")).to_contain_text("The whole log verified")
    _check(page)


@pytest.mark.parametrize("page", ["desktop", "phone"], indirect=True)
def test_the_admin_pages_in_urdu(
    page: Page, site_runtime: Runtime, nadra_file: Path, citizen: str, officer: str
) -> None:
    _as_admin(page, site_runtime, nadra_file, citizen, "/admin")
    page.get_by_role("link", name="اردو").click()
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.get_by_role("heading", level=1)).to_have_text("انتظامیہ")
    _check(page)
    for path in ("/admin/departments", "/admin/clients", "/admin/clients/new", "/admin/keys",
                 "/admin/keys/rewrap", "/admin/audit", "/admin/officers"):  # fmt: skip
        page.goto(path)
        expect(page.locator("html")).to_have_attribute("lang", "ur")
        _check(page)
    page.fill("#cnic", "35202-123")
    page.locator("main form button[type=submit]").click()
    expect(page.locator("#cnic-error")).to_contain_text("13 ہندسوں")
    _check(page)
    page.fill("#cnic", officer)
    page.locator("main form button[type=submit]").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("کے کردار")
    page.select_option("#department", DEPARTMENT)
    page.locator("main form:has(#role) button[type=submit]").click()
    expect(page.locator("#role-error")).to_contain_text("ایسا کوئی کردار نہیں")
    _check(page)


@pytest.mark.parametrize("page", ["desktop", "phone"], indirect=True)
def test_an_auditor_reads_and_verifies_but_cannot_sign(
    page: Page, site_runtime: Runtime, citizen: str
) -> None:
    _grant(site_runtime, citizen, "audit.reader")
    sign_in(page, citizen)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Administration").click()
    expect(page.get_by_role("link", name="Departments")).to_have_count(0)
    page.get_by_role("link", name="Audit checkpoints").first.click()
    expect(page.get_by_role("button", name="Sign a checkpoint now")).to_have_count(0)
    page.get_by_role("button", name="Verify the log now").click()
    expect(page.locator("#verdict")).to_contain_text("The whole log verified")
    _check(page)
    response = page.goto("/admin/officers")
    assert response is not None
    assert response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("This page is not for your account")


def test_a_citizen_without_a_role_gets_the_403_page(page: Page, citizen: str) -> None:
    sign_in(page, citizen)
    expect(page.get_by_role("link", name="Administration")).to_have_count(0)
    response = page.goto("/admin/keys")
    assert response is not None
    assert response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("This page is not for your account")
    expect(page.get_by_role("main")).to_contain_text("identity.admin")
    assert_accessible(page)
