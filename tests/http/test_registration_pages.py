"""Registration and password reset through the web pages, as a citizen does them."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from api.runtime import Runtime
from audit.row_seal import seal_unsealed
from identity.models import challenges, citizens
from identity.nadra import SCENARIOS, CitizenRecord, read_registry
from tests.http.oidc_kit import csrf_of, register_citizen

PASSWORD = "Basmati!Harvest2026"


@pytest.fixture
def record(oidc_runtime: Runtime) -> CitizenRecord:
    return read_registry(oidc_runtime.identity.nadra_file)[SCENARIOS["two_mobiles"]]


def _form(record: CitizenRecord, csrf: str, **changes: str) -> dict[str, str]:
    return {
        "csrf": csrf,
        "cnic": f"{record.cnic[:5]}-{record.cnic[5:12]}-{record.cnic[12]}",
        "full_name": record.full_name,
        "father_or_husband_name": record.father_or_husband_name,
        "date_of_birth": record.date_of_birth.isoformat(),
        "card_issue_date": record.card_issue_date.isoformat(),
        "mobile": "0" + record.mobile_numbers[-1].removeprefix("+92"),
        **changes,
    }


def _count(runtime: Runtime, table) -> int:
    with runtime.engine.connect() as c:
        return c.execute(select(func.count()).select_from(table)).scalar_one()


def test_register_then_sign_in(
    web: TestClient, oidc_runtime: Runtime, record: CitizenRecord
) -> None:
    page = web.get("/register")
    assert page.status_code == 200
    started = web.post("/register", data=_form(record, csrf_of(page.text)), follow_redirects=False)
    assert started.status_code == 303, started.text
    code_page = web.get(started.headers["location"])
    text = oidc_runtime.identity.sms.last_to(record.mobile_numbers[-1]).text
    code = re.search(r"\b(\d{6})\b", text).group(1)
    proved = web.post(
        "/register/code", data={"csrf": csrf_of(code_page.text), "code": code},
        follow_redirects=False,
    )  # fmt: skip
    assert proved.status_code == 303
    password_page = web.get(proved.headers["location"])
    weak = web.post(
        "/register/password",
        data={"csrf": csrf_of(password_page.text), "password": "password"},
    )
    assert weak.status_code == 422
    assert "add an upper-case letter" in weak.text
    done = web.post(
        "/register/password",
        data={"csrf": csrf_of(password_page.text), "password": PASSWORD},
    )
    assert done.status_code == 200
    assert "You can now sign in" in done.text
    login_page = web.get("/login")
    signed_in = web.post(
        "/login",
        data={"csrf": csrf_of(login_page.text), "cnic": record.cnic, "password": PASSWORD},
        follow_redirects=False,
    )
    assert signed_in.headers["location"] == "/account"
    account = web.get("/account")
    assert record.full_name in account.text


def test_a_nadra_outage_says_try_later_and_creates_nothing(
    web: TestClient, oidc_runtime: Runtime, record: CitizenRecord
) -> None:
    oidc_runtime.nadra.outage = True  # type: ignore[attr-defined]
    page = web.get("/register")
    response = web.post("/register", data=_form(record, csrf_of(page.text)))
    assert response.status_code == 503
    assert "try again later" in response.text
    assert _count(oidc_runtime, challenges) == 0
    assert _count(oidc_runtime, citizens) == 0
    assert oidc_runtime.identity.sms.messages() == []


@pytest.mark.parametrize(
    ("changes", "status", "words", "beside"),
    [
        ({"full_name": "Not The Name"}, 422, "do not match", None),
        ({"cnic": "35202-123"}, 400, "13 digits", "cnic"),
        ({"mobile": "12345"}, 400, "mobile number", "mobile"),
        ({"date_of_birth": "yesterday"}, 400, "for example 1990-01-31", "date_of_birth"),
        ({"full_name": "  "}, 400, "Fill this in", "full_name"),
    ],
)
def test_bad_details_are_explained(
    web: TestClient,
    record: CitizenRecord,
    changes: dict[str, str],
    status: int,
    words: str,
    beside: str | None,
) -> None:
    """Each refusal says what to do; one that concerns a field is shown beside it (tied to
    the input for screen readers), and what was typed is kept."""
    page = web.get("/register")
    response = web.post("/register", data=_form(record, csrf_of(page.text), **changes))
    assert response.status_code == status
    assert words in response.text
    if beside is not None:
        error = re.search(rf'<p class="field-error" id="{beside}-error">([^<]+)</p>', response.text)
        assert error is not None
        assert words in error.group(1)
        assert re.search(rf'id="{beside}"[^>]*aria-invalid="true"', response.text)
    assert record.full_name in response.text or "full_name" in changes


def test_an_expired_card_is_told_to_renew(web: TestClient, oidc_runtime: Runtime) -> None:
    expired = read_registry(oidc_runtime.identity.nadra_file)[SCENARIOS["expired_card"]]
    page = web.get("/register")
    response = web.post("/register", data=_form(expired, csrf_of(page.text)))
    assert response.status_code == 422
    assert "Renew it" in response.text


def test_only_the_sign_in_pages_may_post_onwards_to_an_e_service(web: TestClient) -> None:
    """A page's forms post to the service alone; the sign-in pages' forms end in a redirect to
    the e-service's registered URI, so theirs may go on to https origins, nothing else's may."""
    register = web.get("/register").headers["content-security-policy"]
    assert "form-action 'self';" in register
    assert "https:" not in register
    login = web.get("/login").headers["content-security-policy"]
    assert "form-action 'self' https:" in login
    assert "frame-ancestors 'none'" in login


def test_a_reset_password_signs_out_whoever_had_the_old_one(
    web: TestClient, oidc_runtime: Runtime, record: CitizenRecord
) -> None:
    register_citizen(oidc_runtime, record, PASSWORD)
    thief = TestClient(web.app, base_url="https://shanakht.test")
    login_page = thief.get("/login")
    thief.post(
        "/login",
        data={"csrf": csrf_of(login_page.text), "cnic": record.cnic, "password": PASSWORD},
        follow_redirects=False,
    )
    assert thief.get("/account", follow_redirects=False).status_code == 200
    page = web.get("/reset")
    started = web.post("/reset", data=_form(record, csrf_of(page.text)), follow_redirects=False)
    code_page = web.get(started.headers["location"])
    text = oidc_runtime.identity.sms.last_to(record.mobile_numbers[-1]).text
    code = re.search(r"\b(\d{6})\b", text).group(1)  # type: ignore[union-attr]
    proved = web.post(
        "/reset/code", data={"csrf": csrf_of(code_page.text), "code": code},
        follow_redirects=False,
    )  # fmt: skip
    password_page = web.get(proved.headers["location"])
    done = web.post(
        "/reset/password",
        data={
            "csrf": csrf_of(password_page.text),
            "password": "Mango#Season2027",
        },
    )
    assert "You can now sign in" in done.text
    assert thief.get("/account", follow_redirects=False).status_code == 303, "signed out"


def test_a_reset_is_told_to_the_registered_mobile_even_when_reset_from_another(
    web: TestClient, oidc_runtime: Runtime, record: CitizenRecord
) -> None:
    """The reset proves a second number of the CNIC's; the notice goes to the one registered
    with the account, which the holder still has if the reset was someone else's."""
    register_citizen(oidc_runtime, record, PASSWORD)  # registered with its first number
    registered, other = record.mobile_numbers[0], record.mobile_numbers[-1]
    assert registered != other
    page = web.get("/reset")
    started = web.post("/reset", data=_form(record, csrf_of(page.text)), follow_redirects=False)
    code_page = web.get(started.headers["location"])
    assert oidc_runtime.identity.sms.last_to(other) is not None
    text = oidc_runtime.identity.sms.last_to(other).text  # type: ignore[union-attr]
    code = re.search(r"\b(\d{6})\b", text).group(1)  # type: ignore[union-attr]
    proved = web.post(
        "/reset/code", data={"csrf": csrf_of(code_page.text), "code": code},
        follow_redirects=False,
    )  # fmt: skip
    before = len(oidc_runtime.identity.sms.messages())
    password_page = web.get(proved.headers["location"])
    assert len(oidc_runtime.identity.sms.messages()) == before, "showing a page sends nothing"
    done = web.post(
        "/reset/password",
        data={
            "csrf": csrf_of(password_page.text),
            "password": "Mango#Season2027",
        },
    )
    assert "You can now sign in" in done.text
    told = oidc_runtime.identity.sms.last_to(registered)
    assert told is not None
    assert re.match(
        r"Your Shanakht password was changed at \d{4}-\d{2}-\d{2} \d{2}:\d{2} PKT\.", told.text
    )
    assert record.cnic not in told.text


