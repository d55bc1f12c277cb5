"""The verdict on a scanned code: every outcome, the order they are decided in, and failing closed.

The hierarchy, the QR signer certificate and the trust list are real (pki_kit, QR_SIGNER, a
trust list signed and loaded); forged codes are built by hand as in test_qr_codec.
"""

from __future__ import annotations

import dataclasses
import hashlib
import zlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

import base45
import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given
from hypothesis import strategies as st

from signing.pki.profiles import QR_SIGNER
from signing.qr import PREFIX, QrPayload, encode, kid_for
from signing.trustlist import TrustedSigner, TrustList, load_trust_list, sign_trust_list
from signing.verdict import DOCUMENT_REVOKED, Outcome, Verdict, document_revoked, verify_qr
from tests.unit.signing.pki_kit import NOW, Hierarchy
from tests.unit.signing.test_qr_codec import TRANSFER_ORDER, cose_of

H = Hierarchy.make()
T0 = NOW.replace(microsecond=0)
DAY = timedelta(days=1)
BASE45_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def _qr_signer(
    *, now: datetime = NOW
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = H.issue(QR_SIGNER, "PK-PB QR signer", key=key, now=now)
    return key, certificate, kid_for(certificate.public_bytes(Encoding.DER))


KEY, CERTIFICATE, KID = _qr_signer()
REVOKED_KEY, REVOKED_CERTIFICATE, REVOKED_KID = _qr_signer()
# Older than its own issuing CA, so no loaded list could hold it: test_trustlist loads an
# expired signer from an old hierarchy; here only its dates matter.
OLD_KEY, OLD_CERTIFICATE, OLD_KID = _qr_signer(now=NOW - timedelta(days=3 * 365))
STRANGER_KEY, _, STRANGER_KID = _qr_signer()  # same CA, but not on the list

DOCUMENT = b"%PDF-1.7 the signed transfer order SED/TR/2026/004512"
ISSUED = T0
ORDER = dataclasses.replace(  # the codec tests' transfer order, for this test's document
    TRANSFER_ORDER,
    document_hash=hashlib.sha256(DOCUMENT).digest(),
    issued_at=ISSUED,
    expires_at=ISSUED + 365 * DAY,
)


def _trust_list(*, issued_at: datetime = T0, next_update: datetime = T0 + 7 * DAY) -> TrustList:
    """Signed by the issuing CA and loaded against the root, as a verifier would hold it."""
    trust = TrustList(
        sequence=1,
        issued_at=issued_at,
        next_update=next_update,
        issuer="PK-PB",
        signers=(
            TrustedSigner.of(CERTIFICATE),
            TrustedSigner.of(
                REVOKED_CERTIFICATE, status="revoked", revoked_at=T0, reason="key compromise"
            ),
        ),
    )
    document = sign_trust_list(trust, key=H.issuing_key, certificate=H.issuing, chain=[H.root])
    return load_trust_list(document, root=H.root, now=NOW)


TRUST = _trust_list()
TEXT = encode(ORDER, KEY, KID)
LATER = NOW + DAY  # the verifier's clock: a day after the order was signed


def _order(**changes: Any) -> QrPayload:
    arguments = {
        "document_type": ORDER.document_type,
        "document_hash": ORDER.document_hash,
        "issued_at": ORDER.issued_at,
        "expires_at": ORDER.expires_at,
        "issuer": ORDER.issuer,
        "fields": ORDER.fields,
    }
    return QrPayload(**{**arguments, **changes})


def _check(text: str = TEXT, *, now: datetime = LATER, **kwargs: Any) -> Verdict:
    return verify_qr(text, TRUST, now=now, **kwargs)


# Codes re-encoded by hand, as test_qr_codec builds them.


def _wrap(cose: bytes) -> str:
    body: bytes = base45.b45encode(zlib.compress(cose, 9))
    return PREFIX + body.decode()


def _parts(text: str) -> list[Any]:
    return list(cbor2.loads(cose_of(text)).value)


def _rewrap(parts: list[Any]) -> str:
    return _wrap(cbor2.dumps(cbor2.CBORTag(18, parts)))


def _signed_claims(claims: bytes, key: ec.EllipticCurvePrivateKey = KEY, kid: bytes = KID) -> str:
    protected = cbor2.dumps({1: -7, 4: kid})
    message = cbor2.dumps(["Signature1", protected, b"", claims])
    r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return _rewrap([protected, {}, claims, signature])


def _assert_unsigned(verdict: Verdict) -> None:
    """Nothing a forger wrote reaches the verdict."""
    assert (verdict.payload, verdict.fields, verdict.signer) == (None, {}, None)
    assert not verdict.authentic
    assert not verdict.checked_online


def _assert_signed(verdict: Verdict, signer: bytes = KID) -> None:
    assert verdict.payload is not None
    assert verdict.fields == verdict.payload.fields
    assert verdict.signer is not None
    assert verdict.signer.kid == signer


# Authentic.


def test_authentic_offline() -> None:
    verdict = _check()
    assert verdict.outcome is Outcome.AUTHENTIC
    assert verdict.authentic
    assert verdict.payload == ORDER
    assert verdict.fields == ORDER.fields
    assert verdict.signer == TRUST.signer(KID)
    assert not verdict.checked_online
    assert "no online check" in verdict.reason


def test_authentic_with_its_document_and_online() -> None:
    asked: list[x509.Certificate] = []

    def status(certificate: x509.Certificate) -> str:
        asked.append(certificate)
        return "good"

    verdict = _check(document=DOCUMENT, status=status)
    assert verdict.outcome is Outcome.AUTHENTIC
    assert verdict.checked_online
    assert "online check confirms" in verdict.reason
    assert asked == [CERTIFICATE]


def test_outcomes_are_plain_strings() -> None:
    assert [o.value for o in Outcome] == [
        "authentic",
        "altered",
        "revoked",
        "expired",
        "unknown_signer",
        "malformed",
    ]
    assert _check().outcome == "authentic"


def test_a_signer_whose_certificate_has_expired_still_vouches_for_what_it_signed() -> None:
    assert OLD_CERTIFICATE.not_valid_after_utc < NOW
    issued = OLD_CERTIFICATE.not_valid_before_utc + DAY
    text = encode(_order(issued_at=issued, expires_at=None), OLD_KEY, OLD_KID)
    trust = TrustList(1, T0, T0 + DAY, "PK-PB", (TrustedSigner.of(OLD_CERTIFICATE),))
    verdict = verify_qr(text, trust, now=LATER)
    assert verdict.outcome is Outcome.AUTHENTIC
    _assert_signed(verdict, OLD_KID)


def test_a_stale_trust_list_still_verifies_but_says_so() -> None:
    stale = _trust_list(issued_at=T0 - 3 * DAY, next_update=T0 - DAY)
    verdict = verify_qr(TEXT, stale, now=LATER)
    assert verdict.outcome is Outcome.AUTHENTIC
    assert "out of date" in verdict.reason


# Malformed.


@pytest.mark.parametrize("keep", [0, 4, 5, 6, 50, 200, -10, -1])
def test_a_truncated_code(keep: int) -> None:
    verdict = _check(TEXT[:keep])
    assert verdict.outcome is Outcome.MALFORMED
    _assert_unsigned(verdict)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("HC1:" + TEXT[len(PREFIX) :], id="a DCC"),
        pytest.param("shk1:" + TEXT[len(PREFIX) :], id="lower case"),
        pytest.param("https://shanakht.test/verify", id="a URL"),
        pytest.param("", id="empty"),
        pytest.param(TEXT + "\n", id="a trailing newline"),
    ],
)
def test_not_a_shk1_code(text: str) -> None:
    verdict = _check(text)
    assert verdict.outcome is Outcome.MALFORMED
    assert "not a readable Shanakht code" in verdict.reason
    _assert_unsigned(verdict)


