"""In Urdu, every page speaks Urdu: a representative page of each part of the portal, drawn in
a real browser, shows none of the English that the catalogue translates. Only what is meant to
stay as written is left out: text marked left-to-right (numbers, CNICs, addresses), code, and
the values in form fields."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page

from api import i18n
from api.routes.officer_common import ISSUER
from api.runtime import Runtime
from identity.nadra import SCENARIOS, read_registry
from tests.browser.test_admin_pages import DEPARTMENT, _as_admin, _grant, _proposed_by_another
from tests.http.oidc_kit import register_citizen

# The visible words of the page, less what is meant to stay as written.
VISIBLE_WORDS = """() => {
  for (const e of document.querySelectorAll(
      '[dir=ltr], code, pre, kbd, samp, input, textarea, select, [lang]:not([lang=ur])')) {
    e.remove();
  }
  return document.body.innerText;
}"""
PLACEHOLDER = re.compile(r"%\([a-z_]+\)s")


def _pattern(message: str) -> re.Pattern[str]:
    """The English as it shows on a page: placeholders stand for anything, whole words only."""
    pieces = [re.escape(piece) for piece in PLACEHOLDER.split(message)]
    return re.compile(r"(?<![A-Za-z])" + ".+?".join(pieces) + r"(?![A-Za-z])")


def _translated() -> dict[str, re.Pattern[str]]:
    """Every English message whose Urdu differs: none of them may show on an Urdu page."""
    return {
        english: _pattern(english)
        for english, urdu in i18n.catalogue("ur").items()
        if urdu != english and re.search(r"[a-z]", english)
    }


def _english_on(page: Page, path: str, translated: dict[str, re.Pattern[str]]) -> list[str]:
    page.goto(path)
    assert page.locator("html").get_attribute("lang") == "ur", path
    words = page.evaluate(VISIBLE_WORDS)
    return sorted(english for english, pattern in translated.items() if pattern.search(words))


def test_every_part_of_the_portal_is_in_urdu(
    page: Page, site_runtime: Runtime, nadra_file: Path, citizen: str
) -> None:
    translated = _translated()
    found: dict[str, list[str]] = {}
    page.goto("/lang/ur?next=/")
    for path in ("/", "/login", "/register", "/verify"):
        found[path] = _english_on(page, path, translated)
    _grant(site_runtime, citizen, ISSUER)  # _as_admin adds identity.admin
    _as_admin(page, site_runtime, nadra_file, citizen, "/admin")
    officer = read_registry(nadra_file)[SCENARIOS["active_male"]]
    register_citizen(site_runtime, officer)
    _proposed_by_another(site_runtime, nadra_file, officer.cnic)  # for /admin/proposals to show
    for path in (
        "/account",
        "/account/password",
        "/documents",
        "/requests",
        "/access",
        "/nominees",
        "/officer",
        f"/officer/{DEPARTMENT}/issue",
        f"/officer/{DEPARTMENT}/requests",
        f"/officer/{DEPARTMENT}/requests/new",
        "/admin",
        "/admin/departments",
        "/admin/officers",
        "/admin/proposals",
        "/admin/clients",
        "/admin/keys",
    ):
        found[path] = _english_on(page, path, translated)
    left = {path: words for path, words in found.items() if words}
    assert left == {}, "English on Urdu pages:\n" + "\n".join(
        f"{path}: {words}" for path, words in left.items()
    )


def test_the_missing_page_is_in_urdu(page: Page) -> None:
    page.goto("/lang/ur?next=/")
    missing = page.goto("/nope")
    assert missing is not None
    assert missing.status == 404
    assert page.locator("html").get_attribute("lang") == "ur"
    words = page.evaluate(VISIBLE_WORDS)
    assert [e for e, p in _translated().items() if p.search(words)] == []
