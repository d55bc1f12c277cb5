"""Authentication failures past the password reach the audit log (threat model item 12):
wrong and reused second-factor codes, codes against a dead ticket, failed client
authentication, refused CSRF forms, and accesses refused to a known account or client (a page
of a role it lacks, a token without the scope, caller kind or assurance). Each entry is an
outcome of failure naming people by pseudonym, never a code, ticket, token or secret; what an
outsider can send in any number (unknown clients, tickets and tokens, forged posts) is only
counted."""

from __future__ import annotations

import base64
import json
import re
from datetime import timedelta
from typing import Any
from unittest import mock

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from api.runtime import Runtime
from audit import address_pseudonym, pseudonym
from audit.models import entries
from identity.login import ACR_SUBSTANTIAL
from identity.nadra import SCENARIOS, read_registry
from identity.oidc.clients import SERVICE
from tests.http.oidc_kit import (
    PASSWORD,
    RelyingParty,
    csrf_of,
    press_send,
    register_citizen,
    register_client,
    token,
)
from tests.http.test_oidc_security import Clock, _sms_step_up
from tests.http.test_roles_and_entries import _access_token
from tests.http.test_telemetry import sample

ADDRESS = "testclient"  # what Starlette's TestClient gives as the client's address


@pytest.fixture
def citizen(oidc_runtime: Runtime) -> str:
    record = read_registry(oidc_runtime.identity.nadra_file)[SCENARIOS["active_male"]]
    register_citizen(oidc_runtime, record)
    return record.cnic


def _entries(runtime: Runtime, action: str) -> list[dict[str, Any]]:
    with runtime.engine.connect() as connection:
        found = [json.loads(e) for e in connection.execute(select(entries.c.entry)).scalars()]
    return [e for e in found if e["action"] == action]


def _log_in(web: TestClient, cnic: str) -> None:
    page = web.get("/login")
    form = {"cnic": cnic, "password": PASSWORD, "csrf": csrf_of(page.text)}
    assert web.post("/login", data=form, follow_redirects=False).status_code == 303


def _count(web: TestClient, kind: str, recorded: str) -> float:
    return sample(web, "shanakht_auth_failures_total", kind=kind, recorded=recorded)


# -- second factor ---------------------------------------------------------------------------


def test_a_wrong_sms_code_is_audited_without_the_code(
    web: TestClient, oidc_runtime: Runtime, citizen: str
) -> None:
    _log_in(web, citizen)
    page = web.get("/login/second-factor?next=/account")
    asked = web.get(press_send(web, page.text).headers["location"])
    record = read_registry(oidc_runtime.identity.nadra_file)[citizen]
    sent = oidc_runtime.identity.sms.last_to(record.mobile_numbers[0])
    assert sent is not None
    code = re.search(r"\b(\d{6})\b", sent.text).group(1)  # type: ignore[union-attr]
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    ticket = asked.text.split('name="ticket" value="')[1].split('"')[0]
    before = _count(web, "second_factor", "yes")
    refused = web.post(
        "/login/second-factor?method=sms&next=/account",
        data={"ticket": ticket, "code": wrong, "csrf": csrf_of(asked.text)},
    )
    assert refused.status_code == 400
    (entry,) = _entries(oidc_runtime, "identity.login.second_factor")
    subject = pseudonym(citizen, key=oidc_runtime.pseudonym_key)
    assert (entry["outcome"], entry["actor"], entry["subject"]) == (
        "failure",
        f"citizen:{subject}",
        subject,
    )
    assert entry["details"] == {
        "method": "sms",
        "reason": "wrong code",
        "client": address_pseudonym(ADDRESS, key=oidc_runtime.pseudonym_key),
    }
    assert citizen not in json.dumps(entry)
    assert ticket not in json.dumps(entry)
    assert _count(web, "second_factor", "yes") == before + 1


