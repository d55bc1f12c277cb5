"""Fuzzing the provider's parsers of tokens handed back to it: access tokens, ID token hints,
client assertions, DPoP proofs, and authorization requests.

Arbitrary strings, the wrong algorithm (none; HS256 keyed with the public key), a header,
payload or signature changed, and nested or huge JSON must each end in the domain's OAuth
error (or its documented "no" answer), never another exception; what is valid verifies.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st
from joserfc import jws, jwt
from joserfc.jwk import ECKey, RSAKey

from api.runtime import Runtime
from identity.oidc.authorize import PAR_PREFIX, AuthorizationRequest, ErrorRedirect
from identity.oidc.clients import ASSERTION_TYPE, SERVICE
from identity.oidc.errors import (
    InvalidClient,
    InvalidDpopProof,
    InvalidRequest,
    InvalidToken,
    OAuthError,
    UntrustedRedirect,
)
from identity.oidc.provider import Provider
from tests.fuzz.parser_kit import (
    ANY_TEXT,
    b64url,
    budget,
    fuzz_runtime,
    jws_segments_mutation,
    text_mutation,
    unb64url,
)
from tests.http.oidc_kit import RelyingParty, register_client

__all__ = ["fuzz_runtime"]

T = TypeVar("T")
DEEP = "[" * 3000 + "]" * 3000  # past json's recursion limit, under joserfc's size limits
HUGE = json.dumps({"a": "x" * 200_000}).encode()  # past joserfc's size limit


@dataclass
class Kit:
    runtime: Runtime
    department: RelyingParty
    eservice: RelyingParty
    access_token: str
    id_token: str
    issuer: str

    def run(self, action: Callable[[Provider], T]) -> T:
        """`action` on a provider in a transaction that is rolled back: every example starts
        from the same database."""
        with self.runtime.sessions() as session:
            try:
                return action(self.runtime.provider(session))
            finally:
                session.rollback()

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/oauth/token"


@pytest.fixture(scope="module")
def kit(fuzz_runtime: Runtime) -> Kit:
    runtime = fuzz_runtime
    department = register_client(runtime, "fuzz-dept", kind=SERVICE)
    eservice = register_client(runtime, "fuzz-eservice")
    issuer = runtime.settings.resolved_issuer
    with runtime.transaction() as session:
        provider = runtime.provider(session)
        client = provider.clients.get(department.client_id)
        assert client is not None
        access = provider.tokens.client_credentials(client, scope=None, dpop_jkt=None)
        now = int(time.time())
        id_token = provider.keys.sign(
            {
                "iss": issuer,
                "sub": "s",
                "aud": eservice.client_id,
                "sid": "sid-1",
                "iat": now,
                "exp": now + 600,
            },
            alg="RS256",
        )
    return Kit(runtime, department, eservice, access.access_token, id_token, issuer)


def _changed(data: st.DataObject, original: str, forged: st.SearchStrategy[str]) -> str:
    """Anything JWT-like, `original` with a decoded segment changed by a bit, or a forgery."""
    kind = data.draw(st.sampled_from(["arbitrary", "segment", "forged"]), label="kind")
    if kind == "arbitrary":
        return data.draw(jwt_like)
    if kind == "segment":
        return jws_segments_mutation(original, data)
    return data.draw(forged)


def _public_jwks(kit: Kit) -> dict[str, Any]:
    return kit.run(lambda p: {"keys": p.keys.published()})


@st.composite
def forged_jwts(draw: st.DrawFn, original: str, public: Callable[[], dict[str, Any]]) -> str:
    """Tokens a forger can make from `original` and the published keys: alg none, HS256 keyed
    with a public key (as PEM-less JSON, or its modulus/coordinate), claims changed under the
    old signature, a `crit` of the wrong type, a deeply nested header or payload."""
    header64, payload64, signature64 = original.split(".")
    header = json.loads(unb64url(header64))
    claims = json.loads(unb64url(payload64))
    kind = draw(
        st.sampled_from(
            [
                "none",
                "hs256",
                "claims",
                "crit",
                "deep-header",
                "deep-payload",
                "huge-payload",
                "kid",
            ]
        )
    )
    if kind == "claims":
        claims[draw(st.sampled_from(sorted(claims)))] = draw(
            st.integers() | st.text(max_size=9) | st.lists(st.integers(), max_size=2)
        )
        return f"{header64}.{b64url(json.dumps(claims).encode())}.{signature64}"
    if kind == "deep-payload":
        return f"{header64}.{b64url(DEEP.encode())}.{signature64}"
    if kind == "huge-payload":
        return f"{header64}.{b64url(HUGE)}.{signature64}"
    if kind == "deep-header":
        return f"{b64url(DEEP[2800:3200].encode())}.{payload64}.{signature64}"
    if kind == "crit":
        header["crit"] = draw(st.sampled_from([5, None, [5], [[1]], {}, "exp"]))
    elif kind == "kid":
        header["kid"] = draw(st.one_of(st.text(max_size=20), st.integers(), st.just({})))
    else:
        header["alg"] = "none" if kind == "none" else "HS256"
    signing_input = f"{b64url(json.dumps(header).encode())}.{payload64}"
    if kind == "none":
        return signing_input + draw(st.sampled_from([".", "." + signature64]))
    if kind in ("crit", "kid"):
        return f"{signing_input}.{signature64}"
    key = draw(st.sampled_from(public()["keys"]))
    secret = draw(st.sampled_from([json.dumps(key).encode(), unb64url(key.get("n") or key["x"])]))
    return f"{signing_input}.{_hs256(secret, signing_input)}"


def _hs256(secret: bytes, signing_input: str) -> str:
    """An HS256 signature keyed with `secret`: the algorithm-confusion forgery."""
    return b64url(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())


jwt_like = st.one_of(
    ANY_TEXT,
    st.builds(
        ".".join,
        st.lists(st.text("ABCDEFabcdef0123456789-_=", max_size=40), min_size=1, max_size=5),
    ),
    st.builds(
        lambda h, p, s: f"{b64url(h)}.{b64url(p)}.{b64url(s)}",
        st.one_of(
            st.builds(
                lambda alg, extra: json.dumps({"alg": alg, **extra}).encode(),
                st.sampled_from(["ES256", "RS256", "none", "HS256", "EdDSA", "PS256"]),
                st.dictionaries(
                    st.sampled_from(["kid", "typ", "crit", "jwk", "b64"]),
                    st.none()
                    | st.integers()
                    | st.text(max_size=8)
                    | st.lists(st.integers(), max_size=2),
                ),
            ),
            st.binary(max_size=40),
        ),
        st.binary(max_size=60),
        st.binary(max_size=72),
    ),
)


# -- access tokens ---------------------------------------------------------------------------


def _verify_access(kit: Kit, token: str) -> Any:
    return kit.run(lambda p: p.tokens.verify_access_token(token))


def test_access_token_original_verifies(kit: Kit) -> None:
    assert _verify_access(kit, kit.access_token).client_id == kit.department.client_id


@budget("oidc")
@given(jwt_like)
def test_access_token_arbitrary_is_refused(kit: Kit, token: str) -> None:
    with pytest.raises(InvalidToken):
        _verify_access(kit, token)


@budget("oidc")
@given(st.data())
def test_access_token_mutations_are_refused(kit: Kit, data: st.DataObject) -> None:
    """Any decoded segment changed by a bit, or a forgery: InvalidToken, always."""
    token = _changed(
        data, kit.access_token, forged_jwts(kit.access_token, lambda: _public_jwks(kit))
    )
    with pytest.raises(InvalidToken):
        _verify_access(kit, token)


@budget("oidc")
@given(st.data())
def test_access_token_text_mutations(kit: Kit, data: st.DataObject) -> None:
    """A character changed: refused, or the same token (base64 padding bits) accepted."""
    token = data.draw(text_mutation(kit.access_token))
    try:
        accepted = _verify_access(kit, token)
    except InvalidToken:
        return
    original = _verify_access(kit, kit.access_token)
    assert accepted == original
    assert [unb64url(p) for p in token.split(".")] == [
        unb64url(p) for p in kit.access_token.split(".")
    ]


@budget("oidc")
@given(st.one_of(jwt_like, st.just("")))
def test_introspection_and_revocation_of_anything(kit: Kit, token: str) -> None:
    """Unknown tokens are inactive and their revocation a no-op: no error at all (RFC 7662,
    RFC 7009)."""

    def both(provider: Provider) -> dict[str, Any]:
        client = provider.clients.get(kit.department.client_id)
        assert client is not None
        provider.tokens.revoke(client, token)
        return provider.tokens.introspect(client, token)

    assert kit.run(both) == {"active": False}


# -- ID token hints --------------------------------------------------------------------------


@budget("oidc")
@given(st.data())
def test_id_token_hints(kit: Kit, data: st.DataObject) -> None:
    """The real hint names its client and sid; anything else, mutated or forged: None."""
    assert kit.run(lambda p: p.tokens.session_of_id_token(kit.id_token)) == (
        kit.eservice.client_id,
        "sid-1",
    )
    hint = _changed(data, kit.id_token, forged_jwts(kit.id_token, lambda: _public_jwks(kit)))
    assert kit.run(lambda p: p.tokens.session_of_id_token(hint)) is None


# -- client assertions (private_key_jwt) -----------------------------------------------------


def _authenticate(kit: Kit, assertion: str, assertion_type: str = ASSERTION_TYPE) -> Any:
    return kit.run(
        lambda p: p.clients.authenticate(
            basic=None,
            form_client_id=None,
            assertion_type=assertion_type,
            assertion=assertion,
            audiences=[kit.token_endpoint],
        )
    )


def _department_jwks(kit: Kit) -> dict[str, Any]:
    assert kit.department.key is not None
    return {"keys": [kit.department.key.as_dict(private=False)]}


def test_client_assertion_original_authenticates(kit: Kit) -> None:
    assertion = kit.department.assertion(kit.token_endpoint)
    assert _authenticate(kit, assertion).id == kit.department.client_id


@budget("oidc")
@given(st.data())
def test_client_assertions_arbitrary_mutated_forged(kit: Kit, data: st.DataObject) -> None:
    original = kit.department.assertion(kit.token_endpoint)
    forged = st.one_of(
        forged_jwts(original, lambda: _department_jwks(kit)),
        st.just(kit.access_token),  # our own token is no client's assertion
    )
    assertion = _changed(data, original, forged)
    with pytest.raises((InvalidClient, InvalidRequest)):
        _authenticate(kit, assertion)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=9),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)


@budget("oidc")
@given(st.data())
def test_client_assertion_signed_claims_of_any_shape(kit: Kit, data: st.DataObject) -> None:
    """Signed by the client's own key (a client may be buggy or hostile) with any aud, exp and
    jti: InvalidClient, or accepted exactly when the claims are right."""
    assert kit.department.key is not None
    now = int(time.time())
    claims = {
        "iss": kit.department.client_id,
        "sub": kit.department.client_id,
        "aud": data.draw(
            st.one_of(st.just(kit.token_endpoint), json_values, st.lists(json_values, max_size=3))
        ),
        "exp": data.draw(st.one_of(st.just(now + 60), st.integers(), json_values)),
        "jti": data.draw(st.one_of(st.just(uuid.uuid4().hex), json_values)),
    }
    assertion = jwt.encode(
        {"alg": "RS256", "kid": kit.department.key.kid}, claims, kit.department.key
    )
    try:
        client = _authenticate(kit, assertion)
    except InvalidClient:
        return
    aud = claims["aud"]
    assert client.id == kit.department.client_id
    assert aud == kit.token_endpoint or (isinstance(aud, list) and kit.token_endpoint in aud)
    assert isinstance(claims["exp"], int)
    assert now < claims["exp"] <= now + 300 + 5
    assert isinstance(claims["jti"], str)
    assert claims["jti"]


# -- DPoP proofs -----------------------------------------------------------------------------

DPOP_KEY = ECKey.generate_key("P-256")
DPOP_RSA = RSAKey.generate_key(2048)
METHOD = "POST"


def _dpop_url(kit: Kit) -> str:
    return kit.token_endpoint


def _proof(kit: Kit, **claims: Any) -> str:
    base = {"jti": uuid.uuid4().hex, "htm": METHOD, "htu": _dpop_url(kit), "iat": int(time.time())}
    header = {"alg": "ES256", "typ": "dpop+jwt", "jwk": DPOP_KEY.as_dict(private=False)}
    return jws.serialize_compact(header, json.dumps({**base, **claims}).encode(), DPOP_KEY)


def _verify_dpop(kit: Kit, proof: str) -> str:
    return kit.run(lambda p: p.dpop.verify(proof, method=METHOD, url=_dpop_url(kit)))


def test_dpop_original_verifies(kit: Kit) -> None:
    assert _verify_dpop(kit, _proof(kit)) == DPOP_KEY.thumbprint()


@st.composite
def dpop_forgeries(draw: st.DrawFn, original: str) -> str:
    """A private key in the header, alg none, HS256 keyed with the header's public key, or a
    header key that did not sign."""
    header64, payload64, signature64 = original.split(".")
    header = json.loads(unb64url(header64))
    kind = draw(st.sampled_from(["private", "none", "hs256", "other-key", "rsa-as-ec"]))
    if kind == "private":
        header["jwk"] = DPOP_KEY.as_dict(private=True)
    elif kind in ("none", "hs256"):
        header["alg"] = "none" if kind == "none" else "HS256"
    elif kind == "other-key":
        header["jwk"] = ECKey.generate_key("P-256").as_dict(private=False)
    else:
        header["jwk"] = DPOP_RSA.as_dict(private=False)
    signing_input = f"{b64url(json.dumps(header).encode())}.{payload64}"
    if kind == "none":
        return signing_input + "."
    if kind == "hs256":
        return f"{signing_input}.{_hs256(json.dumps(header['jwk']).encode(), signing_input)}"
    return f"{signing_input}.{signature64}"


@budget("oidc")
@given(st.data())
def test_dpop_arbitrary_mutated_forged(kit: Kit, data: st.DataObject) -> None:
    original = _proof(kit)
    proof = _changed(data, original, dpop_forgeries(original))
    with pytest.raises(InvalidDpopProof):
        _verify_dpop(kit, proof)


@budget("oidc")
@given(st.data())
def test_dpop_signed_claims_of_any_shape(kit: Kit, data: st.DataObject) -> None:
    """Signed by the sender's own key, so every claim is the sender's to choose: any htm, htu,
    iat, jti and ath give InvalidDpopProof, or the key's thumbprint when they are right."""
    now = int(time.time())
    claims = {
        "htm": data.draw(st.one_of(st.just(METHOD), json_values)),
        "htu": data.draw(
            st.one_of(
                st.just(_dpop_url(kit)),
                json_values,
                st.sampled_from(["http://[", "https://[::1", "//x:99999"]),
                st.text(max_size=30),
            )
        ),
        "iat": data.draw(
            st.one_of(
                st.just(now), st.integers(), st.sampled_from([10**400, -(10**400)]), json_values
            )
        ),
        "jti": data.draw(st.one_of(st.just(uuid.uuid4().hex), json_values)),
        "nested": data.draw(
            st.one_of(st.none(), json_values, st.just(json.loads("[" * 50 + "]" * 50)))
        ),
    }
    try:
        thumbprint = _verify_dpop(kit, _proof(kit, **claims))
    except InvalidDpopProof:
        return
    assert thumbprint == DPOP_KEY.thumbprint()
    assert claims["htm"] == METHOD
    assert isinstance(claims["iat"], int)
    assert abs(now - claims["iat"]) <= 60 + 5
    assert isinstance(claims["jti"], str)
    assert 8 <= len(claims["jti"]) <= 128


