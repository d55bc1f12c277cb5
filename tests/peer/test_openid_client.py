"""panva's certified openid-client, as an e-service, against the running provider over HTTP.

Our own flow tests read the specifications the way we wrote the provider; these let an
independent, certified relying party judge every response: discovery, the code flow with
PKCE, the ID token's signature and claims, userinfo, refresh, introspection, revocation, and
RP-initiated logout with back-channel logout reaching the e-service.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx2
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.http.oidc_kit import PASSWORD, csrf_of, pkce
from tests.peer.conftest import Eservice, Live, NodeRp, Receiver

EVENT = "http://schemas.openid.net/event/backchannel-logout"
SESSION_COOKIE = "shanakht_session"  # its name on http; `__Host-shanakht_session` on https
BROWSER_WAIT = 5.0  # seconds any one page may take (they answer in milliseconds)


def browser() -> httpx2.Client:
    """A citizen's browser: keeps cookies, follows redirects by hand, ignores proxy settings."""
    return httpx2.Client(follow_redirects=False, trust_env=False, timeout=BROWSER_WAIT)


def get(web: httpx2.Client, url: str, **options: Any) -> httpx2.Response:
    """GET, failing the test with the URL when the provider does not answer in time."""
    try:
        return web.get(url, **options)
    except httpx2.TimeoutException:
        pytest.fail(f"the provider did not answer GET {url} within {BROWSER_WAIT} s")


def sign_in(web: httpx2.Client, live: Live, url: str, redirect_uri: str) -> str:
    """Log in and consent on the provider's pages; return the callback URL, not followed."""
    response = get(web, url)
    for _ in range(8):
        location = response.headers.get("location")
        if location is not None:
            assert response.status_code in (302, 303), response.text
            target = urljoin(str(response.url), location)
            if target.startswith(f"{redirect_uri}?"):
                return target
            assert target.startswith(f"{live.issuer}/"), f"redirected away to {target}"
            response = get(web, target)
            continue
        assert response.status_code == 200, f"{response.url}: {response.text[:500]}"
        page = response.url.path
        request_id = response.url.params.get("request", "")
        if page == "/login":
            form = {"cnic": live.cnic, "password": PASSWORD, "request": request_id}
        elif page == "/consent":
            form = {"decision": "allow", "request": request_id}
        else:
            raise AssertionError(f"unexpected page {response.url}: {response.text[:500]}")
        response = web.post(f"{live.issuer}{page}", data={**form, "csrf": csrf_of(response.text)})
    raise AssertionError("the provider never sent the browser back to the e-service")


def start(rp: NodeRp, live: Live, service: Eservice) -> dict[str, Any]:
    """openid-client's discovery and authorization URL (PKCE S256, state, nonce)."""
    return rp.ok("start", live.issuer, service.client_id, service.redirect_uri, service.private_jwk)


