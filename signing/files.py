"""Verifying what a verifier is handed: a photo of an order, a scan, or the signed PDF itself.

The QR is read with zxing-cpp (an independent decoder, not the library that drew it), from
the image, or from the PDF's first page rendered by PDFium. For a PDF the verdict also needs
the file itself to hold: the QR's hash must be that of the PDF's first revision (the order as
rendered, before the QR stamp and signature were added), and the PAdES signature over the
whole file must be intact and chain to the root.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace
from datetime import datetime

import pypdfium2
import zxingcpp
from cryptography import x509
from PIL import Image

from signing.documents.pades import PdfCheck, base_revision, validate_pdf
from signing.errors import SigningError
from signing.trustlist import TrustList
from signing.verdict import Outcome, StatusCheck, Verdict, verify_qr

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a 40-megapixel photo; more is a decompression bomb, not a camera
RENDER_SCALE = 200 / 72  # 200 dpi: a 45 mm QR of up to 97 modules gets 3+ pixels a module
PDF, PNG, JPEG = "pdf", "png", "jpeg"
_MAGIC = {b"%PDF-": PDF, b"\x89PNG\r\n\x1a\n": PNG, b"\xff\xd8\xff": JPEG}
PDF_ALTERED = "The PDF has been changed since it was signed, or its signature is not ours."
PDF_SIGNER_REVOKED = "The officer's certificate that signed this PDF has been revoked."


class UnreadableFile(SigningError):
    """Not a PNG, JPEG or PDF this verifier can open, or too large."""


class NoQrCode(SigningError):
    """The image or page shows no QR code that can be read."""


@dataclass(frozen=True)
class FileVerdict:
    verdict: Verdict
    kind: str
    qr_text: str
    pdf: PdfCheck | None = None


def kind_of(data: bytes) -> str:
    for magic, kind in _MAGIC.items():
        if data.startswith(magic):
            return kind
    raise UnreadableFile("send a PNG or JPEG photo, or the PDF")


def read_qr(data: bytes) -> str:
    """The text of the QR code on an image or on a PDF's first page."""
    if len(data) > MAX_FILE_BYTES:
        raise UnreadableFile(f"files are at most {MAX_FILE_BYTES // (1024 * 1024)} MB")
    image = _page_image(data) if kind_of(data) == PDF else _photo(data)
    found = [r for r in zxingcpp.read_barcodes(image) if r.format == zxingcpp.BarcodeFormat.QRCode]
    if not found:
        raise NoQrCode("no QR code could be read: photograph it flat, in focus and in full")
    return str(found[0].text)


def _photo(data: bytes) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.width * opened.height > MAX_PIXELS:
                raise UnreadableFile("the image is too large")
            return opened.convert("L")
    except UnreadableFile:
        raise
    except (ValueError, SyntaxError, OSError, Image.DecompressionBombError) as exc:
        # PIL reports a damaged file as any of these (SyntaxError for a broken PNG).
        raise UnreadableFile("the image cannot be opened") from exc


def _page_image(data: bytes) -> Image.Image:
    try:
        document = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as exc:
        raise UnreadableFile("the PDF cannot be opened") from exc
    try:
        if len(document) == 0:
            raise UnreadableFile("the PDF has no pages")
        document.init_forms()  # the QR is the signature field's appearance: a form widget
        page = document[0]
        width, height = page.get_size()  # points
        if width <= 0 or height <= 0:
            raise UnreadableFile("the PDF's first page has no size")
        # A page may declare any size; render it at 200 dpi only up to MAX_PIXELS, so a tiny
        # file with a page the size of a field cannot make us allocate gigabytes.
        scale = min(RENDER_SCALE, math.sqrt(MAX_PIXELS / (width * height)))
        bitmap = page.render(scale=scale, grayscale=True, may_draw_forms=True)
        image: Image.Image = bitmap.to_pil()
        return image
    except pypdfium2.PdfiumError as exc:
        raise UnreadableFile("the PDF's first page cannot be drawn") from exc
    finally:
        document.close()


def check_file(
    data: bytes,
    trust: TrustList,
    *,
    root: x509.Certificate,
    now: datetime,
    status: StatusCheck | None = None,
) -> FileVerdict:
    """The verdict on a photo or PDF: its QR's, and for a PDF the file's own signature too."""
    kind = kind_of(data)
    text = read_qr(data)
    if kind != PDF:
        return FileVerdict(verify_qr(text, trust, now=now, status=status), kind, text)
    pdf = validate_pdf(data, trust_roots=[root], now=now)
    try:
        original = base_revision(data)
    except ValueError:
        original = data  # no earlier revision to hash: the QR's hash will not match it
    verdict = verify_qr(text, trust, now=now, document=original, status=status)
    if verdict.authentic and not pdf.ok:
        verdict = replace(verdict, outcome=Outcome.ALTERED, reason=PDF_ALTERED)
    elif (
        verdict.authentic
        and status is not None
        and pdf.signer is not None
        and _status_of(status, pdf.signer) == "revoked"
    ):
        verdict = replace(verdict, outcome=Outcome.REVOKED, reason=PDF_SIGNER_REVOKED)
    return FileVerdict(verdict, kind, text, pdf)


def _status_of(status: StatusCheck, certificate: x509.Certificate) -> str:
    """The online answer for the PDF's signer; unreachable counts as no answer (the QR's
    verdict already says whether the online check could be made)."""
    try:
        return status(certificate)
    except Exception:  # a network or database failure is not a verdict on the certificate
        return "unknown"
