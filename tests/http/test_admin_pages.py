"""The administrator's pages through the app: who may open them, what a second factor guards,
what each form refuses (beside the field), and that every act reaches the domain and the
audit log as `shanakht ...` does."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from unittest import mock

import pytest
from fastapi.testclient import TestClient
from joserfc.jwk import ECKey
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import OperationalError

from api.administration import check_integrity
from api.app import create_app
from api.job_runner import beating
from api.key_versions import RECHECK_SECONDS
from api.routes import admin_keys
from api.runtime import AUDIT_CHECKPOINT_KEY, Runtime
from audit import AuditEntry, AuditEvent, address_pseudonym
from audit.models import entries
from identity.models import role_proposals
from identity.nadra import SCENARIOS, CitizenRecord, read_registry
from locker import jobs, rewrap
from locker.access import Accessor
from locker.errors import WrappedKeyInvalid
from tests.http.oidc_kit import PASSWORD, csrf_of, press_send, register_citizen
from tests.http.test_telemetry import sample
from tests.unit.audit.helpers import tampering

DEPARTMENT = "pitb"
PRIVATE_JWKS = json.dumps({"keys": [ECKey.generate_key("P-256").as_dict(private=True)]})


def _record(runtime: Runtime, scenario: str) -> CitizenRecord:
    return read_registry(runtime.identity.nadra_file)[SCENARIOS[scenario]]


def _citizen(runtime: Runtime, scenario: str, *roles: str) -> CitizenRecord:
    """A registered citizen holding `roles` in DEPARTMENT, granted through the domain."""
    record = _record(runtime, scenario)
    register_citizen(runtime, record)
    with runtime.transaction() as session:
        provider = runtime.provider(session)
        if DEPARTMENT not in {d for d, _ in provider.roles.departments()}:
            provider.roles.add_department(DEPARTMENT, "Punjab IT Board")
        account = provider.accounts.by_pseudonym(_pseudonym(runtime, record.cnic))
        assert account is not None
        for role in roles:
            provider.roles.grant(account.id, account.pseudonym, DEPARTMENT, role, by="admin:test")
    return record


def _pseudonym(runtime: Runtime, cnic: str) -> str:
    from audit import pseudonym

    return pseudonym(cnic, key=runtime.pseudonym_key)


def _sign_in(web: TestClient, runtime: Runtime, record: CitizenRecord, *, code: bool) -> None:
    page = web.get("/login")
    done = web.post(
        "/login",
        data={"cnic": record.cnic, "password": PASSWORD, "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    if not code:
        return
    step = web.get("/login/second-factor?next=/admin")
    step = web.get(press_send(web, step.text).headers["location"])
    text = runtime.identity.sms.last_to(record.mobile_numbers[0]).text  # type: ignore[union-attr]
    sms = re.search(r"\b(\d{6})\b", text).group(1)  # type: ignore[union-attr]
    ticket = re.search(r'name="ticket" value="([^"]+)"', step.text).group(1)  # type: ignore[union-attr]
    proved = web.post(
        "/login/second-factor?method=sms&next=/admin",
        data={"ticket": ticket, "code": sms, "csrf": csrf_of(step.text)},
        follow_redirects=False,
    )
    assert proved.status_code == 303
    assert proved.headers["location"] == "/admin"


@pytest.fixture
def admin(web: TestClient, oidc_runtime: Runtime) -> CitizenRecord:
    record = _citizen(oidc_runtime, "active_female", "identity.admin")
    _sign_in(web, oidc_runtime, record, code=True)
    return record


def _post(web: TestClient, path: str, form: dict[str, str], page: str | None = None):  # type: ignore[no-untyped-def]
    csrf = csrf_of(web.get(page or path).text)
    return web.post(path, data={"csrf": csrf, **form}, follow_redirects=False)


def _audit(runtime: Runtime) -> list[AuditEvent]:
    with runtime.engine.connect() as connection:
        rows = connection.execute(select(entries.c.entry).order_by(entries.c.seq)).all()
    return [AuditEntry.from_bytes(r.entry).event for r in rows]


def _entry_text(event: AuditEvent) -> str:
    return json.dumps([event.actor, event.subject, event.resource, event.details, event.purpose])


def _actions(runtime: Runtime) -> list[str]:
    return [e.action for e in _audit(runtime)]


# -- who may open what -------------------------------------------------------------------------


def test_signed_out_goes_to_sign_in(web: TestClient) -> None:
    response = web.get("/admin/departments", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fadmin%2Fdepartments"


@pytest.mark.parametrize(
    "path",
    ["/admin", "/admin/departments", "/admin/officers", "/admin/clients", "/admin/keys",
     "/admin/audit"],
)  # fmt: skip
def test_a_citizen_without_the_role_gets_the_403_page(
    web: TestClient, oidc_runtime: Runtime, path: str
) -> None:
    record = _citizen(oidc_runtime, "active_male")
    _sign_in(web, oidc_runtime, record, code=True)
    response = web.get(path)
    assert response.status_code == 403
    assert "This page is not for your account" in response.text
    assert "text/html" in response.headers["content-type"]


def test_the_role_is_asked_for_before_the_second_factor(
    web: TestClient, oidc_runtime: Runtime
) -> None:
    record = _citizen(oidc_runtime, "active_male")
    _sign_in(web, oidc_runtime, record, code=False)
    assert web.get("/admin/keys", follow_redirects=False).status_code == 403


def test_an_administrator_gives_a_second_factor_first(
    web: TestClient, oidc_runtime: Runtime
) -> None:
    record = _citizen(oidc_runtime, "active_female", "identity.admin")
    _sign_in(web, oidc_runtime, record, code=False)
    response = web.get("/admin/clients", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login/second-factor?next=%2Fadmin%2Fclients"
    # a form posted without it is sent to the section's page afterwards, not to the POST URL
    posted = web.post("/admin/departments", data={"csrf": "x"}, follow_redirects=False)
    assert posted.headers["location"] == "/login/second-factor?next=%2Fadmin%2Fdepartments"


def test_an_audit_reader_views_and_verifies_but_may_not_sign_or_administer(
    web: TestClient, oidc_runtime: Runtime
) -> None:
    record = _citizen(oidc_runtime, "active_male", "audit.reader")
    _sign_in(web, oidc_runtime, record, code=True)
    page = web.get("/admin/audit")
    assert page.status_code == 200
    assert "Verify the log now" in page.text
    assert "Sign a checkpoint now" not in page.text
    csrf = csrf_of(page.text)
    verified = web.post("/admin/audit/verify", data={"csrf": csrf})
    assert verified.status_code == 200
    assert "The whole log verified" in verified.text
    before = _actions(oidc_runtime)
    signed = web.post("/admin/audit/checkpoint", data={"csrf": csrf}, follow_redirects=False)
    assert signed.status_code == 403
    for path in ("/admin/departments", "/admin/officers", "/admin/keys"):
        assert web.get(path).status_code == 403
    grant = web.post(
        "/admin/officers/whoever/grant",
        data={"csrf": csrf, "department": DEPARTMENT, "role": "identity.admin"},
    )
    assert grant.status_code == 403
    # Nothing was done; each refusal is a failure entry saying the role it needed (item 12).
    refused = _audit(oidc_runtime)[len(before) :]
    assert [(e.action, e.outcome, e.details["needed"]) for e in refused] == [
        ("access.denied", "failure", "role:identity.admin")
    ] * 5
    assert {e.details["route"] for e in refused} == {
        "/admin/audit/checkpoint", "/admin/departments", "/admin/officers", "/admin/keys",
        "/admin/officers/{citizen_id}/grant",
    }  # fmt: skip


def test_the_audit_page_shows_the_key_version_that_signed_its_latest_checkpoint(
    web: TestClient, oidc_runtime: Runtime
) -> None:
    """After `keys rotate checkpoint`, the latest checkpoint may still be the old version's
    (none signed since the rotation): the key shown beside it is the one it opens under."""
    record = _citizen(oidc_runtime, "active_male", "audit.reader")
    _sign_in(web, oidc_runtime, record, code=True)
    with oidc_runtime.transaction() as session:
        oidc_runtime.audit_log(session).checkpoint()
    first = oidc_runtime.audit_signer.verifier_key
    oidc_runtime.keys.add_version(AUDIT_CHECKPOINT_KEY)  # rotated; this process sees it
    time.sleep(RECHECK_SECONDS)  # at its first use after this long (`api.key_versions`)
    second = oidc_runtime.audit_signer.verifier_key
    assert second != first
    page = web.get("/admin/audit")
    assert first in page.text
    assert second not in page.text
    with oidc_runtime.transaction() as session:
        oidc_runtime.audit_log(session).checkpoint()  # the new version's first
    page = web.get("/admin/audit")
    assert second in page.text
    assert first not in page.text


def test_an_audit_reader_needs_no_second_factor_to_read(
    web: TestClient, oidc_runtime: Runtime
) -> None:
    record = _citizen(oidc_runtime, "active_male", "audit.reader")
    _sign_in(web, oidc_runtime, record, code=False)
    assert web.get("/admin/audit").status_code == 200
    overview = web.get("/admin")
    assert overview.status_code == 200
    assert 'href="/admin/keys"' not in overview.text


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/admin/departments", {"department_id": "sed", "name": "School Education"}),
        ("/admin/clients/new", {"client_id": "x"}),
        ("/admin/keys/rotate", {"which": "oidc"}),
        ("/admin/keys/rewrap", {"action": "start"}),
        ("/admin/audit/checkpoint", {}),
        ("/admin/audit/verify", {}),
        ("/admin/officers", {"cnic": "3520212345671"}),
    ],
)
def test_a_form_without_its_csrf_token_is_refused(
    web: TestClient, oidc_runtime: Runtime, admin: CitizenRecord, path: str, form: dict[str, str]
) -> None:
    before = _actions(oidc_runtime)
    response = web.post(path, data=form, follow_redirects=False)
    assert response.status_code == 403
    assert "The form has expired" in response.text
    # Nothing changed: the log gained only the refusal itself (threat model item 12).
    assert _actions(oidc_runtime) == [*before, "identity.csrf.refused"]


# -- departments -------------------------------------------------------------------------------


def test_departments_list_and_add(
    web: TestClient, oidc_runtime: Runtime, admin: CitizenRecord
) -> None:
    page = web.get("/admin/departments")
    assert page.status_code == 200
    assert "Punjab IT Board" in page.text
    added = _post(web, "/admin/departments", {"department_id": "sed", "name": "School Education"})
    assert added.status_code == 303
    assert added.headers["location"] == "/admin/departments?added=sed"
    shown = web.get(added.headers["location"])
    assert "Department sed added." in shown.text
    assert "School Education" in shown.text
    with oidc_runtime.transaction() as session:
        assert ("sed", "School Education") in oidc_runtime.provider(session).roles.departments()
    last = _audit(oidc_runtime)[-1]
    assert last.action == "identity.department.added"
    assert last.resource == "department:sed"
    assert last.actor == f"citizen:{_pseudonym(oidc_runtime, admin.cnic)}"


@pytest.mark.parametrize(
    ("form", "field", "words"),
    [
        ({"department_id": "SED!", "name": "School"}, "department_id", "lower-case"),
        ({"department_id": "x", "name": "School"}, "department_id", "2 to 32"),
        ({"department_id": DEPARTMENT, "name": "Again"}, "department_id", "already"),
        ({"department_id": "sed", "name": "  "}, "name", "full name"),
    ],
)
def test_a_bad_department_is_explained_beside_the_field(
    web: TestClient, admin: CitizenRecord, form: dict[str, str], field: str, words: str
) -> None:
    response = _post(web, "/admin/departments", form)
    assert response.status_code == 422
    error = re.search(rf'<p class="field-error" id="{field}-error">([^<]+)</p>', response.text)
    assert error
    assert words in error.group(1)
    assert f'id="{field}"' in response.text
    assert 'aria-invalid="true"' in response.text
    assert f'value="{form["department_id"]}"' in response.text  # what was typed is kept


# -- officers and roles ------------------------------------------------------------------------


def test_find_an_officer_grant_and_revoke(
    web: TestClient, oidc_runtime: Runtime, admin: CitizenRecord
) -> None:
    officer = _citizen(oidc_runtime, "active_male")
    found = _post(web, "/admin/officers", {"cnic": officer.cnic})
    assert found.status_code == 303
    where = found.headers["location"]
    assert officer.cnic not in where, "a CNIC never goes in a URL"
    page = web.get(where)
    assert officer.full_name in page.text
    assert "No roles" in page.text
    granted = _post(web, f"{where}/grant", {"department": DEPARTMENT, "role": "locker.issuer"},
                    page=where)  # fmt: skip
    assert granted.status_code == 303
    page = web.get(granted.headers["location"])
    assert "Role granted." in page.text
    assert "locker.issuer" in page.text
    entry = _audit(oidc_runtime)[-1]
    assert entry.action == "identity.role.granted"
    assert entry.subject == _pseudonym(oidc_runtime, officer.cnic)
    assert entry.actor == f"citizen:{_pseudonym(oidc_runtime, admin.cnic)}"
    assert entry.details == {"role": "locker.issuer"}
    revoked = _post(web, f"{where}/revoke", {"department": DEPARTMENT, "role": "locker.issuer"},
                    page=where)  # fmt: skip
    assert revoked.status_code == 303
    assert "Role taken away." in web.get(revoked.headers["location"]).text
    assert _audit(oidc_runtime)[-1].action == "identity.role.revoked"
    again = _post(web, f"{where}/revoke", {"department": DEPARTMENT, "role": "locker.issuer"},
                  page=where)  # fmt: skip
    assert again.status_code == 409
    assert "was not held" in again.text
    for entry in _audit(oidc_runtime):
        assert officer.cnic not in _entry_text(entry)


@pytest.mark.parametrize(
    ("cnic", "words"),
    [("35202-123", "13 digits"), ("3520299999991", "No Shanakht account holds this CNIC")],
)
def test_a_cnic_that_finds_no_account_is_said_plainly(
    web: TestClient, admin: CitizenRecord, cnic: str, words: str
) -> None:
    response = _post(web, "/admin/officers", {"cnic": cnic})
    assert response.status_code == 422
    error = re.search(r'<p class="field-error" id="cnic-error">([^<]+)</p>', response.text)
    assert error
    assert words in error.group(1)
    assert f'value="{cnic}"' in response.text


def test_unknown_role_or_department_is_explained_beside_the_field(
    web: TestClient, oidc_runtime: Runtime, admin: CitizenRecord
) -> None:
    officer = _citizen(oidc_runtime, "active_male")
    where = _post(web, "/admin/officers", {"cnic": officer.cnic}).headers["location"]
    bad_role = _post(web, f"{where}/grant", {"department": DEPARTMENT, "role": "root"}, page=where)
    assert bad_role.status_code == 422
    assert 'id="role-error"' in bad_role.text
    assert "There is no such role" in bad_role.text
    bad_dept = _post(web, f"{where}/grant", {"department": "nope", "role": "locker.issuer"},
                     page=where)  # fmt: skip
    assert bad_dept.status_code == 422
    assert 'id="department-error"' in bad_dept.text
    twice = {"department": DEPARTMENT, "role": "signing.officer"}
    assert _post(web, f"{where}/grant", twice, page=where).status_code == 303
    again = _post(web, f"{where}/grant", twice, page=where)
    assert again.status_code == 422
    assert "holds that role in that department already" in again.text


def test_an_unknown_account_is_404_and_an_admin_cannot_unmake_themself(
    web: TestClient, oidc_runtime: Runtime, admin: CitizenRecord
) -> None:
    assert web.get("/admin/officers/no-such-id").status_code == 404
    form = {"department": DEPARTMENT, "role": "locker.issuer"}
    missing = _post(web, "/admin/officers/no-such-id/grant", form, page="/admin/officers")
    assert missing.status_code == 404
    me = _post(web, "/admin/officers", {"cnic": admin.cnic}).headers["location"]
    refused = _post(web, f"{me}/revoke", {"department": DEPARTMENT, "role": "identity.admin"},
                    page=me)  # fmt: skip
    assert refused.status_code == 409
    assert "ask another administrator" in refused.text


def test_an_administrator_cannot_grant_themself_a_role(
    web: TestClient, oidc_runtime: Runtime, admin: CitizenRecord
) -> None:
    me = _post(web, "/admin/officers", {"cnic": admin.cnic}).headers["location"]
    before = len(_audit(oidc_runtime))
    refused = _post(web, f"{me}/grant", {"department": DEPARTMENT, "role": "locker.legal"},
                    page=me)  # fmt: skip
    assert refused.status_code == 422
    error = re.search(r'<p class="field-error" id="role-error">([^<]+)</p>', refused.text)
    assert error
    assert "ask another administrator" in error.group(1)
    assert "locker.legal" not in web.get(me).text.split("<main", 1)[1].split("<form", 1)[0]
    # Nothing proposed or granted: the refusal alone is recorded (threat model item 12).
    (denied,) = _audit(oidc_runtime)[before:]
    assert (denied.action, denied.details["needed"]) == ("access.denied", "rule:four-eyes")
    with oidc_runtime.transaction() as session:
        account_id = me.rsplit("/", 1)[1]
        assert not oidc_runtime.provider(session).roles.has(account_id, "locker.legal")


# -- grants of locker.legal and identity.admin: two administrators ------------------------------


@pytest.fixture
def second_admin(oidc_runtime: Runtime) -> Iterator[tuple[TestClient, CitizenRecord]]:
    """Another administrator, signed in with the SMS code in a browser of their own."""
    record = _citizen(oidc_runtime, "two_mobiles", "identity.admin")
    with TestClient(create_app(oidc_runtime), base_url="https://shanakht.test") as other:
        _sign_in(other, oidc_runtime, record, code=True)
        yield other, record


def _propose(web: TestClient, oidc_runtime: Runtime, grantee: CitizenRecord, role: str) -> str:
    """The first administrator grants `role` on the officer's page; the proposal's id."""
    where = _post(web, "/admin/officers", {"cnic": grantee.cnic}).headers["location"]
    proposed = _post(web, f"{where}/grant", {"department": DEPARTMENT, "role": role}, page=where)
    assert proposed.status_code == 303
    assert proposed.headers["location"] == f"{where}?done=proposed"
    with oidc_runtime.engine.connect() as connection:
        return str(
            connection.execute(
                select(role_proposals.c.id).order_by(role_proposals.c.created_at.desc())
            )
            .scalars()
            .first()
        )


def _shown(runtime: Runtime, proposal: str) -> dict[str, str]:
    """The approve form of a proposal as its page sends it: officer, department and role."""
    with runtime.engine.connect() as connection:
        row = connection.execute(
            select(role_proposals).where(role_proposals.c.id == proposal)
        ).one()
    return {"grantee": row.grantee, "department": row.department_id, "role": row.role}


def _approve(other: TestClient, runtime: Runtime, proposal: str, **changes: str):  # type: ignore[no-untyped-def]
    """The second administrator presses Approve (the form with `changes`)."""
    form = {**_shown(runtime, proposal), **changes}
    return _post(other, f"/admin/proposals/{proposal}/approve", form, page="/admin/officers")


def _holds(runtime: Runtime, record: CitizenRecord, role: str) -> bool:
    with runtime.transaction() as session:
        provider = runtime.provider(session)
        account = provider.accounts.by_pseudonym(_pseudonym(runtime, record.cnic))
        assert account is not None
        return provider.roles.has(account.id, role)


def test_a_grant_of_locker_legal_waits_for_a_second_administrator(
    web: TestClient,
    oidc_runtime: Runtime,
    admin: CitizenRecord,
    second_admin: tuple[TestClient, CitizenRecord],
) -> None:
    other, second = second_admin
    officer = _citizen(oidc_runtime, "active_male")
    where = _post(web, "/admin/officers", {"cnic": officer.cnic}).headers["location"]
    assert "are given only when a second administrator approves" in web.get(where).text
    proposal = _propose(web, oidc_runtime, officer, "locker.legal")
    page = web.get(f"{where}?done=proposed")
    assert "Grant proposed. Another administrator must approve it within 7 days" in page.text
    assert "Waiting for a second administrator" in page.text
    assert not _holds(oidc_runtime, officer, "locker.legal")
    # The proposer sees nothing to decide, and a forged approval is refused.
    assert "No grant waits for your approval" in web.get("/admin/proposals").text
    own = _approve(web, oidc_runtime, proposal)
    assert own.status_code == 403
    assert "You proposed this grant: another administrator must decide it." in own.text
    assert not _holds(oidc_runtime, officer, "locker.legal")
    # The second administrator is told on the desk, and approves on the proposals page.
    desk = other.get("/admin")
    assert "Grants waiting for your approval: 1" in desk.text
    listed = other.get("/admin/proposals")
    assert officer.full_name in listed.text
    assert admin.full_name in listed.text
    assert f'action="/admin/proposals/{proposal}/approve"' in listed.text
    assert f'<label for="refusal_reason-{proposal}">' in listed.text
    assert 'name="role" value="locker.legal"' in listed.text
    approved = _approve(other, oidc_runtime, proposal)
    assert approved.status_code == 303
    assert "The officer holds the role now." in other.get(approved.headers["location"]).text
    assert _holds(oidc_runtime, officer, "locker.legal")
    again = _approve(other, oidc_runtime, proposal)
    assert again.status_code == 409
    assert "decided this proposal already" in again.text
    first, second_p = (f"citizen:{_pseudonym(oidc_runtime, r.cnic)}" for r in (admin, second))
    # The forged approval and the second one are `access.denied` entries (test_auth_failures).
    proposed, granted = [e for e in _audit(oidc_runtime) if e.action != "access.denied"][-2:]
    assert (proposed.action, proposed.actor) == ("identity.role.proposed", first)
    assert (granted.action, granted.actor) == ("identity.role.granted", second_p)
    assert granted.subject == _pseudonym(oidc_runtime, officer.cnic)
    assert granted.details == {
        "role": "locker.legal",
        "proposal": proposal,
        "proposer": first.removeprefix("citizen:"),
        "approver": second_p.removeprefix("citizen:"),
    }
    for entry in _audit(oidc_runtime):
        assert officer.cnic not in _entry_text(entry)


def test_a_refused_grant_gives_nothing_and_needs_a_reason(
    web: TestClient,
    oidc_runtime: Runtime,
    admin: CitizenRecord,
    second_admin: tuple[TestClient, CitizenRecord],
) -> None:
    other, second = second_admin
    officer = _citizen(oidc_runtime, "active_male")
    proposal = _propose(web, oidc_runtime, officer, "identity.admin")
    refuse = f"/admin/proposals/{proposal}/refuse"
    blank = _post(other, refuse, {"refusal_reason": "  "}, page="/admin/officers")
    assert blank.status_code == 422
    error = re.search(rf'<p class="field-error" id="refusal_reason-{proposal}-error">([^<]+)</p>',
                      blank.text)  # fmt: skip
    assert error
    assert "Say why you refuse" in error.group(1)
    refused = _post(other, refuse, {"refusal_reason": "Not staff of the board"},
                    page="/admin/officers")  # fmt: skip
    assert refused.status_code == 303
    assert "was not given the role" in other.get(refused.headers["location"]).text
    assert not _holds(oidc_runtime, officer, "identity.admin")
    late = _approve(other, oidc_runtime, proposal)
    assert late.status_code == 409
    assert not _holds(oidc_runtime, officer, "identity.admin")
    entry, denied = _audit(oidc_runtime)[-2:]
    assert (denied.action, denied.details["needed"]) == ("access.denied", "rule:decided-once")
    assert entry.action == "identity.role.refused"
    assert entry.details["proposer"] == _pseudonym(oidc_runtime, admin.cnic)
    assert entry.details["refuser"] == _pseudonym(oidc_runtime, second.cnic)


def test_the_grantee_cannot_approve_their_own_grant(
    web: TestClient,
    oidc_runtime: Runtime,
    admin: CitizenRecord,
    second_admin: tuple[TestClient, CitizenRecord],
) -> None:
    other, second = second_admin
    proposal = _propose(web, oidc_runtime, second, "locker.legal")
    assert "No grant waits for your approval" in other.get("/admin/proposals").text
    forged = _approve(other, oidc_runtime, proposal)
    assert forged.status_code == 403
    assert "This grant is for you: another administrator must decide it." in forged.text
    assert not _holds(oidc_runtime, second, "locker.legal")


def test_an_expired_proposal_grants_nothing(
    web: TestClient,
    oidc_runtime: Runtime,
    admin: CitizenRecord,
    second_admin: tuple[TestClient, CitizenRecord],
) -> None:
    other, _second = second_admin
    officer = _citizen(oidc_runtime, "active_male")
    proposal = _propose(web, oidc_runtime, officer, "locker.legal")
    with oidc_runtime.transaction() as session:  # proposed 7 days ago, sealed as the service would
        row = session.execute(select(role_proposals)).one()._mapping
        week_ago = oidc_runtime.clock().replace(microsecond=0) - timedelta(days=7)
        old = oidc_runtime.row_seal.sealed(role_proposals, {**row, "created_at": week_ago})
        session.execute(update(role_proposals).values(old))
    assert "Grants waiting for your approval" not in other.get("/admin").text
    expired = _approve(other, oidc_runtime, proposal)
    assert expired.status_code == 409
    assert "nobody decided it within 7 days" in expired.text
    assert not _holds(oidc_runtime, officer, "locker.legal")


def test_a_proposal_forged_or_changed_by_sql_is_not_shown_and_grants_nothing(
    web: TestClient,
    oidc_runtime: Runtime,
    admin: CitizenRecord,
    second_admin: tuple[TestClient, CitizenRecord],
) -> None:
    """Whoever can write the database, but holds none of the service's keys, names a real
    administrator as the proposer of identity.admin for an officer; and changes the role of a
    genuine proposal. The second administrator sees neither, and an approval grants nothing."""
    other, _second = second_admin
    officer = _citizen(oidc_runtime, "active_male")
    genuine = _propose(web, oidc_runtime, officer, "locker.legal")
    with oidc_runtime.transaction() as session:
        session.execute(
            insert(role_proposals).values(
                id="forgedbysql", grantee=_pseudonym(oidc_runtime, officer.cnic),
                department_id=DEPARTMENT, role="identity.admin",
                proposer=_pseudonym(oidc_runtime, admin.cnic),
                created_at=oidc_runtime.clock(), status="pending",
            )
        )  # fmt: skip
        session.execute(
            update(role_proposals)
            .where(role_proposals.c.id == genuine)
            .values(role="identity.admin")
        )
    assert "Grants waiting for your approval" not in other.get("/admin").text
    listed = other.get("/admin/proposals")
    assert "No grant waits for your approval" in listed.text
    assert "forgedbysql" not in listed.text
    for proposal in ("forgedbysql", genuine):
        forged = _approve(other, oidc_runtime, proposal)
        assert forged.status_code == 404
        assert "There is no such proposal." in forged.text
    assert not _holds(oidc_runtime, officer, "identity.admin")
    assert not _holds(oidc_runtime, officer, "locker.legal")


def test_an_approval_form_naming_another_grant_is_refused(
    web: TestClient,
    oidc_runtime: Runtime,
    admin: CitizenRecord,
    second_admin: tuple[TestClient, CitizenRecord],
) -> None:
    other, _second = second_admin
    officer = _citizen(oidc_runtime, "active_male")
    proposal = _propose(web, oidc_runtime, officer, "locker.legal")
    for changed in ({"role": "identity.admin"}, {"grantee": "p:" + "X" * 43}, {"department": ""}):
        refused = _approve(other, oidc_runtime, proposal, **changed)
        assert refused.status_code == 409, changed
        assert "This proposal no longer says what you were shown: nothing was granted." in (
            refused.text
        )
    assert not _holds(oidc_runtime, officer, "locker.legal")
    assert _approve(other, oidc_runtime, proposal).status_code == 303  # the form as shown
    assert _holds(oidc_runtime, officer, "locker.legal")


def test_a_proposal_whose_proposer_lost_identity_admin_is_not_approved(
    web: TestClient,
    oidc_runtime: Runtime,
    admin: CitizenRecord,
    second_admin: tuple[TestClient, CitizenRecord],
) -> None:
    other, _second = second_admin
    officer = _citizen(oidc_runtime, "active_male")
    proposal = _propose(web, oidc_runtime, officer, "identity.admin")
    with oidc_runtime.transaction() as session:
        provider = oidc_runtime.provider(session)
        proposer = provider.accounts.by_pseudonym(_pseudonym(oidc_runtime, admin.cnic))
        assert proposer is not None
        assert provider.roles.revoke(proposer.id, proposer.pseudonym, DEPARTMENT,
                                     "identity.admin", by="admin:test")  # fmt: skip
    refused = _approve(other, oidc_runtime, proposal)
    assert refused.status_code == 409
    assert "is no longer an administrator, so it cannot be approved" in refused.text
    assert not _holds(oidc_runtime, officer, "identity.admin")
    other.get("/lang/ur")
    urdu = _approve(other, oidc_runtime, proposal)
    assert "جس منتظم نے یہ کردار تجویز کیا تھا وہ اب منتظم نہیں رہا" in urdu.text


def _denials(runtime: Runtime) -> list[AuditEvent]:
    return [e for e in _audit(runtime) if e.action == "access.denied"]


def _is_denial(
    runtime: Runtime, event: AuditEvent, record: CitizenRecord, route: str, needed: str
) -> None:
    """`event` refuses `record`'s account, named by pseudonym, `needed` at `route` (a POST)."""
    who = _pseudonym(runtime, record.cnic)
    assert (event.outcome, event.actor, event.subject) == ("failure", f"citizen:{who}", who)
    assert event.details == {
        "route": route,
        "method": "POST",
        "needed": needed,
        "client": address_pseudonym("testclient", key=runtime.pseudonym_key),
    }