def test_a_newer_payload_version_is_malformed_and_says_update() -> None:
    claims = {1: "PK-PB", 6: int(ISSUED.timestamp()), -65537: [2, "a new layout"]}
    verdict = _check(_signed_claims(cbor2.dumps(claims)))
    assert verdict.outcome is Outcome.MALFORMED
    assert "update the app" in verdict.reason


@pytest.mark.parametrize(
    ("key", "kid"),
    [
        pytest.param(STRANGER_KEY, STRANGER_KID, id="signer not on the list"),
        pytest.param(STRANGER_KEY, KID, id="signature that fails"),
    ],
)
@pytest.mark.parametrize(
    ("document", "reason"),
    [
        pytest.param([2, "a new layout"], "update the app", id="newer version"),
        pytest.param([1, "teacher-transfer-order"], "not a readable", id="claims cut short"),
    ],
)
def test_unreadable_claims_are_malformed_before_the_signer_is_judged(
    key: ec.EllipticCurvePrivateKey, kid: bytes, document: list[object], reason: str
) -> None:
    claims = {1: "PK-PB", 6: int(ISSUED.timestamp()), -65537: document}
    verdict = _check(_signed_claims(cbor2.dumps(claims), key, kid))
    assert verdict.outcome is Outcome.MALFORMED
    assert reason in verdict.reason


