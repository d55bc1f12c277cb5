"""The citizen's requests page and "who saw my data" page through the app: who may use them,
what a second factor guards, what a forged or mistyped form gets, and that the page's actions
are the exchange's own (audited, refused the same way). The helpers here set the scene through
the domain, as a department's system would, and the browser tests reuse them."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.denials import DECIDED_ONCE
from api.routes.exchange import _legal, exchange_service
from api.runtime import Runtime
from audit import pseudonym
from identity.nadra import SCENARIOS, CitizenRecord, read_registry
from identity.oidc.clients import SERVICE
from tests.http.oidc_kit import (
    HOSTILE,
    PASSWORD,
    assert_escaped,
    csrf_of,
    press_send,
    register_citizen,
    register_client,
)
from tests.http.test_exchange import _issue, _log

DEPARTMENT = "gc-admissions"
DEPARTMENT_NAME = f"The {DEPARTMENT} service"  # what `register_client` names it
PURPOSE = "Admission to Government College, Lahore: proof of date of birth"
LEGAL_REFERENCE = "CrPC section 94"


# -- the scene, through the domain -------------------------------------------------------------


def owner_of(runtime: Runtime, cnic: str) -> str:
    return pseudonym(cnic, key=runtime.pseudonym_key)


def department(runtime: Runtime, client_id: str = DEPARTMENT) -> str:
    """A department's system, allowed to ask for documents; its client id."""
    register_client(runtime, client_id, kind=SERVICE, secret=True, scopes=("locker.request",))
    return client_id


def birth_certificate(runtime: Runtime, cnic: str, doc_id: str = "BC-2026-0001") -> str:
    """A birth certificate issued into the citizen's locker by the LG&CD department; its id."""
    return _issue(runtime, owner_of(runtime, cnic), "birth", "lgcd", doc_id)


def file_request(
    runtime: Runtime,
    cnic: str,
    client_id: str = DEPARTMENT,
    *,
    purpose: str = PURPOSE,
    fetch_limit: int = 3,
    requester_name: str | None = None,
) -> str:
    """A request for the citizen's birth certificate, filed as the department's system would;
    its id."""
    with runtime.transaction() as session:
        filed = exchange_service(runtime, session).file_request(
            requester=client_id, requester_name=requester_name or f"The {client_id} service",
            owner=owner_of(runtime, cnic), doctypes=["birth"], purpose_code="edu.admission",
            purpose_text=purpose, data_life_days=30,
            valid_until=runtime.clock() + timedelta(days=7), fetch_limit=fetch_limit,
        )  # fmt: skip
    return filed.id


def consent_of(runtime: Runtime, request_id: str, client_id: str = DEPARTMENT) -> Any:
    with runtime.transaction() as session:
        _found, consent = exchange_service(runtime, session).request_for(
            request_id, requester=client_id
        )
    return consent


def fetch(
    runtime: Runtime, consent_id: str, document_id: str, client_id: str = DEPARTMENT
) -> bytes:
    """One fetch by the department's system under the consent (raises if refused)."""
    with runtime.transaction() as session:
        fetched = exchange_service(runtime, session).fetch(
            consent_id, document_id, requester=client_id
        )
    return b"".join(fetched.content)


def legal_access(runtime: Runtime, cnic: str, *, delay_days: int = 0) -> None:
    """The police open the citizen's birth certificate on a legal basis: one officer files, a
    second approves, the first opens (officers with a second factor, through the domain)."""
    police = frozenset({"police"})
    with runtime.transaction() as session:
        provider = runtime.provider(session)
        if "police" not in dict(provider.roles.departments()):
            provider.roles.add_department("police", "Punjab Police")
        legal = _legal(runtime, session)
        filed = legal.file(
            officer="officer-pseudonym", substantial=True, departments=police,
            department=None, owner=owner_of(runtime, cnic), doctypes=["birth"],
            legal_reference=LEGAL_REFERENCE, reason="Investigation of a forged admission",
            disclosure_delay_days=delay_days,
        )  # fmt: skip
        legal.approve(filed.id, officer="second-pseudonym", substantial=True, departments=police)
        legal.open(
            filed.id, officer="officer-pseudonym", substantial=True, departments=police,
            department_names={"police": "Punjab Police"},
        )  # fmt: skip


