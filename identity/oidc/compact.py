"""JWS compact serialization (RFC 7515 7.1) of a JWT we sign, straight with `cryptography`.

Every token grant signs an access token. joserfc's `jwt.encode` spent about six times the
signature's own cost around it (registry checks, key guessing, header objects); this composes
the same primitives directly: the header and claims as compact JSON, base64url without padding,
and the signature made by `cryptography` over `header.payload`. For ES256 the DER signature
becomes the raw r||s of RFC 7518 3.4; RS256 is RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 3.3).

The bytes are the ones joserfc made for the same header and claims (the JSON written the same
way, the header's ASCII-only and the claims' UTF-8), so a verifier sees no difference; joserfc
still verifies every token presented back to us. Nothing here is a new primitive.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

# RFC 7518 3.4: ES256 is P-256 with SHA-256, its signature r and s as 32 bytes each.
_ES256_CURVE = "secp256r1"
_ES256_HALF = 32

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def sign_compact(header: dict[str, Any], claims: dict[str, Any], key: PrivateKey) -> str:
    """`header.claims.signature`, signed with `key` by the algorithm `header["alg"]` names
    (ES256 or RS256); a key of the wrong kind for it is refused, never used."""
    signing_input = (
        _b64(json.dumps(header, ensure_ascii=True, separators=(",", ":")).encode("ascii"))
        + b"."
        + _b64(json.dumps(claims, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    )
    alg = header.get("alg")
    if alg == "ES256":
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != _ES256_CURVE:
            raise ValueError("ES256 signs with a P-256 key")
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(_ES256_HALF, "big") + s.to_bytes(_ES256_HALF, "big")
    elif alg == "RS256":
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("RS256 signs with an RSA key")
        signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    else:
        raise ValueError(f"no signing algorithm {alg!r}")
    return (signing_input + b"." + _b64(signature)).decode("ascii")
