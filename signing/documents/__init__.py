"""Signed official documents: transfer orders rendered to PDF, PAdES for PDFs, CMS for any file.

Domain code only: the API renders, signs and verifies through these functions.
"""

from signing.documents.cms import sign_detached, sign_digest, verify_detached, verify_digest
from signing.documents.errors import (
    DocumentAltered,
    DocumentSignatureError,
    MalformedSignature,
    UntrustedSigner,
)
from signing.documents.pades import PdfCheck, base_revision, sign_pdf, validate_pdf
from signing.documents.transfer_order import DOCUMENT_TYPE, QR_BOX, TransferOrder, render

__all__ = [
    "DOCUMENT_TYPE",
    "QR_BOX",
    "DocumentAltered",
    "DocumentSignatureError",
    "MalformedSignature",
    "PdfCheck",
    "TransferOrder",
    "UntrustedSigner",
    "base_revision",
    "render",
    "sign_detached",
    "sign_digest",
    "sign_pdf",
    "validate_pdf",
    "verify_detached",
    "verify_digest",
]
