"""DPoP proofs (RFC 9449): tokens bound to a key the client holds, so a stolen token is useless.

The client signs a small JWT per request with its own key and puts the public key in the
header; we check it (section 4.3) and bind the token to the key's thumbprint (`cnf.jkt`).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey
from joserfc.jws import extract_compact
from sqlalchemy.orm import Session

from identity.oidc.errors import InvalidDpopProof
from identity.oidc.replay import spend_once

ALGORITHMS = ("ES256", "RS256", "PS256", "EdDSA")
MAX_AGE_SECONDS = 60


def _normalise_htu(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, "", ""))


def _import_public(jwk: dict[str, object]) -> ECKey | RSAKey | OKPKey:
    kty = jwk.get("kty")
    if kty == "EC":
        return ECKey.import_key(jwk)  # type: ignore[arg-type]
    if kty == "RSA":
        return RSAKey.import_key(jwk)  # type: ignore[arg-type]
    if kty == "OKP":
        return OKPKey.import_key(jwk)  # type: ignore[arg-type]
    raise KeyError(kty)


def access_token_hash(token: str) -> str:
    digest = hashlib.sha256(token.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class DpopVerifier:
    def __init__(self, session: Session, clock: Callable[[], datetime]) -> None:
        self._db = session
        self._clock = clock

    def verify(self, proof: str, *, method: str, url: str, access_token: str | None = None) -> str:
        """Check a DPoP proof for this request; return the thumbprint of its key."""
        # (1) One well-formed JWS whose header carries a public key and the dpop+jwt type.
        try:
            header = extract_compact(proof.encode()).headers()
        except (JoseError, ValueError, UnicodeError):
            raise InvalidDpopProof("the DPoP proof is not a JWS") from None
        if header.get("typ") != "dpop+jwt" or header.get("alg") not in ALGORITHMS:
            raise InvalidDpopProof("the DPoP proof needs typ dpop+jwt and an asymmetric alg")
        jwk = header.get("jwk")
        if not isinstance(jwk, dict) or any(k in jwk for k in ("d", "p", "q", "k")):
            raise InvalidDpopProof("the DPoP proof must carry a public key, and only that")
        try:
            key = _import_public(jwk)
        except (JoseError, ValueError, TypeError, KeyError):
            raise InvalidDpopProof("the DPoP proof's key does not parse") from None
        # (2) Its signature, by that key. The sender chose the key, so the claims are the
        # sender's too: joserfc raises TypeError on a `crit` that is not a list of strings,
        # and RecursionError on claims nested past the JSON parser's depth.
        try:
            token = jwt.decode(proof, key, algorithms=ALGORITHMS)
        except (JoseError, ValueError, TypeError, RecursionError):
            raise InvalidDpopProof("the DPoP proof's signature does not verify") from None
        claims = token.claims
        # (3) For this request: method and URL (without query and fragment).
        try:
            htu = _normalise_htu(str(claims.get("htu", "")))
        except ValueError:  # urlsplit: "http://[" is no URL
            raise InvalidDpopProof("the DPoP proof's htu is not a URL") from None
        if claims.get("htm") != method or htu != _normalise_htu(url):
            raise InvalidDpopProof("the DPoP proof is for another request")
        # (4) Fresh, and used once. Compared, not subtracted: `now - iat` overflows for an
        # iat past float's range, while Python compares an int with a float exactly.
        iat = claims.get("iat")
        now = self._clock().timestamp()
        if not isinstance(iat, int) or not now - MAX_AGE_SECONDS <= iat <= now + MAX_AGE_SECONDS:
            raise InvalidDpopProof("the DPoP proof is not fresh")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 8 <= len(jti) <= 128:
            raise InvalidDpopProof("the DPoP proof needs a jti")
        # (5) With an access token, the proof must name it (ath).
        if access_token is not None and claims.get("ath") != access_token_hash(access_token):
            raise InvalidDpopProof("the DPoP proof does not name this access token")
        thumbprint: str = key.thumbprint()
        until = int(iat) + MAX_AGE_SECONDS
        if not spend_once(self._db, f"dpop:{thumbprint}:{jti}", until=until, now=self._clock()):
            raise InvalidDpopProof("the DPoP proof was already used")
        return thumbprint
