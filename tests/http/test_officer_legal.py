"""The officer's legal-basis pages through the app, under the two-person rule: an officer
holding locker.legal in the department, signed in with a second factor, files a request with a
legal reference; a second officer of the department approves or refuses it (never the filer,
never an officer of another department); only then the filer opens it and downloads, as the
API streams it. Every step is recorded naming both officers, and the citizen sees the access
with its reference."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from markupsafe import escape
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from api.runtime import Runtime
from audit import address_pseudonym
from identity.nadra import CitizenRecord
from locker import legal
from locker.models import legal_requests
from tests.http.oidc_kit import HOSTILE, assert_escaped, csrf_of
from tests.http.test_officer_pages import (
    PDF,
    Office,
    entries_of,
    in_language,
    owner_of,
    set_up_office,
    sign_in,
)
from tests.http.test_telemetry import sample

REFERENCE = "Order of the Sessions Court Lahore, Crl. Misc. 4471-B/2026"
REASON = "Investigation of a forged admission record"


@pytest.fixture
def office(oidc_runtime: Runtime, tmp_path: Path) -> Office:
    """The officer pages' office, where the officer also holds locker.legal in lgcd and has
    issued the citizen a birth certificate there."""
    office = set_up_office(oidc_runtime, tmp_path / "root")
    with oidc_runtime.transaction() as session:
        provider = oidc_runtime.provider(session)
        account = provider.accounts.by_pseudonym(owner_of(oidc_runtime, office.officer.cnic))
        assert account is not None
        provider.roles.grant(account.id, account.pseudonym, "lgcd", "locker.legal", by="admin:t")
    return office


def _issue_birth_certificate(web: TestClient, runtime: Runtime, office: Office) -> None:
    sign_in(web, runtime, office.officer, code=False)
    form = web.get("/officer/lgcd/issue")
    issued = web.post(
        "/officer/lgcd/issue",
        data={
            "doctype": "birth",
            "cnic": office.citizen.cnic,
            "doc_id": "BC/2026/7",
            "title": "Birth certificate",
            "valid_until": "",
            "csrf": csrf_of(form.text),
        },
        files={"file": ("birth.pdf", PDF, "application/pdf")},
        follow_redirects=False,
    )
    assert issued.status_code == 303, issued.text
    web.cookies.clear()


@pytest.fixture
def legal_officer(web: TestClient, oidc_runtime: Runtime, office: Office) -> Office:
    _issue_birth_certificate(web, oidc_runtime, office)
    sign_in(web, oidc_runtime, office.officer, code=True)
    return office


def _open(web: TestClient, office: Office, department: str = "lgcd", **fields: object) -> Response:
    """File a legal-access request from the page (the first officer's step)."""
    data: dict[str, object] = {
        "cnic": office.citizen.cnic,
        "doctypes": ["birth"],
        "legal_reference": REFERENCE,
        "reason": REASON,
        "disclosure_delay_days": "0",
        "csrf": csrf_of(web.get(f"/officer/{department}/legal").text),
        **fields,
    }
    return web.post(f"/officer/{department}/legal", data=data, follow_redirects=False)


def _grant_role(runtime: Runtime, record: CitizenRecord, department: str) -> None:
    with runtime.transaction() as session:
        provider = runtime.provider(session)
        account = provider.accounts.by_pseudonym(owner_of(runtime, record.cnic))
        assert account is not None
        provider.roles.grant(account.id, account.pseudonym, department, "locker.legal", by="a:t")


@pytest.fixture
def second(oidc_runtime: Runtime, legal_officer: Office) -> CitizenRecord:
    """A second officer of lgcd holding locker.legal, who decides (not yet signed in)."""
    _grant_role(oidc_runtime, legal_officer.other, "lgcd")
    return legal_officer.other


def _as(web: TestClient, runtime: Runtime, record: CitizenRecord) -> None:
    web.cookies.clear()
    sign_in(web, runtime, record, code=True)


def _post(web: TestClient, action: str, **fields: str) -> Response:
    csrf = csrf_of(web.get("/officer/lgcd/legal").text)
    return web.post(action, data={"csrf": csrf, **fields}, follow_redirects=False)


def _request_id(html: str) -> str:
    found = re.search(r"/officer/lgcd/legal/requests/([A-Za-z0-9_-]+)/(?:approve|open)", html)
    assert found is not None, "no request to act on"
    return found.group(1)


def _approved(web: TestClient, runtime: Runtime, office: Office, second: CitizenRecord) -> str:
    """Filed by the officer, approved by the second officer; the officer signed in again."""
    filed = _open(web, office)
    assert filed.status_code == 201, filed.text
    _as(web, runtime, second)
    request_id = _request_id(web.get("/officer/lgcd/legal/requests").text)
    approved = _post(web, f"/officer/lgcd/legal/requests/{request_id}/approve")
    assert approved.status_code == 303, approved.text
    _as(web, runtime, office.officer)
    return request_id


def _opened(
    web: TestClient, runtime: Runtime, office: Office, second: CitizenRecord, **fields: object
) -> Response:
    """The whole two-person walk on the pages, to the grant's page."""
    if fields:
        assert _open(web, office, **fields).status_code == 201
        _as(web, runtime, second)
        request_id = _request_id(web.get("/officer/lgcd/legal/requests").text)
        _post(web, f"/officer/lgcd/legal/requests/{request_id}/approve")
        _as(web, runtime, office.officer)
    else:
        request_id = _approved(web, runtime, office, second)
    opened = _post(web, f"/officer/lgcd/legal/requests/{request_id}/open")
    assert opened.status_code == 201, opened.text
    return opened


def _field_error(html: str, field: str) -> str:
    found = re.search(rf'<p class="field-error" id="{field}-error">([^<]+)</p>', html)
    assert found is not None, f"no error beside {field}"
    return found.group(1)


def _downloads(html: str) -> list[tuple[str, str]]:
    """Each download form's action and the grant it carries."""
    return re.findall(
        r'<form method="post" action="(/officer/lgcd/legal/[^"]+)" class="inline">'
        r'<input type="hidden" name="csrf" value="[^"]+">'
        r'<input type="hidden" name="grant" value="([^"]+)">',
        html,
    )


def _legal_entries(runtime: Runtime) -> list[str]:
    return [
        e.decode()
        for action in ("locker.legal.accessed", "locker.legal.fetched")
        for e in entries_of(runtime, action)
    ]


def test_the_desk_links_the_page_for_legal_officers_only(
    web: TestClient, oidc_runtime: Runtime, office: Office
) -> None:
    sign_in(web, oidc_runtime, office.officer, code=False)
    desk = web.get("/officer")
    assert 'href="/officer/lgcd/legal"' in desk.text
    assert 'href="/officer/sed/legal"' not in desk.text
    assert "done through your department&#39;s system" not in desk.text
    web.cookies.clear()
    sign_in(web, oidc_runtime, office.other, code=False)
    assert "/legal" not in web.get("/officer").text


def test_a_filed_request_waits_for_a_second_officer_who_approves_then_the_filer_opens(
    web: TestClient, oidc_runtime: Runtime, legal_officer: Office, second: CitizenRecord
) -> None:
    form = web.get("/officer/lgcd/legal")
    assert form.status_code == 200
    assert "nothing is opened until a second officer" in form.text
    assert "You cannot approve your own request" in form.text
    assert "The citizen is told when you first open the documents" in form.text
    assert 'name="disclosure_delay_days"' in form.text
    sent = len(oidc_runtime.identity.sms.messages())
    filed = _open(web, legal_officer)
    assert filed.status_code == 201, filed.text
    assert "waiting for a second officer" in filed.text
    assert "Waiting for a second officer" in filed.text  # its state, in the list of mine
    assert "/approve" not in filed.text, "nobody is offered their own request to decide"
    assert "/open" not in filed.text
    assert len(oidc_runtime.identity.sms.messages()) == sent
    assert _legal_entries(oidc_runtime) == []

    _as(web, oidc_runtime, second)
    awaiting = web.get("/officer/lgcd/legal/requests")
    assert awaiting.status_code == 200
    assert "Awaiting your decision" in awaiting.text
    assert REFERENCE in awaiting.text
    assert legal_officer.officer.full_name in awaiting.text  # who filed it
    request_id = _request_id(awaiting.text)
    assert f'for="refusal_reason-{request_id}"' in awaiting.text  # the reason is labelled
    approved = _post(web, f"/officer/lgcd/legal/requests/{request_id}/approve")
    assert approved.status_code == 303
    assert "You approved the request" in web.get(approved.headers["location"]).text
    assert _post(web, f"/officer/lgcd/legal/requests/{request_id}/open").status_code == 403

    _as(web, oidc_runtime, legal_officer.officer)
    mine = web.get("/officer/lgcd/legal/requests")
    assert f"/officer/lgcd/legal/requests/{request_id}/open" in mine.text
    opened = _post(web, f"/officer/lgcd/legal/requests/{request_id}/open")
    assert opened.status_code == 201, opened.text
    assert "The citizen was told by SMS and in their locker" in opened.text
    assert "Crl. Misc. 4471-B/2026" in opened.text
    assert second.full_name in opened.text  # approved by
    ((action, grant),) = _downloads(opened.text)
    sms = oidc_runtime.identity.sms.last_to(legal_officer.citizen.mobile_numbers[0])
    assert sms is not None
    assert "legal basis" in sms.text

    downloaded = web.post(action, data={"grant": grant, "csrf": csrf_of(opened.text)})
    assert downloaded.status_code == 200, downloaded.text
    assert downloaded.content == PDF
    assert downloaded.headers["content-type"] == "application/pdf"
    assert downloaded.headers["content-disposition"].startswith("attachment;")
    assert downloaded.headers["repr-digest"].startswith("sha-256=:")

    officer = owner_of(oidc_runtime, legal_officer.officer.cnic)
    approver = owner_of(oidc_runtime, second.cnic)
    accessed, fetched = _legal_entries(oidc_runtime)
    for entry in (accessed, fetched):
        assert f'"official":"{officer}"' in entry
        assert f'"approver":"{approver}"' in entry
        assert '"organisation":"lgcd"' in entry
        assert f'"basis":"legal:{REFERENCE}"' in entry
        assert legal_officer.citizen.cnic not in entry
    assert '"action":"locker.legal.accessed"' in accessed
    assert '"action":"locker.legal.fetched"' in fetched
    (approval,) = entries_of(oidc_runtime, "locker.legal.approved")
    assert f'"actor":"{approver}"' in approval.decode()
    assert f'"filer":"{officer}"' in approval.decode()

    web.cookies.clear()
    sign_in(web, oidc_runtime, legal_officer.citizen, code=False)
    access = web.get("/access")
    assert access.status_code == 200
    assert f"Legal basis: {REFERENCE}" in access.text
    assert "Fetched a document on a legal basis" in access.text
    rows = re.findall(r"<tr>.*?</tr>", access.text, re.S)
    legal_rows = [r for r in rows if f"Legal basis: {REFERENCE}" in r]
    assert len(legal_rows) == 2  # the opening and the download
    for row in legal_rows:  # the department both officers act for
        assert re.search(r"<td>Local Government(<br>|</td>)", row), row


def test_the_filer_cannot_approve_their_own_request_on_the_page(
    web: TestClient, oidc_runtime: Runtime, legal_officer: Office
) -> None:
    filed = _open(web, legal_officer)
    assert filed.status_code == 201
    with oidc_runtime.sessions() as session:
        (request_id,) = session.execute(select(legal_requests.c.id)).scalars()
    refused = _post(web, f"/officer/lgcd/legal/requests/{request_id}/approve")
    assert refused.status_code == 403
    assert "You filed this request: a second officer of the department must decide it." in (
        refused.text
    )
    early = _post(web, f"/officer/lgcd/legal/requests/{request_id}/open")
    assert early.status_code == 409
    assert "still awaits a second officer" in early.text
    assert entries_of(oidc_runtime, "locker.legal.approved") == []


def test_an_officer_of_another_department_cannot_decide_on_the_page(
    web: TestClient, oidc_runtime: Runtime, legal_officer: Office
) -> None:
    _open(web, legal_officer)
    with oidc_runtime.sessions() as session:
        (request_id,) = session.execute(select(legal_requests.c.id)).scalars()
    _grant_role(oidc_runtime, legal_officer.other, "home")  # locker.legal, but in home
    _as(web, oidc_runtime, legal_officer.other)
    assert "Awaiting your decision" in web.get("/officer/home/legal/requests").text
    assert REFERENCE not in web.get("/officer/home/legal/requests").text
    csrf = csrf_of(web.get("/officer/home/legal").text)
    for department, status in (("home", 404), ("lgcd", 403)):
        action = f"/officer/{department}/legal/requests/{request_id}/approve"
        assert web.post(action, data={"csrf": csrf}).status_code == status, department
    assert entries_of(oidc_runtime, "locker.legal.approved") == []


def test_a_refusal_needs_a_reason_and_a_refused_request_cannot_be_opened(
    web: TestClient, oidc_runtime: Runtime, legal_officer: Office, second: CitizenRecord
) -> None:
    _open(web, legal_officer)
    _as(web, oidc_runtime, second)
    request_id = _request_id(web.get("/officer/lgcd/legal/requests").text)
    action = f"/officer/lgcd/legal/requests/{request_id}/refuse"
    empty = _post(web, action, refusal_reason=f"about {legal_officer.citizen.cnic}")
    assert empty.status_code == 400
    assert "Say why you refuse" in _field_error(empty.text, f"refusal_reason-{request_id}")
    refused = _post(web, action, refusal_reason="The order names another person")
    assert refused.status_code == 303
    _as(web, oidc_runtime, legal_officer.officer)
    mine = web.get("/officer/lgcd/legal/requests")
    assert "The order names another person" in mine.text
    assert "/open" not in mine.text
    opened = _post(web, f"/officer/lgcd/legal/requests/{request_id}/open")
    assert opened.status_code == 409
    assert "A second officer refused this request" in opened.text
    assert _legal_entries(oidc_runtime) == []
    (entry,) = entries_of(oidc_runtime, "locker.legal.refused")
    assert f'"actor":"{owner_of(oidc_runtime, second.cnic)}"' in entry.decode()


def test_an_officers_reasons_and_refusal_are_shown_to_the_other_as_text(
    web: TestClient, oidc_runtime: Runtime, legal_officer: Office, second: CitizenRecord
) -> None:
    """The reason and legal reference one officer types are shown to the second, whose
    refusal reason is shown back to the first: each escaped, never markup."""
    assert _open(web, legal_officer, reason=HOSTILE, legal_reference=HOSTILE).status_code == 201
    _as(web, oidc_runtime, second)
    awaiting = web.get("/officer/lgcd/legal/requests").text
    assert awaiting.count("&lt;script&gt;") >= 2, "the reason and the reference"
    assert_escaped(awaiting)
    request_id = _request_id(awaiting)
    action = f"/officer/lgcd/legal/requests/{request_id}/refuse"
    assert _post(web, action, refusal_reason=HOSTILE).status_code == 303
    _as(web, oidc_runtime, legal_officer.officer)
    mine = web.get("/officer/lgcd/legal/requests").text
    assert f"By {second.full_name}: {escape(HOSTILE)}</span>" in mine, "the refusal"
    assert mine.count("&lt;script&gt;") >= 2, "the reference, and the refusal"
    assert_escaped(mine)


def test_the_requests_page_is_in_urdu(
    web: TestClient, oidc_runtime: Runtime, legal_officer: Office, second: CitizenRecord
) -> None:
    _open(web, legal_officer)
    _as(web, oidc_runtime, second)
    in_language(web, "ur")
    shown = web.get("/officer/lgcd/legal/requests")
    assert shown.status_code == 200
    assert "قانونی بنیاد پر درخواستیں" in shown.text
    assert "آپ کے فیصلے کی منتظر" in shown.text
    assert "مسترد کریں" in shown.text
    assert "Awaiting your decision" not in shown.text
    request_id = _request_id(shown.text)
    _as(web, oidc_runtime, legal_officer.officer)
    in_language(web, "ur")
    early = _post(web, f"/officer/lgcd/legal/requests/{request_id}/open")
    assert "یہ درخواست ابھی دوسرے افسر کی منظوری کی منتظر ہے" in early.text
    assert "awaits a second officer" not in early.text


def test_a_grant_from_the_page_is_refused_once_tampered_and_reaches_only_its_documents(
    web: TestClient, oidc_runtime: Runtime, legal_officer: Office, second: CitizenRecord
) -> None:
    opened = _opened(web, oidc_runtime, legal_officer, second)
    ((action, grant),) = _downloads(opened.text)
    csrf = csrf_of(opened.text)
    forged = web.post(action, data={"grant": grant[:-4] + "AAAA", "csrf": csrf})
    assert forged.status_code == 403
    assert "The grant has ended" in forged.text
    other = re.sub(r"/documents/[^/]+$", "/documents/" + "a" * 32, action)
    assert web.post(other, data={"grant": grant, "csrf": csrf}).status_code == 404
    assert web.post(action, data={"grant": grant}).status_code == 403  # no CSRF token
    assert len(_legal_entries(oidc_runtime)) == 1  # the opening; no fetch


def test_a_disclosure_delay_is_said_and_no_sms_goes(
    web: TestClient, oidc_runtime: Runtime, legal_officer: Office, second: CitizenRecord
) -> None:
    sent = len(oidc_runtime.identity.sms.messages())
    opened = _opened(web, oidc_runtime, legal_officer, second, disclosure_delay_days="30")
    assert "The citizen will be told when the delay ends" in opened.text
    later = oidc_runtime.identity.sms.messages()[sent:]
    assert all(m.to != legal_officer.citizen.mobile_numbers[0] for m in later)
    (accessed,) = _legal_entries(oidc_runtime)
    assert '"disclose_after":' in accessed
    # The citizen's own audit entries hold it back too, until the delay ends.
    _as(web, oidc_runtime, legal_officer.citizen)
    mine = web.get("/audit/entries", params={"limit": 1}).json()
    while mine["next_after"] is not None:  # a page of one at a time
        assert not mine["entries"][0]["action"].startswith("locker.legal"), mine
        mine = web.get("/audit/entries", params={"limit": 1, "after": mine["next_after"]}).json()
    assert not any(e["action"].startswith("locker.legal") for e in mine["entries"])
    later = oidc_runtime.clock() + timedelta(days=31)
    oidc_runtime.clock = lambda: later
    _as(web, oidc_runtime, legal_officer.citizen)
    shown = web.get("/audit/entries", params={"limit": 500}).json()["entries"]
    assert any(e["action"].startswith("locker.legal") for e in shown)


def test_an_officer_without_locker_legal_gets_403(
    web: TestClient, oidc_runtime: Runtime, office: Office
) -> None:
    sign_in(web, oidc_runtime, office.other, code=True)
    for department in ("home", "lgcd"):
        refused = web.get(f"/officer/{department}/legal")
        assert refused.status_code == 403
        assert "locker.legal" in refused.text


def test_another_departments_page_is_403(web: TestClient, legal_officer: Office) -> None:
    for department in ("sed", "home", "nowhere"):
        assert web.get(f"/officer/{department}/legal").status_code == 403
    csrf = csrf_of(web.get("/officer/lgcd/legal").text)
    data = {"cnic": legal_officer.citizen.cnic, "doctypes": "birth", "csrf": csrf}
    assert web.post("/officer/sed/legal", data=data).status_code == 403


def test_without_a_second_factor_the_officer_is_sent_to_give_one(
    web: TestClient, oidc_runtime: Runtime, office: Office
) -> None:
    sign_in(web, oidc_runtime, office.officer, code=False)
    step_up = web.get("/officer/lgcd/legal", follow_redirects=False)
    assert step_up.status_code == 303
    assert step_up.headers["location"] == "/login/second-factor?next=%2Fofficer%2Flgcd%2Flegal"
    posted = web.post(
        "/officer/lgcd/legal", data={"cnic": office.citizen.cnic}, follow_redirects=False
    )
    assert posted.status_code == 303
    assert posted.headers["location"].startswith("/login/second-factor?")
    assert _legal_entries(oidc_runtime) == []


def test_a_form_without_its_csrf_token_is_refused(
    web: TestClient, oidc_runtime: Runtime, legal_officer: Office
) -> None:
    refused = _open(web, legal_officer, csrf="")
    assert refused.status_code == 403
    assert "The form has expired" in refused.text
    assert _legal_entries(oidc_runtime) == []


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"cnic": "35202-123"}, "cnic", "13 digits"),
        ({"cnic": "3520210000033"}, "cnic", "No Shanakht account"),
        ({"doctypes": []}, "doctypes", "Choose at least one"),
        ({"doctypes": ["nosuch"]}, "doctypes", "Choose at least one"),
        ({"doctypes": ["other"]}, "doctypes", "Choose at least one"),
        ({"legal_reference": ""}, "legal_reference", "Give the legal reference"),
        ({"legal_reference": "   "}, "legal_reference", "Give the legal reference"),
        ({"legal_reference": "x" * 101}, "legal_reference", "1 to 100"),
        ({"reason": ""}, "reason", "1 to 500"),
        ({"disclosure_delay_days": "91"}, "disclosure_delay_days", "0 to 90"),
        ({"disclosure_delay_days": "soon"}, "disclosure_delay_days", "0 to 90"),
    ],
)
def test_a_wrong_field_is_named_beside_it(
    web: TestClient,
    oidc_runtime: Runtime,
    legal_officer: Office,
    fields: dict[str, Any],
    field: str,
    words: str,
) -> None:
    refused = _open(web, legal_officer, **fields)
    assert refused.status_code == 400, refused.text
    assert words in _field_error(refused.text, field)
    if field == "doctypes":
        assert 'aria-describedby="doctypes-error"' in refused.text
    else:
        assert 'aria-invalid="true"' in refused.text
    assert "Check the fields marked below." in refused.text
    if field != "reason":
        assert REASON in refused.text  # what was typed is kept
    assert _legal_entries(oidc_runtime) == []