# Unknown signer, altered, revoked.


def test_a_signer_not_on_the_list() -> None:
    verdict = _check(encode(ORDER, STRANGER_KEY, STRANGER_KID))
    assert verdict.outcome is Outcome.UNKNOWN_SIGNER
    _assert_unsigned(verdict)


def test_a_changed_field() -> None:
    parts = _parts(TEXT)
    parts[2] = _order(fields={**ORDER.fields, "to": "Govt. High School, Gulberg, Lahore"}).to_cbor()
    verdict = _check(_rewrap(parts))
    assert verdict.outcome is Outcome.ALTERED
    assert "altered or forged" in verdict.reason
    _assert_unsigned(verdict)


def test_signed_by_another_key_under_our_kid() -> None:
    verdict = _check(encode(ORDER, STRANGER_KEY, KID))
    assert verdict.outcome is Outcome.ALTERED
    _assert_unsigned(verdict)


def test_a_revoked_signer() -> None:
    verdict = _check(encode(ORDER, REVOKED_KEY, REVOKED_KID), status=lambda _: "good")
    assert verdict.outcome is Outcome.REVOKED  # the list's word stands over a "good" online
    assert not verdict.checked_online
    _assert_signed(verdict, REVOKED_KID)


@pytest.mark.parametrize(
    "issued_at",
    [
        pytest.param(CERTIFICATE.not_valid_before_utc - timedelta(seconds=1), id="before"),
        pytest.param(CERTIFICATE.not_valid_after_utc + timedelta(seconds=1), id="after"),
    ],
)
def test_signed_outside_its_certificates_validity(issued_at: datetime) -> None:
    text = encode(_order(issued_at=issued_at, expires_at=None), KEY, KID)
    verdict = _check(text, now=issued_at + DAY)
    assert verdict.outcome is Outcome.ALTERED
    assert "not genuine" in verdict.reason
    _assert_signed(verdict)


def test_a_different_document() -> None:
    verdict = _check(document=DOCUMENT + b" ")
    assert verdict.outcome is Outcome.ALTERED
    assert "document shown is not the one" in verdict.reason
    _assert_signed(verdict)


# Expired.


def test_expired_at_the_expiry_second() -> None:
    assert ORDER.expires_at is not None
    assert _check(now=ORDER.expires_at - timedelta(seconds=1)).authentic
    for now in (ORDER.expires_at, ORDER.expires_at + 400 * DAY):
        verdict = _check(now=now)
        assert verdict.outcome is Outcome.EXPIRED
        assert f"{ORDER.expires_at:%Y-%m-%d}" in verdict.reason
        _assert_signed(verdict)


def test_expired_comes_before_the_document_and_the_online_check() -> None:
    assert ORDER.expires_at is not None

    def status(_: x509.Certificate) -> str:
        raise AssertionError("an expired code needs no online check")

    verdict = _check(now=ORDER.expires_at, document=b"another", status=status)
    assert verdict.outcome is Outcome.EXPIRED


# The document revoked by its department (the API looks that up; the domain turns the verdict).


def test_a_document_its_department_revoked_is_revoked_with_when() -> None:
    when = LATER - DAY
    found = _check(status=lambda _: "good")
    assert found.authentic
    revoked = document_revoked(found, revoked_at=when)
    assert revoked.outcome is Outcome.REVOKED
    assert not revoked.authentic
    assert revoked.reason == DOCUMENT_REVOKED
    assert revoked.revoked_at == when
    assert revoked.checked_online  # the online check that was made is still said
    _assert_signed(revoked)
    assert ORDER.expires_at is not None
    expired = _check(now=ORDER.expires_at)
    assert document_revoked(expired, revoked_at=when).outcome is Outcome.REVOKED


