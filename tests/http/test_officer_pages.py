"""The officer's desk through the app: who may open each page, what each form refuses (beside
the field), and that every act lands in the domain as the department systems' API does it:
issued documents sealed in the citizen's locker, requests, fetches under consent, signed
transfer orders delivered, certificates revoked."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import select

from api.routes.exchange import exchange_service
from api.routes.locker_views import seal_status
from api.runtime import Runtime
from audit import pseudonym
from audit.models import entries
from identity.nadra import SCENARIOS, CitizenRecord, read_registry
from locker import exchange
from signing.pki.authority import Subject, serial_hex
from signing.pki.custody import create_root
from signing.pki.profiles import DEPARTMENT_SEAL, OFFICER_SIGNING, QR_SIGNER
from tests.http.oidc_kit import PASSWORD, csrf_of, press_send, register_citizen

PDF = b"%PDF-1.4\n% a birth certificate\n%%EOF\n"
DEPARTMENTS = {"lgcd": "Local Government", "sed": "School Education", "home": "Home Department"}


@dataclass(frozen=True)
class Office:
    """Three departments: lgcd (a seal), sed (a QR signer and the officer's certificate) and
    home (nothing yet); an officer with roles in lgcd and sed, another in home only, and a
    citizen with an account."""

    officer: CitizenRecord
    other: CitizenRecord
    citizen: CitizenRecord
    qr_serial: int
    home_seal_serial: int


def record_of(runtime: Runtime, scenario: str) -> CitizenRecord:
    return read_registry(runtime.identity.nadra_file)[SCENARIOS[scenario]]


def owner_of(runtime: Runtime, cnic: str) -> str:
    return pseudonym(cnic, key=runtime.pseudonym_key)


def set_up_office(runtime: Runtime, root_dir: Path) -> Office:
    officer, other, citizen = (
        record_of(runtime, s) for s in ("active_male", "two_mobiles", "active_female")
    )
    for record in (officer, other, citizen):
        register_citizen(runtime, record)
    root = create_root(
        root_dir, "a long test passphrase", common_name="Test Root", now=runtime.clock()
    )
    with runtime.transaction() as session:
        provider = runtime.provider(session)
        for department, name in DEPARTMENTS.items():
            if department not in dict(provider.roles.departments()):
                provider.roles.add_department(department, name)
        grants = [
            (officer, "lgcd", "locker.issuer"),
            (officer, "sed", "signing.officer"),
            (officer, "sed", "locker.issuer"),
            (other, "home", "locker.issuer"),
            (other, "home", "signing.officer"),
        ]
        for record, department, role in grants:
            account = provider.accounts.by_pseudonym(owner_of(runtime, record.cnic))
            assert account is not None
            provider.roles.grant(account.id, account.pseudonym, department, role, by="admin:test")
        authority = runtime.authority(session)
        authority.initialise(root, actor="admin:test")
        authority.issue(DEPARTMENT_SEAL, Subject("LGCD seal", "lgcd"), actor="admin:test")
        authority.issue(
            OFFICER_SIGNING,
            Subject("An Officer", "sed", owner_of(runtime, officer.cnic), "CEO"),
            actor="admin:test",
        )
        qr = authority.issue(QR_SIGNER, Subject("SED QR signer", "sed"), actor="admin:test")
        other_qr = authority.issue(QR_SIGNER, Subject("Home QR", "home"), actor="admin:test")
    return Office(officer, other, citizen, qr.serial, other_qr.serial)


def sign_in(web: TestClient, runtime: Runtime, record: CitizenRecord, *, code: bool) -> None:
    page = web.get("/login")
    done = web.post(
        "/login",
        data={"cnic": record.cnic, "password": PASSWORD, "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    if not code:
        return
    step = web.get("/login/second-factor?next=/officer")
    step = web.get(press_send(web, step.text).headers["location"])
    message = runtime.identity.sms.last_to(record.mobile_numbers[0])
    assert message is not None
    text = message.text
    sms = re.search(r"\b(\d{6})\b", text).group(1)  # type: ignore[union-attr]
    ticket = re.search(r'name="ticket" value="([^"]+)"', step.text).group(1)  # type: ignore[union-attr]
    proved = web.post(
        "/login/second-factor?method=sms&next=/officer",
        data={"ticket": ticket, "code": sms, "csrf": csrf_of(step.text)},
        follow_redirects=False,
    )
    assert proved.status_code == 303
    assert proved.headers["location"] == "/officer"


@pytest.fixture
def office(oidc_runtime: Runtime, tmp_path: Path) -> Office:
    return set_up_office(oidc_runtime, tmp_path / "root")


@pytest.fixture
def officer(web: TestClient, oidc_runtime: Runtime, office: Office) -> Office:
    sign_in(web, oidc_runtime, office.officer, code=False)
    return office


def _csrf(web: TestClient, path: str) -> str:
    page = web.get(path)
    assert page.status_code == 200, page.text
    return csrf_of(page.text)


def _issue(
    web: TestClient,
    office: Office,
    department: str = "lgcd",
    *,
    file: tuple[str, bytes, str] = ("birth.pdf", PDF, "application/pdf"),
    **fields: str,
) -> Response:
    data = {
        "doctype": "birth",
        "cnic": office.citizen.cnic,
        "doc_id": "BC/2026/1",
        "title": "Birth certificate",
        "valid_until": "",
        "csrf": _csrf(web, f"/officer/{department}/issue"),
        **fields,
    }
    return web.post(
        f"/officer/{department}/issue", data=data, files={"file": file}, follow_redirects=False
    )


def entries_of(runtime: Runtime, action: str) -> list[bytes]:
    """The canonical JSON of every audit entry of `action`."""
    with runtime.sessions() as session:
        found = session.execute(select(entries.c.entry)).scalars()
        return [e for e in found if f'"action":"{action}"'.encode() in e]


def _field_error(html: str, field: str) -> str:
    found = re.search(rf'<p class="field-error" id="{field}-error">([^<]+)</p>', html)
    assert found is not None, f"no error beside {field}"
    return found.group(1)


def in_language(web: TestClient, lang: str) -> None:
    """Read the pages in `lang` from now on, as the header's language switch does (a cookie)."""
    assert web.get(f"/lang/{lang}", follow_redirects=False).status_code == 303


# -- who may open what -------------------------------------------------------------------------


def test_the_desk_lists_what_the_officer_may_do_per_department(
    web: TestClient, officer: Office
) -> None:
    desk = web.get("/officer")
    assert desk.status_code == 200
    assert "Local Government" in desk.text
    assert "School Education" in desk.text
    assert "/officer/lgcd/issue" in desk.text
    assert "/officer/sed/sign" in desk.text
    assert "/officer/lgcd/sign" not in desk.text  # no signing.officer in lgcd
    assert "Home Department" not in desk.text
    assert 'href="/officer"' in desk.text  # the menu has the desk


def test_a_plain_citizen_gets_the_403_page_and_a_stranger_is_sent_to_sign_in(
    web: TestClient, oidc_runtime: Runtime, office: Office
) -> None:
    stranger = web.get("/officer/lgcd/issue", follow_redirects=False)
    assert stranger.status_code == 303
    assert stranger.headers["location"] == "/login?next=%2Fofficer%2Flgcd%2Fissue"
    sign_in(web, oidc_runtime, office.citizen, code=False)
    for path in [
        "/officer",
        "/officer/lgcd/issue",
        "/officer/lgcd/requests",
        "/officer/sed/certificates",
        "/officer/nowhere/revoke",
    ]:
        refused = web.get(path)
        assert refused.status_code == 403, path
        assert "This page is not for your account" in refused.text


def test_an_officer_cannot_act_for_another_department(web: TestClient, officer: Office) -> None:
    assert web.get("/officer/home/issue").status_code == 403
    assert web.get("/officer/lgcd/sign", follow_redirects=False).status_code in (303, 403)
    assert web.get("/officer/home/certificates").status_code == 403
    wrong_type = _issue(web, officer, doctype="dom")  # home's type, posted to lgcd
    assert wrong_type.status_code == 400
    assert "Choose one of the types" in _field_error(wrong_type.text, "doctype")


def test_a_form_without_its_csrf_token_is_refused(web: TestClient, officer: Office) -> None:
    web.get("/officer/lgcd/issue")
    refused = web.post(
        "/officer/lgcd/issue",
        data={"doctype": "birth"},
        files={"file": ("b.pdf", PDF, "application/pdf")},
    )
    assert refused.status_code == 403
    assert "The form has expired" in refused.text
    assert web.post("/officer/lgcd/revoke", data={"doc_id": "x", "reason": "y"}).status_code == 403


# -- issue and revoke --------------------------------------------------------------------------


def test_an_officer_issues_a_sealed_document_into_the_citizens_locker(
    web: TestClient, oidc_runtime: Runtime, officer: Office
) -> None:
    done = _issue(web, officer, valid_until="2031-01-31")
    assert done.status_code == 303
    assert done.headers["location"] == "/officer/lgcd/issue?issued=BC%2F2026%2F1"
    assert "Issued: Birth certificate" in web.get(done.headers["location"]).text
    owner = owner_of(oidc_runtime, officer.citizen.cnic)
    with oidc_runtime.transaction() as session:
        (document,) = oidc_runtime.locker(session).list(owner)
        seal = seal_status(oidc_runtime, session, document)
    (row,) = entries_of(oidc_runtime, "locker.document.issued")
    assert (document.issuer, document.doctype, document.issuer_doc_id) == (
        "lgcd",
        "birth",
        "BC/2026/1",
    )
    assert document.valid_until is not None
    assert document.valid_until.date().isoformat() == "2031-01-31"
    assert seal is not None
    assert seal["verified"] is True
    assert "LGCD seal" in seal["signer"]
    officer_ref = owner_of(oidc_runtime, officer.officer.cnic)
    text = row.decode()
    assert f'"official":"{officer_ref}"' in text
    assert '"organisation":"lgcd"' in text
    assert officer.citizen.cnic not in text


@pytest.mark.parametrize(
    ("fields", "file", "field", "words"),
    [
        ({"cnic": "35202-123"}, None, "cnic", "13 digits"),
        ({"cnic": "3520210000033"}, None, "cnic", "No Shanakht account"),
        ({}, ("notes.txt", b"hello", "text/plain"), "file", "not accepted"),
        ({}, ("fake.pdf", b"<html>no</html>", "application/pdf"), "file", "not a PDF"),
        ({"doc_id": "has space"}, None, "doc_id", "letters, digits"),
        ({"title": ""}, None, "title", "1 to 200"),
        ({"valid_until": "2001-01-01"}, None, "valid_until", "after today"),
    ],
)
def test_a_wrong_field_is_named_beside_it_and_what_was_typed_is_kept(
    web: TestClient,
    oidc_runtime: Runtime,
    officer: Office,
    fields: dict[str, str],
    file: tuple[str, bytes, str] | None,
    field: str,
    words: str,
) -> None:
    refused = _issue(web, officer, file=file or ("b.pdf", PDF, "application/pdf"), **fields)
    assert refused.status_code in (400, 422)
    assert words in _field_error(refused.text, field)
    assert 'aria-invalid="true"' in refused.text
    assert 'value="Birth certificate"' in refused.text or field == "title"
    with oidc_runtime.transaction() as session:
        assert oidc_runtime.locker(session).list(owner_of(oidc_runtime, officer.citizen.cnic)) == []


def test_a_file_over_the_limit_is_refused_beside_the_field(
    web: TestClient, oidc_runtime: Runtime, officer: Office, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = oidc_runtime.settings.model_copy(update={"locker_max_bytes": 1024})
    monkeypatch.setattr(oidc_runtime, "settings", small)
    refused = _issue(web, officer, file=("big.pdf", PDF + b"x" * 2000, "application/pdf"))
    assert refused.status_code == 400
    assert "too large" in _field_error(refused.text, "file")


def test_a_department_without_a_seal_says_what_to_do(
    web: TestClient, oidc_runtime: Runtime, office: Office
) -> None:
    sign_in(web, oidc_runtime, office.other, code=False)
    form = web.get("/officer/home/issue")
    assert "no seal certificate yet" in form.text
    assert "pki issue department-seal" in form.text
    refused = _issue(web, office, "home", doctype="dom")
    assert refused.status_code == 409
    assert "shanakht pki issue department-seal --department home" in refused.text


def test_an_officer_revokes_what_the_department_issued_and_nothing_else(
    web: TestClient, oidc_runtime: Runtime, officer: Office
) -> None:
    assert _issue(web, officer).status_code == 303
    csrf = _csrf(web, "/officer/lgcd/revoke")
    unknown = web.post(
        "/officer/lgcd/revoke", data={"doc_id": "NOPE", "reason": "wrong", "csrf": csrf}
    )
    assert unknown.status_code == 400
    assert "issued no document" in _field_error(unknown.text, "doc_id")
    elsewhere = web.post(
        "/officer/sed/revoke", data={"doc_id": "BC/2026/1", "reason": "x", "csrf": csrf}
    )
    assert elsewhere.status_code == 400  # sed did not issue it
    done = web.post(
        "/officer/lgcd/revoke",
        data={"doc_id": "BC/2026/1", "reason": "Issued in error", "csrf": csrf},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert "Revoked: Birth certificate" in web.get(done.headers["location"]).text
    with oidc_runtime.transaction() as session:
        found = oidc_runtime.locker(session).issued("lgcd", "BC/2026/1")
    assert found is not None
    assert found.status == "revoked"
    assert found.revocation_reason == "Issued in error"
    again = web.post(
        "/officer/lgcd/revoke", data={"doc_id": "BC/2026/1", "reason": "x", "csrf": csrf}
    )
    assert "revoked already" in _field_error(again.text, "doc_id")


# -- once-only requests ------------------------------------------------------------------------


def _in_days(runtime: object, days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).date().isoformat()


def _file_request(
    web: TestClient, office: Office, department: str = "lgcd", **fields: object
) -> Response:
    data = {
        "cnic": office.citizen.cnic,
        "doctypes": ["birth"],
        "purpose_code": "SCHOOL-ADM",
        "purpose_text": "Admission to a government school",
        "data_life_days": "30",
        "valid_from": "",
        "valid_until": "2099-01-01",
        "fetch_limit": "2",
        "csrf": _csrf(web, f"/officer/{department}/requests/new"),
        **fields,
    }
    return web.post(f"/officer/{department}/requests/new", data=data, follow_redirects=False)


def test_a_request_is_filed_approved_and_fetched_through_the_service(
    web: TestClient, oidc_runtime: Runtime, officer: Office
) -> None:
    assert _issue(web, officer).status_code == 303
    too_far = _file_request(web, officer)
    assert too_far.status_code == 400  # a window is at most a year
    assert "at most a year" in _field_error(too_far.text, "valid_until")
    filed = _file_request(web, officer, valid_until=_in_days(oidc_runtime, 300))
    assert filed.status_code == 303, filed.text
    listing = web.get(filed.headers["location"])
    assert "The request was sent" in listing.text
    assert "Waiting for the citizen" in listing.text
    request_id = filed.headers["location"].rsplit("=", 1)[1]
    sms = oidc_runtime.identity.sms.last_to(officer.citizen.mobile_numbers[0])
    assert sms is not None
    assert "asked for documents" in sms.text
    owner = owner_of(oidc_runtime, officer.citizen.cnic)
    with oidc_runtime.transaction() as session:
        (found,) = exchange_service(oidc_runtime, session).requests_of(owner)
        assert found.requester == "department:lgcd"
        exchange_service(oidc_runtime, session).approve(found.id, owner=owner, substantial=True)
    page = web.get(f"/officer/lgcd/requests/{request_id}")
    assert "Active" in page.text
    assert "Birth certificate" in page.text
    assert "30 days from each fetch: delete the documents by then" in page.text
    document_id = re.search(r"/documents/([a-p]{32})\"", page.text).group(1)  # type: ignore[union-attr]
    fetch = f"/officer/lgcd/requests/{request_id}/documents/{document_id}"
    before = oidc_runtime.clock().replace(microsecond=0)
    got = web.post(fetch, data={"csrf": csrf_of(page.text)})
    assert got.status_code == 200
    assert got.content == PDF
    assert "attachment" in got.headers["content-disposition"]
    # When the department must have deleted it: the data life (30 days) from this fetch.
    delete_by = datetime.fromisoformat(got.headers["shanakht-delete-by"]) - timedelta(days=30)
    assert before <= delete_by <= oidc_runtime.clock()
    assert web.post(fetch, data={}).status_code == 403  # no CSRF token: no fetch spent
    assert web.post(fetch, data={"csrf": csrf_of(page.text)}).content == PDF
    spent = web.post(fetch, data={"csrf": csrf_of(page.text)})
    assert spent.status_code == 409
    assert (
        "The document cannot be fetched: All 2 fetches this consent allows have been made."
        in spent.text
    )
    in_language(web, "ur")  # the refusal said from its code and facts, not its English
    urdu = web.post(fetch, data={"csrf": csrf_of(page.text)})
    assert urdu.status_code == 409
    assert (
        "دستاویز حاصل نہیں کی جا سکتی: اس رضامندی کے تحت اجازت شدہ تمام 2 حصول ہو چکے ہیں"
        in urdu.text
    )
    assert "fetches this consent allows" not in urdu.text
    in_language(web, "en")
    assert "2 / 2" in web.get(f"/officer/lgcd/requests/{request_id}").text
    # The officer behind the department is named, by pseudonym, on the filing and each fetch.
    me = pseudonym(officer.officer.cnic, key=oidc_runtime.pseudonym_key).encode()
    for action in ("locker.exchange.requested", "locker.exchange.fetched"):
        found = entries_of(oidc_runtime, action)
        assert found, action
        assert all(b'"official":"' + me + b'"' in e for e in found), action


def test_request_fields_are_checked_beside_them(web: TestClient, officer: Office) -> None:
    refused = _file_request(
        web, officer, cnic="123", doctypes=[], purpose_code="", fetch_limit="0", data_life_days="x"
    )
    assert refused.status_code == 400
    for field in ("cnic", "doctypes", "purpose_code", "fetch_limit", "data_life_days"):
        _field_error(refused.text, field)
    sensitive = _file_request(web, officer, doctypes=["chr"], fetch_limit="3")
    assert "one fetch only" in _field_error(sensitive.text, "doctypes")
    nobody = _file_request(web, officer, cnic="3520210000033", valid_until=_in_days(web, 30))
    assert nobody.status_code == 400
    assert "No Shanakht account" in _field_error(nobody.text, "cnic")


def test_another_departments_request_is_not_found(
    web: TestClient, oidc_runtime: Runtime, officer: Office
) -> None:
    filed = _file_request(web, officer, valid_until=_in_days(oidc_runtime, 300))
    request_id = filed.headers["location"].rsplit("=", 1)[1]
    assert web.get(f"/officer/sed/requests/{request_id}").status_code == 404
    web.cookies.clear()
    sign_in(web, oidc_runtime, officer.other, code=False)
    assert web.get(f"/officer/lgcd/requests/{request_id}").status_code == 403
    assert web.get(f"/officer/home/requests/{request_id}").status_code == 404


# -- signing and certificates ------------------------------------------------------------------

ORDER = {
    "order_no": "SED/TR/2026/004512",
    "order_date": "2026-03-14",
    "teacher_name": "Ayesha Bibi",
    "from_school": "Govt. High School No. 1, Model Town, Lahore",
    "to_school": "Govt. Girls High School, Shahdara, Lahore",
    "post": "SST (Science)",
    "authority": "CEO (DEA) Lahore",
    "valid_days": "",
}


def test_signing_needs_a_second_factor_then_delivers_the_order(
    web: TestClient, oidc_runtime: Runtime, office: Office
) -> None:
    sign_in(web, oidc_runtime, office.officer, code=False)
    step_up = web.get("/officer/sed/sign", follow_redirects=False)
    assert step_up.status_code == 303
    assert step_up.headers["location"].startswith(
        "/login/second-factor?next=%2Fofficer%2Fsed%2Fsign"
    )
    sign_in(web, oidc_runtime, office.officer, code=True)
    csrf = _csrf(web, "/officer/sed/sign")
    bad = web.post(
        "/officer/sed/sign", data={**ORDER, "teacher_cnic": "1", "order_no": "", "csrf": csrf}
    )
    assert bad.status_code == 400
    assert "13 digits" in _field_error(bad.text, "teacher_cnic")
    _field_error(bad.text, "order_no")
    assert 'value="Ayesha Bibi"' in bad.text
    signed = web.post(
        "/officer/sed/sign", data={**ORDER, "teacher_cnic": office.citizen.cnic, "csrf": csrf}
    )
    assert signed.status_code == 201, signed.text
    assert "teacher&#39;s Shanakht locker now" in signed.text
    link = re.search(r'href="data:application/pdf;base64,([^"]+)"', signed.text)
    assert link is not None
    pdf = base64.b64decode(link.group(1))
    assert pdf.startswith(b"%PDF")
    owner = owner_of(oidc_runtime, office.citizen.cnic)
    with oidc_runtime.transaction() as session:
        (document,) = oidc_runtime.locker(session).list(owner)
        assert document.doctype == "tto"
        assert document.issuer == "sed"
    (row,) = entries_of(oidc_runtime, "signing.document.signed")
    text = row.decode()
    assert owner_of(oidc_runtime, office.officer.cnic) in text
    assert office.citizen.cnic not in text


def test_signing_without_a_certificate_says_what_to_do(
    web: TestClient, oidc_runtime: Runtime, office: Office
) -> None:
    sign_in(web, oidc_runtime, office.other, code=True)
    csrf = _csrf(web, "/officer/home/sign")
    refused = web.post(
        "/officer/home/sign", data={**ORDER, "teacher_cnic": office.citizen.cnic, "csrf": csrf}
    )
    assert refused.status_code == 409
    assert "shanakht pki issue officer-signing --department home" in refused.text


def test_a_certificate_of_the_department_is_revoked_with_a_reason(
    web: TestClient, oidc_runtime: Runtime, office: Office
) -> None:
    sign_in(web, oidc_runtime, office.officer, code=False)
    listing = web.get("/officer/sed/certificates")
    assert listing.status_code == 200
    assert "QR signer" in listing.text
    path = f"/officer/sed/certificates/{serial_hex(office.qr_serial)}"
    assert web.get(path, follow_redirects=False).status_code == 303  # a second factor first
    sign_in(web, oidc_runtime, office.officer, code=True)
    confirm = web.get(path)
    assert "trust list is published again" in confirm.text
    foreign = f"/officer/sed/certificates/{serial_hex(office.home_seal_serial)}"
    assert web.get(foreign).status_code == 404  # home's, not sed's
    assert web.get("/officer/sed/certificates/zz-not-hex").status_code == 404
    csrf = csrf_of(confirm.text)
    no_reason = web.post(path, data={"reason": "", "csrf": csrf})
    assert no_reason.status_code == 400
    assert _field_error(no_reason.text, "reason")
    assert web.post(path, data={"reason": "key_compromise"}).status_code == 403
    done = web.post(path, data={"reason": "key_compromise", "csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert "The certificate is revoked" in web.get(done.headers["location"]).text
    with oidc_runtime.transaction() as session:
        revoked = oidc_runtime.authority(session).get(office.qr_serial)
    assert revoked is not None
    assert revoked.reason == "key_compromise"
    assert web.post(foreign, data={"reason": "superseded", "csrf": csrf}).status_code == 404


# -- the domain's refusals, in the reader's language -------------------------------------------


def test_an_invalid_order_is_refused_beside_its_field_in_the_readers_language(
    web: TestClient, oidc_runtime: Runtime, office: Office
) -> None:
    sign_in(web, oidc_runtime, office.officer, code=True)
    order = {**ORDER, "teacher_cnic": office.citizen.cnic, "csrf": _csrf(web, "/officer/sed/sign")}
    same = {**order, "to_school": ORDER["from_school"]}  # only the order itself checks this
    english = web.post("/officer/sed/sign", data=same)
    assert english.status_code == 422
    assert "would join the school they leave" in _field_error(english.text, "to_school")
    assert "Check the fields marked below." in english.text
    in_language(web, "ur")
    urdu = web.post("/officer/sed/sign", data=same)
    assert urdu.status_code == 422
    assert "استاد اسی اسکول میں جائیں گے" in _field_error(urdu.text, "to_school")
    assert "same school" not in urdu.text
    assert "would join" not in urdu.text
    named = web.post("/officer/sed/sign", data={**order, "teacher_name": "عائشہ بی بی"})
    assert named.status_code == 422
    assert "لاطینی حروف" in _field_error(named.text, "teacher_name")
    assert "Helvetica" not in named.text
    assert "Latin letters" not in named.text
    with oidc_runtime.transaction() as session:
        assert oidc_runtime.locker(session).list(owner_of(oidc_runtime, office.citizen.cnic)) == []


def test_revoking_a_revoked_certificate_is_refused_in_the_readers_language(
    web: TestClient, oidc_runtime: Runtime, office: Office
) -> None:
    sign_in(web, oidc_runtime, office.officer, code=True)
    path = f"/officer/sed/certificates/{serial_hex(office.qr_serial)}"
    csrf = _csrf(web, path)
    done = web.post(path, data={"reason": "superseded", "csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303
    again = web.post(path, data={"reason": "superseded", "csrf": csrf})
    assert again.status_code == 409
    assert "It cannot be revoked: Certificate " in again.text
    assert " was revoked already." in again.text
    in_language(web, "ur")
    urdu = web.post(path, data={"reason": "superseded", "csrf": csrf})
    assert urdu.status_code == 409
    assert "یہ منسوخ نہیں ہو سکتا: سرٹیفکیٹ " in urdu.text
    assert " پہلے ہی منسوخ ہو چکا ہے" in urdu.text
    assert "revoked already" not in urdu.text


def test_the_lockers_refusal_of_an_issue_is_said_beside_its_field_in_the_readers_language(
    web: TestClient, oidc_runtime: Runtime, officer: Office
) -> None:
    assert _issue(web, officer).status_code == 303
    elsewhere = officer.officer.cnic  # BC/2026/1 is another citizen's document now
    taken = _issue(web, officer, cnic=elsewhere)
    assert taken.status_code == 422
    assert "used for another citizen" in _field_error(taken.text, "doc_id").replace("&#39;", "'")
    in_language(web, "ur")
    urdu = _issue(web, officer, cnic=elsewhere)
    assert urdu.status_code == 422
    assert "یہ نمبر کسی دوسرے شہری" in _field_error(urdu.text, "doc_id")
    assert "issuer document id" not in urdu.text
    assert "used for another" not in urdu.text
    fake = _issue(web, officer, doc_id="BC/2026/2", file=("f.pdf", b"<html>", "application/pdf"))
    assert fake.status_code == 422
    assert "فائل کا مواد PDF فائل نہیں ہے" in _field_error(fake.text, "file")
    assert "content is not" not in fake.text
    with oidc_runtime.transaction() as session:
        assert oidc_runtime.locker(session).list(owner_of(oidc_runtime, officer.officer.cnic)) == []


@pytest.mark.parametrize(
    ("limit", "field", "english", "urdu"),
    [
        ("MAX_FETCH_LIMIT", "fetch_limit", "Give a number of fetches from 1 to 1.",
         "حصول کی تعداد 1 سے 1 تک رکھیں"),
        ("MAX_DATA_LIFE_DAYS", "data_life_days", "Give a whole number of days from 0 to 1.",
         "0 سے 1 تک دنوں کی کوئی مکمل تعداد درج کریں"),
    ],
)  # fmt: skip
def test_a_request_the_exchange_refuses_is_said_beside_its_field_in_the_readers_language(
    web: TestClient,
    oidc_runtime: Runtime,
    officer: Office,
    monkeypatch: pytest.MonkeyPatch,
    limit: str,
    field: str,
    english: str,
    urdu: str,
) -> None:
    monkeypatch.setattr(exchange, limit, 1)  # stricter than the page's own checks
    until = _in_days(oidc_runtime, 30)
    refused = _file_request(web, officer, valid_until=until)  # 2 fetches, data kept 30 days
    assert refused.status_code == 400
    assert english in _field_error(refused.text, field)
    in_language(web, "ur")
    said = _file_request(web, officer, valid_until=until)
    assert said.status_code == 400
    assert urdu in _field_error(said.text, field)
    assert "the fetch limit is" not in said.text
    assert "the data life is" not in said.text
    with oidc_runtime.transaction() as session:
        owner = owner_of(oidc_runtime, officer.citizen.cnic)
        assert exchange_service(oidc_runtime, session).requests_of(owner) == []
