"""The demo's three journeys, walked over real HTTP by a browser made of httpx2 and a cookie jar.

Nothing here knows Shanakht's code: the browser follows redirects, fills forms by their field
names (never by their wording, which is translated), reads one-time codes the way a person
reads their phone (a callback the demo gives it), and a verifier at the school gate scans the
printed order (the PDF's page rendered by PDFium, the QR read by zxing-cpp).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from io import BytesIO
from typing import Any
from urllib.parse import urljoin

import httpx2
import pyotp
import pypdfium2
import zxingcpp

MAX_REDIRECTS = 12


class StepFailed(Exception):
    """A step of a journey did not do what it should."""


@dataclass
class Person:
    role: str
    name: str
    cnic: str  # as printed on the card, 12345-1234567-1
    password: str
    mobile: str
    totp_secret: str | None = None


@dataclass
class Urls:
    shanakht: str
    etransfer: str
    domicile: str


class Steps:
    """Prints each step as it runs and its result; remembers the first that failed."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo
        self.passed = 0
        self.failed: str | None = None

    def journey(self, title: str) -> None:
        self.echo(f"\n== {title}")

    @contextmanager
    def step(self, title: str) -> Iterator[list[str]]:
        """The block appends what it found to the list it gets; an exception fails the step."""
        found: list[str] = []
        self.echo(f"  - {title} ...")
        try:
            yield found
        except Exception as exc:
            self.failed = title
            self.echo(f"    FAILED: {type(exc).__name__}: {exc}")
            raise StepFailed(title) from exc
        self.passed += 1
        for line in found or ["ok"]:
            self.echo(f"    ok: {line}")


@dataclass
class Form:
    action: str
    method: str
    fields: list[tuple[str, str, str]] = field(default_factory=list)  # name, value, tag/type

    def names(self) -> set[str]:
        return {name for name, _value, _kind in self.fields}


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", ""), a.get("method", "get").lower()))
        elif self.forms and tag in ("input", "button", "textarea", "select") and a.get("name"):
            kind = "button" if tag == "button" else a.get("type", "text" if tag == "input" else tag)
            self.forms[-1].fields.append((a["name"], a.get("value", ""), kind))


def forms_of(html: str) -> list[Form]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


class Browser:
    """One person's browser: a cookie jar, redirects followed, and a trail of where it went."""

    def __init__(self, who: Person) -> None:
        self.who = who
        self.http = httpx2.Client(follow_redirects=False, trust_env=False, timeout=60)
        self.trail: list[str] = []

    def close(self) -> None:
        self.http.close()

    def _follow(self, response: httpx2.Response) -> httpx2.Response:
        for _ in range(MAX_REDIRECTS):
            self.trail.append(str(response.url))
            if response.status_code not in (301, 302, 303, 307, 308):
                return response
            target = urljoin(str(response.url), response.headers["location"])
            response = self.http.get(target)
        raise StepFailed("too many redirects")

    def get(self, url: str) -> httpx2.Response:
        return self._follow(self.http.get(url))

    def submit(
        self,
        page: httpx2.Response,
        having: str,
        values: dict[str, str] | None = None,
        *,
        action: str | None = None,
        button: str | None = None,
    ) -> httpx2.Response:
        """Fill and send the form on `page` that has a field named `having` (and whose action
        contains `action`): hidden fields as they are, `values` over them, and the submit
        button named `button` (name=value)."""
        candidates = [
            f
            for f in forms_of(page.text)
            if having in f.names() and (action is None or action in f.action)
        ]
        if not candidates:
            raise StepFailed(f"no form with a {having!r} field at {page.url}")
        form = candidates[0]
        data = {n: v for n, v, kind in form.fields if kind not in ("button", "submit")}
        if button is not None:
            name, _, value = button.partition("=")
            data[name] = value
        data.update(values or {})
        target = urljoin(str(page.url), form.action or str(page.url))
        return self._follow(self.http.post(target, data=data))

    def at(self, page: httpx2.Response, base: str) -> bool:
        return str(page.url).startswith(base)


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise StepFailed(message)


def _has_password_form(page: httpx2.Response) -> bool:
    return any("password" in f.names() for f in forms_of(page.text))


