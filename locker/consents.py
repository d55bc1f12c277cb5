"""Signed statements the exchange hands to departments: consent artifacts and legal grants.

A consent artifact is the citizen's terms as a compact JWS, so a department can show any
auditor exactly what it was allowed without asking this service: who may fetch what, why,
for how long and how often. Status and usage change and are not signed here (the row that
holds them is sealed: `audit.row_seal`); a change of terms is a new consent, never a re-signed
one. A legal grant is a short-lived JWS naming the documents
an officer may download under a recorded legal basis, so no table of grants is needed.

Ed25519 signatures, under the algorithm name RFC 9864 gives them ("Ed25519"; the older
polymorphic "EdDSA" is deprecated there, and joserfc warns on it). The key id is the key's
RFC 7638 thumbprint, so it is the same wherever the key is loaded. The key can be rotated: the
newest version signs, and every earlier one stays in the JWK Set and verifies what it signed,
picked by the `kid` each statement's header carries.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OKPKey

from locker.errors import LockerError

ALGORITHM = "Ed25519"
CONSENT_TYPE = "shanakht-consent+jws"
GRANT_TYPE = "shanakht-legal-grant+jwt"
ARTIFACT_VERSION = 1


class SignatureInvalid(LockerError):
    """A consent artifact or grant that does not verify, is of another type, or has expired."""


def iso(moment: datetime) -> str:
    """A time as the artifacts carry it: RFC 3339 in UTC, whole seconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def whole_seconds(moment: datetime) -> datetime:
    """`moment` without its microseconds, so what is stored is exactly what is signed."""
    return moment.astimezone(UTC).replace(microsecond=0)


class ConsentSigner:
    """Signs the exchange's statements with one Ed25519 key, and checks them under it or under
    any of the `previous` versions of it (public keys: they only verify)."""

    def __init__(self, key: Ed25519PrivateKey, previous: Sequence[Ed25519PublicKey] = ()) -> None:
        self._key = OKPKey.import_key(key)
        self.kid = self._key.thumbprint()
        self._previous = [OKPKey.import_key(old) for old in previous]

    def jwks(self) -> dict[str, Any]:
        """Every version's public key as a JWK Set, the signing one first, for departments to
        verify artifacts with, whichever version signed them."""
        return {"keys": [_public_jwk(key) for key in (self._key, *self._previous)]}

    def sign(self, claims: dict[str, Any], typ: str) -> str:
        header = {"alg": ALGORITHM, "kid": self.kid, "typ": typ}
        payload = json.dumps(claims, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return jws.serialize_compact(header, payload.encode(), self._key, algorithms=[ALGORITHM])

    def open(self, token: str, typ: str, *, now: datetime | None = None) -> dict[str, Any]:
        """The claims of `token` if this key signed it as a `typ` and, when it has an `exp`,
        it has not passed `now`; SignatureInvalid otherwise. The type is checked so that an
        artifact can never be presented as a grant, or the other way round."""
        keys = KeySet.import_key_set(self.jwks())  # type: ignore[arg-type]  # a JWKS we made
        try:
            signed = jws.deserialize_compact(token, keys, algorithms=[ALGORITHM])
            claims = json.loads(signed.payload)
        except (JoseError, ValueError, TypeError):
            raise SignatureInvalid("the signature does not verify") from None
        if signed.headers().get("typ") != typ or not isinstance(claims, dict):
            raise SignatureInvalid("that is not the kind of statement expected here")
        expires = claims.get("exp")
        if expires is not None and (
            not isinstance(expires, int) or now is None or now.timestamp() >= expires
        ):
            raise SignatureInvalid("it has expired")
        return claims


def _public_jwk(key: OKPKey) -> dict[str, Any]:
    return {**key.as_dict(private=False), "kid": key.thumbprint(), "alg": ALGORITHM, "use": "sig"}