def test_the_two_person_rule_refused_on_the_proposals_page_is_audited(
    web: TestClient,
    oidc_runtime: Runtime,
    admin: CitizenRecord,
    second_admin: tuple[TestClient, CitizenRecord],
) -> None:
    """Deciding one's own proposal, one for oneself, one decided already: each an
    `access.denied` entry (threat model item 12) naming the administrator by pseudonym and the
    rule, never the proposal, the officer or a CNIC. A reason left out is a field to fix."""
    other, second = second_admin
    officer = _citizen(oidc_runtime, "active_male")
    proposal = _propose(web, oidc_runtime, officer, "locker.legal")
    _propose(web, oidc_runtime, second, "locker.legal")
    with oidc_runtime.engine.connect() as connection:  # two may share a second: by grantee
        for_second = connection.execute(
            select(role_proposals.c.id).where(
                role_proposals.c.grantee == _pseudonym(oidc_runtime, second.cnic)
            )
        ).scalar_one()
    assert _approve(web, oidc_runtime, proposal).status_code == 403
    assert _approve(other, oidc_runtime, for_second).status_code == 403
    refuse = f"/admin/proposals/{proposal}/refuse"
    blank = _post(other, refuse, {"refusal_reason": ""}, page="/admin/officers")
    assert blank.status_code == 422
    assert len(_denials(oidc_runtime)) == 2, "a reason to fix is no access refused"
    assert _approve(other, oidc_runtime, proposal).status_code == 303
    twice = _post(other, refuse, {"refusal_reason": "Not staff"}, page="/admin/officers")
    assert twice.status_code == 409
    assert _holds(oidc_runtime, officer, "locker.legal")
    own, for_me, decided = _denials(oidc_runtime)
    decide = "/admin/proposals/{proposal_id}"
    _is_denial(oidc_runtime, own, admin, f"{decide}/approve", "rule:four-eyes")
    _is_denial(oidc_runtime, for_me, second, f"{decide}/approve", "rule:four-eyes")
    _is_denial(oidc_runtime, decided, second, f"{decide}/refuse", "rule:decided-once")
    grantee = _pseudonym(oidc_runtime, officer.cnic)
    for event in (own, for_me, decided):
        for secret in (proposal, for_second, grantee, officer.cnic, admin.cnic, second.cnic):
            assert secret not in _entry_text(event)