def test_a_reference_holding_a_cnic_is_refused_beside_it(
    web: TestClient, oidc_runtime: Runtime, legal_officer: Office
) -> None:
    citizen: CitizenRecord = legal_officer.citizen
    refused = _open(web, legal_officer, legal_reference=f"FIR about {citizen.cnic}")
    assert refused.status_code == 400
    assert "without a CNIC" in _field_error(refused.text, "legal_reference")
    assert _legal_entries(oidc_runtime) == []


@pytest.mark.parametrize(
    ("limit", "fields", "field", "english", "urdu"),
    [
        ("MAX_REFERENCE", {}, "legal_reference",
         "Give the legal reference in 1 to 10 characters.", "قانونی حوالہ 1 سے 10 حروف میں"),
        ("MAX_DELAY_DAYS", {"disclosure_delay_days": "30"}, "disclosure_delay_days",
         "Give a whole number of days from 0 to 10.", "0 سے 10 تک دنوں کی کوئی مکمل تعداد"),
    ],
)  # fmt: skip
def test_a_legal_basis_the_locker_refuses_is_said_beside_its_field_in_the_readers_language(
    web: TestClient,
    oidc_runtime: Runtime,
    legal_officer: Office,
    monkeypatch: pytest.MonkeyPatch,
    limit: str,
    fields: dict[str, Any],
    field: str,
    english: str,
    urdu: str,
) -> None:
    monkeypatch.setattr(legal, limit, 10)  # stricter than the page's own checks
    refused = _open(web, legal_officer, **fields)
    assert refused.status_code == 400, refused.text
    assert english in _field_error(refused.text, field)
    in_language(web, "ur")
    said = _open(web, legal_officer, **fields)
    assert said.status_code == 400
    assert urdu in _field_error(said.text, field)
    assert "a legal reference is" not in said.text
    assert "a disclosure delay is" not in said.text
    assert REASON in said.text  # what was typed is kept
    assert _legal_entries(oidc_runtime) == []