def _has_code_form(page: httpx2.Response) -> bool:
    return any("code" in f.names() for f in forms_of(page.text))


def _sms_to_send(page: httpx2.Response) -> bool:
    """The second-factor page before any code went: a "Send me a code" button, no code box
    (a text goes only when the citizen asks, never on a page load)."""
    return not _has_code_form(page) and any(
        "/second-factor/send" in f.action for f in forms_of(page.text)
    )


def _has_consent_form(page: httpx2.Response) -> bool:
    return any("decision" in f.names() for f in forms_of(page.text))


def sign_in(
    browser: Browser,
    start: str,
    urls: Urls,
    *,
    sms_code: Callable[[str], str],
    seen: list[str] | None = None,
) -> httpx2.Response:
    """From an e-service's sign-in link through whatever Shanakht asks (password, second factor,
    consent) back to the e-service. `seen` collects what was asked: password, sms, app,
    consent."""
    asked = seen if seen is not None else []
    page = browser.get(start)
    for _ in range(8):
        if not browser.at(page, urls.shanakht):
            return page
        _expect(page.status_code == 200, f"Shanakht answered {page.status_code} at {page.url}")
        if _has_password_form(page):
            asked.append("password")
            page = browser.submit(
                page, "password", {"cnic": browser.who.cnic, "password": browser.who.password}
            )
        elif _sms_to_send(page):
            page = browser.submit(page, "csrf", action="/second-factor/send")
        elif _has_code_form(page):
            ticket = next(
                (v for f in forms_of(page.text) for n, v, _k in f.fields if n == "ticket"), ""
            )
            if ticket:  # an SMS code was sent to the registered mobile
                asked.append("sms")
                code = sms_code(browser.who.mobile)
            else:  # the authenticator app
                asked.append("app")
                _expect(browser.who.totp_secret is not None, "no authenticator app to read")
                code = pyotp.TOTP(str(browser.who.totp_secret)).now()
            page = browser.submit(page, "code", {"code": code})
        elif _has_consent_form(page):
            asked.append("consent")
            page = browser.submit(page, "decision", button="decision=allow")
        else:
            raise StepFailed(f"an unexpected Shanakht page at {page.url}: {page.text[:200]}")
    raise StepFailed("the sign-in did not come back to the e-service")


def _notice_or_error(page: httpx2.Response) -> str:
    found = re.search(r'class="(ok|error|notice)"[^>]*>([^<]*)<', page.text)
    return html.unescape(found.group(2).strip()) if found else ""


def qr_from_pdf(pdf: bytes) -> tuple[str, bytes]:
    """The QR's text on the PDF's first page and that page as a PNG, as a verifier with a
    scanner would have them."""
    document = pypdfium2.PdfDocument(pdf)
    try:
        document.init_forms()  # the QR is the signature field's appearance
        image = document[0].render(scale=200 / 72, may_draw_forms=True).to_pil()
    finally:
        document.close()
    found = [r for r in zxingcpp.read_barcodes(image) if r.format == zxingcpp.BarcodeFormat.QRCode]
    if not found:
        raise StepFailed("no QR code on the order's first page")
    png = BytesIO()
    image.save(png, "PNG")
    return str(found[0].text), png.getvalue()


@dataclass
class Cast:
    teacher: Person
    approver: Person
    officer: Person


def run_journeys(
    urls: Urls, cast: Cast, sms_code: Callable[[str], str], steps: Steps
) -> dict[str, Any]:
    """All three journeys; StepFailed (after the step is printed) at the first failure."""
    teacher = Browser(cast.teacher)
    try:
        _single_sign_on(urls, teacher, sms_code, steps)
        _once_only(urls, teacher, sms_code, steps)
        return _signed_order(urls, cast, teacher, sms_code, steps)
    finally:
        teacher.close()


