"""The signed trust list: round trips, the documented format, every refusal, and outside checks.

Outside check: the JWS is verified with `cryptography` alone (split, base64url, r || s to DER),
and a JWS assembled by hand the same way is loaded, so joserfc is checked in both directions.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given
from hypothesis import strategies as st

from signing.errors import SigningError
from signing.pki.ca import make_issuing, make_root, name
from signing.pki.profiles import DEPARTMENT_SEAL, OCSP_RESPONDER, QR_SIGNER, Profile
from signing.qr import kid_for
from signing.trustlist import (
    MAX_DOCUMENT_BYTES,
    TYP,
    TrustedSigner,
    TrustList,
    TrustListInvalid,
    canonical_payload,
    load_trust_list,
    sign_trust_list,
)
from tests.unit.signing.pki_kit import NOW, Hierarchy

T0 = NOW.replace(microsecond=0)
DAY = timedelta(days=1)
H = Hierarchy.make()
OTHER = Hierarchy.make()


def _signer(
    profile: Profile = QR_SIGNER, *, hierarchy: Hierarchy = H, now: datetime = NOW
) -> x509.Certificate:
    return hierarchy.issue(profile, f"{profile.name} {id(object())}", now=now)


SIGNERS = tuple(TrustedSigner.of(_signer()) for _ in range(3))


def _trust(
    *signers: TrustedSigner,
    sequence: int = 7,
    issued_at: datetime = T0,
    next_update: datetime = T0 + DAY,
) -> TrustList:
    return TrustList(sequence, issued_at, next_update, "PK-PB", signers or SIGNERS)


def _sign(trust: TrustList, hierarchy: Hierarchy = H) -> bytes:
    return sign_trust_list(
        trust, key=hierarchy.issuing_key, certificate=hierarchy.issuing, chain=[hierarchy.root]
    )


def _load(document: bytes, **kwargs: Any) -> TrustList:
    return load_trust_list(document, **{"root": H.root, "now": NOW, **kwargs})


DOCUMENT = _sign(_trust())


# A JWS made with `cryptography` alone: the independent implementation.


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _unb64url(segment: bytes) -> bytes:
    return base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))


def _der64(certificate: x509.Certificate) -> str:
    return base64.b64encode(certificate.public_bytes(Encoding.DER)).decode()


def _header(**changes: object) -> dict[str, object]:
    header: dict[str, object] = {"alg": "ES256", "typ": TYP, "x5c": [_der64(H.issuing)]}
    header.update(changes)
    return {k: v for k, v in header.items() if v is not None}


def _by_hand(
    payload: bytes,
    header: dict[str, object] | None = None,
    key: ec.EllipticCurvePrivateKey = H.issuing_key,
) -> bytes:
    signing_input = _b64url(json.dumps(header or _header()).encode()) + b"." + _b64url(payload)
    r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    return signing_input + b"." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def _payload(**changes: object) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(canonical_payload(_trust()))
    body.update(changes)
    return body


def _dumps(body: object) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


# Round trips and the format.


def test_round_trip() -> None:
    trust = _trust()
    loaded = _load(_sign(trust))
    assert loaded == trust
    assert loaded.issued_at.tzinfo is UTC
    assert not loaded.is_stale(NOW)
    for signer in trust.signers:
        assert loaded.signer(kid_for(signer.certificate.public_bytes(Encoding.DER))) == signer
    assert loaded.signer(bytes(8)) is None


def test_a_revoked_signer_round_trips() -> None:
    revoked = TrustedSigner.of(
        _signer(), status="revoked", revoked_at=T0 - DAY, reason="key compromise"
    )
    trust = _trust(SIGNERS[0], revoked)
    loaded = _load(_sign(trust))
    assert loaded == trust
    assert loaded.signer(revoked.kid) == revoked
    assert loaded.signers[1].revoked


def test_the_document_is_the_documented_jws() -> None:
    header_segment, payload_segment, signature_segment = DOCUMENT.split(b".")
    header = json.loads(_unb64url(header_segment))
    assert header == {"alg": "ES256", "typ": "shanakht-trust-list+json", "x5c": header["x5c"]}
    assert [base64.b64decode(c, validate=True) for c in header["x5c"]] == [
        H.issuing.public_bytes(Encoding.DER),
        H.root.public_bytes(Encoding.DER),
    ]
    payload = _unb64url(payload_segment)
    body = json.loads(payload)
    assert payload == json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    assert set(body) == {"sequence", "issued_at", "next_update", "issuer", "signers"}
    assert body["sequence"] == 7
    assert body["issued_at"] == T0.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert body["signers"][0] == {
        "certificate": _der64(SIGNERS[0].certificate),
        "status": "good",
        "revoked_at": None,
        "reason": None,
    }
    assert len(_unb64url(signature_segment)) == 64  # r || s, not DER


def test_another_implementation_verifies_the_signature() -> None:
    header_segment, payload_segment, signature_segment = DOCUMENT.split(b".")
    header = json.loads(_unb64url(header_segment))
    leaf = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    leaf.verify_directly_issued_by(
        x509.load_der_x509_certificate(base64.b64decode(header["x5c"][1]))
    )
    raw = _unb64url(signature_segment)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public = leaf.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(der, header_segment + b"." + payload_segment, ec.ECDSA(hashes.SHA256()))


def test_a_list_signed_by_another_implementation_loads() -> None:
    trust = _trust()
    assert _load(_by_hand(canonical_payload(trust))) == trust


def test_a_list_of_fifty_signers_loads() -> None:
    trust = _trust(*(TrustedSigner.of(_signer()) for _ in range(50)))
    assert len(_load(_sign(trust)).signers) == 50


def test_a_stale_list_still_loads_and_says_so() -> None:
    trust = _trust(issued_at=T0 - 3 * DAY, next_update=T0 - DAY)
    loaded = _load(_sign(trust))
    assert loaded.is_stale(NOW)
    assert not loaded.is_stale(T0 - 2 * DAY)


def test_the_list_may_be_issued_a_little_in_the_future() -> None:
    trust = _trust(issued_at=T0 + timedelta(minutes=4))
    assert _load(_sign(trust)) == trust


def _hierarchy_at(moment: datetime) -> Hierarchy:
    """A hierarchy built at `moment`, so its certificates can have expired by NOW."""
    root_key = ec.generate_private_key(ec.SECP384R1())
    root = make_root(name("Old Root CA"), root_key, moment)
    key = ec.generate_private_key(ec.SECP256R1())
    return Hierarchy(
        root, make_issuing(name("Old Issuing CA"), key.public_key(), root, root_key, moment), key
    )


def test_an_expired_signer_stays_on_the_list() -> None:
    old = _hierarchy_at(NOW - timedelta(days=3 * 365))
    expired = TrustedSigner.of(
        old.issue(QR_SIGNER, "expired", now=old.issuing.not_valid_before_utc)
    )
    assert expired.certificate.not_valid_after_utc < NOW
    trust = _trust(expired)
    assert load_trust_list(_sign(trust, old), root=old.root, now=NOW) == trust


# Refusals.


def _refused(document: bytes, match: str | None = None, **kwargs: Any) -> TrustListInvalid:
    with pytest.raises(TrustListInvalid, match=match) as caught:
        _load(document, **kwargs)
    assert isinstance(caught.value, SigningError)
    return caught.value


@pytest.mark.parametrize("segment", [0, 1, 2])
@pytest.mark.parametrize("where", [0.1, 0.5, -2])
def test_a_tampered_character(segment: int, where: float) -> None:
    parts = DOCUMENT.split(b".")
    part = bytearray(parts[segment])
    at = int(len(part) * where) if where > 0 else len(part) + int(where)
    part[at] = ord("A") if part[at] != ord("A") else ord("B")
    parts[segment] = bytes(part)
    _refused(b".".join(parts))


def test_a_changed_payload_keeps_no_signature() -> None:
    header, _, signature = DOCUMENT.split(b".")
    forged = _payload(sequence=8)
    _refused(header + b"." + _b64url(_dumps(forged)) + b"." + signature, "signature")


def test_rollback_is_refused() -> None:
    previous = _load(DOCUMENT)
    older = _sign(_trust(sequence=6))
    _refused(older, "rollback", previous=previous)
    assert _load(DOCUMENT, previous=previous) == previous  # the same list again is fine
    assert _load(_sign(_trust(sequence=8)), previous=previous).sequence == 8


def test_two_lists_with_one_sequence_are_refused() -> None:
    previous = _load(DOCUMENT)
    _refused(_sign(_trust(SIGNERS[0], sequence=7)), "equivocates", previous=previous)


def test_the_wrong_root_is_refused() -> None:
    _refused(DOCUMENT, "pinned root", root=OTHER.root)


def test_a_signer_from_another_ca_is_refused() -> None:
    stranger = TrustedSigner.of(_signer(hierarchy=OTHER))
    error = _refused(_sign(_trust(SIGNERS[0], stranger)), stranger.kid.hex())
    assert "pinned root" in str(error)


@pytest.mark.parametrize("profile", [DEPARTMENT_SEAL, OCSP_RESPONDER])
def test_a_signer_of_another_profile_is_refused(profile: Profile) -> None:
    _refused(_sign(_trust(TrustedSigner.of(_signer(profile)))), "not a QR signer")


def test_a_list_signed_by_an_end_entity_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = H.issue(QR_SIGNER, "a QR signer signing a list", key=key)
    document = sign_trust_list(
        _trust(), key=key, certificate=certificate, chain=[H.issuing, H.root]
    )
    _refused(document, "not a CA")


def test_a_list_signed_by_another_key_under_our_x5c_is_refused() -> None:
    intruder = ec.generate_private_key(ec.SECP256R1())
    _refused(_by_hand(canonical_payload(_trust()), key=intruder), "signature")


def test_a_list_signed_under_an_expired_ca_is_refused() -> None:
    ancient = _hierarchy_at(NOW - timedelta(days=11 * 365))
    assert ancient.issuing.not_valid_after_utc < NOW
    signer = TrustedSigner.of(
        ancient.issue(QR_SIGNER, "old", now=ancient.issuing.not_valid_before_utc)
    )
    with pytest.raises(TrustListInvalid, match="pinned root"):
        load_trust_list(_sign(_trust(signer), ancient), root=ancient.root, now=NOW)


def test_a_list_from_the_future_is_refused() -> None:
    _refused(_sign(_trust(issued_at=T0 + timedelta(minutes=6))), "future")


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"a.b", id="two segments"),
        pytest.param(DOCUMENT + b".x", id="four segments"),
        pytest.param(b"\xff" + DOCUMENT[1:], id="not ascii"),
        pytest.param(DOCUMENT.replace(b".", b"..", 1), id="empty segment"),
        pytest.param(b"a" * (MAX_DOCUMENT_BYTES + 1), id="too big"),
        pytest.param(DOCUMENT.decode(), id="text, not bytes"),
    ],
)
def test_not_a_jws(document: Any) -> None:
    _refused(document)


@pytest.mark.parametrize(
    ("header", "match"),
    [
        ({"alg": "ES384"}, "ES256"),
        ({"alg": "none"}, "ES256"),
        ({"alg": "HS256"}, "ES256"),
        ({"typ": "JWT"}, "type"),
        ({"typ": None}, "exactly"),
        ({"kid": "1"}, "exactly"),
        ({"crit": ["b64"], "b64": False}, "exactly"),
        ({"x5c": None}, "exactly"),
        ({"x5c": []}, "x5c"),
        ({"x5c": "MIIB"}, "x5c"),
        ({"x5c": ["not base64!"]}, "x5c"),
        ({"x5c": [base64.b64encode(b"not a certificate").decode()]}, "x5c"),
        ({"x5c": [_der64(H.issuing)] * 5}, "x5c"),
    ],
)
def test_a_header_not_as_documented(header: dict[str, object], match: str) -> None:
    _refused(_by_hand(canonical_payload(_trust()), _header(**header)), match)


def test_a_header_with_a_duplicate_member() -> None:
    header = b'{"alg":"ES256","typ":"%s","alg":"ES256","x5c":["%s"]}' % (
        TYP.encode(),
        _der64(H.issuing).encode(),
    )
    signing_input = _b64url(header) + b"." + _b64url(canonical_payload(_trust()))
    r, s = decode_dss_signature(H.issuing_key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    document = signing_input + b"." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    _refused(document, "duplicate")


def _good_entry(**changes: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "certificate": _der64(SIGNERS[0].certificate),
        "status": "good",
        "revoked_at": None,
        "reason": None,
    }
    entry.update(changes)
    return entry


BAD_PAYLOADS: dict[str, bytes] = {
    "not JSON": b"{",
    "not UTF-8": b'{"issuer":"\xff"}',
    "an array": b"[]",
    "NaN": _dumps(_payload()).replace(b'"sequence":7', b'"sequence":NaN'),
    "a duplicate member": _dumps(_payload()).replace(b'"sequence":7', b'"sequence":7,"sequence":9'),
    "a member missing": _dumps({k: v for k, v in _payload().items() if k != "issuer"}),
    "an extra member": _dumps(_payload(extra=1)),
    "sequence as text": _dumps(_payload(sequence="7")),
    "sequence as bool": _dumps(_payload(sequence=True)),
    "sequence as float": _dumps(_payload(sequence=7.0)),
    "negative sequence": _dumps(_payload(sequence=-1)),
    "sequence past 2^53": _dumps(_payload(sequence=2**53)),
    "a time with an offset": _dumps(_payload(issued_at="2026-03-14T10:30:00+05:00")),
    "a time with fractions": _dumps(_payload(issued_at="2026-03-14T05:30:00.5Z")),
    "a date that is not": _dumps(_payload(issued_at="2026-02-30T05:30:00Z")),
    "next_update first": _dumps(_payload(next_update="2000-01-01T00:00:00Z")),
    "an empty issuer": _dumps(_payload(issuer="")),
    "a control character": _dumps(_payload(issuer="PK\nPB")),
    "signers not a list": _dumps(_payload(signers={})),
    "a signer not an object": _dumps(_payload(signers=["x"])),
    "a signer member extra": _dumps(_payload(signers=[_good_entry(kid="AQIDBAUGBwg=")])),
    "an unknown status": _dumps(_payload(signers=[_good_entry(status="suspended")])),
    "revoked without a time": _dumps(_payload(signers=[_good_entry(status="revoked")])),
    "good with a time": _dumps(_payload(signers=[_good_entry(revoked_at="2026-01-01T00:00:00Z")])),
    "good with a reason": _dumps(_payload(signers=[_good_entry(reason="none")])),
    "a PEM certificate": _dumps(
        _payload(
            signers=[
                _good_entry(certificate=SIGNERS[0].certificate.public_bytes(Encoding.PEM).decode())
            ]
        )
    ),
    "a signer twice": _dumps(_payload(signers=[_good_entry(), _good_entry()])),
}


@pytest.mark.parametrize("payload", [pytest.param(v, id=k) for k, v in BAD_PAYLOADS.items()])
def test_a_payload_not_as_documented(payload: bytes) -> None:
    _refused(_by_hand(payload))


def test_a_p384_signer_is_refused() -> None:
    certificate = H.issue(QR_SIGNER, "p384", key=ec.generate_private_key(ec.SECP384R1()))
    entry = _good_entry(certificate=_der64(certificate))
    _refused(_by_hand(_dumps(_payload(signers=[entry]))), "P-256")


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone"):
        _load(DOCUMENT, now=datetime(2026, 3, 14))


# The model refuses to be built wrong, and signing refuses a key that is not the certificate's.


def test_a_kid_is_computed_never_chosen() -> None:
    with pytest.raises(ValueError, match="kid"):
        TrustedSigner(bytes(8), SIGNERS[0].certificate, "good")


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"sequence": -1}, id="negative sequence"),
        pytest.param({"issued_at": datetime(2026, 3, 14)}, id="naive time"),
        pytest.param({"issued_at": T0.replace(microsecond=1)}, id="fractional second"),
        pytest.param({"next_update": T0}, id="next_update at issued_at"),
        pytest.param({"issuer": ""}, id="no issuer"),
        pytest.param({"signers": (SIGNERS[0], SIGNERS[0])}, id="a signer twice"),
        pytest.param({"signers": [SIGNERS[0]]}, id="a list, not a tuple"),
    ],
)
def test_an_invalid_trust_list_cannot_be_built(changes: dict[str, Any]) -> None:
    arguments: dict[str, Any] = {
        "sequence": 1,
        "issued_at": T0,
        "next_update": T0 + DAY,
        "issuer": "PK-PB",
        "signers": SIGNERS,
    }
    with pytest.raises(ValueError):  # noqa: PT011  (each has its own message)
        TrustList(**{**arguments, **changes})


def test_signing_refuses_a_key_that_is_not_the_certificates() -> None:
    with pytest.raises(ValueError, match="not the certificate's"):
        sign_trust_list(_trust(), key=OTHER.issuing_key, certificate=H.issuing, chain=[])
    with pytest.raises(ValueError, match="P-256"):
        sign_trust_list(
            _trust(), key=ec.generate_private_key(ec.SECP384R1()), certificate=H.root, chain=[]
        )


# Properties.


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    """The real document with one byte changed, bytes cut off, or a byte inserted."""
    at = draw(st.integers(min_value=0, max_value=len(DOCUMENT) - 1))
    kind = draw(st.sampled_from(["change", "cut", "insert"]))
    if kind == "cut":
        return DOCUMENT[:at]
    byte = draw(st.integers(min_value=0, max_value=255).filter(lambda b: b != DOCUMENT[at]))
    tail = DOCUMENT[at:] if kind == "insert" else DOCUMENT[at + 1 :]
    return DOCUMENT[:at] + bytes([byte]) + tail


@given(damaged() | st.binary(max_size=300))
def test_any_damage_is_refused_and_nothing_else_escapes(document: bytes) -> None:
    with pytest.raises(TrustListInvalid):
        _load(document)