def test_wrong_and_reused_app_codes_are_refused_and_audited(
    web: TestClient, oidc_runtime: Runtime, citizen: str
) -> None:
    """ASVS 2.8.5: an authenticator code already accepted is refused as a replay, said so,
    and recorded as one; a wrong code is recorded as wrong; neither code is in the log."""
    clock = Clock()  # held still: the codes below fall in known 30-second steps
    oidc_runtime.clock = clock
    _log_in(web, citizen)
    _sms_step_up(web, oidc_runtime, citizen, then="/account/authenticator")
    start = web.get("/account/authenticator")
    setup = web.post("/account/authenticator/begin", data={"csrf": csrf_of(start.text)})
    secret = setup.text.split('<code dir="ltr" id="totp-key">')[1].split("</code>")[0]
    app = pyotp.TOTP(secret)
    used = app.at(clock.now)
    confirmed = web.post("/account/authenticator", data={"csrf": csrf_of(setup.text), "code": used})
    assert "Your recovery codes" in confirmed.text
    web.cookies.clear()
    _log_in(web, citizen)
    page = web.get("/login/second-factor?next=/account")
    assert "authenticator app" in page.text
    action = "/login/second-factor?method=app&next=%2Faccount"
    wrong = "000000" if app.at(clock.now) != "000000" else "111111"
    refused = web.post(action, data={"code": wrong, "csrf": csrf_of(page.text)})
    assert refused.status_code == 400
    assert "That code is not right." in refused.text
    replayed = web.post(action, data={"code": used, "csrf": csrf_of(page.text)})
    assert replayed.status_code == 400
    assert "That code was used already" in replayed.text
    subject = pseudonym(citizen, key=oidc_runtime.pseudonym_key)
    tried = _entries(oidc_runtime, "identity.login.second_factor")
    failures = [e for e in tried if e["outcome"] == "failure"]
    assert [(e["subject"], e["details"]["method"], e["details"]["reason"]) for e in failures] == [
        (subject, "app", "wrong code"),
        (subject, "app", "reused code"),
    ]
    for entry in failures:
        assert set(entry["details"]) == {"method", "reason", "client"}
        assert secret not in json.dumps(entry)
        assert citizen not in json.dumps(entry)
    # The next step's code still works: the refusals spent nothing.
    clock.now += timedelta(seconds=30)
    accepted = web.post(
        action, data={"code": app.at(clock.now), "csrf": csrf_of(page.text)}, follow_redirects=False
    )
    assert accepted.status_code == 303


# -- client authentication -------------------------------------------------------------------


def _basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


@pytest.fixture
def department(oidc_runtime: Runtime) -> RelyingParty:
    return register_client(oidc_runtime, "revenue", secret=True)


@pytest.mark.parametrize(
    ("endpoint", "form"),
    [
        ("/oauth/token", {"grant_type": "client_credentials"}),
        ("/oauth/introspect", {"token": "x"}),
        ("/oauth/revoke", {"token": "x"}),
        ("/oauth/par", {"response_type": "code"}),
    ],
)
def test_a_registered_client_failing_to_authenticate_is_audited_without_its_secret(
    web: TestClient,
    oidc_runtime: Runtime,
    department: RelyingParty,
    endpoint: str,
    form: dict[str, str],
) -> None:
    wrong = "not-the-secret-" + "x" * 20
    refused = web.post(endpoint, data=form, headers=_basic(department.client_id, wrong))
    assert refused.status_code == 401
    (entry,) = _entries(oidc_runtime, "identity.client.authentication")
    assert (entry["outcome"], entry["actor"], entry["resource"]) == (
        "failure",
        "anonymous",
        "client:revenue",
    )
    assert entry["details"] == {
        "endpoint": endpoint,
        "reason": "client authentication failed",
        "client": address_pseudonym(ADDRESS, key=oidc_runtime.pseudonym_key),
    }
    assert wrong not in json.dumps(entry)
    assert department.secret is not None
    assert department.secret not in json.dumps(entry)