def _single_sign_on(
    urls: Urls, teacher: Browser, sms_code: Callable[[str], str], steps: Steps
) -> None:
    steps.journey("(a) Single sign-on across both e-services")
    who = teacher.who
    with steps.step(f"{who.name} (a teacher) signs in to e-Transfer with Shanakht") as found:
        asked: list[str] = []
        page = sign_in(teacher, urls.etransfer + "/login", urls, sms_code=sms_code, seen=asked)
        _expect(teacher.at(page, urls.etransfer), f"ended at {page.url}")
        _expect(who.cnic in page.text, "e-Transfer does not show the verified CNIC")
        found.append(f"Shanakht asked for: {', '.join(asked)}")
        found.append(f"e-Transfer shows {who.name}, CNIC {who.cnic}, from the ID token")
    with steps.step("she applies for a transfer") as found:
        page = teacher.submit(
            page,
            "to_school",
            {
                "post": "SST (Science)",
                "from_school": "Govt. Girls High School No. 1, Model Town, Lahore",
                "to_school": "Govt. Girls Higher Secondary School, Shahdara, Lahore",
                "reason": "To teach nearer home after my family moved to Shahdara.",
            },
        )
        _expect(page.status_code == 200, f"e-Transfer answered {page.status_code}")
        found.append(_notice_or_error(page))
    with steps.step("she opens Domicile in the same browser: no password asked") as found:
        asked = []
        page = sign_in(teacher, urls.domicile + "/login", urls, sms_code=sms_code, seen=asked)
        _expect(teacher.at(page, urls.domicile), f"ended at {page.url}")
        _expect("password" not in asked, "Shanakht asked for the password again")
        _expect(who.cnic in page.text, "Domicile does not show the verified CNIC")
        found.append(f"Shanakht asked only for: {', '.join(asked) or 'nothing'}")
        found.append("Domicile shows her verified name, CNIC, date of birth and address")


def _once_only(urls: Urls, teacher: Browser, sms_code: Callable[[str], str], steps: Steps) -> None:
    steps.journey("(b) Once-only: Domicile fetches the birth certificate under her consent")
    page = teacher.get(urls.domicile + "/")
    with steps.step(
        "she applies for domicile; Domicile asks Shanakht for her birth certificate"
    ) as found:
        page = teacher.submit(page, "district", {"district": "Lahore"})
        _expect(page.status_code == 200, f"Domicile answered {page.status_code}: {page.text[:200]}")
        _expect("waiting for your approval" in page.text, "no request was filed")
        found.append(_notice_or_error(page))
    with steps.step("she opens her requests in Shanakht: who asks, for what and why") as found:
        inbox = teacher.get(urls.shanakht + "/requests")
        _expect(teacher.at(inbox, urls.shanakht), f"ended at {inbox.url}")
        _expect(inbox.status_code == 200, f"Shanakht answered {inbox.status_code}")
        _expect("Domicile" in inbox.text and "Birth certificate" in inbox.text, "no request")
        approve = re.search(r'href="(/requests/[^"/]+/approve)"', inbox.text)
        if approve is None:
            raise StepFailed("the request has no Approve link")
        found.append("the request names Domicile, the birth certificate and the purpose")
    with steps.step("she approves it (approving needs a second factor: an SMS code)") as found:
        page = teacher.get(urls.shanakht + approve.group(1))
        asked: list[str] = []
        if _sms_to_send(page):
            page = teacher.submit(page, "csrf", action="/second-factor/send")
        if _has_code_form(page):
            asked.append("sms")
            page = teacher.submit(page, "code", {"code": sms_code(teacher.who.mobile)})
        page = teacher.submit(page, "csrf", action="/approve")
        _expect(page.status_code == 200, f"{page.status_code}: {_notice_or_error(page)}")
        _expect('id="consent-' in page.text, "no consent after approving")
        found.append(f"Shanakht asked for: {', '.join(asked) or 'nothing more'}")
        found.append(_notice_or_error(page))
    with steps.step("Domicile fetches the certificate from her locker under the consent") as found:
        page = teacher.get(urls.domicile + "/")
        page = teacher.submit(page, "csrf", action="/check")
        _expect("birth certificate received" in page.text, _notice_or_error(page))
        shown = teacher.get(urls.domicile + "/applications/1/birth-certificate")
        _expect(shown.content.startswith(b"%PDF-"), "the certificate is not the PDF issued")
        note = re.search(r"Birth certificate[^<]*fetched under consent [\w-]+", page.text)
        found.append(note.group(0) if note else "received")