# -- authorization requests ------------------------------------------------------------------

PARAMETERS = [
    "response_type",
    "response_mode",
    "scope",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "acr_values",
    "state",
    "nonce",
    "dpop_jkt",
    "request",
    "request_uri",
    "claims",
    "login_hint",
    "id_token_hint",
]
GOOD = {
    "response_type": "code",
    "scope": "openid profile",
    "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    "code_challenge_method": "S256",
}
param_values = st.one_of(
    ANY_TEXT,
    st.sampled_from(
        [
            "code",
            "query",
            "openid",
            "S256",
            "none",
            "login consent",
            "0",
            "\u00b2",
            "\u0661\u0662",
            "9" * 5000,
            "-1",
            "1e3",
            " 60",
        ]
    ),
)


@budget("oidc")
@given(st.dictionaries(st.sampled_from(PARAMETERS), param_values, max_size=6), st.booleans())
def test_authorization_requests(kit: Kit, changes: dict[str, str], keep_good: bool) -> None:
    """Any parameters for a known client and redirect URI: an AuthorizationRequest, or an
    error for the client (ErrorRedirect) carrying an OAuthError; a request object is refused."""
    params = {
        "client_id": kit.eservice.client_id,
        "redirect_uri": kit.eservice.redirect_uri,
        **(GOOD if keep_good else {}),
        **changes,
    }
    try:
        parsed = kit.run(lambda p: p.authorizer.parse(params))
    except ErrorRedirect as exc:  # either outcome is valid here; the refusal's shape is checked
        assert isinstance(exc.error, OAuthError)  # noqa: PT017
        assert exc.redirect_uri == kit.eservice.redirect_uri  # noqa: PT017
        return
    assert isinstance(parsed, AuthorizationRequest)
    assert "request" not in params
    assert params["response_type"] == "code"
    assert "openid" in parsed.scopes
    assert parsed.max_age is None or parsed.max_age == int(params["max_age"], 10) >= 0
    assert AuthorizationRequest.from_json(parsed.to_json()) == parsed


