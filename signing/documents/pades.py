"""PAdES signatures on rendered orders, with the order's QR code as the signature's appearance.

The order of operations is what makes a printed copy checkable:

1. `transfer_order.render` produces revision 0 of the PDF, with QR_BOX left empty.
2. The QR payload is built around SHA-256(revision 0) and signed (signing.qr).
3. `sign_pdf` appends one incremental update: a signature field over QR_BOX whose appearance is
   that QR code, and a PAdES signature (B-B, or B-T with a time-stamp authority) over the whole
   file, revision 0 and stamp together.

A verifier of the file recomputes SHA-256(`base_revision(file)`) and compares it with the QR's
hash, and checks the PDF signature with `validate_pdf`. Both are needed: the hash proves the
page is the one the QR was issued for, and the signature (`covers_whole_file`) proves nothing
was appended after it, since revision 0 stays intact inside any file that extends it.

pyHanko's synchronous entry points run their own event loop (`asyncio.run`): call these
functions from a thread, not from inside a running loop.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import qrcode
import qrcode.constants
from asn1crypto import tsp  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from pyhanko.pdf_utils import generic, layout
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import BasePdfFileWriter
from pyhanko.pdf_utils.xref import XRefSectionType
from pyhanko.sign import fields, signers
from pyhanko.sign.timestamps import HTTPTimeStamper, TimeStamper
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import PdfSignatureStatus, SignatureCoverageLevel
from pyhanko.stamp.base import BaseStamp, BaseStampStyle

from signing.documents.cms import (
    crypto_certificate,
    outside_event_loop,
    simple_signer,
    trust_problem,
    validation_context,
)
from signing.documents.transfer_order import QR_BOX
from signing.tsa import TimeStampAuthority

FIELD_NAME = "Signature1"
DIGEST = "sha256"
QR_BORDER = 4  # modules of quiet zone, as ISO/IEC 18004 asks
MAX_QR_VERSION = 20  # 97 modules and the quiet zone in a 45 mm square: 0.43 mm a module
TSA_TIMEOUT_SECONDS = 10
MAX_PDF_BYTES = 64 * 1024 * 1024

# The QR code as the signature's appearance.


def qr_matrix(text: str) -> list[list[bool]]:
    """The modules of `text` at error correction Q, quiet zone included, dark as True.

    Level Q (25% of the code words can be lost) because a printed order gets folded, stamped
    and photocopied. Refused above MAX_QR_VERSION, where the modules in a 45 mm square become
    too small for a phone to read off paper.
    """
    if not text:
        raise ValueError("the QR text is empty")
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_Q, border=QR_BORDER)
    qr.add_data(text)
    qr.make(fit=True)
    if qr.version > MAX_QR_VERSION:
        raise ValueError(
            f"the QR text needs version {qr.version} at level Q; at most {MAX_QR_VERSION} "
            "scans from a printed 45 mm square"
        )
    matrix: list[list[bool]] = qr.get_matrix()
    return matrix


def qr_drawing(matrix: Sequence[Sequence[bool]], width: float, height: float) -> bytes:
    """PDF content drawing `matrix` as large as fits, centred, on white.

    Each run of dark modules in a row is one rectangle, not one per module: fewer bytes, and no
    hairline seams where a rasteriser anti-aliases the shared edges of adjacent squares.
    """
    size = len(matrix)
    scale = min(width, height) / size
    x0 = (width - scale * size) / 2
    y0 = (height - scale * size) / 2
    rects = []
    for row_index, row in enumerate(matrix):
        y = size - 1 - row_index  # PDF's y axis points up, the matrix's rows go down
        col = 0
        while col < size:
            if not row[col]:
                col += 1
                continue
            start = col
            while col < size and row[col]:
                col += 1
            rects.append(b"%d %d %d 1 re" % (start, y, col - start))
    return b"\n".join(
        [
            b"q 1 g 0 0 %s %s re f Q" % (_num(width), _num(height)),
            b"q 0 g %s 0 0 %s %s %s cm" % (_num(scale), _num(scale), _num(x0), _num(y0)),
            *rects,
            b"f Q",
        ]
    )


def _num(value: float) -> bytes:
    """A PDF real: fixed point, since PDF has no exponent notation for %g to fall into."""
    return (b"%.4f" % value).rstrip(b"0").rstrip(b".")


@dataclass(frozen=True)
class QrStampStyle(BaseStampStyle):
    """A stamp that is nothing but a QR code filling the signature's box, with no border.

    pyHanko's own QRStampStyle is not used: it fixes error correction at M, adds text, and
    makes the code a /Link whose URI is the QR text, which here is not a URL. The matrix is
    made once, before signing, since qrcode's mask selection is most of the signing time.
    """

    matrix: tuple[tuple[bool, ...], ...] = ()
    border_width: int = 0

    @classmethod
    def for_text(cls, text: str) -> QrStampStyle:
        return cls(matrix=tuple(tuple(row) for row in qr_matrix(text)))

    def create_stamp(
        self, writer: BasePdfFileWriter, box: layout.BoxConstraints, text_params: dict[str, Any]
    ) -> QrStamp:
        return QrStamp(writer, self, box)


class QrStamp(BaseStamp):
    """The QR code drawn into the signature widget's appearance stream."""

    def _render_inner_content(self) -> list[bytes]:
        box = self.box
        if not (box.width_defined and box.height_defined):
            raise layout.LayoutError("the QR stamp needs the signature field's box")
        return [qr_drawing(self.style.matrix, box.width, box.height)]

    def as_form_xobject(self) -> generic.StreamObject:
        """Deflated: a version-19 code is some 28 kB of drawing operators, 6 kB deflated."""
        xobject = super().as_form_xobject()
        xobject.compress()  # type: ignore[no-untyped-call]
        return xobject


