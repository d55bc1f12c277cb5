"""Pages in a real browser: Debian's Chromium driven by Playwright against the app on a real
HTTP server, with axe-core judging accessibility.

Playwright never downloads a browser here: it launches /usr/bin/chromium. Each test gets a
fresh browser context (cookies, viewport); a failing test leaves a screenshot and the page's
HTML in tests/browser/artifacts/.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, sync_playwright

from api.migrate import prepare
from api.runtime import Runtime, open_runtime
from api.settings import Settings
from identity.nadra import SCENARIOS, read_registry, write_registry
from tests.http.conftest import RecordingNotifier
from tests.http.live_server import served_on
from tests.http.oidc_kit import PASSWORD, register_citizen
from tests.s3_server import free_port

CHROMIUM = "/usr/bin/chromium"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
ARTIFACTS = Path(__file__).parent / "artifacts"
PHONE: ViewportSize = {"width": 360, "height": 740}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
# WCAG 2.1 A and AA; "serious" and "critical" findings fail a test.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = {"serious", "critical"}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    item.stash.setdefault(_FAILED, False)
    if report.when == "call" and report.failed:
        item.stash[_FAILED] = True
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """One browser per test module, not per session: Playwright's synchronous API keeps an
    event loop marked running on this thread while it is started, and code that must not run
    inside a loop (pyHanko's, see signing.documents.cms) would refuse every later test."""
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"the browser tests need Debian's Chromium at {CHROMIUM} (make tools)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield browser
        browser.close()


@pytest.fixture
def site(tmp_path: Path, database_url: str, nadra_file: Path) -> Iterator[tuple[str, Runtime]]:
    """The service on http://127.0.0.1:<port>, configured with that very address as its public
    URL (so its links, issuer and cookies are what a browser there expects)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(
        data_dir=tmp_path / "var",
        database_url=database_url,
        audit_checkpoint_interval=0,
        public_url=base,
    )
    runtime = open_runtime(settings)
    runtime.identity.nadra_file = nadra_file
    runtime.identity.notifier = RecordingNotifier()
    prepare(runtime)
    with served_on(runtime, port):
        yield base, runtime
    runtime.close()


@pytest.fixture
def base_url(site: tuple[str, Runtime]) -> str:
    return site[0]


@pytest.fixture
def site_runtime(site: tuple[str, Runtime]) -> Runtime:
    return site[1]


def _context(chromium: Browser, base_url: str, viewport: ViewportSize, lang: str) -> BrowserContext:
    return chromium.new_context(base_url=base_url, viewport=viewport, locale=lang)


@pytest.fixture(params=["desktop"])
def page(request: pytest.FixtureRequest, chromium: Browser, base_url: str) -> Iterator[Page]:
    """A fresh browser tab; `@pytest.mark.parametrize("page", ["phone"], indirect=True)` for
    a 360 px wide phone."""
    viewport = PHONE if request.param == "phone" else DESKTOP
    context = _context(chromium, base_url, viewport, "en-GB")
    tab = context.new_page()
    outside: list[str] = []
    tab.on(
        "request",
        lambda r: (
            outside.append(r.url) if not r.url.startswith((base_url, "data:", "blob:")) else None
        ),
    )
    yield tab
    if request.node.stash.get(_FAILED, False):
        ARTIFACTS.mkdir(exist_ok=True)
        name = request.node.nodeid.replace("/", "_").replace("::", "__")
        tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        (ARTIFACTS / f"{name}.html").write_text(tab.content())
    context.close()
    assert outside == [], f"the page loaded resources from outside the service: {outside}"


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical WCAG 2.1 AA findings on the page as it stands."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run python3 tools/web_assets.py (make does)")
    # Evaluated over the DevTools protocol, which the page's CSP (rightly) does not allow a
    # <script> tag to do: the page is tested under the policy it really has.
    page.evaluate(AXE.read_text() + "\n;true")
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", AXE_TAGS
    )
    return [v for v in result["violations"] if v.get("impact") in BLOCKING]


def assert_accessible(page: Page) -> None:
    found = axe_violations(page)
    summary = [
        {"id": v["id"], "impact": v["impact"], "help": v["help"],
         "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in found
    ]  # fmt: skip
    assert found == [], json.dumps(summary, indent=1)


@pytest.fixture(scope="session")
def nadra_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("nadra") / "registry.jsonl"
    write_registry(path)
    return path


@pytest.fixture
def citizen(site_runtime: Runtime, nadra_file: Path) -> str:
    """A registered citizen's CNIC (password: PASSWORD)."""
    record = read_registry(nadra_file)[SCENARIOS["active_female"]]
    register_citizen(site_runtime, record)
    return record.cnic


def sign_in(page: Page, cnic: str, password: str = PASSWORD, then: str = "/account") -> None:
    """Sign in through the login page, as a citizen would, and land on `then`."""
    page.goto(f"/login?next={then}")
    page.fill("#cnic", cnic)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{then}")
