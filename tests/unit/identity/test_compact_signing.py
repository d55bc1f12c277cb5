"""Tokens signed with `cryptography` directly (identity.oidc.compact) are the JWTs joserfc made:
the same bytes where the algorithm is deterministic, and verified by joserfc either way."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import ECKey, KeySet, RSAKey

from identity.oidc.compact import sign_compact

CLAIMS: dict[str, Any] = {
    "iss": "https://id.example.pk",
    "sub": "citizen-1",
    "scope": "openid profile",
    "name": "علی خان",  # non-ASCII: joserfc writes claims as UTF-8, not \\u escapes
    "amr": ["pwd", "otp"],
    "cnf": {"jkt": "abc"},
    "iat": 1_700_000_000,
    "exp": 1_700_000_600,
}


def _segment(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def test_rs256_is_byte_for_byte_what_joserfc_signs() -> None:
    key = RSAKey.generate_key(2048, private=True)
    header = {"alg": "RS256", "kid": "k1", "typ": "JWT"}
    ours = sign_compact({"typ": "JWT", "alg": "RS256", "kid": "k1"}, CLAIMS, key.private_key)  # type: ignore[arg-type]
    theirs = jwt.encode(header, dict(CLAIMS), key, algorithms=["RS256"])
    assert ours == theirs


@pytest.mark.parametrize("typ", ["at+jwt", "JWT", "logout+jwt"])
def test_es256_verifies_with_joserfc_and_carries_the_same_header_and_claims(typ: str) -> None:
    key = ECKey.generate_key("P-256", private=True)
    header = {"typ": typ, "alg": "ES256", "kid": "k2"}
    ours = sign_compact(header, CLAIMS, key.private_key)  # type: ignore[arg-type]
    theirs = jwt.encode({"alg": "ES256", "kid": "k2", "typ": typ}, dict(CLAIMS), key)
    # ECDSA signatures are randomised; everything before them is the same bytes.
    assert ours.rsplit(".", 1)[0] == theirs.rsplit(".", 1)[0]
    assert len(base64.urlsafe_b64decode(ours.rsplit(".", 1)[1] + "==")) == 64  # raw r||s
    public = KeySet.import_key_set({"keys": [{**key.as_dict(private=False), "kid": "k2"}]})
    decoded = jwt.decode(ours, public, algorithms=["ES256"])
    assert decoded.claims == CLAIMS
    assert decoded.header == header
    assert _segment(ours, 0) == header


def test_a_token_signed_by_one_key_does_not_verify_under_another() -> None:
    signer = ECKey.generate_key("P-256", private=True)
    other = ECKey.generate_key("P-256", private=True)
    token = sign_compact({"alg": "ES256"}, CLAIMS, signer.private_key)  # type: ignore[arg-type]
    with pytest.raises(BadSignatureError):
        jwt.decode(token, other, algorithms=["ES256"])


def test_a_key_that_does_not_fit_the_algorithm_is_refused() -> None:
    rsa_key = RSAKey.generate_key(2048, private=True).private_key
    p384 = ec.generate_private_key(ec.SECP384R1())
    p256 = ECKey.generate_key("P-256", private=True).private_key
    with pytest.raises(ValueError, match="P-256"):
        sign_compact({"alg": "ES256"}, CLAIMS, rsa_key)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="P-256"):
        sign_compact({"alg": "ES256"}, CLAIMS, p384)
    with pytest.raises(ValueError, match="RSA"):
        sign_compact({"alg": "RS256"}, CLAIMS, p256)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no signing algorithm"):
        sign_compact({"alg": "none"}, CLAIMS, p256)  # type: ignore[arg-type]