# Signing.


def http_timestamper(url: str) -> TimeStamper:
    """A time-stamp authority elsewhere, by RFC 3161's HTTP binding."""
    return HTTPTimeStamper(url, timeout=TSA_TIMEOUT_SECONDS)


class LocalTimeStamper(TimeStamper):
    """pyHanko's stamper over the service's own authority, with no HTTP in between: the
    embedded default, when no outside TSA is configured."""

    def __init__(self, authority: TimeStampAuthority) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._authority = authority

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        return tsp.TimeStampResp.load(self._authority.respond(req.dump()))


def sign_pdf(
    pdf: bytes,
    *,
    key: ec.EllipticCurvePrivateKey,
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate],
    qr_text: str | None = None,
    timestamper: TimeStamper | None = None,
) -> bytes:
    """`pdf` with one incremental update: a PAdES signature, visible as the QR code of `qr_text`.

    The QR is stamped into QR_BOX on the first page; with no `qr_text` the signature is
    invisible. PAdES B-B, or B-T with a `timestamper` (`http_timestamper(url)`, or
    `LocalTimeStamper` over the service's own RFC 3161 authority).
    The signature certifies the document with no changes allowed (DocMDP P=1): an official order
    is final once signed, and readers show it as certified, not merely signed.

    Raises ValueError for a PDF pyHanko cannot read or a QR too large to print, and pyHanko's
    TimestampRequestError (an OSError) when the time-stamp authority does not answer.
    """
    if not isinstance(pdf, bytes):
        raise TypeError("sign_pdf signs bytes")
    outside_event_loop()
    stamp = None if qr_text is None else QrStampStyle.for_text(qr_text)
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=True)
    except Exception as exc:  # pyHanko raises what its parser meets: PdfReadError and others
        raise ValueError(f"not a readable PDF: {exc}") from None
    pdf_signer = signers.PdfSigner(
        signers.PdfSignatureMetadata(
            field_name=FIELD_NAME,
            md_algorithm=DIGEST,
            subfilter=fields.SigSeedSubFilter.PADES,
            certify=True,
            docmdp_permissions=fields.MDPPerm.NO_CHANGES,
        ),
        simple_signer(key, certificate, chain),
        timestamper=timestamper,
        stamp_style=stamp,
        new_field_spec=fields.SigFieldSpec(
            sig_field_name=FIELD_NAME,
            on_page=0,
            box=None if stamp is None else QR_BOX,
        ),
    )
    output = pdf_signer.sign_pdf(writer, output=io.BytesIO())
    signed: bytes = output.getvalue()
    return signed


# Revision 0.

_WS = rb"[\x00\t\n\x0c\r ]"
# pyHanko's table parser stops after the "trailer" keyword, or before it: accept both.
_TRAILER = re.compile(_WS + rb"*(?:trailer)?" + _WS + rb"*(?=<<)")
_ENDOBJ = re.compile(_WS + rb"*endobj")
_TAIL = re.compile(_WS + rb"*startxref" + _WS + rb"+(\d+)" + _WS + rb"+%%EOF(?:\r\n|\r|\n)?")


def _reader(pdf: bytes) -> PdfFileReader:
    if not isinstance(pdf, bytes) or not pdf:
        raise ValueError("not a PDF: no bytes")
    if len(pdf) > MAX_PDF_BYTES:
        raise ValueError(f"larger than {MAX_PDF_BYTES} bytes")
    try:
        return PdfFileReader(io.BytesIO(pdf), strict=True)
    except Exception as exc:  # pyHanko raises what its parser meets: PdfReadError and others
        raise ValueError(f"not a readable PDF: {exc}") from None