def citizen_record(runtime: Runtime, scenario: str) -> CitizenRecord:
    record = read_registry(runtime.identity.nadra_file)[SCENARIOS[scenario]]
    register_citizen(runtime, record)
    return record


def sms_code(runtime: Runtime, record: CitizenRecord) -> str:
    text = runtime.identity.sms.last_to(record.mobile_numbers[0]).text  # type: ignore[union-attr]
    return re.search(r"\b(\d{6})\b", text).group(1)  # type: ignore[union-attr]


def sign_in(web: TestClient, runtime: Runtime, record: CitizenRecord, *, code: bool) -> None:
    page = web.get("/login")
    done = web.post(
        "/login",
        data={"cnic": record.cnic, "password": PASSWORD, "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    if code:
        step = web.get("/login/second-factor?next=/requests")
        step = web.get(press_send(web, step.text).headers["location"])
        ticket = re.search(r'name="ticket" value="([^"]+)"', step.text).group(1)  # type: ignore[union-attr]
        proved = web.post(
            "/login/second-factor?method=sms&next=/requests",
            data={"ticket": ticket, "code": sms_code(runtime, record), "csrf": csrf_of(step.text)},
            follow_redirects=False,
        )
        assert proved.headers["location"] == "/requests"


def csrf_cookie(web: TestClient) -> str:
    """The browser's CSRF token (what every form of the page carries)."""
    return next(v for k, v in web.cookies.items() if k.endswith("shanakht_csrf"))


@pytest.fixture
def ayesha(web: TestClient, oidc_runtime: Runtime) -> CitizenRecord:
    record = citizen_record(oidc_runtime, "active_female")
    department(oidc_runtime)
    birth_certificate(oidc_runtime, record.cnic)
    return record


def _state(runtime: Runtime, cnic: str, request_id: str) -> str:
    with runtime.transaction() as session:
        found = exchange_service(runtime, session).requests_of(owner_of(runtime, cnic))
    return next(r.status for r in found if r.id == request_id)


# -- the requests page -------------------------------------------------------------------------


def test_pages_need_a_sign_in(web: TestClient) -> None:
    for path in ["/requests", "/access", "/access/export.csv"]:
        response = web.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == f"/login?next=%2F{path[1:].replace('/', '%2F')}"


def test_the_page_shows_what_the_consent_will_say(
    web: TestClient, oidc_runtime: Runtime, ayesha: CitizenRecord
) -> None:
    request_id = file_request(oidc_runtime, ayesha.cnic)
    sign_in(web, oidc_runtime, ayesha, code=False)
    page = web.get("/requests")
    assert page.status_code == 200
    article = page.text.split(f'id="request-{request_id}"')[1].split("</article>")[0]
    for words in [DEPARTMENT_NAME, PURPOSE, "edu.admission", "Birth certificate", "30 days"]:
        assert words in article
    assert "Fetches allowed</dt><dd>3</dd>" in article
    assert f'href="/requests/{request_id}/approve"' in article
    # The inbox message is there, unread, with a button to mark it read.
    assert "asks for your Birth certificate" in page.text
    urdu = web.get("/requests?lang=ur").text  # the same message, said in Urdu from its facts
    assert f"{DEPARTMENT_NAME} آپ کی یہ دستاویزات مانگ رہا ہے: پیدائش کا سرٹیفکیٹ" in urdu
    assert "asks for your" not in urdu
    marked = web.post(
        re.search(r'action="(/requests/messages/\d+/read)"', page.text).group(1),  # type: ignore[union-attr]
        data={"csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert marked.headers["location"] == "/requests?done=read#messages"
    assert not re.search(r"/requests/messages/\d+/read", web.get("/requests").text)


def test_approving_needs_a_second_factor_and_comes_back(
    web: TestClient, oidc_runtime: Runtime, ayesha: CitizenRecord
) -> None:
    request_id = file_request(oidc_runtime, ayesha.cnic)
    sign_in(web, oidc_runtime, ayesha, code=False)
    csrf = csrf_of(web.get("/requests").text)
    for method in ("get", "post"):
        response = getattr(web, method)(
            f"/requests/{request_id}/approve",
            **({"data": {"csrf": csrf}} if method == "post" else {}),
            follow_redirects=False,
        )
        assert response.status_code == 303
        assert response.headers["location"] == (
            f"/login/second-factor?next=%2Frequests%2F{request_id}%2Fapprove"
        )
    assert _state(oidc_runtime, ayesha.cnic, request_id) == "pending"
    step = web.get(f"/login/second-factor?next=/requests/{request_id}/approve")
    step = web.get(press_send(web, step.text).headers["location"])
    ticket = re.search(r'name="ticket" value="([^"]+)"', step.text).group(1)  # type: ignore[union-attr]
    back = web.post(
        f"/login/second-factor?method=sms&next=/requests/{request_id}/approve",
        data={"ticket": ticket, "code": sms_code(oidc_runtime, ayesha), "csrf": csrf_of(step.text)},
        follow_redirects=False,
    )
    assert back.headers["location"] == f"/requests/{request_id}/approve"
    confirm = web.get(back.headers["location"])
    assert confirm.status_code == 200
    assert PURPOSE in confirm.text
    approved = web.post(
        f"/requests/{request_id}/approve", data={"csrf": csrf_of(confirm.text)},
        follow_redirects=False,
    )  # fmt: skip
    assert approved.status_code == 303
    consent = consent_of(oidc_runtime, request_id)
    assert approved.headers["location"] == f"/requests?done=approved#consent-{consent.id}"
    assert consent.status == "active"
    # Approving again: the request is closed, said plainly (409), not a 500.
    again = web.post(f"/requests/{request_id}/approve", data={"csrf": csrf_of(confirm.text)})
    assert again.status_code == 409
    assert "cannot be done now" in again.text
    assert "You approved this request already: its consent is in your list." in again.text


def test_a_request_decided_again_on_the_page_says_so_and_is_audited_not_decided(
    web: TestClient, oidc_runtime: Runtime, ayesha: CitizenRecord
) -> None:
    """A second tab, a back button, a double submit: deciding a request decided already says
    what it is (409), keeps the first decision alone (no second consent, no second decision
    in the log), and is an access refused under `rule:decided-once`, as the API records it."""
    approved_id = file_request(oidc_runtime, ayesha.cnic)
    denied_id = file_request(oidc_runtime, ayesha.cnic)
    sign_in(web, oidc_runtime, ayesha, code=True)
    csrf = csrf_cookie(web)
    first = web.post(f"/requests/{approved_id}/approve", data={"csrf": csrf})
    assert first.status_code == 200, first.text  # followed back to the list
    assert web.post(f"/requests/{denied_id}/deny", data={"csrf": csrf}).status_code == 200
    consent = consent_of(oidc_runtime, approved_id)
    logged = len(_log(oidc_runtime))

    said = {
        approved_id: "You approved this request already: its consent is in your list.",
        denied_id: "You denied this request already: it cannot be decided again.",
    }
    tried = []
    for request_id, words in said.items():
        for action in ("approve", "deny"):
            again = web.post(f"/requests/{request_id}/{action}", data={"csrf": csrf})
            assert again.status_code == 409, again.text
            assert words in again.text
            tried.append(f"/requests/{{request_id}}/{action}")
    denied = _log(oidc_runtime)[logged:]
    assert [e["action"] for e in denied] == ["access.denied"] * 4, denied
    owner = owner_of(oidc_runtime, ayesha.cnic)
    for entry, route in zip(denied, tried, strict=True):
        assert (entry["outcome"], entry["actor"]) == ("failure", f"citizen:{owner}")
        assert (entry["details"]["needed"], entry["details"]["route"]) == (DECIDED_ONCE, route)
        for request_id in said:
            assert request_id not in json.dumps(entry)
    assert _state(oidc_runtime, ayesha.cnic, approved_id) == "approved"
    assert _state(oidc_runtime, ayesha.cnic, denied_id) == "denied"
    assert consent_of(oidc_runtime, approved_id) == consent
    assert consent_of(oidc_runtime, denied_id) is None


def test_a_form_without_its_csrf_token_is_refused(
    web: TestClient, oidc_runtime: Runtime, ayesha: CitizenRecord
) -> None:
    request_id = file_request(oidc_runtime, ayesha.cnic)
    sign_in(web, oidc_runtime, ayesha, code=True)
    for path in [f"/requests/{request_id}/deny", f"/requests/{request_id}/approve"]:
        refused = web.post(path, data={})
        assert refused.status_code == 403
        assert "The form has expired" in refused.text
        forged = web.post(path, data={"csrf": "not-the-token"})
        assert forged.status_code == 403
    assert _state(oidc_runtime, ayesha.cnic, request_id) == "pending"


def test_another_citizens_request_and_consent_are_not_found(
    web: TestClient, oidc_runtime: Runtime, ayesha: CitizenRecord
) -> None:
    theirs = file_request(oidc_runtime, ayesha.cnic)
    mine_then_approved = file_request(oidc_runtime, ayesha.cnic)
    with oidc_runtime.transaction() as session:
        consent = exchange_service(oidc_runtime, session).approve(
            mine_then_approved, owner=owner_of(oidc_runtime, ayesha.cnic), substantial=True
        )
    ahmed = citizen_record(oidc_runtime, "active_male")
    sign_in(web, oidc_runtime, ahmed, code=True)
    assert DEPARTMENT_NAME not in web.get("/requests").text
    csrf = csrf_cookie(web)
    for path in [f"/requests/{theirs}/deny", f"/requests/{theirs}/approve"]:
        assert web.get(path).status_code == 404
        response = web.post(path, data={"csrf": csrf})
        assert response.status_code == 404
        assert "No such request" in response.text
    for path in [f"/requests/consents/{consent.id}", f"/requests/consents/{consent.id}/artifact"]:
        assert web.get(path).status_code == 404
    for action in ["pause", "revoke"]:
        response = web.post(f"/requests/consents/{consent.id}/{action}", data={"csrf": csrf})
        assert response.status_code == 404
        assert "No such consent" in response.text
    assert _state(oidc_runtime, ayesha.cnic, theirs) == "pending"
    assert consent_of(oidc_runtime, mine_then_approved).status == "active"


def test_consent_changes_are_the_exchanges_own(
    web: TestClient, oidc_runtime: Runtime, ayesha: CitizenRecord
) -> None:
    request_id = file_request(oidc_runtime, ayesha.cnic)
    sign_in(web, oidc_runtime, ayesha, code=True)
    confirm = web.get(f"/requests/{request_id}/approve")
    web.post(f"/requests/{request_id}/approve", data={"csrf": csrf_of(confirm.text)})
    consent = consent_of(oidc_runtime, request_id)
    csrf = csrf_of(web.get("/requests").text)
    paused = web.post(f"/requests/consents/{consent.id}/pause", data={"csrf": csrf})
    assert paused.status_code == 200  # followed back to the list
    assert "Fetches stop at once, until you resume it." in paused.text
    assert consent_of(oidc_runtime, request_id).status == "paused"
    twice = web.post(f"/requests/consents/{consent.id}/pause", data={"csrf": csrf})
    assert twice.status_code == 409
    artifact = web.get(f"/requests/consents/{consent.id}/artifact")
    assert artifact.text == consent.artifact
    assert artifact.headers["content-disposition"].startswith("attachment")
    shown = web.get(f"/requests/consents/{consent.id}")
    assert f'"request_id": "{request_id}"' in html.unescape(shown.text)
    assert consent.artifact in shown.text


def test_a_departments_name_and_purpose_are_shown_as_text(
    web: TestClient, oidc_runtime: Runtime, ayesha: CitizenRecord
) -> None:
    """The department's name and its request's purpose are its own words: on the requests
    page, its inbox message, the page that confirms an approval, the consent and who saw
    the data, they are escaped, never markup."""
    register_client(
        oidc_runtime, "odd", kind=SERVICE, secret=True, scopes=("locker.request",), name=HOSTILE
    )
    request_id = file_request(
        oidc_runtime, ayesha.cnic, "odd", purpose=HOSTILE, requester_name=HOSTILE
    )
    sign_in(web, oidc_runtime, ayesha, code=True)
    listed = web.get("/requests").text
    assert listed.count("&lt;script&gt;") >= 4, "the heading, who asks, the purpose, a message"
    assert_escaped(listed)
    confirm = web.get(f"/requests/{request_id}/approve").text
    assert_escaped(confirm)
    web.post(f"/requests/{request_id}/approve", data={"csrf": csrf_of(confirm)})
    consent = consent_of(oidc_runtime, request_id, "odd")
    assert_escaped(web.get(f"/requests/consents/{consent.id}").text)
    with oidc_runtime.transaction() as session:
        document = oidc_runtime.locker(session).list(owner_of(oidc_runtime, ayesha.cnic))[0]
    fetch(oidc_runtime, consent.id, document.id, "odd")
    assert_escaped(web.get("/access").text)


# -- who saw my data ---------------------------------------------------------------------------


def _approved_and_fetched(runtime: Runtime, record: CitizenRecord) -> str:
    request_id = file_request(runtime, record.cnic)
    with runtime.transaction() as session:
        consent = exchange_service(runtime, session).approve(
            request_id, owner=owner_of(runtime, record.cnic), substantial=True
        )
    with runtime.transaction() as session:
        document = runtime.locker(session).list(owner_of(runtime, record.cnic))[0]
    fetch(runtime, consent.id, document.id)
    return consent.id


def test_bad_filters_are_explained_beside_their_fields(
    web: TestClient, oidc_runtime: Runtime, ayesha: CitizenRecord
) -> None:
    sign_in(web, oidc_runtime, ayesha, code=False)
    page = web.get("/access?since=2026-02-30&until=yesterday&organisation=lgcd")
    assert page.status_code == 400
    assert re.search(r'id="since-error">Enter a date as year-month-day', page.text)
    assert re.search(r'id="until-error">Enter a date as year-month-day', page.text)
    assert 'id="since" name="since" value="2026-02-30" aria-invalid="true"' in page.text
    backwards = web.get("/access?since=2026-03-02&until=2026-03-01")
    assert backwards.status_code == 400
    assert 'id="until-error">The end date is before the start date.' in backwards.text
    assert 'aria-describedby="until-error"' in backwards.text
    basis = web.get("/access?basis=telepathy&action=locker.everything")
    assert basis.status_code == 400
    assert 'id="basis-error"' in basis.text
    assert 'id="action-error"' in basis.text
    export = web.get("/access/export.csv?since=2026-03-02&until=2026-03-01")
    assert export.status_code == 400
    assert "text/html" in export.headers["content-type"]
    urdu = web.get("/lang/ur?next=/access?since=nope")
    assert urdu.status_code == 400
    error = re.search(r'id="since-error">([^<]+)<', urdu.text).group(1)  # type: ignore[union-attr]
    assert "year-month-day" not in error
    assert "2026-03-31" in error


def test_the_access_page_filters_exports_and_proves(
    web: TestClient, oidc_runtime: Runtime, ayesha: CitizenRecord
) -> None:
    _approved_and_fetched(oidc_runtime, ayesha)
    legal_access(oidc_runtime, ayesha.cnic)
    legal_access(oidc_runtime, ayesha.cnic, delay_days=30)  # not shown until the delay ends
    sign_in(web, oidc_runtime, ayesha, code=False)
    page = web.get("/access")
    assert page.status_code == 200
    assert "Fetched a document under your consent" in page.text
    assert DEPARTMENT_NAME in page.text
    assert "Punjab Police" in page.text
    assert page.text.count(f"Legal basis: {LEGAL_REFERENCE}") == 1
    legal = web.get("/access?basis=legal")
    assert legal.text.count("<tr>") == 2  # the header and the one disclosed access
    fetched = web.get(f"/access?organisation={DEPARTMENT}&action=locker.exchange.fetched")
    assert fetched.text.count("Fetched a document under your consent") == 1
    assert "Punjab Police" not in fetched.text.split("<table")[1]
    export = web.get(f"/access/export.csv?organisation={DEPARTMENT}&action=locker.exchange.fetched")
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [(r["action"], r["organisation"]) for r in rows] == [
        ("locker.exchange.fetched", DEPARTMENT)
    ]
    seq = rows[0]["seq"]
    assert f'href="/access/{seq}/proof.json"' in fetched.text
    proof = web.get(f"/access/{seq}/proof.json")
    assert proof.status_code == 200
    assert proof.headers["content-disposition"].startswith("attachment")
    bundle = json.loads(proof.text)
    assert bundle["seq"] == int(seq)
    assert bundle["leaf_hash"]
    # Another citizen's entry is no proof of hers to download.
    ahmed = citizen_record(oidc_runtime, "active_male")
    web.cookies.clear()
    sign_in(web, oidc_runtime, ahmed, code=False)
    assert web.get(f"/access/{seq}/proof.json").status_code == 404
    assert DEPARTMENT_NAME not in web.get("/access").text