def test_a_refused_decision_on_the_proposals_page_stands_when_its_entry_cannot_be_written(
    web: TestClient, oidc_runtime: Runtime, admin: CitizenRecord
) -> None:
    proposal = _propose(web, oidc_runtime, _citizen(oidc_runtime, "active_male"), "locker.legal")
    counted = {"name": "shanakht_auth_failures_total", "kind": "access_denied", "recorded": "no"}
    before = sample(web, **counted)
    broken = OperationalError("INSERT", {}, Exception("the database went away"))
    with mock.patch.object(oidc_runtime, "failure_records", side_effect=broken):
        own = _approve(web, oidc_runtime, proposal)
    assert own.status_code == 403
    assert "You proposed this grant: another administrator must decide it." in own.text
    assert _denials(oidc_runtime) == []
    assert sample(web, **counted) == before + 1, "counted, though not written"


def test_taking_a_powerful_role_away_is_immediate(
    web: TestClient, oidc_runtime: Runtime, admin: CitizenRecord
) -> None:
    officer = _citizen(oidc_runtime, "active_male", "locker.legal", "identity.admin")
    where = _post(web, "/admin/officers", {"cnic": officer.cnic}).headers["location"]
    for role in ("locker.legal", "identity.admin"):
        revoked = _post(web, f"{where}/revoke", {"department": DEPARTMENT, "role": role},
                        page=where)  # fmt: skip
        assert revoked.status_code == 303
        assert not _holds(oidc_runtime, officer, role)
    with oidc_runtime.engine.connect() as connection:
        assert connection.execute(select(role_proposals.c.id)).first() is None