def _end_of_first_revision(pdf: bytes, reader: PdfFileReader) -> int:
    """Where revision 0 ends: just after the %%EOF (and its end of line) that closes it.

    Anchored on what pyHanko's parser already found, not on a search: it knows where revision
    0's cross-reference section ends, and from there the only things a revision may hold are its
    trailer dictionary (read with pyHanko's own object parser, so a "%%EOF" inside a string in
    it is just a string), then "startxref", the offset of that same section, and "%%EOF". A
    search for the first "%%EOF" would cut inside any string or stream containing those five
    bytes, such as an author's name; a search for the last would take the signature's revision.
    """
    info = reader.xrefs.get_xref_container_info(0)
    position = info.end_location
    if info.xref_section_type in (XRefSectionType.STANDARD, XRefSectionType.HYBRID_MAIN):
        trailer = _TRAILER.match(pdf, position)
        if trailer is None:
            raise ValueError("revision 0's cross-reference table is not followed by a trailer")
        container = reader.trailer.container_ref
        if container is None:
            raise ValueError("the reader has no trailer")
        stream = io.BytesIO(pdf)
        stream.seek(trailer.end())
        generic.DictionaryObject.read_from_stream(stream, container)
        position = stream.tell()
    else:
        endobj = _ENDOBJ.match(pdf, position)
        position = endobj.end() if endobj else position
    tail = _TAIL.match(pdf, position)
    if tail is None or int(tail.group(1)) != info.declared_startxref:
        raise ValueError("revision 0 does not end with startxref and %%EOF where it should")
    return tail.end()


def base_revision(signed_pdf: bytes) -> bytes:
    """The bytes of the PDF's first revision: for a signed order, exactly what `render` made.

    The QR carries SHA-256 of these bytes. Raises ValueError if the file cannot be read as a
    PDF or its first revision does not end where a revision should.
    """
    reader = _reader(signed_pdf)
    try:
        end = _end_of_first_revision(signed_pdf, reader)
    except ValueError:
        raise
    except Exception as exc:  # the trailer parser's errors, whatever their class
        raise ValueError(f"cannot find where revision 0 ends: {exc}") from None
    return signed_pdf[:end]


# Validation.


@dataclass(frozen=True, slots=True)
class PdfCheck:
    """What a PDF signature check found. `ok` only if intact, trusted and covering everything.

    intact: the signed bytes hash to the signed digest and the CMS signature verifies over it.
    trusted: the signer's certificate chains to a trust root, valid at the time given (offline:
    revocation is not checked). covers_whole_file: the signature's byte range is the whole
    file, so nothing was appended after signing. signer: the certificate in the signature (as
    claimed, even when not trusted). problem: the first thing wrong, in words, or None.
    """

    intact: bool
    trusted: bool
    covers_whole_file: bool
    signer: x509.Certificate | None
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.intact and self.trusted and self.covers_whole_file and self.problem is None

    @classmethod
    def failed(cls, problem: str) -> PdfCheck:
        return cls(False, False, False, None, problem)


def validate_pdf(
    signed_pdf: bytes, *, trust_roots: Sequence[x509.Certificate], now: datetime
) -> PdfCheck:
    """Check the one signature of `signed_pdf`, offline, against `trust_roots` at `now`.

    Never raises for what is in the file: an unreadable, unsigned or oddly signed PDF gives a
    PdfCheck with `problem` set. (A naive `now` is a caller's bug and raises ValueError.)
    """
    outside_event_loop()
    context = validation_context(trust_roots, now)
    try:
        reader = _reader(signed_pdf)
    except ValueError as exc:
        return PdfCheck.failed(str(exc))
    try:
        signatures = [s for s in reader.embedded_signatures if s.sig_object_type == "/Sig"]
    except Exception as exc:  # a broken form or signature dictionary is a finding, not a crash
        return PdfCheck.failed(f"the PDF's signature fields cannot be read: {exc}")
    if len(signatures) != 1:
        return PdfCheck.failed(f"expected one signature, found {len(signatures)}")
    try:
        status = validate_pdf_signature(signatures[0], signer_validation_context=context)
    except Exception as exc:  # a malformed signature dictionary or CMS object
        return PdfCheck.failed(f"the signature cannot be checked: {exc}")
    intact = bool(status.intact and status.valid)
    covers = status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    return PdfCheck(
        intact=intact,
        trusted=trust_problem(status) is None,
        covers_whole_file=covers,
        signer=crypto_certificate(status.signing_cert),
        problem=_first_problem(status, intact=intact, covers=covers),
    )


def _first_problem(status: PdfSignatureStatus, *, intact: bool, covers: bool) -> str | None:
    """The gravest finding first: changed bytes, then appended changes, then trust."""
    if not intact:
        return "the signed bytes do not match the signature"
    if not covers:
        return "the file was changed after it was signed"
    stamp = status.timestamp_validity
    if stamp is not None and not (stamp.intact and stamp.valid and stamp.trusted):
        return "the signature's time-stamp does not verify, or its authority is not trusted"
    return trust_problem(status)
