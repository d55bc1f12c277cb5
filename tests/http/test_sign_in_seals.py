"""Sealed sign-on sessions (migration 0024) and remembered consents (0026; docs/threat-model.md
section 7, item 9): a row written by SQL, or changed by it, opens nothing and skips no consent,
and every write of the service's own keeps its rows honoured."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select, update

from api.migrate import prepare, sealing_record
from api.runtime import Runtime
from api.web import SESSION_COOKIE, cookie_name
from audit.row_seal import bad_rows
from identity.models import citizens, grants, sessions, tokens
from identity.nadra import SCENARIOS, read_registry
from identity.oidc.sessions import TOUCH_EVERY
from tests.http.oidc_kit import Browser, RelyingParty, register_citizen, register_client, token
from tests.http.test_oidc_security import Clock
from tests.http.test_row_seals import by_sql, set_back

SUBSTANTIAL = "urn:shanakht:loa:substantial"


@pytest.fixture
def citizen(oidc_runtime: Runtime) -> str:
    record = read_registry(oidc_runtime.identity.nadra_file)[SCENARIOS["active_male"]]
    register_citizen(oidc_runtime, record)
    return record.cnic


@pytest.fixture
def rp(oidc_runtime: Runtime) -> RelyingParty:
    return register_client(oidc_runtime, "etransfer")


def _signed_in(web: TestClient, rp: RelyingParty, cnic: str) -> dict[str, Any]:
    """Sign in through an e-service; its tokens."""
    callback, verifier = Browser(web).sign_in(rp, cnic)
    response = token(
        web, rp, grant_type="authorization_code", code=callback["code"],
        redirect_uri=rp.redirect_uri, code_verifier=verifier,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    return dict(response.json())


def _only_cookie(web: TestClient, name: str, value: str) -> None:
    """The browser holds this cookie and no other (what an attacker's browser would)."""
    web.cookies.clear()
    web.cookies.set(name, value)


def _account_opens(web: TestClient) -> bool:
    return web.get("/account", follow_redirects=False).status_code == 200


def _userinfo(web: TestClient, access_token: str) -> int:
    headers = {"Authorization": f"Bearer {access_token}"}
    return web.get("/oauth/userinfo", headers=headers).status_code


def _only_session(runtime: Runtime) -> dict[str, Any]:
    with runtime.sessions() as session:
        return dict(session.execute(select(sessions)).one()._mapping)


def _unhonoured(runtime: Runtime) -> set[str]:
    with runtime.sessions() as session:
        return {bad.key for bad in bad_rows(session, runtime.row_seal, [sessions])}


def test_a_session_inserted_by_sql_opens_nothing(
    web: TestClient, oidc_runtime: Runtime, rp: RelyingParty, citizen: str
) -> None:
    """A DBA who plants a session under a cookie of their own, copying a real row's MAC or
    leaving it out, is not signed in, at any assurance."""
    _signed_in(web, rp, citizen)
    assert _account_opens(web)
    honest = _only_session(oidc_runtime)
    name = cookie_name(oidc_runtime, SESSION_COOKIE)
    for mac in (honest["mac"], None):
        planted = secrets.token_urlsafe(32)
        forged = {
            **honest,
            "id": secrets.token_hex(32),
            "sid": uuid.uuid4().hex,
            "token_hash": hashlib.sha256(planted.encode()).hexdigest(),
            "acr": SUBSTANTIAL,
            "mac": mac,
        }
        by_sql(oidc_runtime, insert(sessions).values(forged))
        _only_cookie(web, name, planted)
        assert not _account_opens(web), "a planted cookie opens no account"
        assert forged["id"] in _unhonoured(oidc_runtime)
    assert honest["id"] not in _unhonoured(oidc_runtime)


def test_an_assurance_raised_by_sql_is_no_session(
    web: TestClient, oidc_runtime: Runtime, rp: RelyingParty, citizen: str
) -> None:
    """A password-only session whose `acr` a DBA raises past the second factor is refused,
    and listed by the check an administrator runs."""
    _signed_in(web, rp, citizen)
    assert _only_session(oidc_runtime)["acr"] != SUBSTANTIAL
    by_sql(oidc_runtime, update(sessions).values(acr=SUBSTANTIAL))
    assert not _account_opens(web)
    with oidc_runtime.transaction() as session:
        provider = oidc_runtime.provider(session)
        cookie = web.cookies.get(cookie_name(oidc_runtime, SESSION_COOKIE))
        assert provider.sessions.current(cookie) is None
        assert provider.sessions.active_for(_only_session(oidc_runtime)["citizen_id"]) == []
    assert _unhonoured(oidc_runtime) == {_only_session(oidc_runtime)["id"]}


def test_an_ended_session_revived_by_sql_opens_nothing(
    web: TestClient, oidc_runtime: Runtime, rp: RelyingParty, citizen: str
) -> None:
    """Its cookie, and its access token (even with the token's revocation undone by SQL as
    well), stay refused: the API checks the session's seal on every call."""
    issued = _signed_in(web, rp, citizen)
    assert _userinfo(web, issued["access_token"]) == 200
    cookie = web.cookies.get(cookie_name(oidc_runtime, SESSION_COOKIE))
    with oidc_runtime.transaction() as session:
        ended = oidc_runtime.provider(session).sessions.end(
            _only_session(oidc_runtime)["id"], "logout"
        )
    assert ended is not None
    assert _unhonoured(oidc_runtime) == set(), "an ended session is resealed as ended"
    by_sql(oidc_runtime, update(sessions).values(ended_at=None, ended_reason=None))
    by_sql(oidc_runtime, update(tokens).values(revoked_at=None))
    _only_cookie(web, cookie_name(oidc_runtime, SESSION_COOKIE), str(cookie))
    assert not _account_opens(web)
    assert _userinfo(web, issued["access_token"]) == 401


ENDED = {"error": "invalid_grant", "error_description": "the sign-in session has ended"}
NOT_VALID = {"error": "invalid_grant", "error_description": "the refresh token is not valid"}


def test_a_session_kept_alive_or_revived_by_sql_refreshes_nothing(
    web: TestClient, oidc_runtime: Runtime, rp: RelyingParty, citizen: str
) -> None:
    """The token endpoint checks the session's seal too: a DBA who keeps moving `last_seen`,
    or revives an ended session with its tokens un-revoked, gets no new tokens from it."""
    issued = _signed_in(web, rp, citizen)
    by_sql(oidc_runtime, update(sessions).values(last_seen=oidc_runtime.clock()))
    refresh = {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]}
    assert token(web, rp, **refresh).json() == ENDED
    with oidc_runtime.transaction() as session:
        ended = oidc_runtime.provider(session).sessions.end_all(
            _only_session(oidc_runtime)["citizen_id"], "logout"
        )
    assert len(ended) == 1
    by_sql(oidc_runtime, update(sessions).values(ended_at=None, ended_reason=None))
    by_sql(oidc_runtime, update(tokens).values(revoked_at=None))
    # The revocation cleared the token's own seal, which refuses it before its session's.
    assert token(web, rp, **refresh).json() == NOT_VALID