# -- refusals of the two-person rule, audited (threat model item 12) ------------------------------


def _denials(runtime: Runtime) -> list[dict[str, Any]]:
    return [json.loads(e) for e in entries_of(runtime, "access.denied")]


def _denied_count(web: TestClient, recorded: str) -> float:
    return sample(web, "shanakht_auth_failures_total", kind="access_denied", recorded=recorded)


def _is_denial(
    runtime: Runtime, entry: dict[str, Any], record: CitizenRecord, route: str, needed: str
) -> None:
    """`entry` refuses `record`'s account, named by pseudonym, `needed` at `route` (a POST)."""
    who = owner_of(runtime, record.cnic)
    assert (entry["outcome"], entry["actor"], entry["subject"]) == (
        "failure",
        f"citizen:{who}",
        who,
    )
    assert entry["details"] == {
        "route": route,
        "method": "POST",
        "needed": needed,
        "client": address_pseudonym("testclient", key=runtime.pseudonym_key),
    }


def test_the_two_person_rule_refused_on_the_pages_is_audited_without_the_request(
    web: TestClient, oidc_runtime: Runtime, legal_officer: Office, second: CitizenRecord
) -> None:
    """Deciding one's own request, opening another's, deciding one decided already: each an
    `access.denied` entry naming the officer by pseudonym and the rule, never the request,
    the citizen or the reference. A reason left out is a field to fix: not recorded."""
    filed = _open(web, legal_officer)
    assert filed.status_code == 201
    with oidc_runtime.sessions() as session:
        (request_id,) = session.execute(select(legal_requests.c.id)).scalars()
    own = _post(web, f"/officer/lgcd/legal/requests/{request_id}/approve")
    assert own.status_code == 403
    assert "You filed this request" in own.text
    _as(web, oidc_runtime, second)
    blank = _post(web, f"/officer/lgcd/legal/requests/{request_id}/refuse", refusal_reason="")
    assert blank.status_code == 400
    assert len(_denials(oidc_runtime)) == 1, "a reason to fix is no access refused"
    assert _post(web, f"/officer/lgcd/legal/requests/{request_id}/approve").status_code == 303
    not_theirs = _post(web, f"/officer/lgcd/legal/requests/{request_id}/open")
    assert not_theirs.status_code == 403
    assert "Only the officer who filed this request can open it." in not_theirs.text
    twice = _post(web, f"/officer/lgcd/legal/requests/{request_id}/refuse", refusal_reason="No")
    assert twice.status_code == 409
    own_entry, open_entry, twice_entry = _denials(oidc_runtime)
    decide = "/officer/{department}/legal/requests/{request_id}"
    _is_denial(oidc_runtime, own_entry, legal_officer.officer, f"{decide}/approve",
               "rule:four-eyes")  # fmt: skip
    _is_denial(oidc_runtime, open_entry, second, f"{decide}/open", "rule:four-eyes")
    _is_denial(oidc_runtime, twice_entry, second, f"{decide}/refuse", "rule:decided-once")
    for entry in (own_entry, open_entry, twice_entry):
        text = json.dumps(entry)
        for secret in (request_id, legal_officer.citizen.cnic, second.cnic, REFERENCE):
            assert secret not in text


