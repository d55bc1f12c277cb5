"""The signed QR codec: round trips, every way verification refuses, and checks from outside.

Outside checks: pycose (another COSE implementation) verifies our signatures and signs codes we
verify, and zbarimg (another QR decoder) reads a rendered transfer order back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import shutil
import struct
import subprocess
import zlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import base45
import cbor2
import pytest
import qrcode
import qrcode.util
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st
from pycose.algorithms import Es256
from pycose.headers import KID as KID_HEADER
from pycose.headers import Algorithm
from pycose.keys import EC2Key
from pycose.keys.curves import P256
from pycose.messages import Sign1Message

from signing.qr import (
    PREFIX,
    MalformedPayload,
    PayloadExpired,
    QrPayload,
    SignatureInvalid,
    SigningError,
    UnknownSigner,
    UnsupportedVersion,
    decode,
    encode,
    kid_for,
    verify,
)
from signing.qr.dictionary import DICTIONARY_V1

KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())
KID = b"\x01\x02\x03\x04\x05\x06\x07\x08"
PKT = timezone(timedelta(hours=5), "PKT")
ISSUED = datetime(2026, 3, 14, 10, 30, tzinfo=PKT)
NOW = ISSUED + timedelta(days=1)
BASE45_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
QR_VERSION_TARGET = 15  # the requirement: a transfer order fits version 15 at level Q


def trust(kid: bytes) -> ec.EllipticCurvePublicKey | None:
    return KEY.public_key() if kid == KID else None


TRANSFER_ORDER = QrPayload(
    document_type="tto",  # signing.documents.transfer_order.DOCUMENT_TYPE
    document_hash=hashlib.sha256(b"the signed PDF of order SED/TR/2026/004512").digest(),
    issued_at=ISSUED,
    expires_at=ISSUED.replace(year=2027),
    issuer="PK-PB",
    fields={
        "no": "SED/TR/2026/004512",
        "dt": "2026-03-14",
        "nm": "Muhammad Imran Akhtar",
        "fr": "Govt. High School No. 1, Model Town, Lahore",
        "to": "Govt. Boys Higher Secondary School, Shahdara, Lahore",
        "post": "SST (Science)",
        "auth": "CEO (DEA) Lahore",
    },
)


# Helpers that build codes by hand, to make the ones `encode` never would.


def _wrap(cose: bytes) -> str:
    return PREFIX + base45.b45encode(zlib.compress(cose, 9)).decode()


def cose_of(text: str) -> bytes:
    """What any zlib does with the code, given the published dictionary."""
    inflater = zlib.decompressobj(zdict=DICTIONARY_V1)
    return inflater.decompress(base45.b45decode(text[len(PREFIX) :]))


def _raw_signature(key: ec.EllipticCurvePrivateKey, message: bytes) -> bytes:
    r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _sig_structure(protected: bytes, claims: bytes) -> bytes:
    return cbor2.dumps(["Signature1", protected, b"", claims])


def _sign1(claims: bytes, *, key: ec.EllipticCurvePrivateKey = KEY, kid: bytes = KID) -> str:
    """A properly signed code around any claims bytes: for payloads `QrPayload` refuses to build."""
    protected = cbor2.dumps({1: -7, 4: kid})
    signature = _raw_signature(key, _sig_structure(protected, claims))
    return _wrap(cbor2.dumps(cbor2.CBORTag(18, [protected, {}, claims, signature])))


def _parts(text: str) -> list[Any]:
    tag = cbor2.loads(cose_of(text))
    assert tag.tag == 18
    return list(tag.value)


def _rewrap(parts: list[Any]) -> str:
    return _wrap(cbor2.dumps(cbor2.CBORTag(18, parts)))


def _claims(**changes: object) -> dict[int, object]:
    document = [1, "teacher-transfer-order", bytes(32), {"no": "SED/TR/2026/004512"}]
    claims: dict[int, object] = {
        1: "PK-PB",
        6: int(ISSUED.timestamp()),
        4: int(ISSUED.timestamp()) + 86400,
        -65537: document,
    }
    for name, value in changes.items():
        claims[{"iss": 1, "iat": 6, "exp": 4, "doc": -65537}[name]] = value
    return claims


# Round trips.


def test_round_trip() -> None:
    text = encode(TRANSFER_ORDER, KEY, KID)
    assert text.startswith("SHK1:")
    assert set(text) <= set(BASE45_ALPHABET)
    assert verify(text, trust, NOW) == TRANSFER_ORDER
    assert decode(text) == (KID, TRANSFER_ORDER)


def test_times_come_back_as_the_same_instants_in_utc() -> None:
    payload = verify(encode(TRANSFER_ORDER, KEY, KID), trust, NOW)
    assert payload.issued_at == ISSUED
    assert payload.issued_at.tzinfo is UTC


def test_the_envelope_is_the_documented_cose_sign1() -> None:
    protected, unprotected, claims, signature = _parts(encode(TRANSFER_ORDER, KEY, KID))
    assert cbor2.loads(protected) == {1: -7, 4: KID}
    assert unprotected == {}
    assert claims == TRANSFER_ORDER.to_cbor()
    assert len(signature) == 64
    decoded = cbor2.loads(claims)
    assert set(decoded) == {1, 4, 6, -65537}
    assert decoded[-65537][0] == 1


def test_kid_is_the_dcc_kid_of_the_signer_certificate() -> None:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "PK-PB QR signer (test)")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(KEY.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(ISSUED)
        .not_valid_after(ISSUED + timedelta(days=365))
        .sign(KEY, hashes.SHA256())
    )
    der = certificate.public_bytes(Encoding.DER)
    assert kid_for(der) == hashlib.sha256(der).digest()[:8]
    with pytest.raises(ValueError, match="certificate"):
        kid_for(certificate.public_bytes(Encoding.PEM))


# Every way verification refuses.


@pytest.mark.parametrize("prefix", ["HC1:", "shk1:", "SHK2:", "", "SHK1"])
def test_wrong_prefix(prefix: str) -> None:
    text = encode(TRANSFER_ORDER, KEY, KID)
    with pytest.raises(MalformedPayload, match="prefix"):
        verify(prefix + text[len(PREFIX) :], trust, NOW)


@pytest.mark.parametrize("keep", [5, 6, 7, 50, 200, -3, -2, -1])
def test_truncated_text(keep: int) -> None:
    text = encode(TRANSFER_ORDER, KEY, KID)
    with pytest.raises(MalformedPayload):
        verify(text[:keep], trust, NOW)
    with pytest.raises(MalformedPayload):
        decode(text[:keep])


def test_a_newline_is_not_base45() -> None:
    with pytest.raises(MalformedPayload, match="alphabet"):
        verify(encode(TRANSFER_ORDER, KEY, KID) + "\n", trust, NOW)


@pytest.mark.parametrize("bit", [0, 7, 100, 511])
def test_flipped_bit_in_signature(bit: int) -> None:
    parts = _parts(encode(TRANSFER_ORDER, KEY, KID))
    signature = bytearray(parts[3])
    signature[bit // 8] ^= 1 << (bit % 8)
    parts[3] = bytes(signature)
    with pytest.raises(SignatureInvalid):
        verify(_rewrap(parts), trust, NOW)


def test_changed_field_reencoded_without_resigning() -> None:
    parts = _parts(encode(TRANSFER_ORDER, KEY, KID))
    forged = QrPayload(
        document_type=TRANSFER_ORDER.document_type,
        document_hash=TRANSFER_ORDER.document_hash,
        issued_at=TRANSFER_ORDER.issued_at,
        expires_at=TRANSFER_ORDER.expires_at,
        issuer=TRANSFER_ORDER.issuer,
        fields={**TRANSFER_ORDER.fields, "to": "Govt. High School, Gulberg, Lahore"},
    )
    parts[2] = forged.to_cbor()
    text = _rewrap(parts)
    assert decode(text)[1] == forged  # decode shows what it says, unverified...
    with pytest.raises(SignatureInvalid):
        verify(text, trust, NOW)  # ...and verify refuses it


def test_changed_kid_is_covered_by_the_signature() -> None:
    parts = _parts(encode(TRANSFER_ORDER, KEY, KID))
    parts[0] = cbor2.dumps({1: -7, 4: b"other-id"})
    with pytest.raises(SignatureInvalid):
        verify(_rewrap(parts), lambda kid: KEY.public_key(), NOW)


def test_signed_by_another_key_under_our_kid() -> None:
    with pytest.raises(SignatureInvalid):
        verify(encode(TRANSFER_ORDER, OTHER_KEY, KID), trust, NOW)


def test_unknown_kid() -> None:
    with pytest.raises(UnknownSigner, match="0908"):
        verify(encode(TRANSFER_ORDER, KEY, bytes.fromhex("0908070605040302")), trust, NOW)


def test_a_trust_list_key_of_another_curve_is_refused() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    with pytest.raises(UnknownSigner, match="P-256"):
        verify(encode(TRANSFER_ORDER, KEY, KID), lambda kid: p384, NOW)


def test_expired() -> None:
    text = encode(TRANSFER_ORDER, KEY, KID)
    assert TRANSFER_ORDER.expires_at is not None
    last_good = TRANSFER_ORDER.expires_at - timedelta(seconds=1)
    assert verify(text, trust, last_good) == TRANSFER_ORDER
    for now in (TRANSFER_ORDER.expires_at, TRANSFER_ORDER.expires_at + timedelta(days=400)):
        with pytest.raises(PayloadExpired):
            verify(text, trust, now)
    assert decode(text)[1] == TRANSFER_ORDER  # decode does not judge time


def test_no_expiry_never_expires() -> None:
    claims = cbor2.loads(TRANSFER_ORDER.to_cbor())
    del claims[4]
    text = _sign1(cbor2.dumps(claims))
    assert verify(text, trust, datetime(9999, 1, 1, tzinfo=UTC)).expires_at is None


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone"):
        verify(encode(TRANSFER_ORDER, KEY, KID), trust, datetime(2026, 3, 15))


def test_version_2() -> None:
    future = {1: "PK-PB", 6: int(ISSUED.timestamp()), 8: "new", -65537: [2, "a new layout"]}
    text = _sign1(cbor2.dumps(future))
    with pytest.raises(UnsupportedVersion, match="version 2"):
        verify(text, trust, NOW)
    with pytest.raises(UnsupportedVersion):
        decode(text)


def test_zlib_bomb() -> None:
    bomb = PREFIX + base45.b45encode(zlib.compress(bytes(1_000_000), 9)).decode()
    assert len(bomb) < 4296  # it fits in a QR code...
    with pytest.raises(MalformedPayload, match="inflates"):
        verify(bomb, trust, NOW)  # ...but is refused before it inflates


def test_bytes_after_the_zlib_stream() -> None:
    cose = cose_of(encode(TRANSFER_ORDER, KEY, KID))
    text = PREFIX + base45.b45encode(zlib.compress(cose, 9) + b"\0").decode()
    with pytest.raises(MalformedPayload, match="follow the zlib"):
        verify(text, trust, NOW)


def test_longer_than_any_qr_code() -> None:
    with pytest.raises(MalformedPayload, match="longer"):
        verify(PREFIX + "0" * 4292, trust, NOW)


def test_der_signature_instead_of_raw() -> None:
    parts = _parts(encode(TRANSFER_ORDER, KEY, KID))
    der = KEY.sign(_sig_structure(parts[0], parts[2]), ec.ECDSA(hashes.SHA256()))
    parts[3] = der
    with pytest.raises(MalformedPayload, match="not DER"):
        verify(_rewrap(parts), trust, NOW)


_P = cbor2.dumps({1: -7, 4: KID})
_C = TRANSFER_ORDER.to_cbor()
_S = bytes(64)
WRONG_SHAPES: dict[str, object] = {
    "a map": {1: _P},
    "a byte string": _C,
    "COSE_Sign (tag 98)": cbor2.CBORTag(98, [_P, {}, _C, _S]),
    "tag 18 around a tag": cbor2.CBORTag(18, cbor2.CBORTag(18, [_P, {}, _C, _S])),
    "array of 3": [_P, {}, _C],
    "array of 5": [_P, {}, _C, _S, _S],
    "protected header not a bstr": [{1: -7, 4: KID}, {}, _C, _S],
    "protected header not a map": [cbor2.dumps([1, -7]), {}, _C, _S],
    "ES384": [cbor2.dumps({1: -35, 4: KID}), {}, _C, _S],
    "alg as text": [cbor2.dumps({1: "ES256", 4: KID}), {}, _C, _S],
    "alg as float": [cbor2.dumps({1: -7.0, 4: KID}), {}, _C, _S],
    "no kid": [cbor2.dumps({1: -7}), {}, _C, _S],
    "kid only unprotected": [cbor2.dumps({1: -7}), {4: KID}, _C, _S],
    "kid as text": [cbor2.dumps({1: -7, 4: "kid"}), {}, _C, _S],
    "empty kid": [cbor2.dumps({1: -7, 4: b""}), {}, _C, _S],
    "crit header": [cbor2.dumps({1: -7, 2: [99], 4: KID}), {}, _C, _S],
    "unprotected header used": [_P, {4: KID}, _C, _S],
    "unprotected header not a map": [_P, [], _C, _S],
    "detached payload": [_P, {}, None, _S],
    "payload not a bstr": [_P, {}, {1: "PK-PB"}, _S],
    "signature of 63 bytes": [_P, {}, _C, bytes(63)],
    "signature as text": [_P, {}, _C, "0" * 64],
}


@pytest.mark.parametrize(
    "shape", [pytest.param(value, id=name) for name, value in WRONG_SHAPES.items()]
)
def test_cbor_of_the_wrong_shape(shape: object) -> None:
    text = _wrap(cbor2.dumps(shape))
    with pytest.raises(MalformedPayload):
        verify(text, trust, NOW)
    with pytest.raises(MalformedPayload):
        decode(text)


def test_an_untagged_cose_sign1_is_accepted() -> None:
    parts = _parts(encode(TRANSFER_ORDER, KEY, KID))
    assert verify(_wrap(cbor2.dumps(parts)), trust, NOW) == TRANSFER_ORDER


@pytest.mark.parametrize(
    "cose",
    [
        pytest.param(lambda c: c + b"\0", id="trailing byte"),
        pytest.param(lambda c: c[:-1], id="cut short"),
        pytest.param(lambda c: b"\xd2\x9f" + c[2:] + b"\xff", id="indefinite array"),
        pytest.param(lambda c: b"\xff" + c, id="not CBOR"),
    ],
)
def test_cbor_that_is_not_well_formed(cose: Any) -> None:
    good = cose_of(encode(TRANSFER_ORDER, KEY, KID))
    assert good[:2] == b"\xd2\x84"  # tag 18, array of 4
    with pytest.raises(MalformedPayload):
        verify(_wrap(cose(good)), trust, NOW)


def test_duplicate_keys_in_the_protected_header() -> None:
    protected = b"\xa3\x01\x26\x04\x48" + KID + b"\x01\x26"  # {1: -7, 4: kid, 1: -7}
    signature = _raw_signature(KEY, _sig_structure(protected, _C))
    text = _wrap(cbor2.dumps(cbor2.CBORTag(18, [protected, {}, _C, signature])))
    with pytest.raises(MalformedPayload):
        verify(text, trust, NOW)


BAD_CLAIMS: dict[str, object] = {
    "an array, not a map": [1, 2, 3],
    "no document claim": {1: "PK-PB", 6: 1773466200},
    "document claim not an array": _claims(doc={"v": 1}),
    "version as bool": _claims(doc=[True, "teacher-transfer-order", bytes(32), {}]),
    "document of 3": _claims(doc=[1, "teacher-transfer-order", bytes(32)]),
    "hash of 31 bytes": _claims(doc=[1, "teacher-transfer-order", bytes(31), {}]),
    "hash as text": _claims(doc=[1, "teacher-transfer-order", "0" * 32, {}]),
    "type with spaces": _claims(doc=[1, "transfer order", bytes(32), {}]),
    "fields not a map": _claims(doc=[1, "teacher-transfer-order", bytes(32), []]),
    "a float field": _claims(doc=[1, "teacher-transfer-order", bytes(32), {"n": 1.5}]),
    "a bool field": _claims(doc=[1, "teacher-transfer-order", bytes(32), {"n": True}]),
    "a bytes field": _claims(doc=[1, "teacher-transfer-order", bytes(32), {"n": b"x"}]),
    "an integer key": _claims(doc=[1, "teacher-transfer-order", bytes(32), {1: "x"}]),
    "a long field": _claims(doc=[1, "teacher-transfer-order", bytes(32), {"n": "x" * 201}]),
    "a control character": _claims(doc=[1, "teacher-transfer-order", bytes(32), {"n": "a\x1bb"}]),
    "a bignum field": _claims(doc=[1, "teacher-transfer-order", bytes(32), {"n": 2**64}]),
    "an unknown claim": {**_claims(), 99: "x"},
    "no iat": {k: v for k, v in _claims().items() if k != 6},
    "iat as text": _claims(iat="2026-03-14T10:30:00+05:00"),
    "iat as a tagged date": _claims(iat=cbor2.CBORTag(1, 1773466200)),
    "iat as a float": _claims(iat=1773466200.5),
    "iat negative": _claims(iat=-1),
    "exp null": _claims(exp=None),
    "exp before iat": _claims(exp=int(ISSUED.timestamp()) - 1),
    "exp after 9999": _claims(exp=2**40),
    "issuer empty": _claims(iss=""),
    "issuer as bytes": _claims(iss=b"PK-PB"),
}


@pytest.mark.parametrize(
    "claims", [pytest.param(value, id=name) for name, value in BAD_CLAIMS.items()]
)
def test_signed_claims_of_the_wrong_shape(claims: object) -> None:
    text = _sign1(cbor2.dumps(claims))
    with pytest.raises(MalformedPayload):
        verify(text, trust, NOW)


def test_signed_claims_with_trailing_bytes() -> None:
    with pytest.raises(MalformedPayload, match="follow"):
        verify(_sign1(TRANSFER_ORDER.to_cbor() + b"\0"), trust, NOW)


def test_signed_claims_with_a_duplicate_key() -> None:
    claims = b"\xa4" + TRANSFER_ORDER.to_cbor()[1:] + b"\x01\x65PK-SD"  # a second iss
    with pytest.raises(MalformedPayload):
        verify(_sign1(claims), trust, NOW)


# The payload refuses to be built wrong.


def _order(**changes: Any) -> QrPayload:
    arguments: dict[str, Any] = {
        "document_type": "teacher-transfer-order",
        "document_hash": bytes(32),
        "issued_at": ISSUED,
        "expires_at": None,
        "issuer": "PK-PB",
        "fields": {"no": "SED/TR/2026/004512"},
    }
    return QrPayload(**{**arguments, **changes})


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"issued_at": datetime(2026, 3, 14)}, id="naive time"),
        pytest.param({"issued_at": ISSUED.replace(microsecond=5)}, id="fractional second"),
        pytest.param({"issued_at": datetime(1969, 12, 31, tzinfo=UTC)}, id="before 1970"),
        pytest.param({"expires_at": ISSUED}, id="expires when issued"),
        pytest.param({"document_hash": bytes(20)}, id="a SHA-1 sized hash"),
        pytest.param({"document_hash": bytearray(32)}, id="a bytearray hash"),
        pytest.param({"document_type": "Teacher Transfer"}, id="type not a slug"),
        pytest.param({"issuer": "PK PB"}, id="issuer with a space"),
        pytest.param({"fields": {"Order": "x"}}, id="upper-case key"),
        pytest.param({"fields": {"a_much_longer_key_name": "x"}}, id="long key"),
        pytest.param({"fields": {"n": "x" * 201}}, id="201 characters"),
        pytest.param({"fields": {"n": "\ud800"}}, id="lone surrogate"),
        pytest.param({"fields": {"n": False}}, id="bool value"),
        pytest.param({"fields": {"n": None}}, id="null value"),
        pytest.param({"fields": {f"k{i}": i for i in range(33)}}, id="33 fields"),
        pytest.param({"fields": {f"k{i}": "\u0800" * 200 for i in range(8)}}, id="too big"),
    ],
)
def test_an_invalid_payload_cannot_be_built(changes: dict[str, Any]) -> None:
    with pytest.raises(MalformedPayload):
        _order(**changes)


def test_a_version_2_payload_cannot_be_built() -> None:
    with pytest.raises(UnsupportedVersion):
        _order(version=2)


def test_urdu_with_a_zero_width_non_joiner_is_a_valid_field() -> None:
    name = "\u0645\u062d\u0645\u062f \u0639\u0645\u0631\u0627\u0646\u200c"
    order = _order(fields={"nm": name})
    assert verify(encode(order, KEY, KID), trust, NOW).fields == {"nm": name}


def test_a_built_payload_does_not_follow_the_callers_dict() -> None:
    fields: dict[str, str | int] = {"no": "SED/TR/2026/004512"}
    order = _order(fields=fields)
    fields["no"] = "SED/TR/2026/999999"
    assert order.fields == {"no": "SED/TR/2026/004512"}


def test_encode_refuses_other_curves_and_bad_kids() -> None:
    with pytest.raises(ValueError, match="P-256"):
        encode(TRANSFER_ORDER, ec.generate_private_key(ec.SECP384R1()), KID)
    with pytest.raises(ValueError, match="kid"):
        encode(TRANSFER_ORDER, KEY, b"")


# Properties.

FIELD_KEYS = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)
FIELD_TEXT = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=200)
FIELD_INTS = st.integers(min_value=-(2**63), max_value=2**63 - 1)
OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
TIMES = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(9990, 1, 1), timezones=OFFSETS
).map(lambda moment: moment.replace(microsecond=0))


@st.composite
def payloads(draw: st.DrawFn) -> QrPayload:
    issued_at = draw(TIMES)
    lifetime = draw(st.none() | st.integers(min_value=1, max_value=10 * 366 * 86400))
    return QrPayload(
        document_type=draw(st.from_regex(r"[a-z0-9]{1,10}(-[a-z0-9]{1,10}){0,3}", fullmatch=True)),
        document_hash=draw(st.binary(min_size=32, max_size=32)),
        issued_at=issued_at,
        expires_at=None if lifetime is None else issued_at + timedelta(seconds=lifetime),
        issuer=draw(st.from_regex(r"[A-Za-z0-9]{1,8}([-.][A-Za-z0-9]{1,8}){0,2}", fullmatch=True)),
        fields=draw(st.dictionaries(FIELD_KEYS, FIELD_TEXT | FIELD_INTS, max_size=4)),
    )


@given(payloads())
def test_claims_are_canonical_cbor(payload: QrPayload) -> None:
    """`to_cbor` writes in canonical order without asking cbor2 to sort: check it does."""
    encoded = payload.to_cbor()
    assert encoded == cbor2.dumps(cbor2.loads(encoded), canonical=True)


@given(payloads())
def test_arbitrary_payloads_round_trip(payload: QrPayload) -> None:
    text = encode(payload, KEY, KID)
    assert verify(text, trust, payload.issued_at) == payload
    assert decode(text) == (KID, payload)


CBOR_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.binary(max_size=66)
    | st.text(max_size=24)
)
CBOR_VALUES = st.recursive(
    CBOR_LEAVES,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.integers(-70000, 10) | st.text(max_size=3), children, max_size=5)
        | st.builds(cbor2.CBORTag, st.sampled_from([0, 1, 2, 18, 24, 98]), children)
    ),
    max_leaves=16,
)
DOCUMENTS = st.tuples(
    st.integers(0, 3), st.text(max_size=30), st.binary(min_size=31, max_size=33), CBOR_VALUES
).map(list)
CLAIMS = st.dictionaries(
    st.sampled_from([1, 4, 6, -65537, 99]), CBOR_VALUES | DOCUMENTS | st.integers(-1, 2**34)
)
SIGNED_ORDER = encode(TRANSFER_ORDER, KEY, KID)  # once: ECDSA's randomness would vary its length
HEADERS = st.dictionaries(st.sampled_from([1, 2, 4, 5]), st.sampled_from([-7, -35]) | CBOR_LEAVES)


@st.composite
def hostile_texts(draw: st.DrawFn) -> str:
    """Text from anyone: random, base45 of random bytes, COSE-shaped CBOR, or a real code hit once.

    `decode` runs on whatever a camera reads, before any signature is checked, so it must fail
    with a SigningError and nothing else (no KeyError, no TypeError, no cbor2 exception).
    """
    kind = draw(st.sampled_from(["text", "base45", "zlib", "cbor", "cose", "mutated"]))
    if kind == "text":
        return draw(st.text())
    if kind == "base45":
        return PREFIX + draw(st.text(BASE45_ALPHABET))
    if kind == "zlib":
        return PREFIX + base45.b45encode(zlib.compress(draw(st.binary()))).decode()
    if kind == "cbor":
        return _wrap(cbor2.dumps(draw(CBOR_VALUES)))
    if kind == "cose":
        protected = cbor2.dumps(draw(HEADERS))
        claims = cbor2.dumps(draw(CLAIMS))
        parts = [protected, draw(st.just({}) | HEADERS), claims, draw(st.binary(max_size=72))]
        return _wrap(cbor2.dumps(cbor2.CBORTag(18, parts)))
    at = draw(st.integers(min_value=0, max_value=len(SIGNED_ORDER) - 1))
    return SIGNED_ORDER[:at] + draw(st.sampled_from(BASE45_ALPHABET)) + SIGNED_ORDER[at + 1 :]


@given(hostile_texts())
def test_arbitrary_text_raises_nothing_but_signing_errors(text: str) -> None:
    for attempt in (lambda: decode(text), lambda: verify(text, trust, NOW)):
        with contextlib.suppress(SigningError):
            attempt()


# An independent COSE implementation.


def _pycose_key(private: bool) -> EC2Key:
    numbers = KEY.public_key().public_numbers()
    d = KEY.private_numbers().private_value.to_bytes(32, "big") if private else b""
    return EC2Key(crv=P256, x=numbers.x.to_bytes(32, "big"), y=numbers.y.to_bytes(32, "big"), d=d)


def test_pycose_verifies_our_signature() -> None:
    protected, unprotected, claims, signature = _parts(encode(TRANSFER_ORDER, KEY, KID))
    # pycose's own `decode` insists on a list where cbor2 6 decodes a tuple, and on a dict where
    # it gives a frozendict (pycose issue 141), so the message is built from its parts; the
    # headers, the Sig_structure and the check are still pycose's.
    message = Sign1Message.from_cose_obj([protected, dict(unprotected), claims, signature], True)
    message.key = _pycose_key(private=False)
    assert message.phdr == {Algorithm: Es256, KID_HEADER: KID}
    assert message.payload == TRANSFER_ORDER.to_cbor()
    assert message.verify_signature()


def test_we_verify_a_pycose_signature() -> None:
    message = Sign1Message(
        phdr={Algorithm: Es256, KID_HEADER: KID},
        payload=TRANSFER_ORDER.to_cbor(),
        key=_pycose_key(private=True),
    )
    assert verify(_wrap(message.encode()), trust, NOW) == TRANSFER_ORDER


# The printed QR code, read back by an independent decoder.


def _write_png(matrix: list[list[bool]], path: Path, scale: int = 4) -> None:
    """A greyscale PNG of a QR matrix (quiet zone included), dark modules black.

    Written with the standard library because the venv has neither Pillow nor pypng, which
    qrcode's own image factories need; the matrix is qrcode's.
    """
    rows = []
    for row in matrix:
        line = b"\0" + bytes(0 if dark else 255 for dark in row for _ in range(scale))
        rows.extend([line] * scale)
    size = len(matrix) * scale

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)  # 8-bit greyscale
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


def _transfer_order_qr() -> tuple[str, qrcode.QRCode]:
    text = encode(TRANSFER_ORDER, KEY, KID)
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_Q, border=4)
    qr.add_data(text)
    qr.make(fit=True)
    return text, qr


def test_transfer_order_qr_scans_and_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zbarimg = shutil.which("zbarimg")
    if zbarimg is None:
        pytest.fail("zbarimg is missing: install Debian's zbar-tools (apt-get install zbar-tools)")
    text, qr = _transfer_order_qr()
    # Alphanumeric mode is the point of base45: 5.5 bits a character instead of 8.
    modes = {chunk.mode for chunk in qr.data_list}
    assert modes == {qrcode.util.MODE_ALPHA_NUM}, f"qrcode chose modes {modes}"
    with capsys.disabled():
        print(
            f"\ntransfer order QR: version {qr.version} at level Q "
            f"({4 * qr.version + 17} modules), {len(text)} characters, "
            f"{len(TRANSFER_ORDER.to_cbor())} bytes of claims"
        )
    assert qr.version <= QR_VERSION_TARGET
    png = tmp_path / "transfer-order.png"
    _write_png(qr.get_matrix(), png)
    scanned = subprocess.run(
        [zbarimg, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(png)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.rstrip("\n")
    assert scanned == text
    assert verify(scanned, trust, NOW) == TRANSFER_ORDER


def test_transfer_order_fits_version_15_at_level_q() -> None:
    _, qr = _transfer_order_qr()
    assert qr.version <= QR_VERSION_TARGET


@pytest.mark.parametrize(
    "changes",
    [
        {"nm": "Syeda Kaneez Fatima Bukhari", "post": "SESE (Computer Science)",
         "fr": "Govt. Girls Higher Secondary School, Chak No. 208/RB, Faisalabad",
         "to": "Govt. Girls Elementary School, Mouza Jhok Lashkar Pur, Muzaffargarh",
         "auth": "CEO (DEA) Muzaffargarh"},
        {"nm": "Ch. Ghulam Mustafa Warraich", "post": "Senior Subject Specialist (Physics)",
         "fr": "Govt. Boys Higher Secondary School, Kot Momin, Sargodha",
         "to": "Govt. Islamia High School, Railway Road, Toba Tek Singh",
         "auth": "DEO (SE) Toba Tek Singh"},
    ],
)  # fmt: skip
def test_unusually_long_orders_take_one_version_more(changes: dict[str, str]) -> None:
    """About 230 characters of names and places, a third more than the order above: 442 to
    446 characters of code, 16-Q. A guard against growth, and the figure the note reports."""
    order = dataclasses.replace(TRANSFER_ORDER, fields={**TRANSFER_ORDER.fields, **changes})
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_Q)
    qr.add_data(encode(order, KEY, KID))
    qr.make(fit=True)
    assert qr.version <= QR_VERSION_TARGET + 1


def test_a_code_made_without_the_dictionary_still_reads_and_another_dictionary_does_not() -> None:
    cose = cose_of(encode(TRANSFER_ORDER, KEY, KID))
    assert verify(_wrap(cose), trust, NOW) == TRANSFER_ORDER, "plain zlib, as the DCC has it"
    compressor = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY, b"other words")
    foreign = PREFIX + base45.b45encode(compressor.compress(cose) + compressor.flush()).decode()
    with pytest.raises(MalformedPayload, match="unknown zlib dictionary"):
        verify(foreign, trust, NOW)
