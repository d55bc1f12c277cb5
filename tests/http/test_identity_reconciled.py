"""Accounts, sign-in sessions and e-services' consents reconciled with the log (`audit
integrity`, docs/threat-model.md section 7, item 9): an earlier row put back keeps its seal,
so the service honours it, and only the log's last word on it tells it from the latest. Roles,
role proposals and clients are in test_row_seals.py."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import delete, insert, update

from api.runtime import Runtime
from identity.models import citizens, grants, sessions
from identity.nadra import SCENARIOS, CitizenRecord, read_registry
from identity.oidc.sessions import logged_as
from tests.cli.test_cli import run
from tests.http.oidc_kit import (
    Browser,
    csrf_of,
    register_citizen,
    register_client,
    reset_password,
)
from tests.http.test_row_seals import _kept_row, by_sql

NEW_PASSWORD = "Chenab#Bridge-2027"


def _record(runtime: Runtime, scenario: str = "active_male") -> CitizenRecord:
    return read_registry(runtime.identity.nadra_file)[SCENARIOS[scenario]]


def _pseudonym(runtime: Runtime, citizen_id: str) -> str:
    with runtime.sessions() as session:
        account = runtime.provider(session).accounts.by_id(citizen_id)
    assert account is not None
    return account.pseudonym


def _integrity(cli_env: dict[str, str]) -> tuple[int, str]:
    return run(cli_env, "audit", "integrity")


def test_an_account_put_back_with_its_old_password_or_after_closing_is_listed(
    oidc_runtime: Runtime, cli_env: dict[str, str]
) -> None:
    """The row from before a password reset, put back, holds its seal and signs in with the
    old password; the log's record of when the password was last set tells. A closed account
    put back open is listed as well."""
    record = _record(oidc_runtime)
    citizen_id = register_citizen(oidc_runtime, record)
    where = citizens.c.id == citizen_id
    old = _kept_row(oidc_runtime, citizens, where)
    reset_password(oidc_runtime, record, NEW_PASSWORD)
    code, out = _integrity(cli_env)
    assert code == 0, out
    assert "every account, sign-in session, e-service's consent" in out

    by_sql(oidc_runtime, update(citizens).where(where).values(**old))
    with oidc_runtime.transaction() as session:
        put_back = oidc_runtime.provider(session).accounts.by_id(citizen_id)
    assert put_back is not None, "its seal holds: the service honours the row"
    who = str(old["pseudonym"])
    code, out = _integrity(cli_env)
    assert code == 1, out
    assert (
        f"identity_citizens {who}: its password is not the one the log last recorded setting"
    ) in out
    assert "1 rows of authorization state differ from the audit log" in out
    assert record.cnic not in out

    code, out = run(cli_env, "citizens", "remove", record.cnic, "--reason", "Test closure")
    assert code == 0, out
    by_sql(oidc_runtime, update(citizens).where(where).values(**old))
    code, out = _integrity(cli_env)
    assert code == 1, out
    assert f"identity_citizens {who}: active, but the log last removed it" in out


def test_a_session_ended_and_a_consent_withdrawn_put_back_are_listed(
    web: TestClient, oidc_runtime: Runtime, cli_env: dict[str, str]
) -> None:
    """A citizen consents to `cnic` and `profile`, withdraws it, consents to `profile` alone,
    and signs out. The wider consent and the live session, put back, keep their seals (the old
    cookie opens the account again); the log ended that session and last heard the citizen
    consent to less. A consent withdrawn and put back is listed too."""
    rp = register_client(oidc_runtime, "domicile")
    record = _record(oidc_runtime)
    register_citizen(oidc_runtime, record)
    browser = Browser(web)
    browser.sign_in(rp, record.cnic, scope="openid profile cnic")
    consent = grants.c.client_id == "domicile"
    wide = _kept_row(oidc_runtime, grants, consent)
    live = _kept_row(oidc_runtime, sessions, sessions.c.ended_at.is_(None))
    cookie = web.cookies.get("__Host-shanakht_session")
    page = web.get("/account")
    withdrawn = web.post(
        "/account/grants/revoke",
        data={"client_id": "domicile", "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert withdrawn.status_code == 303
    browser.sign_in(rp, record.cnic, scope="openid profile")
    page = web.get("/logout")
    assert web.post("/logout", data={"csrf": csrf_of(page.text)}).status_code == 200
    code, out = _integrity(cli_env)
    assert code == 0, out

    by_sql(oidc_runtime, update(grants).where(consent).values(**wide))
    by_sql(oidc_runtime, update(sessions).where(sessions.c.id == live["id"]).values(**live))
    kept = TestClient(web.app, base_url="https://shanakht.test")
    kept.cookies.set("__Host-shanakht_session", str(cookie))
    assert kept.get("/account", follow_redirects=False).status_code == 200, "its seal holds"
    who = _pseudonym(oidc_runtime, str(wide["citizen_id"]))
    code, out = _integrity(cli_env)
    assert code == 1, out
    ended = logged_as(str(live["sid"]))
    assert f"identity_sessions {ended}: live, but the log last ended it" in out
    assert (
        f"identity_grants {who}/domicile: wider than the log last recorded the citizen "
        "consenting to"
    ) in out
    assert "2 rows of authorization state differ from the audit log" in out
    assert str(live["sid"]) not in out, "the log names a session by a fingerprint only"

    kept_page = kept.get("/account")
    kept.post(
        "/account/grants/revoke",
        data={"client_id": "domicile", "csrf": csrf_of(kept_page.text)},
        follow_redirects=False,
    )
    by_sql(oidc_runtime, delete(grants).where(consent))
    by_sql(oidc_runtime, insert(grants).values(**wide))
    code, out = _integrity(cli_env)
    assert code == 1, out
    assert f"identity_grants {who}/domicile: held, but the log last recorded its withdrawal" in out
