"""An official order from fields to a signed PDF with its QR, in the one order that works:

render the order (revision 0) -> hash it -> sign the QR payload (key fields, that hash, times)
with the department's QR signer -> stamp the QR and sign the PDF (PAdES) with the officer's
certificate, in one incremental update. The QR therefore vouches for the rendered order and
the PAdES signature for everything, QR included.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pyhanko.sign.timestamps import TimeStamper

from signing.documents.pades import sign_pdf
from signing.documents.transfer_order import DOCUMENT_TYPE, TransferOrder, render
from signing.qr import QrPayload, encode, kid_for
from signing.qr.payload import FieldValue

ISSUER = "PK-PB"  # the province, as the QR's iss names it


@dataclass(frozen=True, slots=True)
class Signer:
    """A key and its certificate, with the chain up to (not including) the root."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    chain: Sequence[x509.Certificate]


@dataclass(frozen=True, slots=True)
class SignedOrder:
    pdf: bytes
    qr_text: str
    document_hash: bytes


def sign_transfer_order(
    order: TransferOrder,
    *,
    department: str,
    officer: Signer,
    qr_signer: Signer,
    now: datetime,
    valid_for: timedelta | None = None,
    timestamper: TimeStamper | None = None,
) -> SignedOrder:
    rendered = render(order, department=department)
    digest = hashlib.sha256(rendered).digest()
    issued_at = now.replace(microsecond=0)
    payload = QrPayload(
        document_type=DOCUMENT_TYPE,
        document_hash=digest,
        issued_at=issued_at,
        expires_at=issued_at + valid_for if valid_for else None,
        issuer=ISSUER,
        fields=dict[str, FieldValue](order.qr_fields()),
    )
    kid = kid_for(qr_signer.certificate.public_bytes(serialization.Encoding.DER))
    text = encode(payload, qr_signer.key, kid)
    pdf = sign_pdf(
        rendered,
        key=officer.key,
        certificate=officer.certificate,
        chain=officer.chain,
        qr_text=text,
        timestamper=timestamper,
    )
    return SignedOrder(pdf, text, digest)
