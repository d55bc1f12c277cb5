"""What a scanned QR code is worth, in one word and one sentence, failing closed.

`verify_qr` is what the API's verify page and the offline app both call: it never raises, and
it answers AUTHENTIC only when every check passed. The checks run in this order, and the first
that fails decides, so that the answer names the most basic thing wrong:

    1. MALFORMED       not SHK1, or bad base45 / zlib / CBOR / COSE, or a payload version this
                       code does not read: there is nothing to judge yet.
    2. UNKNOWN_SIGNER  the kid names no signer on the trust list.
    3. ALTERED         the signature does not verify under that signer's key.
    4. REVOKED         the trust list marks the signer revoked. Every code it signed is refused,
                       whatever its issued_at: that date is signed by the same key, so after a
                       compromise it proves nothing.
    5. ALTERED         the signed issued_at falls outside the signer certificate's validity.
                       Not EXPIRED: EXPIRED tells the person at the counter "genuine, but ran
                       out, ask for a renewed one"; a signature dated when its key had no
                       authority is not a genuine order grown old, it is not a genuine order.
    6. EXPIRED         the payload's own expiry is at or before `now`.
    7. ALTERED         a document was presented and its SHA-256 is not the signed hash.
    8. online status   if a StatusCheck is given: "revoked" -> REVOKED, "unknown" ->
                       UNKNOWN_SIGNER; if it raises (network down) or answers anything else,
                       the offline verdict stands with checked_online False and says so.
    9. AUTHENTIC

One check is not here, because it needs the issuer's records: whether the issuing department
has revoked the document itself (a transfer order withdrawn). `document_revoked` turns an
authentic or expired verdict into REVOKED for a caller that knows so; on a server the API does
that lookup (api/routes/signing.py), an offline verifier cannot.

Payload, fields and signer are filled in only once the signature has verified (3 passed), so
nothing a forger wrote can reach a screen through a verdict.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from signing.errors import MalformedPayload, SignatureInvalid, UnknownSigner, UnsupportedVersion
from signing.qr import QrPayload, decode, verify
from signing.trustlist import TrustedSigner, TrustList

_log = logging.getLogger(__name__)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # no payload expires before it: see `_verify`

StatusCheck = Callable[[x509.Certificate], str]
"""The signer certificate's status online (OCSP or CRL): "good", "revoked" or "unknown".