def test_the_registration_and_reset_pages_send_nothing_on_a_get(
    web: TestClient, oidc_runtime: Runtime, record: CitizenRecord
) -> None:
    """Only the POST of the card details (with its CSRF token) sends a code; every page of
    both flows can be opened, by a link from anywhere, without a text or a NADRA query."""
    register_citizen(oidc_runtime, record, PASSWORD)
    before = len(oidc_runtime.identity.sms.messages())
    for flow in ("register", "reset"):
        for path in (f"/{flow}", f"/{flow}/code", f"/{flow}/password"):
            assert web.get(path).status_code == 200, path
        forged = web.post(f"/{flow}", data=_form(record, "not-the-token"))
        assert forged.status_code == 403
    assert len(oidc_runtime.identity.sms.messages()) == before


def _code_sent(runtime: Runtime, record: CitizenRecord) -> str:
    sent = runtime.identity.sms.last_to(record.mobile_numbers[-1])
    assert sent is not None
    return re.search(r"\b(\d{6})\b", sent.text).group(1)  # type: ignore[union-attr]


def _ticket_cookie(response) -> tuple[str, str]:
    """The ticket cookie a response sets: (its value, the whole Set-Cookie line, lower-case)."""
    for line in response.headers.get_list("set-cookie"):
        name, _, rest = line.partition("=")
        if name == "__Secure-shanakht_ticket":
            return rest.split(";")[0], line.lower()
    raise AssertionError("no ticket cookie was set")