def test_the_proposals_page_in_urdu(
    web: TestClient,
    oidc_runtime: Runtime,
    admin: CitizenRecord,
    second_admin: tuple[TestClient, CitizenRecord],
) -> None:
    other, _second = second_admin
    _propose(web, oidc_runtime, _citizen(oidc_runtime, "active_male"), "locker.legal")
    other.get("/lang/ur")
    page = other.get("/admin/proposals")
    assert 'lang="ur"' in page.text
    assert "<h1>منظوری کے منتظر کردار</h1>" in page.text
    assert ">منظور کریں</button>" in page.text
    assert ">مسترد کریں</button>" in page.text
    assert "Grants to approve" not in page.text


# -- e-service clients -------------------------------------------------------------------------


def _client_form(**changes: str) -> dict[str, str]:
    form = {
        "client_id": "e-transfer",
        "name": "e-Transfer",
        "kind": "eservice",
        "auth_method": "client_secret_basic",
        "redirect_uris": "https://etransfer.example/callback",
        "scopes": "openid profile",
        "backchannel_logout_uri": "https://etransfer.example/bc",
        "id_token_alg": "RS256",
    }
    form.update(changes)
    return form


def test_register_a_client_with_a_secret_shown_exactly_once(
    web: TestClient, oidc_runtime: Runtime, admin: CitizenRecord, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    response = _post(web, "/admin/clients/new", _client_form(require_par="1"))
    assert response.status_code == 200, response.text
    secret = re.search(r'<code class="secret" dir="ltr" id="client-secret">([^<]+)</code>',
                       response.text).group(1)  # type: ignore[union-attr]  # fmt: skip
    assert response.text.count(secret) == 1
    assert response.headers["cache-control"] == "no-store"
    with oidc_runtime.transaction() as session:
        client = oidc_runtime.provider(session).clients.get("e-transfer")
    assert client is not None
    assert client.require_par
    assert not client.require_dpop
    assert client.backchannel_logout_uri == "https://etransfer.example/bc"
    # the secret works at the token endpoint's authentication, and is nowhere else
    with oidc_runtime.transaction() as session:
        clients = oidc_runtime.provider(session).clients
        assert clients.authenticate(
            basic=("e-transfer", secret), form_client_id=None, assertion_type=None,
            assertion=None, audiences=[],
        ).id == "e-transfer"  # fmt: skip
    for path in ("/admin/clients", "/admin/clients/e-transfer/remove", "/admin/keys"):
        assert secret not in web.get(path).text
    assert secret not in caplog.text
    assert all(secret not in _entry_text(e) for e in _audit(oidc_runtime))
    entry = _audit(oidc_runtime)[-1]
    assert entry.action == "identity.client.registered"
    assert entry.resource == "client:e-transfer"
    # the entry fingerprints the sealed row, so `audit integrity` knows it is the latest
    with oidc_runtime.transaction() as session:
        registered = oidc_runtime.provider(session).clients.registration("e-transfer")
    assert registered is not None
    assert entry.details["registration"] == registered
    assert check_integrity(oidc_runtime).mismatches == []


def test_register_a_private_key_jwt_department_system_and_remove_it(
    web: TestClient, oidc_runtime: Runtime, admin: CitizenRecord
) -> None:
    jwks = {"keys": [ECKey.generate_key("P-256").as_dict(private=False)]}
    form = _client_form(
        client_id="pitb-system", name="PITB system", kind="service",
        auth_method="private_key_jwt", jwks=json.dumps(jwks), redirect_uris="",
        scopes="locker.fetch", department=DEPARTMENT, require_dpop="1",
        backchannel_logout_uri="",
    )  # fmt: skip
    response = _post(web, "/admin/clients/new", form)
    assert response.status_code == 200
    assert "Client secret" not in response.text
    listed = web.get("/admin/clients")
    assert "pitb-system" in listed.text
    assert "DPoP" in listed.text
    confirm = web.get("/admin/clients/pitb-system/remove")
    assert "Remove pitb-system?" in confirm.text
    removed = web.post("/admin/clients/pitb-system/remove", data={"csrf": csrf_of(confirm.text)},
                       follow_redirects=False)  # fmt: skip
    assert removed.status_code == 303
    assert "Client removed." in web.get(removed.headers["location"]).text
    with oidc_runtime.transaction() as session:
        assert oidc_runtime.provider(session).clients.get("pitb-system") is None
    assert _audit(oidc_runtime)[-1].action == "identity.client.removed"
    gone = web.post("/admin/clients/pitb-system/remove", data={"csrf": csrf_of(confirm.text)})
    assert gone.status_code == 404


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"redirect_uris": "http://etransfer.example/cb"}, "redirect_uris", "https"),
        ({"redirect_uris": "https://etransfer.example/cb#x"}, "redirect_uris", "without a #"),
        ({"redirect_uris": ""}, "redirect_uris", "at least one"),
        ({"client_id": "E Transfer"}, "client_id", "lower-case"),
        ({"name": ""}, "name", "consent page"),
        ({"scopes": "profile"}, "scopes", "include openid"),
        ({"scopes": "openid salary"}, "scopes", "Unknown scopes: salary"),
        ({"auth_method": "private_key_jwt", "jwks": ""}, "jwks", "public keys"),
        ({"auth_method": "private_key_jwt", "jwks": "{not json"}, "jwks", "not JSON"),
        ({"auth_method": "private_key_jwt", "jwks": PRIVATE_JWKS}, "jwks", "public keys only"),
        ({"auth_method": "private_key_jwt", "jwks": '{"keys": [{"kty": "EC"}]}'}, "jwks",
         "does not parse"),
        ({"department": DEPARTMENT}, "department", "Only a department system"),
        ({"kind": "service", "redirect_uris": "", "scopes": "locker.fetch",
          "department": "nowhere"}, "department", "Choose one of the departments"),
        ({"backchannel_logout_uri": "ftp://x.example/"}, "backchannel_logout_uri", "https"),
    ],
)  # fmt: skip
def test_a_bad_client_is_explained_beside_the_field(
    web: TestClient,
    oidc_runtime: Runtime,
    admin: CitizenRecord,
    changes: dict[str, str],
    field: str,
    words: str,
) -> None:
    form = _client_form(**changes)
    response = _post(web, "/admin/clients/new", form)
    assert response.status_code == 422, response.text
    error = re.search(rf'<p class="field-error" id="{field}-error">([^<]+)</p>', response.text)
    assert error, response.text
    assert words in error.group(1).replace("&#39;", "'")
    assert f'value="{form["client_id"]}"' in response.text
    with oidc_runtime.transaction() as session:
        assert oidc_runtime.provider(session).clients.all() == []


