# ruff: noqa: E501 (the catalogue table's rows are as long as the test names they give)
"""The attack catalogue: every OIDC attack and access-control breach this service is meant to
withstand, each tried over HTTP. Where another module already proves one, the table names that
test instead of repeating it, so the whole catalogue reads in one place.

| attack | test that proves it |
| --- | --- |
| code injection (a stolen code redeemed in the attacker's session) | test_attacks.py::test_an_injected_code_fails_pkce_and_is_burnt |
| code redeemed at another redirect URI | test_attacks.py::test_a_code_is_redeemed_only_with_its_own_redirect_uri |
| code of client A redeemed by client B | test_oidc_security.py::test_a_code_is_for_the_client_it_was_issued_to |
| code replay (second use fails, revokes what the first got) | test_oidc_security.py::test_a_reused_code_revokes_what_the_first_use_got |
| code replay, two uses at the same moment | test_oidc_security.py::test_one_code_redeemed_twice_at_once_gives_tokens_once_and_revokes_them |
| PKCE downgrade: plain method, empty challenge | test_oidc_security.py::test_bad_requests_go_back_to_the_client_with_state |
| PKCE downgrade: no challenge, no method, malformed challenge | test_attacks.py::test_pkce_downgrades_at_the_authorization_endpoint |
| PKCE downgrade: no verifier, the challenge sent as verifier | test_attacks.py::test_pkce_downgrades_at_the_token_endpoint |
| PKCE: a verifier for another challenge | test_oidc_security.py::test_a_wrong_or_missing_pkce_verifier_is_refused |
| redirect URI: other host, path traversal, added query | test_oidc_security.py::test_untrusted_clients_and_redirects_never_redirect |
| redirect URI: prefix, suffix, extra path, fragment, case, port, userinfo, scheme (front and PAR) | test_attacks.py::test_a_redirect_uri_that_is_not_exactly_registered_is_never_used |
| open redirect: authorize errors before the client is trusted | test_attacks.py::test_authorization_errors_never_redirect_anywhere_unregistered |
| parameter pollution: a parameter sent twice (authorize, token, PAR, introspection, revocation) | test_attacks.py::test_a_parameter_sent_twice_is_refused_everywhere |
| open redirect: logout post_logout_redirect_uri (signed in, no hint) | test_oidc_security.py::test_a_logout_link_without_a_matching_hint_asks_first |
| open redirect: logout post_logout_redirect_uri (signed out, POST, with a hint) | test_attacks.py::test_logout_redirects_only_to_a_uri_registered_for_the_client |
| open redirect: /lang/{code}?next= | test_attacks.py::test_the_language_switch_goes_only_to_paths_here |
| open redirect: login ?next= (failed login) | test_error_pages.py::test_a_failed_login_never_carries_an_outside_next |
| open redirect: login and second factor ?next= (successful sign-in) | test_attacks.py::test_a_sign_in_goes_on_only_to_paths_here |
| open redirect: local_path unit cases | tests/unit/api/test_i18n.py::test_only_paths_on_this_service_are_followed |
| mix-up: iss in every authorization response (RFC 9207) | test_attacks.py::test_every_authorization_response_names_the_issuer |
| mix-up: iss on the success response | test_oidc_flow.py::test_code_flow_gives_a_verifiable_id_token_and_userinfo |
| ID token substitution: client A's ID token as client B's logout hint | test_attacks.py::test_another_clients_id_token_hint_signs_no_one_out |
| ID token substitution: a tampered ID token hint | test_oidc_security.py::test_a_tampered_id_token_hint_signs_no_one_out |
| `alg: none` / HS256-with-the-public-key ID token hints, access token as hint | test_attacks.py::test_forged_id_token_hints_sign_no_one_out |
| `alg: none` / HS256-with-the-public-key access tokens (userinfo, locker) | test_attacks.py::test_forged_access_tokens_are_refused_by_userinfo_and_the_locker |
| `alg: none` / HS256-with-the-public-key client assertions | test_oidc_security.py::test_alg_none_and_hs256_with_the_public_key_are_refused |
| oversized and deeply nested tokens, assertions and hints | test_attacks.py::test_oversized_and_nested_tokens_are_refused_quickly |
| compressed (zip) and JWE tokens, gzip bodies: never inflated | test_attacks.py::test_compressed_and_encrypted_tokens_are_refused_and_never_inflated |
| client assertion: aud of another endpoint, issuer variants, Host echo, list aud | test_attacks.py::test_client_assertion_audience_confusion_is_refused |
| client assertion: iss != sub, another client's key, expiry, replay | test_oidc_security.py::test_client_assertions_are_checked |
| client assertion: iss names another client, signed with mine | test_attacks.py::test_a_client_assertion_cannot_speak_for_another_client |
| session fixation | test_attacks.py::test_a_session_cookie_from_before_sign_in_is_not_the_one_after |
| login CSRF: wrong token | test_oidc_security.py::test_login_and_consent_forms_need_their_csrf_token |
| login CSRF: no token, another browser's token, no cookie | test_attacks.py::test_a_login_post_without_this_browsers_csrf_token_is_refused |
| clickjacking: /login headers | test_oidc_security.py::test_pages_cannot_be_framed_or_load_anything_from_elsewhere |
| clickjacking: every page, error pages too | test_attacks.py::test_no_page_can_be_framed |
| citizen A reads B's document (API: metadata, content; pages) | test_locker.py::test_a_citizen_sees_only_their_own, test_locker_pages.py::test_another_citizens_document_is_a_404_page |
| citizen A reads or changes B's document (API: signature, delete, shares, nominees) | test_attacks.py::test_another_citizens_document_is_404_like_one_that_does_not_exist |
| department system issues another department's type (API) | test_locker.py::test_a_system_issues_only_for_its_own_department_whatever_its_scopes |
| officer issues another department's type on its own desk | test_officer_pages.py::test_an_officer_cannot_act_for_another_department |
| officer posts to another department's desk (issue, revoke, bulk, sign, legal, requests) | test_attacks.py::test_an_officer_cannot_post_to_another_departments_desk |
| legal-basis access approved by its own filer (API, pages) | test_exchange.py::test_legal_access_waits_for_a_second_officer_then_is_recorded_and_the_citizen_told, test_officer_legal.py::test_the_filer_cannot_approve_their_own_request_on_the_page |
| legal-basis access decided by an officer of another department (API, pages) | test_exchange.py::test_an_officer_of_another_department_cannot_decide_a_request, test_officer_legal.py::test_an_officer_of_another_department_cannot_decide_on_the_page |
| legal-basis access opened before approval, by the approver, after its day, or once refused | test_exchange.py::test_legal_access_waits_for_a_second_officer_then_is_recorded_and_the_citizen_told, test_exchange.py::test_an_approval_must_be_used_within_a_day_and_a_request_decided_within_a_week, test_exchange.py::test_a_refused_request_cannot_be_opened |
| a consent used by a department it was not given to | test_exchange.py::test_another_departments_consent_and_request_are_not_theirs |
| another department's request on the officer desk | test_officer_pages.py::test_another_departments_request_is_not_found |
| the public verifier tells nothing beyond the QR | test_attacks.py::test_the_verifier_answers_only_what_the_code_holds |
| an altered code shows nothing it claims | test_verifier_page.py::test_an_altered_code_is_altered_and_shows_nothing_it_claims |
| audit reader writes anything (every /admin and /officer write, every write API) | test_attacks.py::test_an_audit_reader_can_change_nothing |
| audit reader signs a checkpoint or grants a role | test_admin_pages.py::test_an_audit_reader_views_and_verifies_but_may_not_sign_or_administer |

Found and fixed when this catalogue was written: a client assertion's audience was also matched
against the request's own URL, Host header included, so an assertion minted for another
server's token endpoint passed here with that Host (now: this endpoint under the issuer);
`/logout` took another client's ID token as the hint for `client_id` (now: no hint); a
deeply nested JSON header in a bearer token, or nested claims in a client assertion, raised
RecursionError, a 500 (now: refused as malformed).

Gaps by design, stated rather than tested: the provider accepts the token endpoint's URL (as
RFC 7523 allows) besides its issuer as a client assertion's audience, so a client that also
trusts a malicious authorization server publishing this token endpoint as its own could be
tricked into minting an assertion usable here (the 2025 "audience injection" finding; the fix
is issuer-only audiences, which would break current clients). ID-token audience checks at the
relying party are the client's job (the sample e-services use Authlib for them).
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import hmac
import json
import re
import secrets
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlencode, urlsplit

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from joserfc import jwe, jws, jwt
from joserfc.jwk import ECKey, RSAKey
from sqlalchemy import func, select

from api.runtime import Runtime
from audit import pseudonym
from audit.models import entries
from identity.failures import CAP
from identity.nadra import SCENARIOS, read_registry
from locker.models import documents
from signing.qr import decode
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
)
from tests.http.test_admin_pages import _citizen as admin_citizen
from tests.http.test_admin_pages import _sign_in as admin_sign_in
from tests.http.test_exchange import _issue as issue_document
from tests.http.test_officer_pages import set_up_office
from tests.http.test_officer_pages import sign_in as officer_sign_in
from tests.http.test_oidc_security import browser, citizen, rp
from tests.http.test_roles_and_entries import _access_token
from tests.http.test_verifier_page import TEACHER_CNIC, deliver, signed_order

__all__ = ["browser", "citizen", "rp"]  # fixtures shared with test_oidc_security, used by name

TOKEN_ENDPOINT = f"{ISSUER}/oauth/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
QUICK = 2.0  # seconds: a refusal that takes longer is doing work it should not


def _redeem(web: TestClient, rp: RelyingParty, code: str, verifier: str, **more: str) -> Any:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri}
    if verifier:
        form["code_verifier"] = verifier
    return token(web, rp, **{**form, **more})


def _tokens(web: TestClient, browser: Browser, rp: RelyingParty, cnic: str) -> dict[str, Any]:
    callback, verifier = browser.sign_in(rp, cnic)
    response = _redeem(web, rp, callback["code"], verifier)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def _userinfo(web: TestClient, access_token: str) -> int:
    return web.get("/oauth/userinfo", headers=_bearer(access_token)).status_code


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json_b64(value: object) -> str:
    return _b64(json.dumps(value).encode())


def _parts(value: str) -> tuple[dict[str, Any], dict[str, Any]]:
    head, body, _signature = value.split(".")
    return (
        json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))),
        json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))),
    )


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_json_b64({**header, 'alg': 'none'})}.{_json_b64(claims)}."


def _hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{_json_b64({**header, 'alg': 'HS256'})}.{_json_b64(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def _published_key(web: TestClient, kid: str) -> dict[str, Any]:
    [jwk] = [k for k in web.get("/oauth/jwks").json()["keys"] if k["kid"] == kid]
    return dict(jwk)


def _public_key_secrets(jwk: dict[str, Any]) -> list[bytes]:
    """Every form of a public key an algorithm-confusion forger would try as an HMAC key."""
    key = (RSAKey if jwk["kty"] == "RSA" else ECKey).import_key(jwk)
    return [
        key.as_pem(private=False),
        key.as_der(private=False),
        json.dumps(jwk).encode(),
        json.dumps(jwk, sort_keys=True, separators=(",", ":")).encode(),
    ]


def _forgeries(web: TestClient, genuine: str) -> dict[str, str]:
    """`genuine`'s own header and claims under `alg: none` (in several spellings) and under
    HS256 keyed with each form of the provider's public key that signed it."""
    header, claims = _parts(genuine)
    forged = {f"alg {alg}": _unsigned(header, claims).replace(
        _json_b64({**header, "alg": "none"}), _json_b64({**header, "alg": alg}), 1
    ) for alg in ("none", "None", "NONE", "nOnE")}  # fmt: skip
    forged["alg none, no dot"] = _unsigned(header, claims).rstrip(".")
    for n, secret in enumerate(_public_key_secrets(_published_key(web, header["kid"]))):
        forged[f"HS256 with public key form {n}"] = _hs256(header, claims, secret)
    return forged