def test_no_url_carries_the_reset_ticket(
    web: TestClient, oidc_runtime: Runtime, record: CitizenRecord
) -> None:
    """The ticket that sets a password for 15 minutes is in a cookie kept to /reset
    (HttpOnly, SameSite=Strict), never in a redirect, a link or a page, and is forgotten once
    used."""
    register_citizen(oidc_runtime, record, PASSWORD)
    page = web.get("/reset")
    started = web.post("/reset", data=_form(record, csrf_of(page.text)), follow_redirects=False)
    assert started.headers["location"] == "/reset/code"
    ticket, cookie = _ticket_cookie(started)
    with oidc_runtime.engine.connect() as c:
        assert ticket in set(c.execute(select(challenges.c.id)).scalars())
    for attribute in ("httponly", "samesite=strict", "path=/reset", "secure", "max-age=1200"):
        assert attribute in cookie.split("; "), attribute
    code_page = web.get("/reset/code")
    code = _code_sent(oidc_runtime, record)
    proved = web.post(
        "/reset/code", data={"csrf": csrf_of(code_page.text), "code": code},
        follow_redirects=False,
    )  # fmt: skip
    assert proved.headers["location"] == "/reset/password"
    password_page = web.get("/reset/password")
    for response in (started, code_page, proved, password_page):
        assert ticket not in response.headers.get("location", "")
        assert ticket not in response.text
        assert "ticket=" not in response.text
    done = web.post(
        "/reset/password",
        data={"csrf": csrf_of(password_page.text), "password": "Mango#Season2027"},
    )
    assert "You can now sign in" in done.text
    _value, forgotten = _ticket_cookie(done)
    assert "max-age=0" in forgotten
    assert "path=/reset" in forgotten
    web.cookies.set("__Secure-shanakht_ticket", ticket, domain="shanakht.test", path="/reset")
    again = web.post(
        "/reset/password",
        data={"csrf": csrf_of(password_page.text), "password": "Mango#Season2028"},
    )
    assert again.status_code == 409, "a ticket works once"


def test_a_ticket_in_the_query_or_the_form_is_not_taken(
    web: TestClient, oidc_runtime: Runtime, record: CitizenRecord
) -> None:
    """Only the cookie carries the ticket: one pasted into a URL or a form opens nothing."""
    page = web.get("/register")
    started = web.post("/register", data=_form(record, csrf_of(page.text)), follow_redirects=False)
    ticket, _cookie = _ticket_cookie(started)
    web.cookies.clear(domain="shanakht.test", path="/register")
    code = _code_sent(oidc_runtime, record)
    csrf = csrf_of(web.get("/register").text)
    refused = web.post(
        f"/register/code?ticket={ticket}", data={"csrf": csrf, "ticket": ticket, "code": code}
    )
    assert refused.status_code == 410
    assert "Start again" in refused.text


def test_an_expired_password_is_changed_with_no_ticket_in_any_url(
    web: TestClient, oidc_runtime: Runtime, record: CitizenRecord
) -> None:
    """A sign-in with an expired password gets the change page; the ticket rides in the reset
    flow's cookie, the change works, and the citizen signs in with the new password."""
    citizen_id = register_citizen(oidc_runtime, record, PASSWORD)
    with oidc_runtime.transaction() as session:  # as if the service had set it 91 days ago
        session.execute(
            update(citizens)
            .where(citizens.c.id == citizen_id)
            .values(password_changed_at=oidc_runtime.clock() - timedelta(days=91), mac=None)
        )
        seal_unsealed(session, oidc_runtime.row_seal, [citizens])
    page = web.get("/login")
    expired = web.post(
        "/login",
        data={"csrf": csrf_of(page.text), "cnic": record.cnic, "password": PASSWORD},
        follow_redirects=False,
    )
    assert expired.status_code == 200
    assert "Your password has expired" in expired.text
    ticket, cookie = _ticket_cookie(expired)
    assert "path=/reset" in cookie
    assert "samesite=strict" in cookie
    assert "httponly" in cookie
    assert ticket not in expired.text
    action = re.search(r'<form method="post" action="([^"]+)"', expired.text).group(1)  # type: ignore[union-attr]
    assert "ticket" not in action
    changed = web.post(
        action.replace("&amp;", "&"),
        data={"csrf": csrf_of(expired.text), "password": "Mango#Season2027"},
        follow_redirects=False,
    )
    assert changed.status_code == 303
    assert ticket not in changed.headers["location"]
    assert changed.headers["location"].startswith("/login")
    signed_in = web.post(
        "/login",
        data={"csrf": csrf_of(page.text), "cnic": record.cnic, "password": "Mango#Season2027"},
        follow_redirects=False,
    )
    assert signed_in.headers["location"] == "/account"
