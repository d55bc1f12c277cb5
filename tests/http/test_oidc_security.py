"""The checks an attacker would probe: redirects, PKCE, code and refresh replay, client
authentication, token lifetimes, CSRF, and what ends when a session ends."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock
from urllib.parse import urlencode

import pyotp
import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from sqlalchemy import event, func, select, update

from api.app import _sweep_sessions
from api.runtime import Runtime
from audit import pseudonym
from audit.models import entries
from audit.row_seal import seal_unsealed
from identity.models import challenges, codes, session_clients, tokens, totp_factors
from identity.models import sessions as sso_sessions
from identity.nadra import SCENARIOS, read_registry
from identity.oidc.errors import InvalidGrant
from identity.oidc.grants import Grants
from identity.oidc.tokens import TokenService
from tests.http.oidc_kit import (
    ISSUER,
    PASSWORD,
    Browser,
    RelyingParty,
    csrf_of,
    pkce,
    press_send,
    query_of,
    register_citizen,
    register_client,
    token,
    verify_jwt,
)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def citizen(oidc_runtime: Runtime) -> str:
    record = read_registry(oidc_runtime.identity.nadra_file)[SCENARIOS["active_male"]]
    register_citizen(oidc_runtime, record)
    return record.cnic


@pytest.fixture
def rp(oidc_runtime: Runtime) -> RelyingParty:
    return register_client(oidc_runtime, "etransfer")


@pytest.fixture
def browser(web: TestClient) -> Browser:
    return Browser(web)


def _tokens(web: TestClient, browser: Browser, rp: RelyingParty, cnic: str, **params: str) -> dict:
    callback, verifier = browser.sign_in(rp, cnic, **params)
    response = token(
        web, rp, grant_type="authorization_code", code=callback["code"],
        redirect_uri=rp.redirect_uri, code_verifier=verifier,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    return response.json()


def _userinfo(web: TestClient, access_token: str) -> int:
    return web.get(
        "/oauth/userinfo", headers={"Authorization": f"Bearer {access_token}"}
    ).status_code


def _ask_for_sms(web: TestClient, page: Any) -> Any:
    """Press "Send me a code" on the second-factor page; return the page that asks for it."""
    assert 'name="ticket"' not in page.text, "a GET sent no code, so none is asked for yet"
    action = page.text.split('<form method="post" action="')[1].split('"')[0]
    sent = web.post(
        action.replace("&amp;", "&"), data={"csrf": csrf_of(page.text)}, follow_redirects=False
    )
    assert sent.status_code == 303, sent.text
    return web.get(sent.headers["location"])


def _session_cookie(web: TestClient) -> str:
    return next(v for k, v in web.cookies.items() if k.endswith("shanakht_session"))


# -- the front channel ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"redirect_uri": "https://evil.example/callback"},
        {"redirect_uri": "https://etransfer.example/callback/../../evil"},
        {"redirect_uri": "https://etransfer.example/callback?x=1"},
        {"client_id": "no-such-client"},
    ],
)
def test_untrusted_clients_and_redirects_never_redirect(
    browser: Browser, rp: RelyingParty, change: dict[str, str]
) -> None:
    response, _ = browser.authorize(rp, **change)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "not valid" in response.text


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": ""}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "profile"}, "invalid_scope"),
        ({"scope": "openid roles"}, "invalid_scope"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"max_age": "soon"}, "invalid_request"),
    ],
)
def test_bad_requests_go_back_to_the_client_with_state(
    browser: Browser, rp: RelyingParty, change: dict[str, str], error: str
) -> None:
    response, _ = browser.authorize(rp, state="s-42", **change)
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith(rp.redirect_uri)
    query = query_of(location)
    assert query["error"] == error
    assert query["state"] == "s-42"
    assert query["iss"] == ISSUER


def test_prompt_none_without_a_session_says_login_required(
    browser: Browser, rp: RelyingParty
) -> None:
    response, _ = browser.authorize(rp, prompt="none")
    assert query_of(response.headers["location"])["error"] == "login_required"


def test_single_sign_on_asks_no_password_the_second_time(
    web: TestClient, oidc_runtime: Runtime, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    _tokens(web, browser, rp, citizen)
    other = register_client(oidc_runtime, "domicile")
    response, _ = browser.authorize(other)
    page = browser.follow(response)
    assert "/consent" in str(page.url), "straight to consent: no login page"
    back = browser.consent(page)
    second = browser.follow(back)
    assert second.headers["location"].startswith(other.redirect_uri)
    # and with consent remembered, prompt=none now succeeds silently
    response, _ = browser.authorize(other, prompt="none")
    assert "code" in query_of(browser.follow(response).headers["location"])


def test_subjects_are_pairwise(
    web: TestClient, oidc_runtime: Runtime, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    first = verify_jwt(web, _tokens(web, browser, rp, citizen)["id_token"])
    other = register_client(oidc_runtime, "domicile")
    second = verify_jwt(web, _tokens(web, browser, other, citizen)["id_token"])
    assert first["sub"] != second["sub"]
    again = verify_jwt(web, _tokens(web, browser, rp, citizen)["id_token"])
    assert again["sub"] == first["sub"]


def test_a_denied_consent_returns_access_denied(
    web: TestClient, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    response, _ = browser.authorize(rp)
    page = browser.follow(response)
    consent_page = browser.follow(browser.login(page, citizen))
    consent_page = browser.follow(consent_page) if consent_page.status_code == 303 else consent_page
    back = browser.consent(consent_page, decision="deny")
    assert query_of(back.headers["location"])["error"] == "access_denied"


def test_login_and_consent_forms_need_their_csrf_token(
    web: TestClient, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    response, _ = browser.authorize(rp)
    page = browser.follow(response)
    request_id = query_of(str(page.url))["request"]
    forged = web.post(
        "/login",
        data={"cnic": citizen, "password": "x", "csrf": "forged", "request": request_id},
        follow_redirects=False,
    )
    assert forged.status_code == 403


def test_pages_cannot_be_framed_or_load_anything_from_elsewhere(web: TestClient) -> None:
    page = web.get("/login")
    assert page.headers["x-frame-options"] == "DENY"
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'none'" in csp
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("__Host-shanakht_csrf=")
    assert "Secure" in cookie
    assert "HttpOnly" in cookie


# -- the token endpoint ------------------------------------------------------------------------


def test_a_wrong_or_missing_pkce_verifier_is_refused(
    web: TestClient, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    callback, _ = browser.sign_in(rp, citizen)
    wrong, _ = pkce()
    response = token(
        web, rp, grant_type="authorization_code", code=callback["code"],
        redirect_uri=rp.redirect_uri, code_verifier=wrong,
    )  # fmt: skip
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_a_reused_code_revokes_what_the_first_use_got(
    web: TestClient, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    callback, verifier = browser.sign_in(rp, citizen)
    form = {
        "grant_type": "authorization_code",
        "code": callback["code"],
        "redirect_uri": rp.redirect_uri,
        "code_verifier": verifier,
    }
    first = token(web, rp, **form).json()
    assert _userinfo(web, first["access_token"]) == 200
    second = token(web, rp, **form)
    assert second.json()["error"] == "invalid_grant"
    assert _userinfo(web, first["access_token"]) == 401
    refreshed = token(web, rp, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert refreshed.json()["error"] == "invalid_grant"


def test_a_code_is_for_the_client_it_was_issued_to(
    web: TestClient, oidc_runtime: Runtime, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    callback, verifier = browser.sign_in(rp, citizen)
    thief = register_client(oidc_runtime, "thief")
    response = token(
        web, thief, grant_type="authorization_code", code=callback["code"],
        redirect_uri=rp.redirect_uri, code_verifier=verifier,
    )  # fmt: skip
    assert response.json()["error"] == "invalid_grant"


def test_refresh_tokens_rotate_and_a_reused_one_revokes_the_family(
    web: TestClient, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    first = _tokens(web, browser, rp, citizen)
    second = token(web, rp, grant_type="refresh_token", refresh_token=first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert _userinfo(web, second["access_token"]) == 200
    replay = token(web, rp, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert replay.json()["error"] == "invalid_grant"
    after = token(web, rp, grant_type="refresh_token", refresh_token=second["refresh_token"])
    assert after.json()["error"] == "invalid_grant", "the newer token died with its family"
    assert _userinfo(web, second["access_token"]) == 401


def test_a_refresh_after_the_sign_in_session_expired_is_refused(
    web: TestClient, oidc_runtime: Runtime, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    """Idle past its timeout, before the sweeper has ended it and revoked its tokens: the
    token is unspent and unrevoked, and the session alone says no."""
    first = _tokens(web, browser, rp, citizen)
    with oidc_runtime.transaction() as session:
        session.execute(update(sso_sessions).values(expires_at=datetime.now(UTC) - timedelta(1)))
    refused = token(web, rp, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert refused.json() == {
        "error": "invalid_grant",
        "error_description": "the sign-in session has ended",
    }


@contextlib.contextmanager
def _both_past(cls: type, method: str) -> Iterator[None]:
    """Patch `cls.method` so that two threads have both returned from it before either goes
    on: each has read the row, and only then does either write."""
    barrier = threading.Barrier(2)
    real = getattr(cls, method)

    def wrapped(self: object, *args: Any) -> Any:
        result = real(self, *args)
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=5)  # a second call by one thread alone goes on after this
        return result

    with mock.patch.object(cls, method, wrapped):
        yield


def test_one_refresh_token_sent_twice_at_once_is_spent_once_and_its_family_revoked(
    web: TestClient, oidc_runtime: Runtime, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    """Both requests read the token unspent; only one compare-and-set can win, and the loser
    is judged a reuse, as if it had come second."""
    first = _tokens(web, browser, rp, citizen)

    def refresh() -> str:
        with oidc_runtime.transaction() as session:
            provider = oidc_runtime.provider(session)
            client = provider.clients.get(rp.client_id)
            assert client is not None
            try:
                provider.tokens.refresh(
                    client, refresh_token=first["refresh_token"], scope=None, dpop_jkt=None
                )
            except InvalidGrant as exc:
                return str(exc)
            return "refreshed"

    with _both_past(TokenService, "_check_refresh"), ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(lambda _: refresh(), range(2)))
    assert outcomes == [
        "refreshed",
        "the refresh token was already used; its whole grant is revoked",
    ]
    with oidc_runtime.transaction() as session:
        live = session.execute(
            select(func.count()).where(tokens.c.kind == "refresh", tokens.c.revoked_at.is_(None))
        ).scalar_one()
    assert live == 0, "the winner's new refresh token died with its family"


def test_a_refresh_cannot_widen_the_scope(
    web: TestClient, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    first = _tokens(web, browser, rp, citizen)
    wider = token(
        web, rp, grant_type="refresh_token", refresh_token=first["refresh_token"],
        scope="openid profile cnic",
    )  # fmt: skip
    assert wider.json()["error"] == "invalid_scope"


def test_client_secret_basic_works_and_a_wrong_secret_does_not(
    web: TestClient, oidc_runtime: Runtime, browser: Browser, citizen: str
) -> None:
    rp = register_client(oidc_runtime, "legacy", secret=True)
    assert _tokens(web, browser, rp, citizen)["access_token"]
    rp.secret = "wrong"
    response = token(web, rp, grant_type="refresh_token", refresh_token="x")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")


def _assertion_form(assertion: str) -> dict[str, str]:
    return {
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
        "grant_type": "refresh_token",
        "refresh_token": "unknown",
    }


def test_client_assertions_are_checked(
    web: TestClient, oidc_runtime: Runtime, rp: RelyingParty
) -> None:
    other = register_client(oidc_runtime, "other")
    now = int(time.time())
    bad = {
        "signed by another client's key": jwt.encode(
            {"alg": "RS256"},
            {
                "iss": "etransfer",
                "sub": "etransfer",
                "aud": f"{ISSUER}/oauth/token",
                "jti": "j-9",
                "exp": now + 60,
            },
            other.key,
        ),
        "garbage": "not.a.jwt",
        "garbage with dots": other.assertion().replace("e", "x"),
        "wrong audience": rp.assertion(audience="https://elsewhere.example/token"),
        "expired": rp.assertion(iat=now - 600, exp=now - 300),
        "lives too long": rp.assertion(exp=now + 3600),
        "iss is not sub": rp.assertion(sub="other"),
    }
    for case, assertion in bad.items():
        response = web.post("/oauth/token", data=_assertion_form(assertion))
        assert response.status_code == 401, (case, response.text)
        assert response.json()["error"] == "invalid_client", case
    # a good assertion passes client authentication (then fails on the unknown refresh token)
    good = rp.assertion()
    assert web.post("/oauth/token", data=_assertion_form(good)).json()["error"] == "invalid_grant"
    replay = web.post("/oauth/token", data=_assertion_form(good))
    assert replay.json()["error"] == "invalid_client", "an assertion is for one use"


def test_alg_none_and_hs256_with_the_public_key_are_refused(
    web: TestClient, rp: RelyingParty
) -> None:
    now = int(time.time())
    claims = {"iss": "etransfer", "sub": "etransfer", "aud": f"{ISSUER}/oauth/token",
              "jti": "j-1", "exp": now + 60}  # fmt: skip

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    # HS256 keyed with the client's *public* key, the classic algorithm-confusion forgery,
    # built by hand since joserfc itself refuses to make it.
    body = b64(json.dumps(claims).encode())
    signing_input = b64(json.dumps({"alg": "HS256"}).encode()) + "." + body
    mac = hmac.new(rp.key.as_pem(private=False), signing_input.encode(), hashlib.sha256)
    hs256 = f"{signing_input}.{b64(mac.digest())}"
    none = b64(json.dumps({"alg": "none"}).encode()) + "." + body + "."
    for assertion in (hs256, none):
        response = web.post("/oauth/token", data=_assertion_form(assertion))
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"


def test_department_systems_use_client_credentials_and_e_services_may_not(
    web: TestClient, oidc_runtime: Runtime, rp: RelyingParty
) -> None:
    system = register_client(oidc_runtime, "education-dept", kind="service")
    granted = token(web, system, grant_type="client_credentials").json()
    assert granted["scope"] == "locker.fetch"
    assert "refresh_token" not in granted
    claims = verify_jwt(web, granted["access_token"])
    assert claims["sub"] == "education-dept"
    assert (
        token(web, system, grant_type="client_credentials", scope="locker.issue").json()["error"]
        == "invalid_scope"
    )
    assert token(web, rp, grant_type="client_credentials").json()["error"] == "unauthorized_client"
    assert token(web, rp, grant_type="password").json()["error"] == "unsupported_grant_type"


def test_introspection_and_revocation(
    web: TestClient, oidc_runtime: Runtime, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    tokens = _tokens(web, browser, rp, citizen)
    form, headers = rp.auth()
    seen = web.post(
        "/oauth/introspect", data={**form, "token": tokens["access_token"]}, headers=headers
    )
    assert seen.json()["active"] is True
    assert seen.json()["client_id"] == "etransfer"
    other = register_client(oidc_runtime, "other")
    form2, headers2 = other.auth()
    hidden = web.post(
        "/oauth/introspect", data={**form2, "token": tokens["access_token"]}, headers=headers2
    )
    assert hidden.json() == {"active": False}, "a client sees only its own tokens"
    form, headers = rp.auth()
    revoked = web.post(
        "/oauth/revoke", data={**form, "token": tokens["refresh_token"]}, headers=headers
    )
    assert revoked.status_code == 200
    assert (
        token(web, rp, grant_type="refresh_token", refresh_token=tokens["refresh_token"]).json()[
            "error"
        ]
        == "invalid_grant"
    )
    form, headers = rp.auth()
    gone = web.post(
        "/oauth/introspect", data={**form, "token": tokens["access_token"]}, headers=headers
    )
    assert gone.json() == {"active": False}, "revoking the refresh token took its family"


def test_expired_tokens_and_codes_are_refused(
    web: TestClient, oidc_runtime: Runtime, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    tokens = _tokens(web, browser, rp, citizen)
    clock = Clock()
    oidc_runtime.clock = clock
    clock.now += timedelta(minutes=11)
    assert _userinfo(web, tokens["access_token"]) == 401
    clock.now += timedelta(hours=13)
    response = web.post(
        "/oauth/token",
        data={
            **_assertion_form(
                rp.assertion(iat=int(clock.now.timestamp()), exp=int(clock.now.timestamp()) + 60)
            ),
            "refresh_token": tokens["refresh_token"],
        },
    )
    assert response.json()["error"] == "invalid_grant"


def test_a_tampered_access_token_is_refused(
    web: TestClient, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    access = _tokens(web, browser, rp, citizen)["access_token"]
    head, body, signature = access.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert _userinfo(web, f"{head}.{body}.{flipped}") == 401
    response = web.get("/oauth/userinfo")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


# -- sessions ----------------------------------------------------------------------------------


def test_logout_ends_the_session_its_tokens_and_sso(
    web: TestClient, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    tokens = _tokens(web, browser, rp, citizen)
    query = urlencode(
        {
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": "https://etransfer.example/signed-out",
            "state": "bye",
        }
    )
    response = web.get(f"/logout?{query}", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "https://etransfer.example/signed-out?state=bye"
    # The browser forgets the signed-in pages it cached and what they stored (ASVS 8.2.3).
    assert response.headers["clear-site-data"] == '"cache", "storage"'
    assert _userinfo(web, tokens["access_token"]) == 401
    again, _ = browser.authorize(rp)
    assert "/login" in again.headers["location"], "signed out of single sign-on too"


def test_a_logout_link_without_a_matching_hint_asks_first(
    web: TestClient, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    tokens = _tokens(web, browser, rp, citizen)
    page = web.get("/logout?post_logout_redirect_uri=https://evil.example/", follow_redirects=False)
    assert page.status_code == 200
    assert "Sign out of every e-service?" in page.text
    assert _userinfo(web, tokens["access_token"]) == 200


def test_step_up_to_substantial_with_an_sms_code(
    web: TestClient, oidc_runtime: Runtime, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    _tokens(web, browser, rp, citizen)
    response, verifier = browser.authorize(rp, acr_values="urn:shanakht:loa:substantial")
    assert "/login/second-factor" in response.headers["location"]
    page = _ask_for_sms(web, browser.follow(response))
    record = read_registry(oidc_runtime.identity.nadra_file)[citizen]
    code = oidc_runtime.identity.sms.last_to(record.mobile_numbers[0]).text.split()[3].rstrip(".")
    ticket = page.text.split('name="ticket" value="')[1].split('"')[0]
    posted = web.post(
        str(page.url).removeprefix("https://shanakht.test"),
        data={"ticket": ticket, "code": code, "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    back = browser.follow(posted)
    callback = query_of(back.headers["location"])
    exchanged = token(
        web, rp, grant_type="authorization_code", code=callback["code"],
        redirect_uri=rp.redirect_uri, code_verifier=verifier,
    )  # fmt: skip
    claims = verify_jwt(web, exchanged.json()["id_token"])
    assert claims["acr"] == "urn:shanakht:loa:substantial"
    assert claims["amr"] == ["pwd", "sms"]


def test_a_token_keeps_the_acr_of_its_grant_when_the_session_steps_up(
    web: TestClient, oidc_runtime: Runtime, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    """The acr is the token's, not the session's: tokens an e-service got with a password
    alone, and those its refresh token brings later, stay `low` after the same session steps
    up (for another e-service, say); tokens issued after the step-up are `substantial`."""
    low = _tokens(web, browser, rp, citizen)
    _sms_step_up(web, oidc_runtime, citizen, then="/account")
    refreshed = token(web, rp, grant_type="refresh_token", refresh_token=low["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    high = _tokens(web, browser, rp, citizen, acr_values="urn:shanakht:loa:substantial")
    with oidc_runtime.engine.connect() as connection:
        count = select(func.count()).select_from(sso_sessions)
        assert connection.execute(count).scalar_one() == 1, "one session, stepped up"
    expected = [
        (low["access_token"], "urn:shanakht:loa:low", ["pwd"]),
        (refreshed.json()["access_token"], "urn:shanakht:loa:low", ["pwd"]),
        (refreshed.json()["refresh_token"], "urn:shanakht:loa:low", ["pwd"]),
        (high["access_token"], "urn:shanakht:loa:substantial", ["pwd", "sms"]),
    ]
    for value, acr, amr in expected:
        form, headers = rp.auth()
        seen = web.post("/oauth/introspect", data={**form, "token": value}, headers=headers)
        assert (seen.json()["active"], seen.json()["acr"], seen.json()["amr"]) == (True, acr, amr)
        if value.count(".") == 2:  # an access token says so itself (RFC 9068 2.2.1)
            claims = verify_jwt(web, value)
            assert (claims["acr"], claims["amr"]) == (acr, amr)


def _logout_tokens(web: TestClient, runtime: Runtime) -> list[dict]:
    notifier = runtime.identity.notifier
    return [verify_jwt(web, n.token) for n in notifier.delivered]  # type: ignore[attr-defined]


def test_every_e_service_in_the_session_hears_of_the_logout(
    web: TestClient, oidc_runtime: Runtime, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    rp_claims = verify_jwt(web, _tokens(web, browser, rp, citizen)["id_token"])
    other = register_client(
        oidc_runtime, "domicile", backchannel_logout_uri="https://domicile.example/bc"
    )
    other_claims = verify_jwt(web, _tokens(web, browser, other, citizen)["id_token"])
    page = web.get("/logout")
    web.post("/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    tokens = _logout_tokens(web, oidc_runtime)
    assert [t["aud"] for t in tokens] == ["domicile"], "only clients with a back-channel URI"
    (logout,) = tokens
    assert logout["sub"] == other_claims["sub"]
    assert logout["sid"] == other_claims["sid"] == rp_claims["sid"]
    assert "http://schemas.openid.net/event/backchannel-logout" in logout["events"]
    assert "nonce" not in logout


def test_a_lockout_by_strangers_ends_no_session_and_keeps_only_strangers_out(
    web: TestClient, oidc_runtime: Runtime, rp: RelyingParty, citizen: str
) -> None:
    """Anyone who knows a CNIC can fail five logins; that locks the account for browsers it
    has never signed in from, and nothing else: the holder's sessions and tokens stay, and the
    holder's browser (it has a device cookie) still signs in."""
    rp_with_bc = register_client(oidc_runtime, "bc", backchannel_logout_uri="https://bc.example/bc")
    signed_in = Browser(web)
    tokens = _tokens(web, signed_in, rp_with_bc, citizen)
    attacker = TestClient(web.app, base_url="https://shanakht.test")
    for _ in range(oidc_runtime.identity.policy.lockout_threshold):
        page = attacker.get("/login")
        response = attacker.post(
            "/login",
            data={"cnic": citizen, "password": "Wrong#Guess2026", "csrf": csrf_of(page.text)},
            follow_redirects=False,
        )
        assert response.status_code == 401
    assert _userinfo(web, tokens["access_token"]) == 200, "the holder's tokens stand"
    assert web.get("/account", follow_redirects=False).status_code == 200, "and the session"
    assert _logout_tokens(web, oidc_runtime) == []
    mobile = read_registry(oidc_runtime.identity.nadra_file)[citizen].mobile_numbers[0]
    assert "locked" in oidc_runtime.identity.sms.last_to(mobile).text  # type: ignore[union-attr]
    # The right password from another unknown browser is refused, with the usual words.
    stranger = TestClient(web.app, base_url="https://shanakht.test")
    page = stranger.get("/login")
    form = {"cnic": citizen, "password": PASSWORD, "csrf": csrf_of(page.text)}
    assert stranger.post("/login", data=form, follow_redirects=False).status_code == 401
    # The holder's browser, signed out, signs in again with its device cookie.
    page = web.get("/logout")
    web.post("/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    page = web.get("/login")
    form = {"cnic": citizen, "password": PASSWORD, "csrf": csrf_of(page.text)}
    assert web.post("/login", data=form, follow_redirects=False).status_code == 303


def test_expired_sessions_are_swept_and_announced(
    web: TestClient, oidc_runtime: Runtime, browser: Browser, citizen: str
) -> None:
    rp_with_bc = register_client(oidc_runtime, "bc", backchannel_logout_uri="https://bc.example/bc")
    _tokens(web, browser, rp_with_bc, citizen)
    clock = Clock()
    oidc_runtime.clock = clock
    _sweep_sessions(oidc_runtime)
    assert _logout_tokens(web, oidc_runtime) == []
    clock.now += timedelta(hours=3)
    _sweep_sessions(oidc_runtime)
    assert [t["aud"] for t in _logout_tokens(web, oidc_runtime)] == ["bc"]
    with oidc_runtime.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(tokens)).scalar_one() > 0
    clock.now += timedelta(days=2)
    _sweep_sessions(oidc_runtime)
    with oidc_runtime.engine.connect() as connection:
        for table in (tokens, codes, challenges, sso_sessions, session_clients):
            left = connection.execute(select(func.count()).select_from(table)).scalar_one()
            assert left == 0, f"{table.name} still holds rows past their retention"


