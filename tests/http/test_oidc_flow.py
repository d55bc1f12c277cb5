"""The authorization code flow end to end, through the HTTP app, as e-services use it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.runtime import Runtime
from identity.nadra import SCENARIOS, read_registry
from tests.http.oidc_kit import (
    ISSUER,
    Browser,
    RelyingParty,
    register_citizen,
    register_client,
    token,
    verify_jwt,
)


@pytest.fixture
def citizen(oidc_runtime: Runtime) -> str:
    record = read_registry(oidc_runtime.identity.nadra_file)[SCENARIOS["active_female"]]
    register_citizen(oidc_runtime, record)
    return record.cnic


@pytest.fixture
def rp(oidc_runtime: Runtime) -> RelyingParty:
    return register_client(oidc_runtime, "etransfer")


def test_discovery_names_every_endpoint_under_the_configured_issuer(web: TestClient) -> None:
    meta = web.get("/.well-known/openid-configuration").json()
    assert meta["issuer"] == ISSUER
    for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"):
        assert meta[name].startswith(ISSUER + "/")
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert web.get("/.well-known/oauth-authorization-server").json() == meta
    keys = web.get("/oauth/jwks").json()["keys"]
    assert {k["alg"] for k in keys} == {"RS256", "ES256"}
    assert all("d" not in k for k in keys)


def test_code_flow_gives_a_verifiable_id_token_and_userinfo(
    web: TestClient, rp: RelyingParty, citizen: str
) -> None:
    browser = Browser(web)
    callback, verifier = browser.sign_in(rp, citizen, scope="openid profile cnic", nonce="n-1")
    assert callback["iss"] == ISSUER
    response = token(
        web, rp, grant_type="authorization_code", code=callback["code"],
        redirect_uri=rp.redirect_uri, code_verifier=verifier,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    claims = verify_jwt(web, body["id_token"])
    assert claims["iss"] == ISSUER
    assert claims["aud"] == "etransfer"
    assert claims["nonce"] == "n-1"
    assert claims["acr"] == "urn:shanakht:loa:low"
    assert claims["amr"] == ["pwd"]
    info = web.get("/oauth/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert info.status_code == 200, info.text
    assert info.json()["sub"] == claims["sub"]
    assert info.json()["cnic"] == f"{citizen[:5]}-{citizen[5:12]}-{citizen[12]}"
    assert "birthdate" not in info.json()