def test_a_bad_client_assertion_is_audited_without_the_assertion(
    web: TestClient, oidc_runtime: Runtime
) -> None:
    rp = register_client(oidc_runtime, "etransfer")
    assertion = rp.assertion(audience="https://elsewhere.example/token")
    refused = web.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
    )
    assert refused.status_code == 401
    (entry,) = _entries(oidc_runtime, "identity.client.authentication")
    assert entry["resource"] == "client:etransfer"
    assert entry["details"]["reason"] == "the client assertion is for another audience"
    assert assertion.split(".")[2] not in json.dumps(entry)


def test_an_unknown_client_is_counted_but_not_audited(
    web: TestClient, oidc_runtime: Runtime
) -> None:
    before = _count(web, "client_authentication", "no")
    for name in ("nobody-1", "nobody-2", "nobody-3"):
        refused = web.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, headers=_basic(name, "s")
        )
        assert refused.status_code == 401
    assert _entries(oidc_runtime, "identity.client.authentication") == []
    assert _count(web, "client_authentication", "no") == before + 3


def test_a_flood_against_one_client_is_audited_up_to_the_cap_then_counted(
    web: TestClient, oidc_runtime: Runtime, department: RelyingParty
) -> None:
    before = _count(web, "client_authentication", "no")
    for _ in range(13):
        web.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers=_basic(department.client_id, "wrong"),
        )
    recorded = _entries(oidc_runtime, "identity.client.authentication")
    assert len(recorded) == 10
    assert "cap_reached" in recorded[-1]["details"]
    assert all("cap_reached" not in e["details"] for e in recorded[:-1])
    assert _count(web, "client_authentication", "no") == before + 3


# -- CSRF ------------------------------------------------------------------------------------


def test_a_refused_form_from_a_signed_in_browser_is_audited(
    web: TestClient, oidc_runtime: Runtime, citizen: str
) -> None:
    _log_in(web, citizen)
    refused = web.post("/account/sessions/end-all", data={"csrf": "forged"})
    assert refused.status_code == 403
    (entry,) = _entries(oidc_runtime, "identity.csrf.refused")
    subject = pseudonym(citizen, key=oidc_runtime.pseudonym_key)
    assert (entry["outcome"], entry["actor"], entry["subject"]) == (
        "failure",
        f"citizen:{subject}",
        subject,
    )
    assert entry["details"] == {
        "route": "/account/sessions/end-all",
        "client": address_pseudonym(ADDRESS, key=oidc_runtime.pseudonym_key),
    }
    assert web.get("/account", follow_redirects=False).status_code == 200, "nothing ended"


def test_a_forged_post_with_no_session_is_counted_but_not_audited(
    web: TestClient, oidc_runtime: Runtime
) -> None:
    before = _count(web, "csrf", "no")
    for _ in range(3):
        assert web.post("/login", data={"cnic": "x", "password": "y"}).status_code == 403
    assert _entries(oidc_runtime, "identity.csrf.refused") == []
    assert _count(web, "csrf", "no") == before + 3


def test_a_csrf_refusal_stands_when_its_entry_cannot_be_written(
    web: TestClient, oidc_runtime: Runtime, citizen: str
) -> None:
    _log_in(web, citizen)
    before = _count(web, "csrf", "no")
    broken = OperationalError("INSERT", {}, Exception("the database went away"))
    with mock.patch.object(oidc_runtime, "failure_records", side_effect=broken):
        refused = web.post("/account/sessions/end-all", data={"csrf": "forged"})
    assert refused.status_code == 403
    assert "The form has expired" in refused.text
    assert _count(web, "csrf", "no") == before + 1


# -- the SMS code's ticket -------------------------------------------------------------------


def _asked(web: TestClient) -> tuple[str, Any]:
    """Have a code sent to this signed-in browser: its ticket, and the page asking for it."""
    page = web.get("/login/second-factor?next=/account")
    asked = web.get(press_send(web, page.text).headers["location"])
    return asked.text.split('name="ticket" value="')[1].split('"')[0], asked