def finish(
    rp: NodeRp, live: Live, service: Eservice, callback: str, started: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """openid-client's code exchange and everything after it, up to the end-session URL."""
    return rp.run(
        "finish", live.issuer, service.client_id, service.redirect_uri, service.private_jwk,
        callback, started["code_verifier"], started["state"], started["nonce"],
    )  # fmt: skip


def userinfo(live: Live, access_token: str) -> httpx2.Response:
    with browser() as http:
        return get(
            http,
            f"{live.issuer}/oauth/userinfo",
            headers={"Authorization": f"Bearer {access_token}"},
        )


def test_openid_client_signs_in_refreshes_and_logs_out(
    rp: NodeRp, live: Live, eservice: Eservice, receiver: Receiver
) -> None:
    started = start(rp, live, eservice)
    authorization = urlsplit(started["url"])
    assert f"{authorization.scheme}://{authorization.netloc}" == live.issuer
    assert parse_qs(authorization.query)["code_challenge_method"] == ["S256"]

    with browser() as web:
        callback = sign_in(web, live, started["url"], eservice.redirect_uri)
        assert parse_qs(urlsplit(callback).query)["iss"] == [live.issuer]
        code, result = finish(rp, live, eservice, callback, started)
        assert "error" not in result, f"openid-client failed: {result['error']}"
        assert code == 0

        claims, info = result["id_token_claims"], result["userinfo"]
        assert claims["iss"] == live.issuer
        assert claims["aud"] in (eservice.client_id, [eservice.client_id])
        assert claims["nonce"] == started["nonce"]
        assert claims["sid"]
        assert info["sub"] == claims["sub"]
        assert info["name"]
        assert info["cnic"].replace("-", "") == live.cnic
        assert result["refresh_rotated"] is True
        assert result["introspection"]["active"] is True
        assert result["introspection"]["client_id"] == eservice.client_id
        assert result["introspection"]["sub"] == claims["sub"]
        # RFC 7009: revoking the refresh token took the access tokens of its grant with it.
        assert userinfo(live, result["refreshed_access_token"]).status_code == 401

        end_session = urlsplit(result["end_session_url"])
        assert f"{end_session.scheme}://{end_session.netloc}{end_session.path}" == (
            f"{live.issuer}/logout"
        )
        logout_state = parse_qs(end_session.query)["state"][0]
        assert web.cookies.get(SESSION_COOKIE), "the browser holds a single sign-on session"
        signed_out = get(web, result["end_session_url"])
        assert signed_out.status_code == 303, signed_out.text
        assert signed_out.headers["location"] == (
            f"{eservice.post_logout_redirect_uri}?state={logout_state}"
        )
        assert web.cookies.get(SESSION_COOKIE) is None, "the browser was told to forget it"

    tokens = receiver.wait_for_tokens(1)
    time.sleep(0.3)  # a second, duplicate delivery would arrive right behind the first
    assert len(receiver.logout_tokens) == 1, f"{len(receiver.logout_tokens)} logout tokens"
    assert receiver.other_requests == []
    with browser() as http:
        keys = KeySet.import_key_set(get(http, f"{live.issuer}/oauth/jwks").json())
    logout = jwt.decode(tokens[0], keys, algorithms=["RS256"])
    assert logout.header["typ"] == "logout+jwt"
    assert logout.claims["iss"] == live.issuer
    assert logout.claims["aud"] == eservice.client_id
    assert EVENT in logout.claims["events"]
    assert logout.claims["sid"] == claims["sid"]
    assert logout.claims["sub"] == claims["sub"]
    assert "nonce" not in logout.claims
    assert logout.claims["exp"] > time.time()

    rejected = userinfo(live, result["access_token"])
    assert rejected.status_code == 401
    assert 'error="invalid_token"' in rejected.headers["www-authenticate"]


def test_logout_ends_the_session_before_a_slow_eservice_has_answered(
    rp: NodeRp, live: Live, eservice: Eservice, receiver: Receiver
) -> None:
    """Once the browser is told it is signed out, its session cookie must sign no one in,
    however long the e-services take to answer their logout tokens (a stolen or cached
    cookie, or a second tab, is the case that matters)."""
    started = start(rp, live, eservice)
    with browser() as web:
        callback = sign_in(web, live, started["url"], eservice.redirect_uri)
        result = finish(rp, live, eservice, callback, started)[1]
        assert "end_session_url" in result, result
        session_cookie = web.cookies.get(SESSION_COOKIE)
        assert session_cookie
        receiver.answer_after = 1.0  # a real e-service answers in its own time
        signed_out = get(web, result["end_session_url"])
        assert signed_out.status_code == 303, signed_out.text

    with browser() as other:
        again = get(other, started["url"], headers={"Cookie": f"{SESSION_COOKIE}={session_cookie}"})
    assert again.status_code == 303, again.text
    assert urlsplit(urljoin(live.issuer, again.headers["location"])).path == "/login"
    assert len(receiver.wait_for_tokens(1)) == 1


def test_openid_client_sees_a_wrong_code_verifier_refused(
    rp: NodeRp, live: Live, eservice: Eservice, receiver: Receiver
) -> None:
    started = start(rp, live, eservice)
    with browser() as web:
        callback = sign_in(web, live, started["url"], eservice.redirect_uri)
    wrong_verifier, _challenge = pkce()
    code, result = finish(
        rp, live, eservice, callback, {**started, "code_verifier": wrong_verifier}
    )
    assert code == 1
    assert result["error"]["oauth_error"] == "invalid_grant", result
    assert result["error"]["status"] == 400
    assert receiver.logout_tokens == []
