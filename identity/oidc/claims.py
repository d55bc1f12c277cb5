"""What an e-service learns about a citizen: the claims each scope releases, and `sub`.

`sub` is pairwise: an HMAC of the citizen's id under a provider key and the client's id, so
two e-services cannot join their records on it (OpenID Connect Core 8.1). The CNIC itself is a
claim of its own scope, released only to clients registered for it and only with consent.
These are verified attributes: an e-service reads them instead of asking the citizen again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

from identity.accounts import Account
from identity.cnic import format_cnic

SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "profile": ("name", "father_or_husband_name"),
    "cnic": ("cnic",),
    "birthdate": ("birthdate",),
    "gender": ("gender",),
    "address": ("address",),
    "phone": ("phone_number", "phone_number_verified"),
    "roles": ("roles",),
}


def pairwise_subject(pairwise_key: bytes, client_id: str, citizen_id: str) -> str:
    mac = hmac.new(pairwise_key, f"{client_id}\x00{citizen_id}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def released_claims(
    account: Account, scopes: Iterable[str], roles: list[dict[str, str]]
) -> dict[str, Any]:
    """The claims the given (granted) scopes release, from NADRA-verified data only."""
    scopes = set(scopes)
    p = account.profile
    claims: dict[str, Any] = {}
    if "profile" in scopes:
        claims["name"] = p.full_name
        claims["father_or_husband_name"] = p.father_or_husband_name
    if "cnic" in scopes:
        claims["cnic"] = format_cnic(p.cnic)
    if "birthdate" in scopes:
        claims["birthdate"] = p.date_of_birth.isoformat()
    if "gender" in scopes:
        claims["gender"] = p.gender.value
    if "address" in scopes:
        a = p.address
        claims["address"] = {
            "formatted": f"{a.line}, {a.city}, {a.district}, {a.province}, Pakistan",
            "street_address": a.line,
            "locality": a.city,
            "region": a.province,
            "country": "PK",
        }
    if "phone" in scopes:
        claims["phone_number"] = account.mobile
        claims["phone_number_verified"] = True
    if "roles" in scopes:
        claims["roles"] = roles
    return claims