May raise: a verifier with no network still gets the offline verdict.
"""


class Outcome(StrEnum):
    AUTHENTIC = "authentic"
    ALTERED = "altered"
    REVOKED = "revoked"
    EXPIRED = "expired"
    UNKNOWN_SIGNER = "unknown_signer"
    MALFORMED = "malformed"


@dataclass(frozen=True)
class Verdict:
    """The outcome, a sentence for a person at a counter, and what was signed if it verified."""

    outcome: Outcome
    reason: str
    payload: QrPayload | None = None
    fields: dict[str, str | int] = field(default_factory=dict, hash=False)
    signer: TrustedSigner | None = None
    checked_online: bool = False
    # When the issuing department revoked the document itself, if it did. Not why: a verdict
    # goes to whoever holds the paper, and the department's words may be about the person (a
    # disciplinary inquiry, an appeal). The citizen reads them in their locker.
    revoked_at: datetime | None = None

    @property
    def authentic(self) -> bool:
        return self.outcome is Outcome.AUTHENTIC


# The sentences. Plain words: the reader is a clerk or a citizen, not a cryptographer.
MALFORMED = "This is not a readable Shanakht code: it may be damaged, cut off or from elsewhere."
NEWER = "This code is from a newer version of the system: update the app and scan it again."
FAILED = "This code could not be checked, so it must not be trusted."
UNKNOWN = "This code names a signer this app does not trust, so it cannot be confirmed."
FORGED = "This code's signature does not match its contents: it has been altered or forged."
REVOKED = "This code's signer has been revoked, so the document must not be trusted."
DOCUMENT_REVOKED = "The office that issued this document has revoked it: it is no longer in force."
DOCUMENT_UNSEALED = (
    "The record of this document fails its integrity check, so it must not be trusted."
)
EXPIRED = "This code is genuine but it expired at"
OUT_OF_TERM = "This code is dated when its signer could not sign, so it is not genuine."
WRONG_DOCUMENT = "This code is genuine but the document shown is not the one it was issued for."
ONLINE_REVOKED = "The online check says this code's signer is revoked: do not trust the document."
ONLINE_UNKNOWN = "The online check does not recognise this code's signer: it cannot be confirmed."
CONFIRMED = "This code is genuine and in force, and the online check confirms its signer."
OFFLINE = "This code is genuine and in force by this device's trust list; no online check was made."
STALE = (
    "This code is genuine and in force by this device's trust list, which is out of date,"
    " so a recent revocation could be missed."
)
UNREACHABLE = (
    "This code is genuine and in force by this device's trust list, but the online"
    " revocation check could not be made."
)


def verify_qr(
    text: str,
    trust: TrustList,
    *,
    now: datetime,
    document: bytes | None = None,
    status: StatusCheck | None = None,
) -> Verdict:
    """The verdict on a scanned QR text, in the order of the module docstring. Never raises.

    `now` is the verifier's clock (timezone-aware); `document`, if given, is the file the code
    was printed on; `status` is an online revocation check, if there is a network.
    """
    try:
        return _verify(text, trust, now, document, status)
    except Exception:  # fail closed: a surprise is a refusal, never a crash and never a pass
        _log.exception("verify_qr failed unexpectedly; answering malformed")
        return Verdict(Outcome.MALFORMED, FAILED)


def _verify(
    text: str,
    trust: TrustList,
    now: datetime,
    document: bytes | None,
    status: StatusCheck | None,
) -> Verdict:
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    chosen: list[TrustedSigner] = []

    def key_for(kid: bytes) -> ec.EllipticCurvePublicKey | None:
        """(2) The signer, by the kid the trust list computed from its certificate."""
        signer = trust.signer(kid)
        key = None if signer is None else signer.certificate.public_key()
        if signer is None or not isinstance(key, ec.EllipticCurvePublicKey):
            return None
        chosen.append(signer)
        return key

    # (1) to (3) in one parse. Expiry is step 6, against `now`: `verify` is given the epoch,
    # before every payload's expiry, so that an expired code is told apart from a forged one.
    try:
        payload = verify(text, key_for, EPOCH)
    except UnsupportedVersion:
        return Verdict(Outcome.MALFORMED, NEWER)
    except MalformedPayload:
        return Verdict(Outcome.MALFORMED, MALFORMED)
    except UnknownSigner:
        return _unless_unreadable(text, Verdict(Outcome.UNKNOWN_SIGNER, UNKNOWN))
    except SignatureInvalid:
        return _unless_unreadable(text, Verdict(Outcome.ALTERED, FORGED))
    return _judge_signed(payload, chosen[-1], trust, now, document, status)


def _unless_unreadable(text: str, verdict: Verdict) -> Verdict:
    """`verdict`, unless the claims themselves are unreadable, which is MALFORMED first.

    `verify` checks the key and signature before it parses the claims; parsing them only on
    this failing path keeps the happy path to one parse and the order of the module docstring
    (a newer version's code, from a signer an old trust list lacks, says "update the app").
    """
    try:
        decode(text)
    except UnsupportedVersion:
        return Verdict(Outcome.MALFORMED, NEWER)
    except MalformedPayload:
        return Verdict(Outcome.MALFORMED, MALFORMED)
    return verdict


def _judge_signed(
    payload: QrPayload,
    signer: TrustedSigner,
    trust: TrustList,
    now: datetime,
    document: bytes | None,
    status: StatusCheck | None,
) -> Verdict:
    """Steps 4 to 9, on a payload whose signature has verified."""

    def verdict(outcome: Outcome, reason: str, *, online: bool = False) -> Verdict:
        return Verdict(outcome, reason, payload, dict(payload.fields), signer, online)

    # (4) Revoked on the list; (5) signed outside the certificate's validity; (6) expired.
    if signer.revoked:
        return verdict(Outcome.REVOKED, REVOKED)
    certificate = signer.certificate
    if not certificate.not_valid_before_utc <= payload.issued_at <= certificate.not_valid_after_utc:
        return verdict(Outcome.ALTERED, OUT_OF_TERM)
    if payload.expires_at is not None and now >= payload.expires_at:
        return verdict(Outcome.EXPIRED, f"{EXPIRED} {payload.expires_at:%Y-%m-%d %H:%M} UTC.")
    # (7) The document it was printed on, if one was shown.
    if document is not None and not hmac.compare_digest(
        hashlib.sha256(document).digest(), payload.document_hash
    ):
        return verdict(Outcome.ALTERED, WRONG_DOCUMENT)
    # (8) Online status, if there is a network; (9) authentic.
    offline = STALE if trust.is_stale(now) else OFFLINE
    if status is None:
        return verdict(Outcome.AUTHENTIC, offline)
    try:
        answer = status(certificate)
    except Exception:
        _log.warning("online status check failed; the offline verdict stands", exc_info=True)
        return verdict(Outcome.AUTHENTIC, UNREACHABLE)
    if answer == "good":
        return verdict(Outcome.AUTHENTIC, CONFIRMED, online=True)
    if answer == "revoked":
        return verdict(Outcome.REVOKED, ONLINE_REVOKED, online=True)
    if answer == "unknown":
        return verdict(Outcome.UNKNOWN_SIGNER, ONLINE_UNKNOWN, online=True)
    _log.warning("online status check answered %r; the offline verdict stands", answer)
    return verdict(Outcome.AUTHENTIC, UNREACHABLE)


def document_revoked(found: Verdict, *, revoked_at: datetime | None) -> Verdict:
    """`found` made REVOKED because the issuing department revoked the document it was signed
    for, at `revoked_at`. Only a verdict whose signature verified and that nothing
    worse was found in (AUTHENTIC, EXPIRED) is turned: the rest already refuse the code, and
    say what is more basically wrong with it."""
    if found.payload is None or found.outcome not in (Outcome.AUTHENTIC, Outcome.EXPIRED):
        return found
    return replace(
        found,
        outcome=Outcome.REVOKED,
        reason=DOCUMENT_REVOKED,
        revoked_at=revoked_at,
    )


def document_unsealed(found: Verdict) -> Verdict:
    """`found` refused because the locker's record of the document it was signed for fails
    its row seal (changed by someone without the service's keys: a revocation undone, say).
    Refused as REVOKED is, since that is what the record may have said; only AUTHENTIC and
    EXPIRED verdicts are turned, as in `document_revoked`."""
    if found.payload is None or found.outcome not in (Outcome.AUTHENTIC, Outcome.EXPIRED):
        return found
    return replace(found, outcome=Outcome.REVOKED, reason=DOCUMENT_UNSEALED)