@contextlib.contextmanager
def _inflations() -> Iterator[list[str]]:
    """Record every zlib or gzip decompression made while the block runs."""
    made: list[str] = []
    real_decompress, real_object, real_gzip = zlib.decompress, zlib.decompressobj, gzip.decompress

    def decompress(*args: Any, **kwargs: Any) -> bytes:
        made.append("zlib.decompress")
        return real_decompress(*args, **kwargs)

    def decompressobj(*args: Any, **kwargs: Any) -> Any:
        made.append("zlib.decompressobj")
        return real_object(*args, **kwargs)

    def gunzip(*args: Any, **kwargs: Any) -> bytes:
        made.append("gzip.decompress")
        return real_gzip(*args, **kwargs)

    with (
        mock.patch.object(zlib, "decompress", decompress),
        mock.patch.object(zlib, "decompressobj", decompressobj),
        mock.patch.object(gzip, "decompress", gunzip),
    ):
        yield made


def _links_out(html: str) -> list[str]:
    """Attribute values in `html` that name the attacker's host other than inside a path
    here (the language switch links back to this very page, query and all)."""
    found = re.findall(r'(?:href|action|src|value)="([^"]*evil\.example[^"]*)"', html)
    return [v for v in found if not (v.startswith("/") and not v.startswith("//"))]


