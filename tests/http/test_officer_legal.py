"""The officer's legal-basis page through the app: only an officer holding locker.legal in the
department, signed in with a second factor, opens a citizen's documents with a legal
reference; the download streams the document as the API does; the access is recorded as
this officer's for the department and the citizen sees it with its reference."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from api.runtime import Runtime
from identity.nadra import CitizenRecord
from tests.http.oidc_kit import csrf_of
from tests.http.test_officer_pages import (
    PDF,
    Office,
    entries_of,
    owner_of,
    set_up_office,
    sign_in,
)

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


def test_a_legal_officer_opens_and_downloads_a_document_and_the_citizen_sees_why(
    web: TestClient, oidc_runtime: Runtime, legal_officer: Office
) -> None:
    form = web.get("/officer/lgcd/legal")
    assert form.status_code == 200
    assert "recorded in the audit log as yours" in form.text
    assert "The citizen is told at once" in form.text
    assert 'name="disclosure_delay_days"' in form.text
    opened = _open(web, legal_officer)
    assert opened.status_code == 201, opened.text
    assert "The citizen was told by SMS and in their locker" in opened.text
    assert "Crl. Misc. 4471-B/2026" in opened.text
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
    accessed, fetched = _legal_entries(oidc_runtime)
    for entry in (accessed, fetched):
        assert f'"official":"{officer}"' in entry
        assert '"organisation":"lgcd"' in entry
        assert f'"basis":"legal:{REFERENCE}"' in entry
        assert legal_officer.citizen.cnic not in entry
    assert '"action":"locker.legal.accessed"' in accessed
    assert '"action":"locker.legal.fetched"' in fetched

    web.cookies.clear()
    sign_in(web, oidc_runtime, legal_officer.citizen, code=False)
    access = web.get("/access")
    assert access.status_code == 200
    assert f"Legal basis: {REFERENCE}" in access.text
    assert "Fetched a document on a legal basis" in access.text


def test_a_grant_from_the_page_is_refused_once_tampered_and_reaches_only_its_documents(
    web: TestClient, oidc_runtime: Runtime, legal_officer: Office
) -> None:
    opened = _open(web, legal_officer)
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
    web: TestClient, oidc_runtime: Runtime, legal_officer: Office
) -> None:
    sent = len(oidc_runtime.identity.sms.messages())
    opened = _open(web, legal_officer, disclosure_delay_days="30")
    assert opened.status_code == 201, opened.text
    assert "The citizen will be told when the delay ends" in opened.text
    assert len(oidc_runtime.identity.sms.messages()) == sent
    (accessed,) = _legal_entries(oidc_runtime)
    assert '"disclose_after":' in accessed


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
        ({"disclosure_delay_days": "400"}, "disclosure_delay_days", "0 to 365"),
        ({"disclosure_delay_days": "soon"}, "disclosure_delay_days", "0 to 365"),
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