def test_a_refused_legal_grant_on_the_page_is_audited_without_the_grant(
    web: TestClient, oidc_runtime: Runtime, legal_officer: Office, second: CitizenRecord
) -> None:
    opened = _opened(web, oidc_runtime, legal_officer, second)
    ((action, grant),) = _downloads(opened.text)
    csrf = csrf_of(opened.text)
    before = _denied_count(web, "yes")
    forged = web.post(action, data={"grant": grant[:-4] + "AAAA", "csrf": csrf})
    assert forged.status_code == 403
    assert "The grant has ended" in forged.text
    other = re.sub(r"/documents/[^/]+$", "/documents/" + "a" * 32, action)
    assert web.post(other, data={"grant": grant, "csrf": csrf}).status_code == 404
    (entry,) = _denials(oidc_runtime)  # a document the grant does not reach is not one
    route = "/officer/{department}/legal/{grant_id}/documents/{document_id}"
    _is_denial(oidc_runtime, entry, legal_officer.officer, route, "grant:locker.legal")
    text = json.dumps(entry)
    grant_id, document_id = action.split("/")[4], action.split("/")[6]
    for secret in (grant, grant_id, document_id, legal_officer.citizen.cnic):
        assert secret not in text
    assert _denied_count(web, "yes") == before + 1


