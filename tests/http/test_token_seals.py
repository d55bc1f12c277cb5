"""Sealed tokens and authorization codes (migration 0027; docs/threat-model.md section 7, item 9):
a token or code row written by SQL, or changed by it, is not redeemed and grants no access; a
spent or revoked one cannot be made usable again; and the service's own writes leave nothing
for `shanakht audit integrity` to list."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select, update

from api.migrate import prepare, sealing_record
from api.runtime import Runtime
from audit.row_seal import bad_rows
from identity.models import codes, tokens
from identity.nadra import SCENARIOS, read_registry
from tests.http.oidc_kit import Browser, RelyingParty, register_citizen, register_client, token
from tests.http.test_row_seals import by_sql, set_back

NOT_VALID = {"error": "invalid_grant", "error_description": "the refresh token is not valid"}


@pytest.fixture
def citizen(oidc_runtime: Runtime) -> str:
    record = read_registry(oidc_runtime.identity.nadra_file)[SCENARIOS["active_male"]]
    register_citizen(oidc_runtime, record)
    return record.cnic


@pytest.fixture
def rp(oidc_runtime: Runtime) -> RelyingParty:
    return register_client(oidc_runtime, "etransfer")


def _redeem(web: TestClient, rp: RelyingParty, code: str, verifier: str) -> Any:
    return token(
        web, rp, grant_type="authorization_code", code=code,
        redirect_uri=rp.redirect_uri, code_verifier=verifier,
    )  # fmt: skip


def _signed_in(web: TestClient, rp: RelyingParty, cnic: str) -> dict[str, Any]:
    callback, verifier = Browser(web).sign_in(rp, cnic)
    response = _redeem(web, rp, callback["code"], verifier)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _refresh(web: TestClient, rp: RelyingParty, refresh_token: str) -> Any:
    return token(web, rp, grant_type="refresh_token", refresh_token=refresh_token)


def _userinfo(web: TestClient, access_token: str) -> int:
    headers = {"Authorization": f"Bearer {access_token}"}
    return web.get("/oauth/userinfo", headers=headers).status_code


def _active(web: TestClient, rp: RelyingParty, value: str) -> bool:
    auth_form, auth_headers = rp.auth()
    response = web.post(
        "/oauth/introspect", data={**auth_form, "token": value}, headers=auth_headers
    )
    assert response.status_code == 200, response.text
    return bool(response.json()["active"])


def _row(runtime: Runtime, table: Any, key: str) -> dict[str, Any]:
    with runtime.sessions() as session:
        return dict(session.execute(select(table).where(table.c.id == key)).one()._mapping)


def _listed(runtime: Runtime) -> set[str]:
    """The keys `shanakht audit integrity` would list among tokens and codes."""
    with runtime.sessions() as session:
        return {bad.key for bad in bad_rows(session, runtime.row_seal, [tokens, codes])}


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def test_a_revocation_undone_by_sql_gives_no_access_back(
    web: TestClient, oidc_runtime: Runtime, rp: RelyingParty, citizen: str
) -> None:
    """Revoked by the e-service, then `revoked_at = NULL` by a DBA: the access token stays
    refused at the API and inactive at introspection, and the row is listed."""
    issued = _signed_in(web, rp, citizen)
    access = issued["access_token"]
    assert _userinfo(web, access) == 200
    assert _active(web, rp, access)
    auth_form, auth_headers = rp.auth()
    revoked = web.post("/oauth/revoke", data={**auth_form, "token": access}, headers=auth_headers)
    assert revoked.status_code == 200
    assert _listed(oidc_runtime) == set(), "a revoked row is retired, not a bad one"
    by_sql(oidc_runtime, update(tokens).where(tokens.c.kind == "access").values(revoked_at=None))
    assert _userinfo(web, access) == 401
    assert not _active(web, rp, access)
    assert len(_listed(oidc_runtime)) == 1


def test_a_refresh_token_planted_or_widened_by_sql_is_not_redeemed(
    web: TestClient, oidc_runtime: Runtime, rp: RelyingParty, citizen: str
) -> None:
    """A DBA who also holds the e-service's credentials plants a refresh token of their own
    (the honest row's MAC copied, or none), or widens the honest one's scope: neither
    refreshes, and the honest token, untouched, still does."""
    issued = _signed_in(web, rp, citizen)
    honest = _row(oidc_runtime, tokens, _hash(issued["refresh_token"]))
    for mac in (honest["mac"], None):
        planted = secrets.token_urlsafe(32)
        by_sql(oidc_runtime, insert(tokens).values({**honest, "id": _hash(planted), "mac": mac}))
        assert _refresh(web, rp, planted).json() == NOT_VALID
        assert _hash(planted) in _listed(oidc_runtime)
    refreshed = _refresh(web, rp, issued["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    newest = refreshed.json()["refresh_token"]
    widened = update(tokens).where(tokens.c.id == _hash(newest)).values(scope="openid profile cnic")
    by_sql(oidc_runtime, widened)
    assert _refresh(web, rp, newest).json() == NOT_VALID


def test_a_spent_refresh_token_put_back_by_sql_is_not_redeemed(
    web: TestClient, oidc_runtime: Runtime, rp: RelyingParty, citizen: str
) -> None:
    """`used_at = NULL` on a rotated token: its seal went with its use, so the copy an
    attacker kept of it still gets nothing."""
    issued = _signed_in(web, rp, citizen)
    assert _refresh(web, rp, issued["refresh_token"]).status_code == 200
    spent = _hash(issued["refresh_token"])
    assert _row(oidc_runtime, tokens, spent)["mac"] is None
    by_sql(oidc_runtime, update(tokens).where(tokens.c.id == spent).values(used_at=None))
    assert _refresh(web, rp, issued["refresh_token"]).json() == NOT_VALID


def test_a_code_planted_or_revived_by_sql_is_not_redeemed(
    web: TestClient, oidc_runtime: Runtime, rp: RelyingParty, citizen: str
) -> None:
    """A code row inserted beside an honest one (its MAC copied) for a verifier the DBA
    chose, and a redeemed code made unused again: neither gives tokens."""
    browser = Browser(web)
    callback, verifier = browser.sign_in(rp, citizen)
    honest = _row(oidc_runtime, codes, _hash(callback["code"]))
    planted = secrets.token_urlsafe(32)
    by_sql(oidc_runtime, insert(codes).values({**honest, "id": _hash(planted)}))
    refused = _redeem(web, rp, planted, verifier)
    assert refused.json() == {
        "error": "invalid_grant",
        "error_description": "the code is not valid",
    }
    assert _redeem(web, rp, callback["code"], verifier).status_code == 200
    assert _row(oidc_runtime, codes, _hash(callback["code"]))["mac"] is None, "spent, retired"
    by_sql(oidc_runtime, update(codes).values(used_at=None))
    assert _redeem(web, rp, callback["code"], verifier).json()["error_description"] == (
        "the code is not valid"
    )


def test_the_services_own_writes_leave_nothing_listed(
    web: TestClient, oidc_runtime: Runtime, rp: RelyingParty, citizen: str
) -> None:
    """Every way the service writes these rows leaves each one sealed or retired: codes
    issued, redeemed, replayed and spent by a wrong verifier; tokens issued, rotated, reused
    (their family revoked), revoked one by one, cut by a withdrawn consent, and ended with
    their session."""
    issued = _signed_in(web, rp, citizen)
    rotated = _refresh(web, rp, issued["refresh_token"]).json()
    assert _refresh(web, rp, issued["refresh_token"]).json()["error"] == "invalid_grant"
    callback, verifier = Browser(web).sign_in(rp, citizen)
    assert _redeem(web, rp, callback["code"], "x" * 43).status_code == 400, "a wrong verifier"
    callback, verifier = Browser(web).sign_in(rp, citizen)
    again = _redeem(web, rp, callback["code"], verifier).json()
    assert _redeem(web, rp, callback["code"], verifier).status_code == 400, "a code replayed"
    third = _signed_in(web, rp, citizen)
    auth_form, auth_headers = rp.auth()
    data = {**auth_form, "token": third["access_token"]}
    assert web.post("/oauth/revoke", data=data, headers=auth_headers).status_code == 200
    assert _listed(oidc_runtime) == set()
    with oidc_runtime.transaction() as session:
        provider = oidc_runtime.provider(session)
        citizen_id = session.execute(select(tokens.c.citizen_id)).scalars().first()
        assert provider.grants.revoke(str(citizen_id), rp.client_id)
    assert _listed(oidc_runtime) == set()
    with oidc_runtime.transaction() as session:
        session_id = session.execute(select(tokens.c.session_id)).scalars().first()
        assert oidc_runtime.provider(session).sessions.end(str(session_id), "logout")
    with oidc_runtime.sessions() as session:
        macs = session.execute(select(tokens.c.mac)).scalars().all()
        spent = session.execute(select(codes.c.mac, codes.c.used_at)).all()
    assert len(macs) == 8, "four sign-ins redeemed, one refresh: eight tokens"
    assert macs == [None] * 8, "all retired with their session"
    assert len(spent) == 4
    assert all(mac is None and used is not None for mac, used in spent), "every code spent"
    assert _listed(oidc_runtime) == set()
    for access in (rotated["access_token"], again["access_token"]):
        assert _userinfo(web, access) == 401


def test_tokens_from_before_0027_are_sealed_by_the_upgrade_that_applies_it(
    web: TestClient, oidc_runtime: Runtime, rp: RelyingParty, citizen: str
) -> None:
    """E-services keep their tokens through an upgrade: the run that applies 0027 seals the
    rows it finds, once."""
    issued = _signed_in(web, rp, citizen)
    set_back(oidc_runtime, "0026")
    assert not oidc_runtime.keys.done(sealing_record("0027"))
    prepare(oidc_runtime)
    assert oidc_runtime.keys.done(sealing_record("0027"))
    assert _userinfo(web, issued["access_token"]) == 200
    assert _refresh(web, rp, issued["refresh_token"]).status_code == 200
    assert _listed(oidc_runtime) == set()