def _timed(call: Any) -> tuple[Any, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def _assertion_form(assertion: str, **more: str) -> dict[str, str]:
    return {
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
        "grant_type": "refresh_token",
        "refresh_token": "unknown",
        **more,
    }


# -- authorization codes -------------------------------------------------------------------------


def test_an_injected_code_fails_pkce_and_is_burnt(
    web: TestClient, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    """The attacker steals the victim's code and feeds it to the same e-service in the
    attacker's own session: the e-service redeems it with the attacker's session verifier."""
    victims, victim_verifier = browser.sign_in(rp, citizen)
    _attackers_own, attacker_verifier = pkce()
    injected = _redeem(web, rp, victims["code"], attacker_verifier)
    assert injected.status_code == 400
    assert injected.json()["error"] == "invalid_grant"
    late = _redeem(web, rp, victims["code"], victim_verifier)
    assert late.json()["error"] == "invalid_grant", "a code gets one try, right or wrong"


def test_a_code_is_redeemed_only_with_its_own_redirect_uri(
    web: TestClient, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    callback, verifier = browser.sign_in(rp, citizen)
    moved = _redeem(
        web, rp, callback["code"], verifier, redirect_uri="https://etransfer.example/callback/"
    )
    assert moved.json() == {
        "error": "invalid_grant",
        "error_description": "redirect_uri differs from the authorization request",
    }
    missing = _redeem(web, rp, callback["code"], verifier, redirect_uri="")
    assert missing.json()["error"] == "invalid_grant"


# -- PKCE ----------------------------------------------------------------------------------------


PKCE_DOWNGRADES: list[dict[str, str | None]] = [
    {"code_challenge": None, "code_challenge_method": None},
    {"code_challenge_method": None},  # RFC 7636 would default this to plain
    {"code_challenge": None},
    {"code_challenge_method": "s256"},
    {"code_challenge_method": "S512"},
    {"code_challenge": "a" * 42},
    {"code_challenge": "a" * 44},
    {"code_challenge": "a" * 42 + "="},
    {"code_challenge": "a" * 42 + "+"},
]


def test_pkce_downgrades_at_the_authorization_endpoint(web: TestClient, rp: RelyingParty) -> None:
    _verifier, challenge = pkce()
    for change in PKCE_DOWNGRADES:
        query = {
            "response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
            "scope": "openid", "state": "st-1", "code_challenge": challenge,
            "code_challenge_method": "S256",
        }  # fmt: skip
        for name, value in change.items():
            if value is None:
                query.pop(name)
            else:
                query[name] = value
        response = web.get(f"/oauth/authorize?{urlencode(query)}", follow_redirects=False)
        assert response.status_code == 303, change
        sent_back = query_of(response.headers["location"])
        assert response.headers["location"].startswith(rp.redirect_uri), change
        assert sent_back["error"] == "invalid_request", change
        assert "code" not in sent_back, change
        assert "PKCE" in sent_back["error_description"], change
    query["code_challenge"], query["code_challenge_method"] = challenge, "S256"
    fine = web.get(f"/oauth/authorize?{urlencode(query)}", follow_redirects=False)
    assert fine.headers["location"].startswith("/login?request="), "S256 itself goes on"


def test_pkce_downgrades_at_the_token_endpoint(
    web: TestClient, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    for verifier_of in (
        lambda _verifier, _challenge: "",  # no code_verifier at all
        lambda _verifier, challenge: challenge,  # what a client of the plain method sends
        lambda verifier, _challenge: verifier[:42],  # too short to be one
        lambda verifier, _challenge: verifier + " ",
    ):
        callback, verifier = browser.sign_in(rp, citizen)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        sent = verifier_of(verifier, challenge.rstrip(b"=").decode())
        response = _redeem(web, rp, callback["code"], sent)
        assert response.status_code == 400, sent
        assert response.json()["error"] == "invalid_grant"


# -- redirect URIs and open redirects ------------------------------------------------------------

REGISTERED = "https://etransfer.example/callback"


NOT_REGISTERED = [
    "https://etransfer.example/callbac",  # a prefix
    "https://etransfer.example/callback2",  # a suffix
    "https://etransfer.example/callback/",
    "https://etransfer.example/callback/extra",
    "https://etransfer.example/callback?",
    "https://etransfer.example/callback#fragment",
    "https://etransfer.example/callback#",
    "https://ETRANSFER.example/callback",
    "HTTPS://etransfer.example/callback",
    "https://etransfer.example/CALLBACK",
    "https://etransfer.example/%63allback",
    "https://etransfer.example:443/callback",
    "https://etransfer.example:8443/callback",
    "http://etransfer.example/callback",
    "//etransfer.example/callback",
    "https://etransfer.example@evil.example/callback",
    "https://evil.example@etransfer.example/callback",
    "https://etransfer.example.evil.example/callback",
    "https://evil.example/https://etransfer.example/callback",
    " https://etransfer.example/callback",
    "https://etransfer.example/callback ",
    "https://etransfer.example/callback\x00",
    "https://etransfer.example/callback%0d%0aLocation:%20https://evil.example",
    "",
]


def test_a_redirect_uri_that_is_not_exactly_registered_is_never_used(
    web: TestClient, browser: Browser, rp: RelyingParty
) -> None:
    assert rp.redirect_uri == REGISTERED
    for redirect_uri in NOT_REGISTERED:
        response, _ = browser.authorize(rp, redirect_uri=redirect_uri)
        assert response.status_code == 400, redirect_uri
        assert "location" not in response.headers, redirect_uri
        assert "not valid" in response.text
        _verifier, challenge = pkce()
        form, headers = rp.auth()
        form["client_assertion"] = rp.assertion(audience=ISSUER)
        pushed = web.post(
            "/oauth/par",
            data={**form, "client_id": rp.client_id, "response_type": "code", "scope": "openid",
                  "redirect_uri": redirect_uri, "code_challenge": challenge,
                  "code_challenge_method": "S256"},
            headers=headers,
        )  # fmt: skip
        assert pushed.status_code == 400, (redirect_uri, pushed.text)
        assert pushed.json()["error"] == "invalid_request"
        assert "request_uri" not in pushed.json()
    exact, _ = browser.authorize(rp, redirect_uri=REGISTERED)
    assert exact.status_code == 303, "the registered URI itself is accepted"


def test_authorization_errors_never_redirect_anywhere_unregistered(
    web: TestClient, rp: RelyingParty
) -> None:
    """Until the client and its redirect URI are known to be good, an error is a page here:
    an unknown client, an unknown pushed request, an expired or made-up request id."""
    evil = "https://evil.example/callback"
    for path in (
        "/oauth/authorize?"
        + urlencode(
            {"client_id": "nobody", "redirect_uri": evil, "code_challenge_method": "plain"}
        ),
        "/oauth/authorize?"
        + urlencode(
            {
                "client_id": rp.client_id,
                "redirect_uri": evil,
                "request_uri": "urn:ietf:params:oauth:request_uri:made-up",
            }
        ),
        f"/oauth/authorize?{urlencode({'redirect_uri': evil, 'response_type': 'code'})}",
        "/oauth/authorize/resume?request=made-up",
        "/login?request=made-up",
        "/consent?request=made-up",
    ):
        response = web.get(path, follow_redirects=False)
        assert response.status_code == 400, (path, response.status_code)
        assert "location" not in response.headers, path
        assert not _links_out(response.text), path
    posted = web.post("/oauth/authorize", data={"client_id": "nobody", "redirect_uri": evil},
                      follow_redirects=False)  # fmt: skip
    assert posted.status_code == 400
    assert "location" not in posted.headers


def test_a_parameter_sent_twice_is_refused_everywhere(
    web: TestClient, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    """HTTP parameter pollution (RFC 6749 3.1, 3.2: no parameter more than once): a proxy or
    firewall reading the first value and this server the last would judge different requests.
    At the authorization endpoint the error goes back to the client only once the client and
    its redirect URI are each sent once; the back-channel endpoints answer invalid_request
    before authenticating anyone."""
    _verifier, challenge = pkce()
    query = [
        ("response_type", "code"), ("client_id", rp.client_id), ("redirect_uri", rp.redirect_uri),
        ("scope", "openid"), ("state", "st-1"), ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]  # fmt: skip
    wider = web.get(
        f"/oauth/authorize?{urlencode([*query, ('scope', 'openid profile cnic')])}",
        follow_redirects=False,
    )
    assert wider.status_code == 303
    assert wider.headers["location"].startswith(rp.redirect_uri)
    sent_back = query_of(wider.headers["location"])
    assert sent_back["error"] == "invalid_request"
    assert sent_back["error_description"] == "sent more than once: scope"
    assert "code" not in sent_back
    for name, value in (("redirect_uri", rp.redirect_uri), ("client_id", rp.client_id)):
        twice = web.get(
            f"/oauth/authorize?{urlencode([*query, (name, value)])}", follow_redirects=False
        )
        assert twice.status_code == 400, name  # the same value twice: still refused, as a page
        assert "location" not in twice.headers, name
        posted = web.post("/oauth/authorize", content=urlencode([*query, (name, value)]),
                          headers={"Content-Type": "application/x-www-form-urlencoded"},
                          follow_redirects=False)  # fmt: skip
        assert posted.status_code == 400, name
    callback, verifier = browser.sign_in(rp, citizen)
    form, headers = rp.auth()
    exchange = [*form.items(), ("grant_type", "authorization_code"), ("code", callback["code"]),
                ("redirect_uri", rp.redirect_uri), ("code_verifier", verifier)]  # fmt: skip
    form_headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
    for path, pairs in (
        ("/oauth/token", [*exchange, ("code_verifier", verifier)]),
        ("/oauth/par", [*form.items(), *query, ("scope", "openid profile")]),
        ("/oauth/introspect", [*form.items(), ("token", "a"), ("token", "b")]),
        ("/oauth/revoke", [*form.items(), ("token", "a"), ("token", "b")]),
    ):
        refused = web.post(path, content=urlencode(pairs), headers=form_headers)
        assert refused.status_code == 400, (path, refused.text)
        assert refused.json()["error"] == "invalid_request", path
        assert "sent more than once" in refused.json()["error_description"], path
    form, headers = rp.auth()  # a fresh assertion: each is for one use
    redeemed = web.post("/oauth/token", data={**form, **dict(exchange[len(form):])},
                        headers=headers)  # fmt: skip
    assert redeemed.status_code == 200, "the refusal spent neither the code nor the assertion"


def test_logout_redirects_only_to_a_uri_registered_for_the_client(
    web: TestClient, browser: Browser, rp: RelyingParty, oidc_runtime: Runtime, citizen: str
) -> None:
    registered = "https://etransfer.example/signed-out"
    other = register_client(oidc_runtime, "domicile")
    # Signed out: only the named client's own registered URI is followed.
    for client_id, target in (
        ("etransfer", "https://evil.example/"),
        ("etransfer", registered + "/x"),
        ("etransfer", registered + "?next=https://evil.example/"),
        ("etransfer", registered[:-1]),
        ("etransfer", registered.upper()),
        ("domicile", registered),  # another client's URI
        ("", registered),  # no client named
        ("nobody", registered),
    ):
        query = {"post_logout_redirect_uri": target, "client_id": client_id}
        response = web.get(f"/logout?{urlencode(query)}", follow_redirects=False)
        assert response.status_code == 200, (client_id, target)
        assert "location" not in response.headers
    query = {"client_id": "etransfer", "post_logout_redirect_uri": registered, "state": "a&b=c"}
    ok = web.get(f"/logout?{urlencode(query)}", follow_redirects=False)
    assert ok.status_code == 303, "a registered URI is followed (the check above can fail)"
    assert ok.headers["location"] == f"{registered}?state=a%26b%3Dc"
    # Signed in, with a valid hint, and an outside URI: signed out, but no redirect.
    tokens = _tokens(web, browser, rp, citizen)
    hinted = {
        "id_token_hint": tokens["id_token"],
        "post_logout_redirect_uri": "https://evil.example/",
    }
    out = web.get(f"/logout?{urlencode(hinted)}", follow_redirects=False)
    assert out.status_code == 200
    assert "location" not in out.headers
    assert _userinfo(web, tokens["access_token"]) == 401, "the hint was good: signed out"
    # The confirmation form's POST, with an outside URI or another client's.
    _tokens(web, browser, rp, citizen)
    page = web.get("/logout")
    for client_id, target in (("etransfer", "https://evil.example/"), ("domicile", registered)):
        posted = web.post(
            "/logout",
            data={"csrf": csrf_of(page.text), "client_id": client_id,
                  "post_logout_redirect_uri": target},
            follow_redirects=False,
        )  # fmt: skip
        assert posted.status_code == 200
        assert "location" not in posted.headers
    assert other.client_id == "domicile"


HOSTILE_NEXT = [
    "https://evil.example/",
    "//evil.example/",
    "///evil.example/",
    "/\\evil.example/",
    "\\\\evil.example/",
    "\\/evil.example/",
    "/\t/evil.example/",
    "/\n/evil.example/",
    "/\r\nLocation: https://evil.example/",
    "https:evil.example",
    "javascript:alert(1)",
    " //evil.example/",
    "evil.example",
    "@evil.example",
]


def _stays_here(location: str) -> None:
    parts = urlsplit(location)
    assert location.startswith("/"), location
    assert not location.startswith("//"), location
    assert "\\" not in location
    assert "\n" not in location
    assert "\r" not in location
    assert (parts.scheme, parts.netloc) == ("", ""), location


def test_the_language_switch_goes_only_to_paths_here(web: TestClient) -> None:
    for next_page in HOSTILE_NEXT:
        response = web.get(f"/lang/ur?{urlencode({'next': next_page})}", follow_redirects=False)
        assert response.status_code == 303, next_page
        assert response.headers["location"] == "/", next_page
    fine = web.get(f"/lang/en?{urlencode({'next': '/verify?x=1'})}", follow_redirects=False)
    assert fine.headers["location"] == "/verify?x=1", "a path here is followed"


def test_a_sign_in_goes_on_only_to_paths_here(
    web: TestClient, oidc_runtime: Runtime, citizen: str
) -> None:
    """Each hostile `next` through the login page, the login POST and the second factor (a
    few logins only: the account's attempts are throttled, successes included)."""
    for next_page in HOSTILE_NEXT:
        page = web.get(f"/login?{urlencode({'next': next_page})}")
        assert page.status_code == 200
        assert not _links_out(page.text), next_page
    for next_page in HOSTILE_NEXT[:6]:
        page = web.get("/login")
        done = web.post(
            "/login",
            data={"cnic": citizen, "password": PASSWORD, "csrf": csrf_of(page.text),
                  "next": next_page},
            follow_redirects=False,
        )  # fmt: skip
        assert done.status_code == 303, (next_page, done.text)
        _stays_here(done.headers["location"])
        assert done.headers["location"] == "/", next_page
    record = read_registry(oidc_runtime.identity.nadra_file)[citizen]
    for next_page in HOSTILE_NEXT[:3]:
        query = urlencode({"next": next_page, "method": "sms"})
        step = web.get(f"/login/second-factor?{query}")
        step = web.get(press_send(web, step.text).headers["location"])
        sms = oidc_runtime.identity.sms.last_to(record.mobile_numbers[0])
        assert sms is not None
        code = sms.text.split()[3].rstrip(".")
        ticket = step.text.split('name="ticket" value="')[1].split('"')[0]
        proved = web.post(
            f"/login/second-factor?{query}",
            data={"ticket": ticket, "code": code, "csrf": csrf_of(step.text)},
            follow_redirects=False,
        )
        assert proved.status_code == 303, (next_page, proved.text)
        assert proved.headers["location"] == "/", next_page
    page = web.get("/login")
    local = web.post(
        "/login",
        data={"cnic": citizen, "password": PASSWORD, "csrf": csrf_of(page.text),
              "next": "/documents?x=1"},
        follow_redirects=False,
    )  # fmt: skip
    assert local.headers["location"] == "/documents?x=1", "a path here is followed"


# -- mix-up ----------------------------------------------------------------------------------------


def test_every_authorization_response_names_the_issuer(
    web: TestClient, oidc_runtime: Runtime, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    """RFC 9207: success and every error sent back to the client carry `iss`, so a client
    talking to several providers can tell whose response this is."""
    meta = web.get("/.well-known/openid-configuration").json()
    assert meta["authorization_response_iss_parameter_supported"] is True
    signed_out, _ = browser.authorize(rp, prompt="none", state="s-none")
    assert query_of(signed_out.headers["location"]) == {
        "error": "login_required",
        "error_description": "the citizen must sign in",
        "state": "s-none",
        "iss": ISSUER,
    }
    callback, _ = browser.sign_in(rp, citizen, state="s-ok")
    assert (callback["iss"], callback["state"]) == (ISSUER, "s-ok")
    other = register_client(oidc_runtime, "domicile")
    silent, _ = browser.authorize(other, prompt="none", state="s-consent")
    assert query_of(silent.headers["location"])["error"] == "consent_required"
    assert query_of(silent.headers["location"])["iss"] == ISSUER
    asked, _ = browser.authorize(other, state="s-deny")
    denied = browser.consent(browser.follow(asked), decision="deny")
    sent_back = query_of(denied.headers["location"])
    assert (sent_back["error"], sent_back["iss"], sent_back["state"]) == (
        "access_denied",
        ISSUER,
        "s-deny",
    )


# -- ID token substitution and forged tokens -----------------------------------------------------


def test_another_clients_id_token_hint_signs_no_one_out(
    web: TestClient, oidc_runtime: Runtime, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    """OpenID Connect RP-Initiated Logout 1.0, 2: with both client_id and id_token_hint, the
    provider must check the ID token was issued to that client. Else an ID token of A opens a
    sign-out that lands on B's URI, as if B had asked for it."""
    other = register_client(oidc_runtime, "domicile")
    tokens = _tokens(web, browser, rp, citizen)
    theirs = _tokens(web, browser, other, citizen)
    query = {
        "id_token_hint": tokens["id_token"],
        "client_id": "domicile",
        "post_logout_redirect_uri": "https://domicile.example/signed-out",
    }
    response = web.get(f"/logout?{urlencode(query)}", follow_redirects=False)
    assert response.status_code == 200, "no redirect to the other client"
    assert "Sign out of every e-service?" in response.text
    assert _userinfo(web, tokens["access_token"]) == 200, "the citizen is asked, not signed out"
    assert _userinfo(web, theirs["access_token"]) == 200
    own = {**query, "id_token_hint": theirs["id_token"]}
    accepted = web.get(f"/logout?{urlencode(own)}", follow_redirects=False)
    assert accepted.status_code == 303, "the client's own hint still signs out at once"
    assert accepted.headers["location"] == "https://domicile.example/signed-out"


def test_forged_id_token_hints_sign_no_one_out(
    web: TestClient, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    tokens = _tokens(web, browser, rp, citizen)
    header, claims = _parts(tokens["id_token"])
    stranger = RSAKey.generate_key(2048, parameters={"kid": header["kid"]})
    forged = {
        **_forgeries(web, tokens["id_token"]),
        "a stranger's key under our kid": jwt.encode(
            {"alg": "RS256", "kid": header["kid"]}, claims, stranger
        ),
        "an access token": tokens["access_token"],
    }
    for case, hint in forged.items():
        query = {
            "id_token_hint": hint,
            "post_logout_redirect_uri": "https://etransfer.example/signed-out",
        }
        page = web.get(f"/logout?{urlencode(query)}", follow_redirects=False)
        assert page.status_code == 200, case
        assert "Sign out of every e-service?" in page.text, case
        assert _userinfo(web, tokens["access_token"]) == 200, case
    genuine = {"id_token_hint": tokens["id_token"]}
    assert web.get(f"/logout?{urlencode(genuine)}").status_code == 200
    assert _userinfo(web, tokens["access_token"]) == 401, "the genuine hint does sign out"


def test_forged_access_tokens_are_refused_by_userinfo_and_the_locker(
    web: TestClient, oidc_runtime: Runtime, citizen: str
) -> None:
    portal = register_client(oidc_runtime, "portal", scopes=("openid", "locker"))
    genuine = _access_token(web, portal, citizen, "openid locker")
    assert _userinfo(web, genuine) == 200
    assert web.get("/locker/documents", headers=_bearer(genuine)).status_code == 200
    for case, forged in _forgeries(web, genuine).items():
        assert _userinfo(web, forged) == 401, case
        locker = web.get("/locker/documents", headers=_bearer(forged))
        assert locker.status_code == 401, case
        assert locker.headers["www-authenticate"].startswith("Bearer")
        entries_read = web.get("/audit/entries", headers=_bearer(forged))
        assert entries_read.status_code == 401, case


# -- oversized, nested, compressed and encrypted tokens ----------------------------------------


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_oversized_and_nested_tokens_are_refused_quickly(
    web: TestClient, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    tokens = _tokens(web, browser, rp, citizen)
    header, claims = _parts(tokens["access_token"])
    padded = {**claims, "pad": "x" * 4_000_000}
    huge = f"{_json_b64(header)}.{_json_b64(padded)}.{'A' * 86}"
    deep_header = f"{_b64(_nested(40_000))}.{_json_b64(claims)}.AAAA"
    deep_claims = f"{_json_b64(header)}.{_b64(_nested(40_000))}.AAAA"
    for case, value in (("4 MB", huge), ("nested header", deep_header),
                        ("nested claims", deep_claims)):  # fmt: skip
        for path in ("/oauth/userinfo", "/locker/documents", "/audit/entries"):
            response, took = _timed(lambda p=path, v=value: web.get(p, headers=_bearer(v)))
            assert response.status_code == 401, (case, path, response.status_code)
            assert took < QUICK, (case, path, took)
        hint, took = _timed(
            lambda v=value: web.post("/logout", data={"csrf": "x", "id_token_hint": v})
        )
        assert 400 <= hint.status_code < 500, (case, hint.status_code)
        page, took = _timed(
            lambda v=value: web.get(f"/logout?{urlencode({'id_token_hint': v[:60_000]})}")
        )
        assert page.status_code == 200, case
        assert took < QUICK, case
        assert "Sign out of every e-service?" in page.text
    # Client assertions: huge, and nested past the recursion limit in the header or claims.
    assertion_header = {"alg": "RS256", "kid": rp.key.kid}  # type: ignore[union-attr]
    now = int(time.time())
    good_claims = {"iss": rp.client_id, "sub": rp.client_id, "aud": TOKEN_ENDPOINT,
                   "jti": secrets.token_hex(8), "exp": now + 60}  # fmt: skip
    assertions = {
        "8 MB": ".".join(
            [
                _json_b64(assertion_header),
                _json_b64({**good_claims, "pad": "x" * 6_000_000}),
                "AAAA",
            ]
        ),
        "nested claims": f"{_json_b64(assertion_header)}.{_b64(_nested(40_000))}.AAAA",
        "nested header": f"{_b64(_nested(40_000))}.{_json_b64(good_claims)}.AAAA",
        "nested 5 parts": ".".join([_b64(_nested(40_000))] * 5),
    }
    for case, assertion in assertions.items():
        response, took = _timed(
            lambda a=assertion: web.post("/oauth/token", data=_assertion_form(a))
        )
        assert response.status_code in (401, 413), (case, response.status_code, response.text)
        if response.status_code == 401:
            assert response.json()["error"] == "invalid_client", case
        else:  # the form parser's cap, before anything reads the assertion
            assert response.json()["title"] == "A form is at most 65536 bytes.", case
        assert took < QUICK, (case, took)
    dpop, took = _timed(lambda: web.get(
        "/oauth/userinfo",
        headers={"Authorization": f"DPoP {tokens['access_token']}",
                 "DPoP": f"{_b64(_nested(40_000))}.{_json_b64(good_claims)}.AAAA"},
    ))  # fmt: skip
    assert dpop.status_code == 401
    assert took < QUICK


def test_compressed_and_encrypted_tokens_are_refused_and_never_inflated(
    web: TestClient, browser: Browser, rp: RelyingParty, citizen: str
) -> None:
    """A few kilobytes that would inflate to many megabytes: as a JWE with zip (encrypted to the
    provider's own published keys, so only a provider that decrypts with a private key could
    open it), as a JWS whose header claims zip, and as a gzip request body."""
    tokens = _tokens(web, browser, rp, citizen)
    _header, claims = _parts(tokens["access_token"])
    bomb = json.dumps({**claims, "pad": ""}).encode()[:-2] + b"0" * 30_000_000 + b'"}'
    registry = jwe.JWERegistry(algorithms=["ECDH-ES", "RSA-OAEP-256", "A256GCM", "DEF"])
    keys = web.get("/oauth/jwks").json()["keys"]
    encrypted = {}
    for jwk in keys:
        alg = "ECDH-ES" if jwk["kty"] == "EC" else "RSA-OAEP-256"
        bare = {k: v for k, v in jwk.items() if k not in ("use", "alg", "key_ops")}
        key = (ECKey if jwk["kty"] == "EC" else RSAKey).import_key(bare)
        protected = {"alg": alg, "enc": "A256GCM", "zip": "DEF", "kid": jwk["kid"], "typ": "at+jwt"}
        encrypted[f"JWE {alg} {jwk['kid']}"] = jwe.encrypt_compact(
            protected, bomb, key, registry=registry
        )
    deflated = zlib.compress(bomb, 9)
    assert len(deflated) < 100_000 < len(bomb)
    es_kid = next(k["kid"] for k in keys if k["kty"] == "EC")
    zipped_jws = (
        f"{_json_b64({'alg': 'ES256', 'kid': es_kid, 'typ': 'at+jwt', 'zip': 'DEF'})}."
        f"{_b64(deflated)}.{'A' * 86}"
    )
    now = int(time.time())
    assertion_claims = {"iss": rp.client_id, "sub": rp.client_id, "aud": TOKEN_ENDPOINT,
                        "jti": secrets.token_hex(8), "exp": now + 60}  # fmt: skip
    assertion_bomb = (
        json.dumps(assertion_claims).encode()[:-1] + b', "pad": "' + b"0" * 30_000_000 + b'"}'
    )
    signed_zip = jws.serialize_compact(
        {"alg": "RS256", "kid": rp.key.kid, "zip": "DEF"},  # type: ignore[union-attr]
        zlib.compress(assertion_bomb, 9),
        rp.key,
        registry=jws.JWSRegistry(algorithms=["RS256"], strict_check_header=False),
    )
    client_jwe = jwe.encrypt_compact(
        {"alg": "RSA-OAEP-256", "enc": "A256GCM", "zip": "DEF"},
        assertion_bomb,
        RSAKey.import_key(rp.key.as_dict(private=False)),  # type: ignore[union-attr]
        registry=registry,
    )
    with _inflations() as made:
        for case, value in {**encrypted, "JWS with zip": zipped_jws}.items():
            for path in ("/oauth/userinfo", "/locker/documents"):
                response, took = _timed(lambda p=path, v=value: web.get(p, headers=_bearer(v)))
                assert response.status_code == 401, (case, path)
                assert took < QUICK, (case, path, took)
            page = web.get(f"/logout?{urlencode({'id_token_hint': value})}")
            assert "Sign out of every e-service?" in page.text, case
        for case, assertion in (("JWS with zip", signed_zip), ("JWE", client_jwe)):
            response, took = _timed(
                lambda a=assertion: web.post("/oauth/token", data=_assertion_form(a))
            )
            assert response.status_code == 401, (case, response.text[:200])
            assert took < QUICK, (case, took)
        form, headers = rp.auth()
        body = gzip.compress(
            urlencode(
                {
                    **form,
                    "grant_type": "refresh_token",
                    "refresh_token": tokens["refresh_token"],
                    "pad": "0" * 30_000_000,
                }
            ).encode()
        )
        gzipped, took = _timed(lambda: web.post(
            "/oauth/token", content=body,
            headers={**headers, "Content-Encoding": "gzip",
                     "Content-Type": "application/x-www-form-urlencoded"},
        ))  # fmt: skip
        assert 400 <= gzipped.status_code < 500, gzipped.text[:200]
        assert took < QUICK
    assert made == [], "nothing was inflated"
    still = token(web, rp, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert still.status_code == 200, "the gzipped body was never read as a refresh"


# -- client assertions ---------------------------------------------------------------------------


def test_client_assertion_audience_confusion_is_refused(web: TestClient, rp: RelyingParty) -> None:
    refused = [
        f"{ISSUER}/oauth/introspect",  # another endpoint of ours
        f"{ISSUER}/oauth/revoke",
        f"{ISSUER}/oauth/par",
        f"{ISSUER}/oauth/userinfo",
        f"{ISSUER}/",  # issuer variants
        ISSUER.upper(),
        ISSUER.replace("https://", "http://"),
        f"{ISSUER}.evil.example",
        f"{ISSUER}:443",
        f"{TOKEN_ENDPOINT}/",
        f"{TOKEN_ENDPOINT}?x=1",
        "https://evil.example/oauth/token",
        "",
    ]
    for audience in refused:
        response = web.post("/oauth/token", data=_assertion_form(rp.assertion(audience=audience)))
        assert response.status_code == 401, audience
        assert response.json()["error"] == "invalid_client", audience
    for audience in ([f"{ISSUER}/oauth/introspect", "https://evil.example/"], [], None, 7):
        assertion = rp.assertion(aud=audience)
        response = web.post("/oauth/token", data=_assertion_form(assertion))
        assert response.status_code == 401, audience
    # An assertion minted for another server's token endpoint, replayed here with the Host
    # header pointing at that server: the audience must not be read off the request.
    elsewhere = "https://evil.example/oauth/token"
    replayed = web.post(
        "/oauth/token",
        data=_assertion_form(rp.assertion(audience=elsewhere)),
        headers={"Host": "evil.example"},
    )
    assert replayed.status_code == 401, replayed.text
    assert replayed.json()["error"] == "invalid_client"
    introspected = web.post(
        "/oauth/introspect",
        data={**_assertion_form(rp.assertion(audience="https://evil.example/oauth/introspect")),
              "token": "x"},
        headers={"Host": "evil.example"},
    )  # fmt: skip
    assert introspected.status_code == 401
    # What is accepted: the issuer, the token endpoint, a list naming one of them.
    for audience in (ISSUER, TOKEN_ENDPOINT, ["https://evil.example/", TOKEN_ENDPOINT]):
        response = web.post("/oauth/token", data=_assertion_form(rp.assertion(aud=audience)))
        assert response.json()["error"] == "invalid_grant", audience
    at_introspect = web.post(
        "/oauth/introspect",
        data={**_assertion_form(rp.assertion(audience=f"{ISSUER}/oauth/introspect")), "token": "x"},
    )
    assert at_introspect.status_code == 200, "the endpoint's own URL names it"
    assert at_introspect.json() == {"active": False}


def test_a_client_assertion_cannot_speak_for_another_client(
    web: TestClient, oidc_runtime: Runtime, rp: RelyingParty
) -> None:
    other = register_client(oidc_runtime, "domicile")
    secret_client = register_client(oidc_runtime, "legacy", secret=True)
    for claims in (
        {"iss": "domicile", "sub": "domicile"},  # names another client, signed with my key
        {"iss": "etransfer", "sub": "domicile"},
        {"iss": "domicile", "sub": "etransfer"},
        {"iss": "legacy", "sub": "legacy"},  # a client_secret_basic client
        {"iss": ["etransfer"], "sub": ["etransfer"]},
    ):
        response = web.post("/oauth/token", data=_assertion_form(rp.assertion(**claims)))
        assert response.status_code == 401, claims
        assert response.json()["error"] == "invalid_client", claims
    mismatched = web.post(
        "/oauth/token", data=_assertion_form(rp.assertion(), client_id="domicile")
    )
    assert mismatched.json()["error"] == "invalid_client"
    assert other.client_id
    assert secret_client.secret


# -- sessions, CSRF, framing --------------------------------------------------------------------


SESSION = "__Host-shanakht_session"


def _cookie_value(response: Any, name: str) -> str | None:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            return str(header.split(";", 1)[0].split("=", 1)[1])
    return None


def _login(client: TestClient, cnic: str) -> Any:
    page = client.get("/login")
    return client.post(
        "/login",
        data={"cnic": cnic, "password": PASSWORD, "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )


def test_a_session_cookie_from_before_sign_in_is_not_the_one_after(
    web: TestClient, oidc_runtime: Runtime, citizen: str
) -> None:
    planted = secrets.token_urlsafe(32)
    web.cookies.set(SESSION, planted, domain="shanakht.test")
    signed_in = _login(web, citizen)
    assert signed_in.status_code == 303
    issued = _cookie_value(signed_in, SESSION)
    assert issued is not None
    assert issued != planted
    stranger = TestClient(web.app, base_url=ISSUER)
    stranger.cookies.set(SESSION, planted, domain="shanakht.test")
    assert stranger.get("/account", follow_redirects=False).status_code == 303
    # The attacker's own live session planted in the victim's browser: her sign-in replaces it,
    # so the attacker's copy of the cookie does not become hers.
    attacker_record = read_registry(oidc_runtime.identity.nadra_file)[SCENARIOS["active_female"]]
    register_citizen(oidc_runtime, attacker_record)
    attacker = TestClient(web.app, base_url=ISSUER)
    attackers = _cookie_value(_login(attacker, attacker_record.cnic), SESSION)
    assert attackers is not None
    victim = TestClient(web.app, base_url=ISSUER)
    victim.cookies.set(SESSION, attackers, domain="shanakht.test")
    victims = _cookie_value(_login(victim, citizen), SESSION)
    assert victims is not None
    assert victims != attackers
    assert attacker.get("/account", follow_redirects=False).status_code == 303, (
        "the planted session ended when the victim signed in over it"
    )
    assert victim.get("/account", follow_redirects=False).status_code == 200


def test_a_login_post_without_this_browsers_csrf_token_is_refused(
    web: TestClient, citizen: str
) -> None:
    attacker = TestClient(web.app, base_url=ISSUER)
    attackers_token = csrf_of(attacker.get("/login").text)
    victim = TestClient(web.app, base_url=ISSUER)
    csrf_of(victim.get("/login").text)  # the victim's browser holds a CSRF cookie of its own
    cookieless = TestClient(web.app, base_url=ISSUER)
    for client, form in (
        (victim, {"cnic": citizen, "password": PASSWORD}),
        (victim, {"cnic": citizen, "password": PASSWORD, "csrf": ""}),
        (victim, {"cnic": citizen, "password": PASSWORD, "csrf": attackers_token}),
        (cookieless, {"cnic": citizen, "password": PASSWORD, "csrf": attackers_token}),
    ):
        response = client.post("/login", data=form, follow_redirects=False)
        assert response.status_code == 403, form
        assert _cookie_value(response, SESSION) is None
    assert victim.get("/account", follow_redirects=False).status_code == 303
    assert _login(victim, citizen).status_code == 303, "with its own token it signs in"


FRAMEABLE_CANDIDATES = [
    "/", "/login", "/register", "/reset", "/verify", "/logout", "/consent?request=x",
    "/oauth/authorize?client_id=nobody", "/no/such/page", "/account", "/documents", "/admin",
    "/officer", "/lang/ur?next=/login",
]  # fmt: skip


def test_no_page_can_be_framed(web: TestClient) -> None:
    for path in FRAMEABLE_CANDIDATES:
        response = web.get(path, headers={"Accept": "text/html"}, follow_redirects=True)
        assert response.headers["content-type"].startswith("text/html"), path
        assert response.headers["x-frame-options"] == "DENY", path
        policy = response.headers.get("content-security-policy", "")
        assert "frame-ancestors 'none'" in policy, (path, policy)


# -- access control: citizens ---------------------------------------------------------------------


def test_another_citizens_document_is_404_like_one_that_does_not_exist(
    web: TestClient, oidc_runtime: Runtime
) -> None:
    registry = read_registry(oidc_runtime.identity.nadra_file)
    owner_cnic, intruder_cnic, named_cnic = (
        SCENARIOS["active_male"], SCENARIOS["active_female"], SCENARIOS["two_mobiles"]
    )  # fmt: skip
    for cnic in (owner_cnic, intruder_cnic, named_cnic):
        register_citizen(oidc_runtime, registry[cnic])
    portal = register_client(oidc_runtime, "portal", scopes=("openid", "locker"))
    owner = _access_token(web, portal, owner_cnic, "openid locker")
    web.cookies.clear()
    intruder = _access_token(web, portal, intruder_cnic, "openid locker")
    web.cookies.clear()
    owner_ref = pseudonym(owner_cnic, key=oidc_runtime.pseudonym_key)
    issued = issue_document(oidc_runtime, owner_ref, "birth", "lgcd", "BC-2026-0007")
    upload = web.post(
        "/locker/documents", params={"title": "My matric", "doctype": "matric"},
        content=b'{"marks": 901}',
        headers={**_bearer(owner), "Content-Type": "application/json"},
    )  # fmt: skip
    assert upload.status_code == 201, upload.text
    uploaded = upload.json()["id"]
    share = web.post(f"/locker/documents/{issued}/shares", json={}, headers=_bearer(owner))
    assert share.status_code == 201, share.text
    named = web.put("/locker/nominees", json={"cnic": named_cnic}, headers=_bearer(owner))
    assert named.status_code == 200, named.text
    nobody = "f" * len(issued)

    def attempts(document_id: str) -> list[tuple[str, Any]]:
        me = _bearer(intruder)
        return [
            ("metadata", web.get(f"/locker/documents/{document_id}", headers=me)),
            ("content", web.get(f"/locker/documents/{document_id}/content", headers=me)),
            (
                "download",
                web.get(
                    f"/locker/documents/{document_id}/content?disposition=attachment", headers=me
                ),
            ),
            ("signature", web.get(f"/locker/documents/{document_id}/signature", headers=me)),
            ("share", web.post(f"/locker/documents/{document_id}/shares", json={}, headers=me)),
            ("delete", web.delete(f"/locker/documents/{document_id}", headers=me)),
            (
                "as nominee",
                web.get(f"/locker/lockers/{owner_ref}/documents/{document_id}/content", headers=me),
            ),
        ]

    for document_id in (issued, uploaded):
        for (what, theirs), (_, missing) in zip(
            attempts(document_id), attempts(nobody), strict=True
        ):
            assert theirs.status_code == 404, (what, theirs.status_code, theirs.text)
            assert theirs.json()["title"] == missing.json()["title"], what
            assert b"PDF" not in theirs.content
            assert b"marks" not in theirs.content
    for what, response in (
        (
            "revoke their share",
            web.delete(f"/locker/shares/{share.json()['id']}", headers=_bearer(intruder)),
        ),
        (
            "remove their nominee",
            web.delete(f"/locker/nominees/{named.json()['id']}", headers=_bearer(intruder)),
        ),
    ):
        assert response.status_code == 404, (what, response.status_code, response.text)
    theirs_list = web.get(f"/locker/lockers/{owner_ref}/documents", headers=_bearer(intruder))
    made_up = web.get(f"/locker/lockers/{'p' + owner_ref[1:]}/documents", headers=_bearer(intruder))
    assert theirs_list.status_code == made_up.status_code != 200
    assert theirs_list.json()["title"] == made_up.json()["title"], "no oracle for lockers"
    # Nothing of the owner's changed.
    mine = {
        d["id"] for d in web.get("/locker/documents", headers=_bearer(owner)).json()["documents"]
    }
    assert mine == {issued, uploaded}
    shares = web.get("/locker/shares", headers=_bearer(owner)).json()["shares"]
    assert [s["id"] for s in shares] == [share.json()["id"]]
    assert all(s.get("revoked_at") is None for s in shares)
    people = web.get("/locker/nominees", headers=_bearer(owner)).json()
    assert [p["id"] for p in people["named"]] == [named.json()["id"]]
    with oidc_runtime.sessions() as session:
        assert session.execute(select(func.count()).select_from(documents)).scalar_one() == 2


# -- access control: officers and departments ---------------------------------------------------


def test_an_officer_cannot_post_to_another_departments_desk(
    web: TestClient, oidc_runtime: Runtime, tmp_path: Path
) -> None:
    office = set_up_office(oidc_runtime, tmp_path / "root")
    officer_sign_in(web, oidc_runtime, office.officer, code=True)  # lgcd and sed, not home
    csrf = csrf_of(web.get("/officer/lgcd/issue").text)
    before = _log_size(oidc_runtime)
    pdf = ("dom.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf")
    for path, form, files in (
        ("/officer/home/issue", {"doctype": "dom", "cnic": office.citizen.cnic,
                                 "doc_id": "DOM/1", "title": "Domicile"}, {"file": pdf}),
        ("/officer/home/revoke", {"doc_id": "DOM/1", "reason": "wrong"}, None),
        ("/officer/home/bulk", {},
         {"file": ("batch.zip", b"PK\x05\x06" + bytes(18), "application/zip")}),
        ("/officer/home/sign", {"order_no": "HOME/1"}, None),
        ("/officer/home/legal", {"cnic": office.citizen.cnic}, None),
        (f"/officer/home/legal/requests/{'a' * 32}/approve", {}, None),
        (f"/officer/home/legal/requests/{'a' * 32}/open", {}, None),
        ("/officer/home/requests/new", {"cnic": office.citizen.cnic}, None),
        (f"/officer/home/certificates/{office.home_seal_serial:x}",
         {"reason": "key_compromise"}, None),
    ):  # fmt: skip
        response = web.post(path, data={"csrf": csrf, **form}, files=files, follow_redirects=False)
        assert response.status_code == 403, (path, response.status_code)
    assert _successes_since(oidc_runtime, before) == []
    with oidc_runtime.sessions() as session:
        assert session.execute(select(func.count()).select_from(documents)).scalar_one() == 0


def _log_size(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return int(session.execute(select(func.count()).select_from(entries)).scalar_one())


def _since(runtime: Runtime, size: int) -> list[dict[str, Any]]:
    """The entries after the first `size`."""
    with runtime.sessions() as session:
        rows = session.execute(select(entries.c.entry).order_by(entries.c.seq).offset(size))
        return [json.loads(r) for r in rows.scalars()]


def _successes_since(runtime: Runtime, size: int) -> list[str]:
    """The actions of entries after the first `size` that record something done."""
    logged = _since(runtime, size)
    return [e["action"] for e in logged if e.get("outcome", "success") == "success"]


def test_the_verifier_answers_only_what_the_code_holds(
    web: TestClient, oidc_runtime: Runtime, tmp_path: Path
) -> None:
    order = signed_order(oidc_runtime, tmp_path)
    deliver(oidc_runtime, order)
    _kid, payload = decode(order.payload)
    anyone = TestClient(web.app, base_url=ISSUER)
    verdict = anyone.post("/signing/verify", json={"payload": order.payload})
    assert verdict.status_code == 200
    body = verdict.json()
    assert body["outcome"] == "authentic"
    assert set(body) == {"outcome", "authentic", "reason", "fields", "signer", "checked_online",
                         "issued_at", "expires_at"}  # fmt: skip
    assert body["fields"] == payload.fields, "exactly the signed fields, nothing looked up"
    assert set(body["signer"]) == {"subject", "serial"}
    teacher = pseudonym(TEACHER_CNIC.replace("-", ""), key=oidc_runtime.pseudonym_key)
    with oidc_runtime.sessions() as session:
        document_id = session.execute(select(documents.c.id)).scalar_one()
    for secret in (teacher, TEACHER_CNIC, TEACHER_CNIC.replace("-", ""), document_id,
                   "owner", "locker", "sed-transfer"):  # fmt: skip
        assert secret not in verdict.text, secret
    forged = anyone.post("/signing/verify", json={"payload": order.altered()}).json()
    assert forged["outcome"] == "altered"
    assert forged["fields"] in ({}, None)
    assert "issued_at" not in forged
    pdf = anyone.post("/signing/verify", files={"file": ("order.pdf", order.pdf)})
    assert pdf.status_code == 200
    assert set(pdf.json()) - set(body) == {"pdf"}
    assert teacher not in pdf.text
    assert document_id not in pdf.text


# -- access control: the audit reader -----------------------------------------------------------

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
READ_ONLY = {"/admin/audit/verify"}  # re-checks the log, changes nothing: a reader may


def _every_route(routes: Any, prefix: str = "") -> Iterator[tuple[str, set[str]]]:
    """(path, methods) of every API route, inside included routers too (newer FastAPI keeps
    them as included-router nodes rather than copying them into the app's list)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, set(route.methods)
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from _every_route(inner.routes, prefix + getattr(context, "prefix", ""))


def _filled(path: str, **values: str) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, path
    return path


def test_an_audit_reader_can_change_nothing(web: TestClient, oidc_runtime: Runtime) -> None:
    record = admin_citizen(oidc_runtime, "active_male", "audit.reader")
    admin_sign_in(web, oidc_runtime, record, code=True)
    reader = pseudonym(record.cnic, key=oidc_runtime.pseudonym_key)
    desk = register_client(oidc_runtime, "audit-console",
                           scopes=("openid", "locker", "signing", "roles"))  # fmt: skip
    access = _access_token(web, desk, record.cnic, "openid locker signing roles")
    csrf = csrf_of(web.get("/admin/audit").text)
    before = _log_size(oidc_runtime)
    routes = [
        (method, path)
        for path, methods in _every_route(web.app.routes)
        if path.startswith(("/admin", "/officer")) and path not in READ_ONLY
        for method in sorted(methods & WRITES)
    ]
    assert len(routes) >= 15, routes
    values = {"department": "pitb", "citizen_id": reader, "client_id": "audit-console",
              "serial": "01", "grant_id": "a" * 32, "document_id": "a" * 32,
              "request_id": "a" * 32, "job_id": "a" * 32, "proposal_id": "a" * 32}  # fmt: skip
    for method, path in routes:
        response = web.request(
            method, _filled(path, **values), data={"csrf": csrf}, follow_redirects=False
        )
        assert response.status_code == 403, (method, path, response.status_code)
    cnic = record.cnic
    request_body = {"cnic": cnic, "doctypes": ["birth"], "purpose_code": "edu.admission",
                    "purpose_text": "Admission", "data_life_days": 30, "valid_days": 7,
                    "fetch_limit": 1}  # fmt: skip
    legal_body = {"cnic": cnic, "doctypes": ["birth"], "department": "pitb",
                  "legal_reference": "Order of a court", "reason": "An investigation"}  # fmt: skip
    order_body = {"department": "pitb", "teacher_cnic": cnic, "order_no": "PITB/1",
                  "order_date": "2026-03-14",
                  "teacher_name": "A Teacher", "from_school": "A", "to_school": "B",
                  "post": "SST", "authority": "CEO"}  # fmt: skip
    apis: list[tuple[str, str, dict[str, Any]]] = [
        ("PUT", "/locker/issued/birth?doc_id=x&title=t", {"content": b"%PDF-1.4\n%%EOF\n"}),
        ("POST", "/locker/issued/birth/revoke?doc_id=x", {"json": {"reason": "x"}}),
        ("POST", "/exchange/requests", {"json": request_body}),
        ("POST", "/exchange/legal-access", {"json": legal_body}),
        ("POST", f"/exchange/legal-access/{'a' * 32}/approve", {}),
        ("POST", f"/exchange/legal-access/{'a' * 32}/refuse", {"json": {"reason": "No"}}),
        ("POST", f"/exchange/legal-access/{'a' * 32}/open", {}),
        ("POST", "/signing/orders/transfer", {"json": order_body}),
        ("POST", "/signing/cms?department=pitb", {"content": b"any file"}),
    ]
    for method, path, body in apis:
        response = web.request(
            method, path, headers={**_bearer(access), "Shanakht-Cnic": cnic}, **body
        )
        assert response.status_code == 403, (method, path, response.status_code, response.text)
    assert _successes_since(oidc_runtime, before) == []
    # Every refusal named the reader, so the log took the first ten and only counted the rest
    # (identity.failures.CAP): a walk of every route cannot fill it.
    denied = [e for e in _since(oidc_runtime, before) if e["action"] == "access.denied"]
    assert len(routes) + len(apis) > CAP.attempts
    assert len(denied) == CAP.attempts
    assert {e["actor"] for e in denied} == {f"citizen:{reader}"}
    assert "cap_reached" in denied[-1]["details"]
    assert cnic not in json.dumps(denied)
    entries_read = web.get("/audit/entries?limit=5", headers=_bearer(access))
    assert entries_read.status_code == 200, "the role reads"


# -- the catalogue itself ------------------------------------------------------------------------


def test_the_catalogue_names_only_tests_that_exist() -> None:
    """Every test the table above names is defined where it says, so the catalogue cannot
    silently point at a renamed or deleted test."""
    assert __doc__ is not None
    here = Path(__file__).parent
    named = re.findall(r"((?:tests/[\w/]+/)?\w+\.py)::(\w+)((?:, \w+\.py::\w+)*)", __doc__)
    pairs: list[tuple[str, str]] = []
    for file, test, more in named:
        pairs.append((file, test))
        pairs += re.findall(r"(\w+\.py)::(\w+)", more)
    assert len(pairs) >= 45, len(pairs)
    root = here.parent.parent
    for file, test in pairs:
        path = root / file if file.startswith("tests/") else here / file
        assert f"def {test}(" in path.read_text(), f"{file}::{test}"