def test_a_code_from_a_session_changed_by_sql_is_not_redeemed(
    web: TestClient, oidc_runtime: Runtime, rp: RelyingParty, citizen: str
) -> None:
    callback, verifier = Browser(web).sign_in(rp, citizen)
    by_sql(oidc_runtime, update(sessions).values(acr=SUBSTANTIAL))
    redeemed = token(
        web, rp, grant_type="authorization_code", code=callback["code"],
        redirect_uri=rp.redirect_uri, code_verifier=verifier,
    )  # fmt: skip
    assert redeemed.json() == ENDED


def test_the_services_own_writes_keep_a_session_honoured(
    oidc_runtime: Runtime, citizen: str
) -> None:
    """Created, touched as it is used, stepped up, listed and ended: sealed at every step, and
    a step-up after a change by SQL neither raises the session nor blesses the change."""
    clock = Clock()
    oidc_runtime.clock = clock
    with oidc_runtime.transaction() as session:
        citizen_id = session.execute(select(citizens.c.id)).scalar_one()
        cookie, made = oidc_runtime.provider(session).sessions.create(
            citizen_id, acr="urn:shanakht:loa:low", amr=["pwd"], client_address="203.0.113.9",
            user_agent="test",
        )  # fmt: skip
    clock.now += TOUCH_EVERY + timedelta(seconds=1)
    with oidc_runtime.transaction() as session:
        sessions_ = oidc_runtime.provider(session).sessions
        assert sessions_.current(cookie) is not None
    assert _only_session(oidc_runtime)["last_seen"] == clock.now, "touched"
    with oidc_runtime.transaction() as session:
        sessions_ = oidc_runtime.provider(session).sessions
        stepped = sessions_.step_up(made.id, acr=SUBSTANTIAL, amr=["pwd", "otp"])
        assert stepped is not None
        assert sessions_.current(cookie) is None, "the old cookie opens nothing"
        raised = sessions_.current(stepped)
        assert raised is not None
        assert raised.acr == SUBSTANTIAL
        assert [s.id for s in sessions_.active_for(citizen_id)] == [made.id]
        assert sessions_.is_live(made.id)
    assert _unhonoured(oidc_runtime) == set()
    by_sql(oidc_runtime, update(sessions).values(user_agent="changed"))
    with oidc_runtime.transaction() as session:
        sessions_ = oidc_runtime.provider(session).sessions
        assert sessions_.step_up(made.id, acr=SUBSTANTIAL, amr=["pwd", "otp"]) is None
        assert not sessions_.is_live(made.id)
        assert sessions_.end(made.id, "logout") is not None, "ended all the same"
    assert _unhonoured(oidc_runtime) == {made.id}, "and still listed: no write blessed it"


