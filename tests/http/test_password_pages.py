"""The pages that set or type a password run this service's password.js (ASVS 2.1.8, 2.1.12)
under a policy that still forbids inline script and style: the page carries no script, style
or event handler of its own, only `<script src>` from /static, and the words the script shows
arrive drawn in the reader's language inside an inert <template>."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from api.i18n import translate
from api.runtime import Runtime
from identity.nadra import SCENARIOS, CitizenRecord, read_registry
from tests.http.oidc_kit import PASSWORD, csrf_of, details_form, register_citizen

INLINE_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)


@pytest.fixture
def record(oidc_runtime: Runtime) -> CitizenRecord:
    return read_registry(oidc_runtime.identity.nadra_file)[SCENARIOS["two_mobiles"]]


def _new_password_page(web: TestClient, runtime: Runtime, record: CitizenRecord, flow: str) -> str:
    """/register/password or /reset/password, reached as a citizen reaches it."""
    page = web.get(f"/{flow}")
    started = web.post(
        f"/{flow}", data=details_form(record, csrf_of(page.text)), follow_redirects=False
    )
    code_page = web.get(started.headers["location"])
    sms = runtime.identity.sms.last_to(record.mobile_numbers[-1])
    assert sms is not None
    code = re.search(r"\b(\d{6})\b", sms.text).group(1)  # type: ignore[union-attr]
    proved = web.post(
        f"/{flow}/code", data={"csrf": csrf_of(code_page.text), "code": code},
        follow_redirects=False,
    )  # fmt: skip
    assert proved.headers["location"] == f"/{flow}/password"
    return web.get(proved.headers["location"]).text


def _login(web: TestClient) -> str:
    return web.get("/login").text


def _register(web: TestClient, runtime: Runtime, record: CitizenRecord) -> str:
    return _new_password_page(web, runtime, record, "register")


def _reset(web: TestClient, runtime: Runtime, record: CitizenRecord) -> str:
    register_citizen(runtime, record)
    return _new_password_page(web, runtime, record, "reset")


def _change(web: TestClient, runtime: Runtime, record: CitizenRecord) -> str:
    register_citizen(runtime, record)
    login = web.get("/login")
    data = {"csrf": csrf_of(login.text), "cnic": record.cnic, "password": PASSWORD}
    web.post("/login", data=data, follow_redirects=False)
    return web.get("/account/password").text


PAGES: dict[str, Callable[..., str]] = {
    "login": lambda web, runtime, record: _login(web),
    "register": _register,
    "reset": _reset,
    "change": _change,
}


def _policy(web: TestClient, path: str) -> str:
    return web.get(path).headers["content-security-policy"]


@pytest.mark.parametrize("which", PAGES)
def test_the_password_pages_load_only_the_service_s_own_scripts_and_nothing_inline(
    web: TestClient, oidc_runtime: Runtime, record: CitizenRecord, which: str
) -> None:
    html = PAGES[which](web, oidc_runtime, record)
    assert '<script src="/static/password.js" defer></script>' in html
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts == ['<script src="/static/password.js" defer>'], "no inline script"
    assert "<style" not in html, "no inline style"
    assert " style=" not in html, "no style attribute"
    assert not INLINE_HANDLER.search(html), "no event handler attribute"
    assert '<template id="password-aids">' in html
    assert web.get("/static/password.js").status_code == 200


@pytest.mark.parametrize("path", ["/login", "/account/password"])
def test_the_password_pages_allow_scripts_of_this_service_and_nothing_more(
    web: TestClient, oidc_runtime: Runtime, record: CitizenRecord, path: str
) -> None:
    """script-src 'self' only: no inline script ('unsafe-inline'), no eval, no other host; and
    no connect-src, so neither script can send what is typed anywhere, even to the service."""
    if path != "/login":
        _change(web, oidc_runtime, record)
    policy = _policy(web, path)
    assert "script-src 'self'" in policy
    assert "default-src 'none'" in policy
    for loosening in ("unsafe-inline", "unsafe-eval", "connect-src", "strict-dynamic", "nonce-"):
        assert loosening not in policy, loosening
    assert "script-src" not in _policy(web, "/register"), "a page without a password runs none"


def test_only_the_new_password_field_gets_the_meter_and_every_field_the_button(
    web: TestClient, oidc_runtime: Runtime, record: CitizenRecord
) -> None:
    """The script keys on autocomplete="new-password" and name="password": the change page has
    three password fields, one of them the new password; the login page has no meter."""
    assert '<div class="password-meter"' not in _login(web)
    html = _change(web, oidc_runtime, record)
    assert '<div class="password-meter"' in html
    fields = re.findall(r'<input type="password" id="(\w+)" name="\w+"[^>]*>', html)
    assert fields == ["current", "password", "confirm"]
    assert re.search(r'id="password" name="password"[^>]*autocomplete="new-password"', html)


def test_the_script_s_words_arrive_in_urdu(
    web: TestClient, oidc_runtime: Runtime, record: CitizenRecord
) -> None:
    web.get("/lang/ur?next=/login")
    html = _register(web, oidc_runtime, record)
    for english in ("Show password", "Hide password", "Still needed:", "add a digit"):
        urdu = translate("ur", english)
        assert urdu != english
        assert urdu in html, english
    assert 'data-separator="، "' in html