def _sms_step_up(web: TestClient, runtime: Runtime, cnic: str, *, then: str) -> None:
    """Give this browser's session a second factor with the SMS code, and come back to `then`."""
    page = _ask_for_sms(web, web.get(f"/login/second-factor?{urlencode({'next': then})}"))
    record = read_registry(runtime.identity.nadra_file)[cnic]
    code = runtime.identity.sms.last_to(record.mobile_numbers[0]).text.split()[3].rstrip(".")
    ticket = page.text.split('name="ticket" value="')[1].split('"')[0]
    posted = web.post(
        f"/login/second-factor?{urlencode({'method': 'sms', 'next': then})}",
        data={"ticket": ticket, "code": code, "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert posted.headers["location"] == then, posted.text


def test_step_up_with_an_authenticator_app(
    web: TestClient, oidc_runtime: Runtime, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    clock = Clock()  # held still, so the codes below fall in known 30-second steps
    oidc_runtime.clock = clock
    _tokens(web, browser, rp, citizen)
    # A password alone cannot put an app in: it would make whoever stole it `substantial`.
    refused = web.get("/account/authenticator", follow_redirects=False)
    assert refused.headers["location"].startswith("/login/second-factor")
    csrf = csrf_of(web.get("/account").text)
    for path in ("/account/authenticator/begin", "/account/authenticator/disable"):
        posted = web.post(path, data={"csrf": csrf}, follow_redirects=False)
        assert posted.headers["location"].startswith("/login/second-factor"), path
    with oidc_runtime.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(totp_factors)).scalar() == 0
    _sms_step_up(web, oidc_runtime, citizen, then="/account/authenticator")
    start = web.get("/account/authenticator")
    assert start.status_code == 200
    setup = web.post("/account/authenticator/begin", data={"csrf": csrf_of(start.text)})
    assert 'src="data:image/svg+xml;base64,' in setup.text
    secret = setup.text.split('<code dir="ltr" id="totp-key">')[1].split("</code>")[0]
    app = pyotp.TOTP(secret)
    confirmed = web.post(
        "/account/authenticator", data={"csrf": csrf_of(setup.text), "code": app.at(clock.now)}
    )  # the held clock's step, not the wall clock's: a step crossed mid-test spent the next one
    assert "Your recovery codes" in confirmed.text
    web.cookies.clear()  # a new sign-in: password first, then the app
    response, verifier = browser.authorize(rp, acr_values="urn:shanakht:loa:substantial")
    page = browser.follow(browser.login(browser.follow(response), citizen))
    while page.status_code == 303:  # back through the authorization, on to the second factor
        page = browser.follow(page)
    assert "authenticator app" in page.text
    action = page.text.split('action="')[1].split('"')[0].replace("&amp;", "&")
    not_the_code = "000000" if app.at(clock.now) != "000000" else "111111"
    wrong = web.post(action, data={"code": not_the_code, "csrf": csrf_of(page.text)})
    assert wrong.status_code == 400
    replayed = web.post(action, data={"code": app.at(clock.now), "csrf": csrf_of(page.text)})
    assert replayed.status_code == 400, "the setup code's time step is spent"
    next_step = app.at(clock.now + timedelta(seconds=30))  # one step of drift is forgiven
    posted = web.post(
        action, data={"code": next_step, "csrf": csrf_of(page.text)}, follow_redirects=False
    )
    assert posted.status_code == 303, posted.text
    callback = query_of(browser.follow(posted).headers["location"])
    exchanged = token(
        web, rp, grant_type="authorization_code", code=callback["code"],
        redirect_uri=rp.redirect_uri, code_verifier=verifier,
    )  # fmt: skip
    claims = verify_jwt(web, exchanged.json()["id_token"])
    assert claims["acr"] == "urn:shanakht:loa:substantial"
    assert claims["amr"] == ["pwd", "otp"]


def test_prompt_login_and_max_age_ask_for_the_password_again(
    web: TestClient, oidc_runtime: Runtime, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    clock = Clock()
    oidc_runtime.clock = clock
    _tokens(web, browser, rp, citizen)
    again, _ = browser.authorize(rp)
    assert again.headers["location"].startswith(rp.redirect_uri), "SSO: no login needed"
    clock.now += timedelta(seconds=1)
    forced, _ = browser.authorize(rp, prompt="login")
    assert forced.headers["location"].startswith("/login?request=")
    clock.now += timedelta(minutes=3)
    stale, _ = browser.authorize(rp, max_age="60")
    assert "/login" in stale.headers["location"]
    fresh, _ = browser.authorize(rp, max_age="600")
    assert fresh.headers["location"].startswith(rp.redirect_uri)


def test_rotated_keys_keep_old_tokens_valid(
    web: TestClient, oidc_runtime: Runtime, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    before = _tokens(web, browser, rp, citizen)
    old_kid = json.loads(base64.urlsafe_b64decode(before["id_token"].split(".")[0] + "=="))["kid"]
    with oidc_runtime.transaction() as session:
        oidc_runtime.provider(session).keys.rotate()
    published = {k["kid"] for k in web.get("/oauth/jwks").json()["keys"]}
    assert old_kid in published
    assert len(published) == 4
    assert _userinfo(web, before["access_token"]) == 200, "tokens signed by the old key still work"
    verify_jwt(web, before["id_token"])
    after = _tokens(web, browser, rp, citizen)
    new_kid = json.loads(base64.urlsafe_b64decode(after["id_token"].split(".")[0] + "=="))["kid"]
    assert new_kid != old_kid
    oidc_runtime.clock = Clock()
    oidc_runtime.clock.now += timedelta(days=2)  # type: ignore[attr-defined]
    with oidc_runtime.transaction() as session:
        later = {k["kid"] for k in oidc_runtime.provider(session).keys.published()}
    assert old_kid not in later, "a day after rotation the old key leaves the JWKS"


def test_a_tampered_id_token_hint_signs_no_one_out(
    web: TestClient, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    tokens = _tokens(web, browser, rp, citizen)
    head, body, signature = tokens["id_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["sid"] = "someone-elses-session"
    forged_body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    forged = f"{head}.{forged_body}.{signature}"
    page = web.get(f"/logout?{urlencode({'id_token_hint': forged})}", follow_redirects=False)
    assert page.status_code == 200, "no valid hint: the citizen is asked, not signed out"
    assert _userinfo(web, tokens["access_token"]) == 200


def test_two_consents_given_at_once_both_land(
    oidc_runtime: Runtime, rp: RelyingParty, citizen: str
) -> None:
    """Two tabs consenting to different scopes at the same moment: no key clash, no lost
    scope (the row is made if missing, then locked before it is read)."""
    with oidc_runtime.transaction() as session:
        citizen_id = oidc_runtime.provider(session).accounts.by_pseudonym(
            pseudonym(citizen, key=oidc_runtime.pseudonym_key)
        )
    assert citizen_id is not None

    def consent(scopes: tuple[str, ...]) -> None:
        with oidc_runtime.transaction() as session:
            oidc_runtime.provider(session).grants.grant(citizen_id.id, rp.client_id, scopes)

    with _both_past(Grants, "scopes"), ThreadPoolExecutor(2) as pool:
        list(pool.map(consent, [("openid", "profile"), ("openid", "cnic")]))
    with oidc_runtime.transaction() as session:
        held = oidc_runtime.provider(session).grants.scopes(citizen_id.id, rp.client_id)
    assert held == {"openid", "profile", "cnic"}


def test_token_grants_are_audited(
    web: TestClient, oidc_runtime: Runtime, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    first = _tokens(web, browser, rp, citizen)
    token(web, rp, grant_type="refresh_token", refresh_token=first["refresh_token"])
    with oidc_runtime.sessions() as session:
        recorded = b"".join(session.execute(select(entries.c.entry)).scalars())
    assert b'"action":"identity.token.issued"' in recorded
    assert b'"action":"identity.token.refreshed"' in recorded


def test_one_code_redeemed_twice_at_once_gives_tokens_once_and_revokes_them(
    web: TestClient, oidc_runtime: Runtime, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    callback, verifier = browser.sign_in(rp, citizen)

    def redeem() -> str:
        with oidc_runtime.transaction() as session:
            provider = oidc_runtime.provider(session)
            client = provider.clients.get(rp.client_id)
            assert client is not None
            try:
                provider.tokens.exchange_code(
                    client, code=callback["code"], redirect_uri=rp.redirect_uri,
                    code_verifier=verifier, dpop_jkt=None,
                )  # fmt: skip
            except InvalidGrant as exc:
                return str(exc)
            return "redeemed"

    with _both_past(TokenService, "_check_code"), ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(lambda _: redeem(), range(2)))
    assert outcomes == ["redeemed", "the code was already used"]
    with oidc_runtime.transaction() as session:
        live = session.execute(
            select(func.count()).where(tokens.c.revoked_at.is_(None))
        ).scalar_one()
    assert live == 0, "what the winner got is revoked with the code's family"


def test_sms_codes_for_the_second_factor_are_throttled_per_account(
    web: TestClient, oidc_runtime: Runtime, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    """Each code sent costs a text and brings five new guesses. Only the page's button sends
    one; past the limit, a 429 and no text."""
    _tokens(web, browser, rp, citizen)
    mobile = read_registry(oidc_runtime.identity.nadra_file)[citizen].mobile_numbers[0]
    texts = len([m for m in oidc_runtime.identity.sms.messages() if m.to == mobile])
    limit = oidc_runtime.identity.policy.per_account_sms.attempts
    page = web.get("/login/second-factor?next=/account")
    send = "/login/second-factor/send?request=&method=sms&next=%2Faccount"
    for _ in range(limit):
        sent = web.post(send, data={"csrf": csrf_of(page.text)}, follow_redirects=False)
        assert sent.status_code == 303
    refused = web.post(send, data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    sent_now = len([m for m in oidc_runtime.identity.sms.messages() if m.to == mobile])
    assert sent_now == texts + limit


def test_wrong_sms_codes_are_counted_across_every_code_sent(
    web: TestClient, oidc_runtime: Runtime, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    """Each code sent has five tries of its own, but an account gets five wrong codes in 15
    minutes whatever the number of codes: past that, even the right code is refused (429,
    Retry-After, and the page says when to try again), and no more are sent meanwhile."""
    clock = Clock()
    oidc_runtime.clock = clock
    _tokens(web, browser, rp, citizen)
    mobile = read_registry(oidc_runtime.identity.nadra_file)[citizen].mobile_numbers[0]
    limit = oidc_runtime.identity.policy.per_account_sms_codes
    assert (limit.attempts, limit.window) == (5, timedelta(minutes=15))
    assert oidc_runtime.identity.policy.code_attempts == 5, "five for each code on its own"
    action = "/login/second-factor?request=&method=sms&next=%2Faccount"

    def enter(page: Any, code: str) -> Any:
        ticket = page.text.split('name="ticket" value="')[1].split('"')[0]
        return web.post(action, data={"ticket": ticket, "code": code, "csrf": csrf_of(page.text)})

    def sent() -> str:
        return oidc_runtime.identity.sms.last_to(mobile).text.split()[3].rstrip(".")

    page = _ask_for_sms(web, web.get("/login/second-factor?next=/account"))
    for _ in range(3):
        assert enter(page, f"{(int(sent()) + 1) % 10**6:06d}").status_code == 400
    page = web.get(press_send(web, page.text).headers["location"])  # a new code, 5 new tries
    for _ in range(2):
        assert enter(page, f"{(int(sent()) + 1) % 10**6:06d}").status_code == 400
    clock.now += timedelta(minutes=3)
    refused = enter(page, sent())
    assert refused.status_code == 429, "the sixth try, right or not, across both codes"
    assert refused.headers["Retry-After"] == str(12 * 60)
    assert f"Try again in {12 * 60} seconds" in refused.text
    texts = len([m for m in oidc_runtime.identity.sms.messages() if m.to == mobile])
    another = press_send(web, page.text)
    assert another.status_code == 429
    assert another.headers["Retry-After"] == str(12 * 60)
    assert len([m for m in oidc_runtime.identity.sms.messages() if m.to == mobile]) == texts
    assert web.get("/account", follow_redirects=False).status_code == 200, "still signed in"
    clock.now += timedelta(minutes=12)  # the window is over: a new code, and it works
    page = web.get(press_send(web, page.text).headers["location"])
    stepped = enter(page, sent())
    assert stepped.url.path == "/account", stepped.text
    with oidc_runtime.engine.connect() as connection:
        acr = connection.execute(select(sso_sessions.c.acr)).scalar_one()
    assert acr == "urn:shanakht:loa:substantial"


def test_the_code_page_sends_nothing_on_a_get(
    web: TestClient, oidc_runtime: Runtime, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    """A link to the code page, followed by a signed-in browser from any site, sends no text:
    the page offers a button, whose POST needs this browser's CSRF token. Once a code is sent,
    the page asks for it again on reload and sends no other."""
    _tokens(web, browser, rp, citizen)
    mobile = read_registry(oidc_runtime.identity.nadra_file)[citizen].mobile_numbers[0]

    def texts() -> int:
        return len([m for m in oidc_runtime.identity.sms.messages() if m.to == mobile])

    before = texts()
    for _ in range(oidc_runtime.identity.policy.per_account_sms.attempts + 1):
        page = web.get("/login/second-factor?next=/account")
        assert page.status_code == 200
        assert "Send me a code" in page.text
        assert 'name="code"' not in page.text
    assert texts() == before, "no GET sent a text"
    send = "/login/second-factor/send?request=&method=sms&next=%2Faccount"
    forged = web.post(send, data={"csrf": "from-another-site"}, follow_redirects=False)
    assert forged.status_code == 403
    assert web.post(send, follow_redirects=False).status_code == 403
    assert texts() == before, "nor did a POST without the form's token"
    asked = _ask_for_sms(web, page)
    assert texts() == before + 1
    ticket = asked.text.split('name="ticket" value="')[1].split('"')[0]
    again = web.get("/login/second-factor?next=/account")
    assert f'name="ticket" value="{ticket}"' in again.text, "the code sent is asked for again"
    assert "Send a new code" in again.text
    assert texts() == before + 1
    # Another browser signed in to the same account is not shown this browser's code.
    other = Browser(TestClient(web.app, base_url="https://shanakht.test"))
    _tokens(other.client, other, rp, citizen)
    theirs = other.client.get("/login/second-factor?next=/account")
    assert ticket not in theirs.text
    assert "Send me a code" in theirs.text


def test_a_second_factor_renews_the_session_cookie(
    web: TestClient, oidc_runtime: Runtime, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    """ASVS 3.2.1: the cookie from before the second factor (planted, or seen on a shared
    computer) opens nothing once the session steps up; the session carries on under a new
    cookie, with its e-services, tokens and single sign-on."""
    tokens = _tokens(web, browser, rp, citizen)
    before = _session_cookie(web)
    _sms_step_up(web, oidc_runtime, citizen, then="/account")
    after = _session_cookie(web)
    assert after != before
    assert web.get("/account", follow_redirects=False).status_code == 200
    old = TestClient(web.app, base_url="https://shanakht.test")
    old.cookies.set("__Host-shanakht_session", before)
    refused = old.get("/account", follow_redirects=False)
    assert refused.status_code == 303
    assert refused.headers["location"].startswith("/login")
    page = old.get("/login/second-factor?next=/account", follow_redirects=False)
    assert page.headers["location"].startswith("/login"), "not even the code page"
    response, _ = Browser(old).authorize(rp)
    assert response.headers["location"].startswith("/login?request="), "no SSO for it either"
    assert _userinfo(web, tokens["access_token"]) == 200, "tokens from before still stand"
    again, _ = browser.authorize(rp, acr_values="urn:shanakht:loa:substantial")
    assert again.headers["location"].startswith(rp.redirect_uri), "SSO, now substantial"
    with oidc_runtime.engine.connect() as connection:
        live = connection.execute(
            select(func.count()).select_from(sso_sessions).where(sso_sessions.c.ended_at.is_(None))
        ).scalar_one()
    assert live == 1, "the same session, not a second one"


def test_a_session_idle_for_30_minutes_asks_for_the_password_again(
    web: TestClient, oidc_runtime: Runtime, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    """ASVS 3.3.2 at Level 2: 30 minutes without use ends the session; use keeps it going."""
    assert oidc_runtime.identity.policy.session_idle == timedelta(minutes=30)
    clock = Clock()
    oidc_runtime.clock = clock
    rp_with_bc = register_client(oidc_runtime, "bc", backchannel_logout_uri="https://bc.example/bc")
    _tokens(web, browser, rp_with_bc, citizen)
    for _ in range(3):  # in use every 25 minutes: an hour and a quarter, still signed in
        clock.now += timedelta(minutes=25)
        assert web.get("/account", follow_redirects=False).status_code == 200
    clock.now += timedelta(minutes=30, seconds=1)
    page = web.get("/account", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"].startswith("/login")
    response, _ = browser.authorize(rp_with_bc)
    assert response.headers["location"].startswith("/login?request="), "the password again"
    silent, _ = browser.authorize(rp_with_bc, prompt="none")
    assert query_of(silent.headers["location"])["error"] == "login_required"
    # As documented for expiry: the sweeper ends it and tells its e-services.
    assert _logout_tokens(web, oidc_runtime) == []
    _sweep_sessions(oidc_runtime)
    assert [t["aud"] for t in _logout_tokens(web, oidc_runtime)] == ["bc"]


def test_no_session_outlives_12_hours_however_busy(
    web: TestClient, oidc_runtime: Runtime, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    assert oidc_runtime.identity.policy.session_lifetime == timedelta(hours=12)
    clock = Clock()
    oidc_runtime.clock = clock
    _tokens(web, browser, rp, citizen)
    for _ in range(12 * 60 // 25):  # 11 h 40 min of use every 25 minutes
        clock.now += timedelta(minutes=25)
        assert web.get("/account", follow_redirects=False).status_code == 200
    clock.now += timedelta(minutes=20, seconds=1)
    assert web.get("/account", follow_redirects=False).headers["location"].startswith("/login")


def test_a_session_written_before_0012_obeys_the_idle_time_and_lifetime_too(
    web: TestClient, oidc_runtime: Runtime, browser: Browser, citizen: str
) -> None:
    """Rows written before migration 0012 kept the old policy's times: an `expires_at` two
    hours past their last use, so judging by it let them idle four times too long. The policy
    in force is checked on `last_seen` and `created_at`: by tokens, refresh, introspection and
    the sweeper, whatever the row's `expires_at` says."""
    clock = Clock()
    oidc_runtime.clock = clock
    rp_with_bc = register_client(  # a secret, as the clock moves on past any assertion's
        oidc_runtime, "bc", secret=True, backchannel_logout_uri="https://bc.example/bc"
    )
    first = _tokens(web, browser, rp_with_bc, citizen)

    def as_before_0012(created: datetime, seen: datetime) -> None:
        with oidc_runtime.transaction() as session:  # as the old code wrote it: 2 hours idle
            session.execute(
                update(sso_sessions)
                .where(sso_sessions.c.ended_at.is_(None))
                .values(
                    created_at=created, last_seen=seen, expires_at=seen + timedelta(hours=2),
                    mac=None,
                )
            )  # fmt: skip
            # and sealed as the upgrade to 0024 seals the sessions it finds
            seal_unsealed(session, oidc_runtime.row_seal, [sso_sessions])

    as_before_0012(clock.now, clock.now)
    clock.now += timedelta(minutes=30, seconds=1)
    refresh = first["refresh_token"]
    refused = token(web, rp_with_bc, grant_type="refresh_token", refresh_token=refresh)
    assert refused.json()["error_description"] == "the sign-in session has ended"
    form, headers = rp_with_bc.auth()
    seen = web.post("/oauth/introspect", data={**form, "token": refresh}, headers=headers)
    assert seen.json() == {"active": False}
    _sweep_sessions(oidc_runtime)
    assert [t["aud"] for t in _logout_tokens(web, oidc_runtime)] == ["bc"], "ended and told"
    # Busy, but begun more than 12 hours ago: its newest token stands no longer either.
    second = _tokens(web, browser, rp_with_bc, citizen)
    assert _userinfo(web, second["access_token"]) == 200
    as_before_0012(clock.now - timedelta(hours=12, seconds=1), clock.now)
    assert _userinfo(web, second["access_token"]) == 401


def test_a_login_commits_its_outcome_and_its_new_session_at_once(
    web: TestClient, oidc_runtime: Runtime, citizen: str
) -> None:
    """Two commits a login, not three: the attempt counted (before the hash), then the
    outcome, its audit entry and the new session together."""
    page = web.get("/login")
    form = {"cnic": citizen, "password": PASSWORD, "csrf": csrf_of(page.text)}
    commits: list[object] = []

    def count(connection: object) -> None:
        commits.append(connection)

    event.listen(oidc_runtime.engine, "commit", count)
    try:
        response = web.post("/login", data=form, follow_redirects=False)
    finally:
        event.remove(oidc_runtime.engine, "commit", count)
    assert response.status_code == 303
    assert len(commits) == 2


def test_a_login_whose_session_cannot_be_made_leaves_no_record_of_success(
    web: TestClient, oidc_runtime: Runtime, citizen: str
) -> None:
    """The success, its audit entry and the session commit together or not at all; the
    attempt stays counted (it was counted before the hash)."""
    page = web.get("/login")
    form = {"cnic": citizen, "password": PASSWORD, "csrf": csrf_of(page.text)}
    failing = mock.patch(
        "identity.oidc.sessions.Sessions.create", side_effect=RuntimeError("database gone")
    )
    with failing:
        failed = web.post("/login", data=form, follow_redirects=False)
    assert failed.status_code == 500  # the last-resort answer (`api.problems.LastResort`)
    with oidc_runtime.engine.connect() as connection:
        logged = [json.loads(e) for e in connection.execute(select(entries.c.entry)).scalars()]
        made = connection.execute(select(func.count()).select_from(sso_sessions)).scalar_one()
    assert not [e for e in logged if e["action"] == "identity.login"]
    assert made == 0
    counted = web.post("/login", data=form, follow_redirects=False)
    assert counted.status_code == 303


def test_the_login_form_is_read_as_any_form_is(web: TestClient, citizen: str) -> None:
    """The login reads its form itself (`api.deps.form_fields`): escapes are UTF-8, the last
    of a repeated name counts, a multipart form does as well, and a field missing or a
    flood of fields is refused with a page, never a 500."""
    csrf = csrf_of(web.get("/login").text)
    dashed = f"{citizen[:5]}-{citizen[5:12]}-{citizen[12:]}"
    body = urlencode([("cnic", "0"), ("cnic", dashed), ("password", PASSWORD), ("csrf", csrf)])
    urlencoded = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    signed_in = web.post("/login", content=body, headers=urlencoded, follow_redirects=False)
    assert signed_in.status_code == 303
    parts = {"cnic": (None, citizen), "password": (None, PASSWORD), "csrf": (None, csrf)}
    assert web.post("/login", files=parts, follow_redirects=False).status_code == 303
    wrong = web.post(
        "/login",
        data={"cnic": citizen, "password": "Kinnow#Orchard202\u0666", "csrf": csrf},
        follow_redirects=False,
    )
    assert wrong.status_code == 401
    page = {"Accept": "text/html"}
    incomplete = web.post("/login", data={"cnic": citizen, "csrf": csrf}, headers=page)
    assert incomplete.status_code == 400
    assert "fill in every field" in incomplete.text
    flood = "&".join(f"f{i}=x" for i in range(1001))
    crowded = web.post("/login", content=flood, headers={**urlencoded, **page})
    assert crowded.status_code == 400


def test_the_device_cookie_is_private_to_this_site_and_long_lived(
    web: TestClient, citizen: str
) -> None:
    page = web.get("/login")
    form = {"cnic": citizen, "password": PASSWORD, "csrf": csrf_of(page.text)}
    response = web.post("/login", data=form, follow_redirects=False)
    cookies = response.headers.get_list("set-cookie")
    (device,) = [c for c in cookies if c.startswith("__Host-shanakht_device=")]
    attributes = {part.strip().split("=")[0].lower() for part in device.split(";")}
    assert {"httponly", "secure", "path", "max-age"} <= attributes
    assert "samesite=lax" in device.lower()
    max_age = int(device.lower().split("max-age=")[1].split(";")[0])
    assert max_age >= 180 * 24 * 3600
    assert citizen not in device


def test_the_session_cookie_is_private_to_this_site_and_ends_with_the_browser(
    web: TestClient, citizen: str
) -> None:
    """__Host- (so Secure, Path=/ and no Domain: no other host under the domain can set or
    read it), HttpOnly (no script reads it), SameSite=Lax (it survives the top-level redirect
    back from an e-service, and no other site's form or fetch carries it), and no lifetime of
    its own: the server ends the session (idle time, 12 hours), the browser forgets it on
    closing. Its value names neither the citizen nor the session's sid."""
    page = web.get("/login")
    form = {"cnic": citizen, "password": PASSWORD, "csrf": csrf_of(page.text)}
    response = web.post("/login", data=form, follow_redirects=False)
    cookies = response.headers.get_list("set-cookie")
    (session,) = [c for c in cookies if "shanakht_session=" in c]
    name_value, *rest = (part.strip() for part in session.split(";"))
    name, value = name_value.split("=", 1)
    assert name == "__Host-shanakht_session"
    attributes = {part.split("=")[0].lower(): part.partition("=")[2] for part in rest}
    assert set(attributes) == {"httponly", "secure", "path", "samesite"}
    assert (attributes["path"], attributes["samesite"].lower()) == ("/", "lax")
    assert len(value) >= 32
    assert citizen not in value
    sids = re.findall(r'name="sid" value="([^"]+)"', web.get("/account").text)
    assert sids
    assert all(sid not in value for sid in sids)
