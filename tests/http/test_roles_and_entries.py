"""Officers' roles as claims, and who may read which audit entries."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select, update

from api.runtime import Runtime
from audit import pseudonym
from identity.models import roles as role_rows
from identity.nadra import SCENARIOS, read_registry
from identity.roles import RoleError
from tests.http.oidc_kit import Browser, RelyingParty, register_citizen, register_client, token


@pytest.fixture
def officer(oidc_runtime: Runtime) -> tuple[str, str]:
    record = read_registry(oidc_runtime.identity.nadra_file)[SCENARIOS["active_male"]]
    citizen_id = register_citizen(oidc_runtime, record)
    return record.cnic, citizen_id


@pytest.fixture
def citizen(oidc_runtime: Runtime) -> tuple[str, str]:
    record = read_registry(oidc_runtime.identity.nadra_file)[SCENARIOS["active_female"]]
    citizen_id = register_citizen(oidc_runtime, record)
    return record.cnic, citizen_id


def _grant(runtime: Runtime, citizen_id: str, cnic: str, department: str, role: str) -> None:
    with runtime.transaction() as session:
        roles = runtime.provider(session).roles
        if department not in dict(roles.departments()):
            roles.add_department(department, f"Department {department}")
        roles.grant(
            citizen_id,
            pseudonym(cnic, key=runtime.pseudonym_key),
            department,
            role,
            by="admin:test",
        )


def _access_token(web: TestClient, rp: RelyingParty, cnic: str, scope: str) -> str:
    callback, verifier = Browser(web).sign_in(rp, cnic, scope=scope)
    return token(
        web, rp, grant_type="authorization_code", code=callback["code"],
        redirect_uri=rp.redirect_uri, code_verifier=verifier,
    ).json()["access_token"]  # fmt: skip


def test_roles_reach_e_services_as_a_claim(
    web: TestClient, oidc_runtime: Runtime, officer: tuple[str, str]
) -> None:
    cnic, citizen_id = officer
    _grant(oidc_runtime, citizen_id, cnic, "sed", "signing.officer")
    rp = register_client(oidc_runtime, "etransfer", scopes=("openid", "roles"))
    access = _access_token(web, rp, cnic, "openid roles")
    info = web.get("/oauth/userinfo", headers={"Authorization": f"Bearer {access}"}).json()
    assert info["roles"] == [{"department": "sed", "role": "signing.officer"}]


def test_a_role_inserted_by_sql_gives_no_authority(
    web: TestClient,
    oidc_runtime: Runtime,
    officer: tuple[str, str],
    citizen: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A DBA inserts `audit.reader` for the officer, even with the MAC of a real grant of
    theirs copied in: no claim, no reading of others' entries, and a warning without PII."""
    cnic, citizen_id = officer
    _grant(oidc_runtime, citizen_id, cnic, "sed", "signing.officer")
    with oidc_runtime.transaction() as session:
        real = session.execute(select(role_rows)).one()
        session.execute(
            insert(role_rows).values(
                {**real._mapping, "department_id": "sed", "role": "audit.reader"}
            )
        )
    rp = register_client(oidc_runtime, "audit-console", scopes=("openid", "roles"))
    access = _access_token(web, rp, cnic, "openid roles")
    bearer = {"Authorization": f"Bearer {access}"}
    info = web.get("/oauth/userinfo", headers=bearer).json()
    assert info["roles"] == [{"department": "sed", "role": "signing.officer"}]
    them = pseudonym(citizen[0], key=oidc_runtime.pseudonym_key)
    assert web.get(f"/audit/entries?subject={them}", headers=bearer).status_code == 403
    warned = [r.getMessage() for r in caplog.records if r.name == "shanakht.integrity"]
    assert warned
    assert f"identity_roles row {citizen_id}/sed/audit.reader has a wrong MAC" in warned[0]
    assert not any(cnic in line for line in warned)


def test_a_role_whose_mac_is_nulled_is_no_role(
    web: TestClient, oidc_runtime: Runtime, officer: tuple[str, str]
) -> None:
    cnic, citizen_id = officer
    _grant(oidc_runtime, citizen_id, cnic, "audit-office", "audit.reader")
    with oidc_runtime.transaction() as session:
        roles = oidc_runtime.provider(session).roles
        assert roles.has(citizen_id, "audit.reader"), "a sealed grant holds"
        session.execute(update(role_rows).values(mac=None))
        assert not roles.has(citizen_id, "audit.reader")
        assert roles.claim(citizen_id) == []


def test_unknown_roles_and_departments_are_refused(
    oidc_runtime: Runtime, officer: tuple[str, str]
) -> None:
    cnic, citizen_id = officer
    with pytest.raises(RoleError, match="unknown role"):
        _grant(oidc_runtime, citizen_id, cnic, "sed", "emperor")
    with oidc_runtime.transaction() as session:
        roles = oidc_runtime.provider(session).roles
        with pytest.raises(RoleError, match="no such department"):
            roles.grant(citizen_id, "p:x", "nowhere", "audit.reader", by="admin:test")


def test_a_citizen_reads_only_entries_about_themself(
    web: TestClient, oidc_runtime: Runtime, citizen: tuple[str, str], officer: tuple[str, str]
) -> None:
    rp = register_client(oidc_runtime, "etransfer")
    access = _access_token(web, rp, citizen[0], "openid")
    mine = web.get("/audit/entries", headers={"Authorization": f"Bearer {access}"})
    assert mine.status_code == 200, mine.text
    me = pseudonym(citizen[0], key=oidc_runtime.pseudonym_key)
    entries = mine.json()["entries"]
    assert entries
    assert {e["subject"] for e in entries} == {me}
    assert "identity.login" in {e["action"] for e in entries}
    other = pseudonym(officer[0], key=oidc_runtime.pseudonym_key)
    refused = web.get(
        f"/audit/entries?subject={other}", headers={"Authorization": f"Bearer {access}"}
    )
    assert refused.status_code == 403
    by_cookie = web.get("/audit/entries")  # the signed-in browser, no token
    assert by_cookie.status_code == 200
    assert {e["subject"] for e in by_cookie.json()["entries"]} == {me}


def test_an_audit_reader_reads_everyones_and_is_audited_doing_it(
    web: TestClient, oidc_runtime: Runtime, citizen: tuple[str, str], officer: tuple[str, str]
) -> None:
    cnic, citizen_id = officer
    _grant(oidc_runtime, citizen_id, cnic, "audit-office", "audit.reader")
    rp = register_client(oidc_runtime, "audit-console")
    access = _access_token(web, rp, cnic, "openid")
    them = pseudonym(citizen[0], key=oidc_runtime.pseudonym_key)
    response = web.get(
        f"/audit/entries?subject={them}", headers={"Authorization": f"Bearer {access}"}
    )
    assert response.status_code == 200
    assert {e["subject"] for e in response.json()["entries"]} == {them}
    everything = web.get("/audit/entries?limit=500", headers={"Authorization": f"Bearer {access}"})
    assert "audit.entries.read" in {e["action"] for e in everything.json()["entries"]}


def test_reading_entries_needs_an_identity(web: TestClient) -> None:
    response = TestClient(web.app, base_url="https://shanakht.test").get("/audit/entries")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