@budget("oidc")
@given(
    st.one_of(
        st.text(st.characters(categories=["Nd", "No"]), max_size=12),
        st.integers(0, 10**12).map(str),
        st.sampled_from(["\u00b2", "9" * 5000]),
        ANY_TEXT,
    )
)
def test_authorization_max_age(kit: Kit, max_age: str) -> None:
    """max_age, any digits of any script: an ErrorRedirect, or the seconds it says in ASCII.
    Was a ValueError for "\u00b2" (isdigit, but not int) and for 4,301 digits."""
    params = {
        "client_id": kit.eservice.client_id,
        "redirect_uri": kit.eservice.redirect_uri,
        **GOOD,
        "max_age": max_age,
    }
    try:
        parsed = kit.run(lambda p: p.authorizer.parse(params))
    except ErrorRedirect as exc:  # either outcome is valid here; the refusal's kind is checked
        assert isinstance(exc.error, InvalidRequest)  # noqa: PT017
        assert not re.fullmatch(r"[0-9]{1,10}", max_age)
        return
    assert parsed.max_age == int(max_age)
    assert re.fullmatch(r"[0-9]{1,10}", max_age)


@budget("oidc")
@given(st.dictionaries(st.sampled_from(["client_id", "redirect_uri", "request_uri"]), param_values))
def test_authorization_untrusted_and_pushed(kit: Kit, params: dict[str, str]) -> None:
    """An unknown client or redirect, or a request_uri nobody pushed: UntrustedRedirect."""
    with pytest.raises((UntrustedRedirect, ErrorRedirect)):
        kit.run(lambda p: p.authorizer.parse(params))
    pushed = {**params, "client_id": kit.eservice.client_id}
    pushed.setdefault("request_uri", PAR_PREFIX + "nothing-pushed")
    with pytest.raises(UntrustedRedirect):
        kit.run(lambda p: p.authorizer.pushed(pushed))