def test_refusals_of_the_two_person_rule_are_audited_up_to_the_cap_then_counted(
    web: TestClient, oidc_runtime: Runtime, legal_officer: Office
) -> None:
    assert _open(web, legal_officer).status_code == 201
    with oidc_runtime.sessions() as session:
        (request_id,) = session.execute(select(legal_requests.c.id)).scalars()
    csrf = csrf_of(web.get("/officer/lgcd/legal").text)
    before = _denied_count(web, "no")
    for _ in range(13):
        refused = web.post(
            f"/officer/lgcd/legal/requests/{request_id}/approve", data={"csrf": csrf}
        )
        assert refused.status_code == 403
    recorded = _denials(oidc_runtime)
    assert len(recorded) == 10
    assert recorded[-1]["details"]["cap_reached"] == 15
    assert _denied_count(web, "no") == before + 3
    assert entries_of(oidc_runtime, "locker.legal.approved") == []


def test_a_refusal_of_the_two_person_rule_stands_when_its_entry_cannot_be_written(
    web: TestClient, oidc_runtime: Runtime, legal_officer: Office
) -> None:
    assert _open(web, legal_officer).status_code == 201
    with oidc_runtime.sessions() as session:
        (request_id,) = session.execute(select(legal_requests.c.id)).scalars()
    csrf = csrf_of(web.get("/officer/lgcd/legal").text)
    before = _denied_count(web, "no")
    broken = OperationalError("INSERT", {}, Exception("the database went away"))
    with mock.patch.object(oidc_runtime, "failure_records", side_effect=broken):
        refused = web.post(
            f"/officer/lgcd/legal/requests/{request_id}/approve", data={"csrf": csrf}
        )
    assert refused.status_code == 403
    assert "You filed this request: a second officer of the department must decide it." in (
        refused.text
    )
    assert REFERENCE in refused.text, "the requests page, as before"
    assert _denials(oidc_runtime) == []
    assert _denied_count(web, "no") == before + 1