def test_a_password_change_ends_the_sessions_no_list_shows(
    web: TestClient, oidc_runtime: Runtime, rp: RelyingParty, citizen: str
) -> None:
    """A session whose row fails its seal is in no list (`/account` shows honoured ones), yet
    a password change, which ends every other sign-in, ends it too: none is left standing."""
    _signed_in(web, rp, citizen)
    mine = _only_session(oidc_runtime)
    with oidc_runtime.transaction() as session:
        _, other = oidc_runtime.provider(session).sessions.create(
            mine["citizen_id"], acr="urn:shanakht:loa:low", amr=["pwd"],
            client_address="198.51.100.7", user_agent="elsewhere",
        )  # fmt: skip
    by_sql(oidc_runtime, update(sessions).where(sessions.c.id == other.id).values(acr=SUBSTANTIAL))
    with oidc_runtime.transaction() as session:
        provider = oidc_runtime.provider(session)
        assert [s.id for s in provider.sessions.active_for(mine["citizen_id"])] == [mine["id"]]
        ended = provider.sessions.end_all(mine["citizen_id"], "password_changed", keep=mine["id"])
    assert [e.sid for e in ended] == [other.sid]
    with oidc_runtime.sessions() as session:
        open_ = session.execute(select(sessions.c.id).where(sessions.c.ended_at.is_(None)))
        assert list(open_.scalars()) == [mine["id"]]


def test_sessions_from_before_0024_are_sealed_by_the_upgrade_that_applies_it(
    web: TestClient, oidc_runtime: Runtime, rp: RelyingParty, citizen: str
) -> None:
    """A deployment upgrading keeps its citizens signed in: the run that applies 0024 seals
    the sessions it finds, once."""
    _signed_in(web, rp, citizen)
    set_back(oidc_runtime, "0023")
    assert not oidc_runtime.keys.done(sealing_record("0024"))
    prepare(oidc_runtime)
    assert oidc_runtime.keys.done(sealing_record("0024"))
    assert _account_opens(web), "still signed in"
    assert _unhonoured(oidc_runtime) == set()


def _asks_consent(web: TestClient, rp: RelyingParty, scope: str) -> bool:
    """Whether a signed-in browser's authorization for `scope` stops at the consent page
    (rather than going straight back to the e-service with a code)."""
    response, _ = Browser(web).authorize(rp, scope=scope)
    assert response.status_code == 303, response.text
    return "/consent" in response.headers["location"]


def _unsealed_grants(runtime: Runtime) -> set[str]:
    with runtime.sessions() as session:
        return {bad.key for bad in bad_rows(session, runtime.row_seal, [grants])}