# -- bugs the properties found, pinned -------------------------------------------------------


def _with_header(token: str, **changes: Any) -> str:
    header64, payload64, signature64 = token.split(".")
    header = {**json.loads(unb64url(header64)), **changes}
    return f"{b64url(json.dumps(header).encode())}.{payload64}.{signature64}"


@pytest.mark.parametrize("crit", [None, 5, [5], [[1]]])
def test_a_crit_that_is_not_a_list_of_strings_is_refused(kit: Kit, crit: Any) -> None:
    """Was a TypeError out of joserfc (a 500) for every token the provider reads back."""
    with pytest.raises(InvalidToken):
        _verify_access(kit, _with_header(kit.access_token, crit=crit))
    assert (
        kit.run(lambda p: p.tokens.session_of_id_token(_with_header(kit.id_token, crit=crit)))
        is None
    )
    assertion = _with_header(kit.department.assertion(kit.token_endpoint), crit=crit)
    with pytest.raises(InvalidClient):
        _authenticate(kit, assertion)
    with pytest.raises(InvalidDpopProof):
        _verify_dpop(kit, _with_header(_proof(kit), crit=crit))


def test_introspection_of_a_lone_surrogate(kit: Kit) -> None:
    """Was a UnicodeEncodeError: the token is hashed to find its row."""
    client = kit.run(lambda p: p.clients.get(kit.department.client_id))
    assert client is not None
    assert kit.run(lambda p: p.tokens.introspect(client, "\ud800")) == {"active": False}


