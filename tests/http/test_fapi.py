"""FAPI 2.0 for high-assurance clients: pushed authorization requests (RFC 9126) and
DPoP-bound tokens (RFC 9449), enforced per client."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from joserfc.jwk import ECKey

from api.runtime import Runtime
from identity.nadra import SCENARIOS, read_registry
from tests.http.oidc_kit import (
    ISSUER,
    Browser,
    RelyingParty,
    dpop_proof,
    pkce,
    query_of,
    register_citizen,
    register_client,
    verify_jwt,
)

TOKEN = f"{ISSUER}/oauth/token"
USERINFO = f"{ISSUER}/oauth/userinfo"


@pytest.fixture
def citizen(oidc_runtime: Runtime) -> str:
    record = read_registry(oidc_runtime.identity.nadra_file)[SCENARIOS["active_female"]]
    register_citizen(oidc_runtime, record)
    return record.cnic


@pytest.fixture
def fapi(oidc_runtime: Runtime) -> RelyingParty:
    return register_client(oidc_runtime, "land-records", require_par=True, require_dpop=True)


def _push(web: TestClient, rp: RelyingParty, key: ECKey, challenge: str) -> dict:
    form, headers = rp.auth()
    form["client_assertion"] = rp.assertion(audience=ISSUER)
    params = {
        **form,
        "client_id": rp.client_id,
        "response_type": "code",
        "redirect_uri": rp.redirect_uri,
        "scope": "openid profile",
        "state": "st",
        "nonce": "nn",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    response = web.post(
        "/oauth/par",
        data=params,
        headers={**headers, "DPoP": dpop_proof(key, "POST", f"{ISSUER}/oauth/par")},
    )
    assert response.status_code == 201, response.text
    return response.json()


def _sign_in_pushed(web: TestClient, rp: RelyingParty, key: ECKey, cnic: str) -> tuple[str, str]:
    verifier, challenge = pkce()
    pushed = _push(web, rp, key, challenge)
    browser = Browser(web)
    query = urlencode({"client_id": rp.client_id, "request_uri": pushed["request_uri"]})
    response = web.get(f"/oauth/authorize?{query}", follow_redirects=False)
    callback = browser.drive(response, rp, cnic)
    assert callback["state"] == "st"
    return callback["code"], verifier


def test_pushed_and_dpop_bound_all_the_way(
    web: TestClient, fapi: RelyingParty, citizen: str
) -> None:
    key = ECKey.generate_key("P-256", private=True)
    code, verifier = _sign_in_pushed(web, fapi, key, citizen)
    form, headers = fapi.auth()
    granted = web.post(
        "/oauth/token",
        data={**form, "grant_type": "authorization_code", "code": code,
              "redirect_uri": fapi.redirect_uri, "code_verifier": verifier},
        headers={**headers, "DPoP": dpop_proof(key, "POST", TOKEN)},
    )  # fmt: skip
    assert granted.status_code == 200, granted.text
    body = granted.json()
    assert body["token_type"] == "DPoP"
    assert verify_jwt(web, body["access_token"])["cnf"] == {"jkt": key.thumbprint()}
    access = body["access_token"]
    ok = web.get(
        "/oauth/userinfo",
        headers={
            "Authorization": f"DPoP {access}",
            "DPoP": dpop_proof(key, "GET", USERINFO, access),
        },
    )
    assert ok.status_code == 200, ok.text
    # The same token without its proof, or as a bearer token, or with another key's proof: no.
    assert (
        web.get("/oauth/userinfo", headers={"Authorization": f"Bearer {access}"}).status_code == 401
    )
    thief = ECKey.generate_key("P-256", private=True)
    stolen = web.get(
        "/oauth/userinfo",
        headers={
            "Authorization": f"DPoP {access}",
            "DPoP": dpop_proof(thief, "GET", USERINFO, access),
        },
    )
    assert stolen.status_code == 401
    proof = dpop_proof(key, "GET", USERINFO, access)
    headers = {"Authorization": f"DPoP {access}", "DPoP": proof}
    assert web.get("/oauth/userinfo", headers=headers).status_code == 200
    assert web.get("/oauth/userinfo", headers=headers).status_code == 401, "a proof is for one use"


def test_a_par_client_cannot_send_its_request_through_the_browser(
    web: TestClient, fapi: RelyingParty
) -> None:
    _verifier, challenge = pkce()
    query = urlencode({
        "client_id": fapi.client_id, "redirect_uri": fapi.redirect_uri, "response_type": "code",
        "scope": "openid", "code_challenge": challenge, "code_challenge_method": "S256",
        "state": "x",
    })  # fmt: skip
    response = web.get(f"/oauth/authorize?{query}", follow_redirects=False)
    assert query_of(response.headers["location"])["error"] == "invalid_request"


def test_a_request_uri_is_for_one_use_and_one_client(
    web: TestClient, oidc_runtime: Runtime, fapi: RelyingParty
) -> None:
    key = ECKey.generate_key("P-256", private=True)
    _verifier, challenge = pkce()
    pushed = _push(web, fapi, key, challenge)
    other = register_client(oidc_runtime, "other")
    stolen = urlencode({"client_id": other.client_id, "request_uri": pushed["request_uri"]})
    assert web.get(f"/oauth/authorize?{stolen}", follow_redirects=False).status_code == 400
    mine = urlencode({"client_id": fapi.client_id, "request_uri": pushed["request_uri"]})
    assert web.get(f"/oauth/authorize?{mine}", follow_redirects=False).status_code == 303
    assert web.get(f"/oauth/authorize?{mine}", follow_redirects=False).status_code == 400


def test_a_dpop_client_must_present_a_proof_at_the_token_endpoint(
    web: TestClient, fapi: RelyingParty, citizen: str
) -> None:
    key = ECKey.generate_key("P-256", private=True)
    code, verifier = _sign_in_pushed(web, fapi, key, citizen)
    form, headers = fapi.auth()
    response = web.post(
        "/oauth/token",
        data={**form, "grant_type": "authorization_code", "code": code,
              "redirect_uri": fapi.redirect_uri, "code_verifier": verifier},
        headers=headers,
    )  # fmt: skip
    assert response.json()["error"] == "invalid_grant", "the code is bound to the PAR's key"