def test_a_scope_added_to_a_consent_by_sql_is_asked_for_again(
    web: TestClient, oidc_runtime: Runtime, rp: RelyingParty, citizen: str
) -> None:
    """The citizen agreed to `profile`; a DBA adds `cnic` and `address`. The e-service gets
    neither unasked: the consent is no consent, asked again even for `profile`, and the claims
    of a token issued before it are cut to nothing more than `openid` gives."""
    issued = _signed_in(web, rp, citizen)
    assert not _asks_consent(web, rp, "openid profile"), "remembered"
    by_sql(oidc_runtime, update(grants).values(scopes="address cnic openid profile"))
    assert _asks_consent(web, rp, "openid profile cnic address")
    assert _asks_consent(web, rp, "openid profile")
    headers = {"Authorization": f"Bearer {issued['access_token']}"}
    claims = web.get("/oauth/userinfo", headers=headers).json()
    assert set(claims) == {"sub"}, claims
    assert len(_unsealed_grants(oidc_runtime)) == 1


def test_a_consent_planted_by_sql_is_no_consent(
    web: TestClient, oidc_runtime: Runtime, rp: RelyingParty, citizen: str
) -> None:
    _signed_in(web, rp, citizen)
    other = register_client(oidc_runtime, "ehealth")
    honest = _only_grant(oidc_runtime)
    for mac in (honest["mac"], None):
        by_sql(
            oidc_runtime,
            insert(grants).values({**honest, "client_id": other.client_id, "mac": mac}),
        )
        assert _asks_consent(web, other, "openid profile")
        with oidc_runtime.transaction() as session:
            listed = oidc_runtime.provider(session).grants.for_citizen(honest["citizen_id"])
        assert [g.client_id for g in listed] == [rp.client_id], "the honest one alone"
        by_sql(oidc_runtime, grants.delete().where(grants.c.client_id == other.client_id))


def test_consenting_again_replaces_a_forged_consent_with_what_was_agreed(
    web: TestClient, oidc_runtime: Runtime, rp: RelyingParty, citizen: str
) -> None:
    """The honest writes keep a consent sealed, a second consent adds to the first, and an
    answer to the page asked again after a forgery keeps only what the citizen agreed to."""
    _signed_in(web, rp, citizen)
    citizen_id = _only_grant(oidc_runtime)["citizen_id"]
    with oidc_runtime.transaction() as session:
        consents = oidc_runtime.provider(session).grants
        assert consents.grant(citizen_id, rp.client_id, ["phone"]) >= {"profile", "phone"}
    assert _unsealed_grants(oidc_runtime) == set()
    by_sql(oidc_runtime, update(grants).values(scopes="address cnic openid"))
    with oidc_runtime.transaction() as session:
        consents = oidc_runtime.provider(session).grants
        assert consents.grant(citizen_id, rp.client_id, ["openid", "profile"]) == {
            "openid",
            "profile",
        }
        assert consents.scopes(citizen_id, rp.client_id) == {"openid", "profile"}
    assert _unsealed_grants(oidc_runtime) == set()


def test_consents_from_before_0026_are_sealed_by_the_upgrade_that_applies_it(
    web: TestClient, oidc_runtime: Runtime, rp: RelyingParty, citizen: str
) -> None:
    _signed_in(web, rp, citizen)
    set_back(oidc_runtime, "0025")
    assert not oidc_runtime.keys.done(sealing_record("0026"))
    prepare(oidc_runtime)
    assert oidc_runtime.keys.done(sealing_record("0026"))
    assert not _asks_consent(web, rp, "openid profile"), "still remembered"
    assert _unsealed_grants(oidc_runtime) == set()


def _only_grant(runtime: Runtime) -> dict[str, Any]:
    with runtime.sessions() as session:
        return dict(session.execute(select(grants)).one()._mapping)


def test_a_session_whose_account_was_changed_by_sql_gets_no_code(
    web: TestClient, oidc_runtime: Runtime, rp: RelyingParty, citizen: str
) -> None:
    """A sign-in made before its account's row was changed by SQL (a lockout cleared, a
    status set back) stands as a session, but an e-service gets no code from it: the browser
    is sent to sign in again, which that row refuses."""
    _signed_in(web, rp, citizen)
    response, _ = Browser(web).authorize(rp, scope="openid profile")
    assert response.headers["location"].startswith(rp.redirect_uri), "signed in: a code"
    by_sql(oidc_runtime, update(citizens).values(failed_logins=3))
    response, _ = Browser(web).authorize(rp, scope="openid profile")
    assert response.status_code == 303
    assert "/login?" in response.headers["location"]