@pytest.mark.parametrize(
    "claims",
    [{"htu": "http://["}, {"iat": 10**400}, {"iat": -(10**400)}],
    ids=["htu-not-a-url", "iat-huge", "iat-huge-negative"],
)
def test_dpop_claims_the_sender_chose(kit: Kit, claims: dict[str, Any]) -> None:
    """Were a ValueError (urlsplit) and an OverflowError (float - huge int)."""
    with pytest.raises(InvalidDpopProof):
        _verify_dpop(kit, _proof(kit, **claims))


def test_dpop_claims_nested_past_the_parser_depth(kit: Kit) -> None:
    """Was a RecursionError: the sender signs whatever it likes with its own key."""
    header = {"alg": "ES256", "typ": "dpop+jwt", "jwk": DPOP_KEY.as_dict(private=False)}
    payload = b'{"htm":"POST","x":' + DEEP.encode() + b"}"
    with pytest.raises(InvalidDpopProof):
        _verify_dpop(kit, jws.serialize_compact(header, payload, DPOP_KEY))


@pytest.mark.parametrize("aud", [[{}], [[1]], {"a": 1}])
def test_client_assertion_audience_of_unhashables(kit: Kit, aud: Any) -> None:
    """Was a TypeError: set() of an `aud` holding dicts or lists."""
    with pytest.raises(InvalidClient):
        _authenticate(kit, kit.department.assertion(kit.token_endpoint, aud=aud))


@pytest.mark.parametrize("max_age", ["\u00b2", "9" * 5000])
def test_max_age_that_int_cannot_read(kit: Kit, max_age: str) -> None:
    """Was a ValueError: "\u00b2" passes str.isdigit, and int() stops at 4,300 digits."""
    params = {
        "client_id": kit.eservice.client_id,
        "redirect_uri": kit.eservice.redirect_uri,
        **GOOD,
        "max_age": max_age,
    }
    with pytest.raises(ErrorRedirect):
        kit.run(lambda p: p.authorizer.parse(params))