def _signed_order(
    urls: Urls, cast: Cast, teacher: Browser, sms_code: Callable[[str], str], steps: Steps
) -> dict[str, Any]:
    steps.journey("(c) A signed transfer order, verified from its QR image")
    approver, officer = Browser(cast.approver), Browser(cast.officer)
    try:
        with steps.step(
            f"{cast.approver.name} (department approver) signs in and approves the transfer"
        ) as found:
            page = sign_in(approver, urls.etransfer + "/login", urls, sms_code=sms_code)
            page = approver.submit(page, "csrf", action="/approve")
            _expect("approved" in _notice_or_error(page), _notice_or_error(page))
            found.append(_notice_or_error(page))
        with steps.step(
            f"{cast.officer.name} (signing officer) signs in with an authenticator code"
        ) as found:
            asked: list[str] = []
            page = sign_in(
                officer, urls.etransfer + "/login?as=officer", urls, sms_code=sms_code, seen=asked
            )
            _expect("app" in asked, "no second factor was asked for")
            _expect("/sign" in page.text, "e-Transfer does not let the officer sign")
            found.append(f"Shanakht asked for: {', '.join(asked)}")
        with steps.step("the officer signs the order; Shanakht puts it in her locker") as found:
            page = officer.submit(page, "csrf", action="/sign")
            notice = _notice_or_error(page)
            _expect("in the teacher's Shanakht locker" in notice, notice)
            found.append(notice)
        with steps.step("her Shanakht locker lists the signed order, its seal verified") as found:
            locker = teacher.get(urls.shanakht + "/documents")
            items = re.findall(r"<li>(.*?)</li>", locker.text, re.S)
            order = next((i for i in items if "Transfer order" in i), None)
            _expect(order is not None, "not in the locker")
            _expect(order is not None and 'class="badge ok">Verified<' in order, "not verified")
            found.append("Transfer order, issued by the School Education Department, verified")
        with steps.step("she downloads the order; a verifier scans its QR code") as found:
            home = teacher.get(urls.etransfer + "/")
            link = re.search(r'href="(/applications/\d+/order\.pdf)"', home.text)
            if link is None:
                raise StepFailed("no order to download")
            pdf = teacher.get(urls.etransfer + link.group(1)).content
            text, png = qr_from_pdf(pdf)
            _expect(text.startswith("SHK1:"), "not a Shanakht QR code")
            found.append(f"QR code read from the rendered page: {len(text)} characters")
        verifier = httpx2.Client(trust_env=False, timeout=60)
        try:
            with steps.step("Shanakht's verifier on the QR image says: authentic") as found:
                answer = verifier.post(
                    urls.shanakht + "/signing/verify",
                    files={"file": ("order.png", png, "image/png")},
                ).json()
                _expect(answer.get("outcome") == "authentic", f"verdict {answer}")
                fields = answer["fields"]
                _expect(fields.get("nm") == teacher.who.name, f"the order names {fields}")
                found.append(
                    f"order {fields.get('no')}: {fields.get('nm')}, "
                    f"to {fields.get('to')}; signed by {answer['signer']['subject']}"
                )
            with steps.step("and on the PDF itself: authentic, signature intact") as found:
                answer = verifier.post(
                    urls.shanakht + "/signing/verify",
                    files={"file": ("order.pdf", pdf, "application/pdf")},
                ).json()
                _expect(answer.get("outcome") == "authentic", f"verdict {answer}")
                _expect(answer.get("pdf", {}).get("signature_valid") is True, "PDF signature")
                found.append("the QR's hash matches the PDF and its PAdES signature holds")
            with steps.step("a changed byte in the PDF is caught") as found:
                at = pdf.index(b"stream\n", pdf.index(b"/Contents")) + 20
                changed = pdf[:at] + bytes([pdf[at] ^ 0x01]) + pdf[at + 1 :]
                answer = verifier.post(
                    urls.shanakht + "/signing/verify",
                    files={"file": ("changed.pdf", changed, "application/pdf")},
                ).json()
                _expect(answer.get("outcome") == "altered", f"verdict {answer}")
                found.append("verdict: altered")
        finally:
            verifier.close()
        return {"qr": text}
    finally:
        approver.close()
        officer.close()