def _code(runtime: Runtime, cnic: str) -> str:
    record = read_registry(runtime.identity.nadra_file)[cnic]
    sent = runtime.identity.sms.last_to(record.mobile_numbers[0])
    assert sent is not None
    return re.search(r"\b(\d{6})\b", sent.text).group(1)  # type: ignore[union-attr]


def _enter(web: TestClient, page: Any, ticket: str, code: str) -> Any:
    return web.post(
        "/login/second-factor?method=sms&next=/account",
        data={"ticket": ticket, "code": code, "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )


def _ticket_failures(runtime: Runtime) -> list[dict[str, Any]]:
    tried = _entries(runtime, "identity.login.second_factor")
    return [e for e in tried if e["outcome"] == "failure"]


def test_a_code_against_a_used_or_expired_ticket_is_audited_without_the_ticket(
    web: TestClient, oidc_runtime: Runtime, citizen: str
) -> None:
    clock = Clock()
    oidc_runtime.clock = clock
    _log_in(web, citizen)
    used, page = _asked(web)
    code = _code(oidc_runtime, citizen)
    assert _enter(web, page, used, code).status_code == 303
    again = _enter(web, web.get("/login/second-factor?next=/account"), used, code)
    assert again.status_code == 400
    assert "This code has expired or was used up" in again.text
    stale, page = _asked(web)
    clock.now += timedelta(minutes=6)  # past the code's five minutes
    late = _enter(web, page, stale, _code(oidc_runtime, citizen))
    assert late.status_code == 400
    subject = pseudonym(citizen, key=oidc_runtime.pseudonym_key)
    failures = _ticket_failures(oidc_runtime)
    assert [(e["actor"], e["subject"], e["details"]["reason"]) for e in failures] == [
        (f"citizen:{subject}", subject, "used ticket"),
        (f"citizen:{subject}", subject, "expired ticket"),
    ]
    for entry in failures:
        assert entry["details"]["method"] == "sms"
        for secret in (citizen, used, stale, code):
            assert secret not in json.dumps(entry)


def test_a_code_against_another_sign_ins_ticket_is_audited(
    web: TestClient, oidc_runtime: Runtime, citizen: str
) -> None:
    _log_in(web, citizen)
    theirs, _page = _asked(web)
    code = _code(oidc_runtime, citizen)
    web.cookies.clear()
    _log_in(web, citizen)  # another sign-in of the same account, in another browser
    page = web.get("/login/second-factor?next=/account")
    refused = _enter(web, page, theirs, code)
    assert refused.status_code == 400
    (entry,) = _ticket_failures(oidc_runtime)
    assert entry["details"]["reason"] == "another sign-in's ticket"
    assert web.get("/account/authenticator", follow_redirects=False).status_code == 303, (
        "the session did not step up"
    )


def test_a_code_against_a_ticket_that_never_existed_is_counted_but_not_audited(
    web: TestClient, oidc_runtime: Runtime, citizen: str
) -> None:
    _log_in(web, citizen)
    page = web.get("/login/second-factor?next=/account")
    before = _count(web, "second_factor", "no")
    for n in range(3):
        assert _enter(web, page, f"made-up-ticket-{n}", "123456").status_code == 400
    assert _ticket_failures(oidc_runtime) == []
    assert _count(web, "second_factor", "no") == before + 3


# -- access refused to someone known ---------------------------------------------------------


def _denials(runtime: Runtime) -> list[dict[str, Any]]:
    return _entries(runtime, "access.denied")


@pytest.mark.parametrize(
    ("path", "role"),
    [
        ("/officer", "locker.issuer / locker.legal / signing.officer"),
        ("/admin", "identity.admin"),
        ("/admin/audit", "audit.reader"),
    ],
)
def test_a_page_of_a_role_the_citizen_lacks_is_refused_and_audited(
    web: TestClient, oidc_runtime: Runtime, citizen: str, path: str, role: str
) -> None:
    _log_in(web, citizen)
    before = _count(web, "access_denied", "yes")
    refused = web.get(path)
    assert refused.status_code == 403
    assert "This page is not for your account" in refused.text
    (entry,) = _denials(oidc_runtime)
    subject = pseudonym(citizen, key=oidc_runtime.pseudonym_key)
    assert (entry["outcome"], entry["actor"], entry["subject"]) == (
        "failure",
        f"citizen:{subject}",
        subject,
    )
    assert entry["details"] == {
        "route": path,
        "method": "GET",
        "needed": f"role:{role}",
        "client": address_pseudonym(ADDRESS, key=oidc_runtime.pseudonym_key),
    }
    assert citizen not in json.dumps(entry)
    assert _count(web, "access_denied", "yes") == before + 1


def test_a_flood_of_refused_pages_is_audited_up_to_the_cap_then_counted(
    web: TestClient, oidc_runtime: Runtime, citizen: str
) -> None:
    _log_in(web, citizen)
    before = _count(web, "access_denied", "no")
    for _ in range(13):
        assert web.get("/admin").status_code == 403
    recorded = _denials(oidc_runtime)
    assert len(recorded) == 10
    assert recorded[-1]["details"]["cap_reached"] == 15
    assert all("cap_reached" not in e["details"] for e in recorded[:-1])
    assert _count(web, "access_denied", "no") == before + 3


def _service_token(web: TestClient, rp: RelyingParty) -> dict[str, str]:
    answer = token(web, rp, grant_type="client_credentials")
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


@pytest.mark.parametrize(
    ("scopes", "department", "needed"),
    [
        (("locker.issue.dom",), "lgcd", "scope:locker.issue.birth"),
        (("locker.issue.birth",), "home", "department:lgcd"),
    ],
)
def test_a_department_token_refused_at_the_issuer_api_is_audited_naming_the_client(
    web: TestClient,
    oidc_runtime: Runtime,
    citizen: str,
    scopes: tuple[str, ...],
    department: str,
    needed: str,
) -> None:
    with oidc_runtime.transaction() as session:
        roles = oidc_runtime.provider(session).roles
        roles.add_department("lgcd", "Local Government")
        roles.add_department("home", "Home Department")
    rp = register_client(
        oidc_runtime, "records-system", kind=SERVICE, secret=True, scopes=scopes,
        department=department,
    )  # fmt: skip
    headers = {**_service_token(web, rp), "Shanakht-Cnic": citizen}
    refused = web.put(
        "/locker/issued/birth?doc_id=BC-1&title=Birth", content=b"%PDF-1.4\n%%EOF\n",
        headers=headers,
    )  # fmt: skip
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    (entry,) = _denials(oidc_runtime)
    assert (entry["outcome"], entry["actor"], entry["subject"]) == (
        "failure",
        "client:records-system",
        None,
    )
    assert entry["details"] == {
        "route": "/locker/issued/{doctype}",
        "method": "PUT",
        "needed": needed,
        "client": address_pseudonym(ADDRESS, key=oidc_runtime.pseudonym_key),
    }
    assert citizen not in json.dumps(entry)
    assert headers["Authorization"].split()[1] not in json.dumps(entry)


def test_a_citizen_token_from_a_password_only_sign_in_cannot_approve_and_is_audited(
    web: TestClient, oidc_runtime: Runtime, citizen: str
) -> None:
    portal = register_client(oidc_runtime, "portal", scopes=("openid", "locker"))
    weak = _access_token(web, portal, citizen, "openid locker")
    college = register_client(
        oidc_runtime, "gc-admissions", kind=SERVICE, secret=True, scopes=("locker.request",)
    )
    filed = web.post(
        "/exchange/requests",
        json={"cnic": citizen, "doctypes": ["birth"], "purpose_code": "edu.admission",
              "purpose_text": "Admission", "data_life_days": 30, "valid_days": 7,
              "fetch_limit": 1},
        headers=_service_token(web, college),
    )  # fmt: skip
    assert filed.status_code == 201, filed.text
    assert _denials(oidc_runtime) == [], "an allowed call writes no denial"
    refused = web.post(
        f"/exchange/requests/{filed.json()['id']}/approve",
        headers={"Authorization": f"Bearer {weak}"},
    )
    assert refused.status_code == 403
    assert refused.json()["title"] == "Sign in with a second factor first"
    (entry,) = _denials(oidc_runtime)
    subject = pseudonym(citizen, key=oidc_runtime.pseudonym_key)
    assert (entry["actor"], entry["subject"]) == (f"citizen:{subject}", subject)
    assert entry["details"]["route"] == "/exchange/requests/{request_id}/approve"
    assert entry["details"]["needed"] == f"acr:{ACR_SUBSTANTIAL}"
    assert entry["details"]["via"] == "portal"
    assert weak not in json.dumps(entry)
    assert citizen not in json.dumps(entry)
    scopeless = web.get("/exchange/inbox", headers=_service_token(web, college))
    assert scopeless.status_code == 403
    assert _denials(oidc_runtime)[-1]["details"]["needed"] == "caller:citizen"


def test_a_token_that_does_not_verify_is_counted_but_not_audited(
    web: TestClient, oidc_runtime: Runtime, citizen: str
) -> None:
    portal = register_client(oidc_runtime, "portal", scopes=("openid", "locker"))
    issued = _access_token(web, portal, citizen, "openid locker")
    revoked = web.post("/oauth/revoke", data={"token": issued, **portal.auth()[0]},
                       headers=portal.auth()[1])  # fmt: skip
    assert revoked.status_code == 200
    head, body, _signature = issued.split(".")
    before = _count(web, "access_token", "no")
    for value in ("not-a-token", f"{head}.{body}.forged", issued):
        refused = web.get("/locker/documents", headers={"Authorization": f"Bearer {value}"})
        assert refused.status_code == 401, refused.text
    assert _denials(oidc_runtime) == []
    assert _count(web, "access_token", "no") == before + 3


def test_a_token_userinfo_cannot_verify_is_counted_but_not_audited(
    web: TestClient, oidc_runtime: Runtime, citizen: str
) -> None:
    """As at the bearer APIs: a forged, expired or malformed token is counted, names nobody
    the log can trust, and is answered 401 with the RFC 6750 invalid_token challenge."""
    portal = register_client(oidc_runtime, "portal", scopes=("openid", "locker"))
    issued = _access_token(web, portal, citizen, "openid locker")
    head, body, _signature = issued.split(".")
    clock = Clock()
    oidc_runtime.clock = clock
    answered = web.get("/oauth/userinfo", headers={"Authorization": f"Bearer {issued}"})
    assert answered.status_code == 200, "the token verifies, until it is changed or expires"
    before = _count(web, "access_token", "no")
    for value, later in (("not-a-token", 0), (f"{head}.{body}.forged", 0), (issued, 11)):
        clock.now += timedelta(minutes=later)  # the last one, after its 10 minutes
        refused = web.get("/oauth/userinfo", headers={"Authorization": f"Bearer {value}"})
        assert refused.status_code == 401, refused.text
        challenge = refused.headers["www-authenticate"]
        assert re.fullmatch(r'Bearer realm="shanakht", error="invalid_token", '
                            r'error_description="[ !#-\[\]-~]*"', challenge), challenge  # fmt: skip
    assert _denials(oidc_runtime) == []
    assert _count(web, "access_token", "no") == before + 3
    assert _count(web, "access_token", "yes") == 0


# Every bearer-protected resource, as (method, path, body): the citizen and department APIs,
# userinfo, the officer's signing API, and the audit entries a token may read.
PROTECTED = [
    ("GET", "/oauth/userinfo", None),
    ("GET", "/locker/documents", None),
    ("GET", "/locker/issued/birth?doc_id=x", None),
    ("GET", "/exchange/inbox", None),
    ("POST", "/signing/cms?department=sed", b"to sign"),
    ("GET", "/audit/entries", None),
]


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
def test_a_request_with_no_token_gets_a_bare_challenge_and_is_not_counted(
    web: TestClient, oidc_runtime: Runtime, method: str, path: str, body: bytes | None
) -> None:
    """RFC 6750 3.1: a request with no authentication (none at all, or in a scheme the service
    does not read) is told which scheme and realm to use and no error code; nothing was wrong
    with a token, so none is counted as one that does not verify."""
    before = _count(web, "access_token", "no")
    for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer "}):
        refused = web.request(method, path, content=body, headers=headers)
        assert refused.status_code == 401, (headers, refused.text)
        assert refused.headers["www-authenticate"] == 'Bearer realm="shanakht"', headers
    assert _count(web, "access_token", "no") == before
    assert _denials(oidc_runtime) == []


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
def test_a_token_that_does_not_verify_keeps_the_invalid_token_challenge(
    web: TestClient, oidc_runtime: Runtime, method: str, path: str, body: bytes | None
) -> None:
    """The other half of RFC 6750 3.1: a token sent and refused names the error, and counts."""
    before = _count(web, "access_token", "no")
    refused = web.request(method, path, content=body, headers={"Authorization": "Bearer forged"})
    assert refused.status_code == 401, refused.text
    challenge = refused.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="shanakht", error="invalid_token", '), challenge
    assert "error_description=" in challenge
    proof_alone = web.request(method, path, content=body, headers={"DPoP": "a.proof.alone"})
    assert proof_alone.status_code == 401, proof_alone.text
    assert 'error="invalid_token"' in proof_alone.headers["www-authenticate"]
    assert _count(web, "access_token", "no") == before + 2
    assert _denials(oidc_runtime) == []


def test_a_citizen_asking_for_anothers_audit_entries_is_refused_and_audited(
    web: TestClient, oidc_runtime: Runtime, citizen: str
) -> None:
    _log_in(web, citizen)
    other = pseudonym("3520112345671", key=oidc_runtime.pseudonym_key)
    refused = web.get(f"/audit/entries?subject={other}")
    assert refused.status_code == 403
    (entry,) = _denials(oidc_runtime)
    subject = pseudonym(citizen, key=oidc_runtime.pseudonym_key)
    assert (entry["actor"], entry["subject"]) == (f"citizen:{subject}", subject)
    assert entry["details"]["route"] == "/audit/entries"
    assert entry["details"]["needed"] == "role:audit.reader"
    assert other not in json.dumps(entry), "whom they asked about is not named"
    mine = web.get("/audit/entries").json()["entries"]
    assert "access.denied" in {e["action"] for e in mine}, "the citizen sees their own refusal"


def test_a_refused_page_stands_when_its_entry_cannot_be_written(
    web: TestClient, oidc_runtime: Runtime, citizen: str
) -> None:
    _log_in(web, citizen)
    before = _count(web, "access_denied", "no")
    broken = OperationalError("INSERT", {}, Exception("the database went away"))
    with mock.patch.object(oidc_runtime, "failure_records", side_effect=broken):
        refused = web.get("/admin")
    assert refused.status_code == 403
    assert "This page is not for your account" in refused.text
    assert _count(web, "access_denied", "no") == before + 1


def test_an_officer_token_refused_at_the_signing_api_is_audited(
    web: TestClient, oidc_runtime: Runtime, citizen: str
) -> None:
    app = register_client(oidc_runtime, "etransfer", scopes=("openid", "signing"))
    weak = _access_token(web, app, citizen, "openid signing")
    refused = web.post(
        "/signing/cms?department=sed", content=b"any file",
        headers={"Authorization": f"Bearer {weak}"},
    )  # fmt: skip
    assert refused.status_code == 403
    assert refused.json()["title"] == "Not allowed"
    (entry,) = _denials(oidc_runtime)
    subject = pseudonym(citizen, key=oidc_runtime.pseudonym_key)
    assert (entry["actor"], entry["details"]["via"]) == (f"citizen:{subject}", "etransfer")
    assert entry["details"]["route"] == "/signing/cms"
    assert entry["details"]["needed"] == f"acr:{ACR_SUBSTANTIAL}"
    assert weak not in json.dumps(entry)