def test_a_client_id_taken_is_said_beside_it(web: TestClient, admin: CitizenRecord) -> None:
    assert _post(web, "/admin/clients/new", _client_form()).status_code == 200
    again = _post(web, "/admin/clients/new", _client_form())
    assert again.status_code == 422
    error = re.search(r'<p class="field-error" id="client_id-error">([^<]+)</p>', again.text)
    assert error is not None
    assert error.group(1) == "A client e-transfer is already registered: choose another id."
    web.get("/lang/ur")  # the registry's refusal, said from its code and facts
    urdu = _post(web, "/admin/clients/new", _client_form())
    assert urdu.status_code == 422
    error = re.search(r'<p class="field-error" id="client_id-error">([^<]+)</p>', urdu.text)
    assert error is not None
    assert "کلائنٹ e-transfer پہلے سے رجسٹرڈ ہے" in error.group(1)
    assert "already registered" not in urdu.text
    assert "Not accepted" not in urdu.text


# -- keys --------------------------------------------------------------------------------------


def test_list_and_rotate_signing_keys_and_kek(
    web: TestClient, oidc_runtime: Runtime, admin: CitizenRecord
) -> None:
    page = web.get("/admin/keys")
    assert page.status_code == 200
    assert "local:1" in page.text
    with oidc_runtime.transaction() as session:
        before = {k.kid for k in oidc_runtime.provider(session).keys.all()}
    rotated = _post(web, "/admin/keys/rotate", {"which": "oidc"}, page="/admin/keys")
    assert rotated.headers["location"] == "/admin/keys?done=oidc"
    with oidc_runtime.transaction() as session:
        after = {k.kid for k in oidc_runtime.provider(session).keys.all()}
    new = after - before
    assert new
    assert all(kid in web.get("/admin/keys").text for kid in new)
    assert _audit(oidc_runtime)[-1].action == "identity.keys.rotated"
    leaked = _post(web, "/admin/keys/rotate", {"which": "oidc-compromised"}, page="/admin/keys")
    assert leaked.headers["location"] == "/admin/keys?done=oidc-compromised"
    assert "the old ones are withdrawn" in web.get(leaked.headers["location"]).text
    published = {k["kid"] for k in web.get("/oauth/jwks").json()["keys"]}
    assert len(published) == 2
    assert not published & after, "every key published before is withdrawn"
    kek = _post(web, "/admin/keys/rotate", {"which": "locker"}, page="/admin/keys")
    assert kek.headers["location"] == "/admin/keys?done=locker"
    page = web.get(kek.headers["location"])
    assert "local:2" in page.text
    assert "Re-wrap every data key" in page.text
    assert oidc_runtime.keks.current().version_id == "local:2"
    assert _audit(oidc_runtime)[-1].action == "locker.keys.rotated"
    bad = _post(web, "/admin/keys/rotate", {"which": "everything"}, page="/admin/keys")
    assert bad.status_code == 422