def test_only_a_genuine_verdict_is_turned_revoked_for_its_document() -> None:
    """What already refuses the code keeps its own, more basic, word."""
    for found in (
        _check(document=DOCUMENT + b" "),  # altered
        _check(encode(ORDER, REVOKED_KEY, REVOKED_KID)),  # its signer revoked
        _check("SHK1:garbage"),  # malformed
    ):
        assert document_revoked(found, revoked_at=LATER) == found


# Online status.


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [("revoked", Outcome.REVOKED), ("unknown", Outcome.UNKNOWN_SIGNER)],
)
def test_online_status(answer: str, outcome: Outcome) -> None:
    verdict = _check(status=lambda _: answer)
    assert verdict.outcome is outcome
    assert verdict.checked_online
    assert "online check" in verdict.reason


def _network_down(_: x509.Certificate) -> str:
    raise ConnectionError("OCSP responder unreachable")


@pytest.mark.parametrize(
    "status",
    [
        pytest.param(_network_down, id="raises"),
        pytest.param(lambda _: "GOOD", id="answers nonsense"),
    ],
)
def test_the_offline_verdict_stands_when_the_online_check_fails(
    status: Callable[[x509.Certificate], str],
) -> None:
    verdict = _check(status=status)
    assert verdict.outcome is Outcome.AUTHENTIC
    assert not verdict.checked_online
    assert "online revocation check could not be made" in verdict.reason
    _assert_signed(verdict)


def test_the_online_check_is_not_asked_about_a_forgery() -> None:
    parts = _parts(TEXT)
    parts[3] = bytes(64)

    def status(_: x509.Certificate) -> str:
        raise AssertionError("a forged code needs no online check")

    assert _check(_rewrap(parts), status=status).outcome is Outcome.ALTERED


# Failing closed.


class _BrokenTrustList:
    def signer(self, kid: bytes) -> TrustedSigner | None:
        raise RuntimeError("a bug in the trust list")


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(
            lambda: verify_qr(TEXT, cast(TrustList, _BrokenTrustList()), now=LATER), id="bug"
        ),
        pytest.param(lambda: verify_qr(TEXT, TRUST, now=datetime(2026, 3, 14)), id="naive now"),
        pytest.param(lambda: verify_qr(cast(str, None), TRUST, now=LATER), id="None"),
        pytest.param(
            lambda: verify_qr(TEXT, TRUST, now=LATER, document=cast(bytes, "x")), id="str doc"
        ),
    ],
)
def test_anything_unexpected_is_malformed_never_an_exception(call: Callable[[], Verdict]) -> None:
    verdict = call()
    assert verdict.outcome is Outcome.MALFORMED
    _assert_unsigned(verdict)


# Properties.

COSE = cose_of(TEXT)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """The real code with one character changed, inserted or removed."""
    at = draw(st.integers(min_value=0, max_value=len(TEXT) - 1))
    kind = draw(st.sampled_from(["change", "insert", "remove"]))
    if kind == "remove":
        return TEXT[:at] + TEXT[at + 1 :]
    char = draw(st.sampled_from(BASE45_ALPHABET).filter(lambda c: c != TEXT[at]))
    return TEXT[:at] + char + (TEXT[at:] if kind == "insert" else TEXT[at + 1 :])


def _same_signed_bytes(text: str) -> bool:
    """Whether a changed text still carries the very COSE bytes that were signed.

    It can: deflate's last byte has unused bits, and a change there alters the text but not
    what it inflates to. Such a code is the signer's own, so it may rightly verify.
    """
    try:
        return cose_of(text) == COSE
    except (ValueError, zlib.error):
        return False


@given(st.text() | st.text(BASE45_ALPHABET).map(lambda body: PREFIX + body))
def test_arbitrary_text_is_never_authentic(text: str) -> None:
    verdict = verify_qr(text, TRUST, now=LATER)
    assert verdict.outcome is not Outcome.AUTHENTIC
    _assert_unsigned(verdict)


@given(mutated())
def test_a_damaged_code_is_authentic_only_if_its_signed_bytes_survive(text: str) -> None:
    verdict = verify_qr(text, TRUST, now=LATER)
    if verdict.authentic:
        assert _same_signed_bytes(text)
        assert verdict.payload == ORDER