def _documents(runtime: Runtime, count: int) -> None:
    owner = "p:" + "C" * 43
    who = Accessor(owner, "citizen", "owner")
    for n in range(count):
        with runtime.transaction() as session:
            runtime.locker(session).upload(
                owner=owner, doctype="other", title=f"Copy {n}",
                content=[b"%PDF-1.4 " + bytes([n]) * 64], content_type="application/pdf",
                who=who,
            )  # fmt: skip


def test_rewrap_runs_in_batches_and_shows_progress(
    web: TestClient, oidc_runtime: Runtime, admin: CitizenRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(admin_keys, "REWRAP_BATCH", 2)
    _documents(oidc_runtime, 5)
    _post(web, "/admin/keys/rotate", {"which": "locker"}, page="/admin/keys")
    started = _post(web, "/admin/keys/rewrap", {"action": "start"}, page="/admin/keys")
    assert started.headers["location"] == "/admin/keys/rewrap"
    admin_keys.rewrap_job(oidc_runtime).wait(30)
    progress = web.get("/admin/keys/rewrap/progress").json()
    assert progress == {"status": "done", "done": 5, "total": 5}
    page = web.get("/admin/keys/rewrap")
    assert '<progress id="rewrap-bar" max="5" value="5">' in page.text
    assert "every data key is under local:2" in page.text
    assert "script-src" not in page.headers["content-security-policy"]
    entry = _audit(oidc_runtime)[-1]
    assert entry.action == "locker.keys.rewrapped"
    assert entry.details["rewrapped"] == 5
    assert entry.actor == f"citizen:{_pseudonym(oidc_runtime, admin.cnic)}"


def test_a_failed_rewrap_names_the_document_version_in_the_readers_language(
    web: TestClient, oidc_runtime: Runtime, admin: CitizenRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    def altered(*_args: object) -> bytes:
        raise WrappedKeyInvalid("the wrapped key does not open")

    monkeypatch.setattr(rewrap, "rewrap_under", altered)
    _documents(oidc_runtime, 1)
    _post(web, "/admin/keys/rotate", {"which": "locker"}, page="/admin/keys")
    _post(web, "/admin/keys/rewrap", {"action": "start"}, page="/admin/keys")
    admin_keys.rewrap_job(oidc_runtime).wait(30)
    page = web.get("/admin/keys/rewrap")
    assert "The re-wrap stopped on an error." in page.text
    assert ", version 1: its data key could not be re-wrapped" in page.text
    urdu = web.get("/lang/ur?next=/admin/keys/rewrap")
    assert "، ورژن 1: اس کی ڈیٹا کلید دوبارہ ریپ نہیں ہو سکی" in urdu.text
    assert "does not open" not in urdu.text
    assert "re-wrapped" not in urdu.text


def test_a_stopped_rewrap_resumes_where_it_left_off(
    web: TestClient, oidc_runtime: Runtime, admin: CitizenRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(admin_keys, "REWRAP_BATCH", 1)
    _documents(oidc_runtime, 4)
    _post(web, "/admin/keys/rotate", {"which": "locker"}, page="/admin/keys")
    job = admin_keys.rewrap_job(oidc_runtime)
    original = job._progress
    gate: list[int] = []

    def slow(runtime: Runtime, job_id: str, done: int, total: int) -> None:
        gate.append(done)
        if done == 2:  # as the Stop button does, between batches
            with runtime.transaction() as session:
                assert admin_keys.stop_rewrap(session)
        original(runtime, job_id, done, total)

    monkeypatch.setattr(job, "_progress", slow)
    _post(web, "/admin/keys/rewrap", {"action": "start"}, page="/admin/keys")
    job.wait(30)
    page = web.get("/admin/keys/rewrap")
    assert "Stopped." in page.text
    assert "Resume the re-wrap" in page.text
    assert _rewrap_state(oidc_runtime).done == 2
    monkeypatch.setattr(job, "_progress", original)
    _post(web, "/admin/keys/rewrap", {"action": "start"}, page="/admin/keys/rewrap")
    job.wait(30)
    state = _rewrap_state(oidc_runtime)
    assert state.status == "done"
    assert state.already_current == 2
    assert state.rewrapped == 2


def _rewrap_state(runtime: Runtime) -> admin_keys.RewrapState:
    with runtime.transaction() as session:
        return admin_keys.rewrap_state(runtime, session)


def _running_rewrap(runtime: Runtime, done: int, total: int) -> str:
    """A re-wrap run recorded as running (as another replica would have it); its id."""
    with runtime.transaction() as session:
        job = jobs.create(
            session, "rewrap", starter="citizen:p:x", now=runtime.clock(), one_at_a_time=True
        )
        assert job is not None
        jobs.progress(session, job.id, runtime.clock(), done=done, total=total)
    return job.id


def test_the_progress_page_loads_its_script_only_while_running(
    web: TestClient, oidc_runtime: Runtime, admin: CitizenRecord
) -> None:
    _running_rewrap(oidc_runtime, 3, 9)
    page = web.get("/admin/keys/rewrap")
    assert 'src="/static/admin.js"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<progress id="rewrap-bar" max="9" value="3">' in page.text


def test_a_rewrap_run_on_another_replica_is_seen_stopped_and_not_started_twice(
    web: TestClient, oidc_runtime: Runtime, admin: CitizenRecord
) -> None:
    """The run is in the database: this replica shows its progress, refuses a second run while
    it beats, and a stop asked here reaches its runner at its next batch."""
    job_id = _running_rewrap(oidc_runtime, 4, 10)
    assert web.get("/admin/keys/rewrap/progress").json() == {
        "status": "running", "done": 4, "total": 10,
    }  # fmt: skip
    assert "A re-wrap is running: 4 of 10 data keys done." in web.get("/admin/keys").text
    assert not admin_keys.rewrap_job(oidc_runtime).start(oidc_runtime, "citizen:p:y")
    _post(web, "/admin/keys/rewrap", {"action": "stop"}, page="/admin/keys/rewrap")
    with oidc_runtime.transaction() as session:
        assert jobs.progress(session, job_id, oidc_runtime.clock(), done=5) == "stopping"


def test_a_rewrap_whose_process_died_shows_as_interrupted_and_runs_again(
    web: TestClient, oidc_runtime: Runtime, admin: CitizenRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    _documents(oidc_runtime, 2)
    _post(web, "/admin/keys/rotate", {"which": "locker"}, page="/admin/keys")
    _running_rewrap(oidc_runtime, 1, 2)
    later = oidc_runtime.clock() + jobs.STALE + timedelta(seconds=1)
    monkeypatch.setattr(oidc_runtime, "clock", lambda: later)
    assert web.get("/admin/keys/rewrap/progress").json()["status"] == "interrupted"
    page = web.get("/admin/keys/rewrap")
    assert "Interrupted: the server running the re-wrap stopped" in page.text
    assert "Resume the re-wrap" in page.text
    assert "script-src" not in page.headers["content-security-policy"]
    urdu = web.get("/lang/ur?next=/admin/keys/rewrap")
    assert "درمیان میں رک گیا" in urdu.text
    _post(web, "/admin/keys/rewrap", {"action": "start"}, page="/admin/keys/rewrap")
    admin_keys.rewrap_job(oidc_runtime).wait(30)
    assert web.get("/admin/keys/rewrap/progress").json() == {
        "status": "done", "done": 2, "total": 2,
    }  # fmt: skip


def _take_over(runtime: Runtime) -> None:
    """Another replica starts a re-wrap once this one's run has not beaten for `jobs.STALE`:
    the run is marked interrupted and its lane taken."""
    later = runtime.clock() + jobs.STALE + timedelta(seconds=1)
    with runtime.transaction() as session:
        taken = jobs.create(session, "rewrap", starter="citizen:p:y", now=later, one_at_a_time=True)
        assert taken is not None


def test_a_rewrap_taken_over_by_another_replica_stops_at_its_next_batch(
    web: TestClient, oidc_runtime: Runtime, admin: CitizenRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its heartbeats failed for a minute, so another replica started a run: this one stops
    rather than run beside it, and leaves its record as the other replica made it."""
    monkeypatch.setattr(admin_keys, "REWRAP_BATCH", 1)
    _documents(oidc_runtime, 3)
    _post(web, "/admin/keys/rotate", {"which": "locker"}, page="/admin/keys")
    job = admin_keys.rewrap_job(oidc_runtime)
    original = job._progress
    batches: list[str] = []

    def taken_over(runtime: Runtime, job_id: str, done: int, total: int) -> None:
        batches.append(job_id)
        if done == 1:
            _take_over(runtime)
        original(runtime, job_id, done, total)

    monkeypatch.setattr(job, "_progress", taken_over)
    _post(web, "/admin/keys/rewrap", {"action": "start"}, page="/admin/keys")
    job.wait(30)
    assert len(batches) == 1, "no batch after the run was taken over"
    with oidc_runtime.transaction() as session:
        first = jobs.get(session, batches[0])
        assert first is not None
        assert (first.state, first.done) == ("interrupted", 0)
    [ended] = [e for e in _audit(oidc_runtime) if e.action == "locker.keys.rewrapped"]
    assert ended.details["rewrapped"] == 1, "the batch before the take-over, and no other"
    assert _rewrap_state(oidc_runtime).status == "running", "the other replica's run"


def test_a_heartbeat_that_finds_its_job_taken_over_tells_the_runner_to_stop(
    oidc_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "BEAT", 0.01)
    job_id = _running_rewrap(oidc_runtime, 1, 5)
    _take_over(oidc_runtime)
    with beating(oidc_runtime, job_id) as lost:
        assert lost.wait(10)
    with oidc_runtime.transaction() as session:
        job = jobs.get(session, job_id)
        assert job is not None
        assert job.status(oidc_runtime.clock()) == "interrupted"


# -- audit checkpoints -------------------------------------------------------------------------


def test_an_administrator_signs_a_checkpoint_and_verifies_the_log(
    web: TestClient, oidc_runtime: Runtime, admin: CitizenRecord
) -> None:
    page = web.get("/admin/audit")
    assert "No checkpoint has been signed yet." in page.text
    signed = _post(web, "/admin/audit/checkpoint", {}, page="/admin/audit")
    assert signed.headers["location"] == "/admin/audit?signed=1"
    page = web.get(signed.headers["location"])
    assert "Checkpoint signed." in page.text
    with oidc_runtime.transaction() as session:
        log = oidc_runtime.audit_log(session)
        latest = log.latest_checkpoint()
        size = log.size()
    assert latest is not None
    assert latest.checkpoint.size == size
    assert _audit(oidc_runtime)[-1].action == "audit.checkpoint.requested"
    assert f'<dd id="log-size">{size}</dd>' in page.text
    assert latest.note.splitlines()[2] in page.text
    verified = _post(web, "/admin/audit/verify", {}, page="/admin/audit")
    assert "The whole log verified" in verified.text
    assert f"{size} entries" in verified.text


def test_a_tampered_log_fails_verification_on_the_page(
    web: TestClient, oidc_runtime: Runtime, admin: CitizenRecord
) -> None:
    _post(web, "/admin/audit/checkpoint", {}, page="/admin/audit")
    page = web.get("/admin/audit")
    with tampering(oidc_runtime) as connection:
        connection.execute(text("UPDATE audit_entries SET chain = :c WHERE seq = 2"),
                           {"c": bytes(32)})  # fmt: skip
    verified = web.post("/admin/audit/verify", data={"csrf": csrf_of(page.text)})
    assert verified.status_code == 200
    assert "FAILED verification" in verified.text
    assert 'class="verdict bad"' in verified.text
    assert "Entry 2: the hash chain breaks here." in verified.text
    assert 'lang="en"' not in verified.text.split("<main", 1)[1]
    web.get("/lang/ur?next=/admin/audit")
    urdu = web.post("/admin/audit/verify", data={"csrf": csrf_of(web.get("/admin/audit").text)})
    assert "اندراج 2: ہیش کی زنجیر یہاں ٹوٹتی ہے" in urdu.text
    assert "hash chain" not in urdu.text
