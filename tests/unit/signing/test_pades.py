"""PAdES-signed transfer orders, judged from outside: poppler's pdfsig checks the signature,
pdftoppm prints the page and zbarimg reads the QR code back; pyHanko's validator (through
validate_pdf) checks trust, coverage and every way a file can be wrong."""

from __future__ import annotations

import asyncio
import hashlib
import io
import random
import re
import subprocess
from collections.abc import Generator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import keys as asn1_keys  # type: ignore[import-untyped]
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import PdfFileWriter
from pyhanko.sign.timestamps import DummyTimeStamper
from pyhanko_certvalidator.registry import SimpleCertificateStore

from signing.documents import (
    DOCUMENT_TYPE,
    QR_BOX,
    PdfCheck,
    base_revision,
    render,
    sign_pdf,
    validate_pdf,
)
from signing.documents.pades import MAX_QR_VERSION, http_timestamper, qr_matrix
from signing.pki.ca import name, new_serial
from signing.pki.profiles import OFFICER_SIGNING, QR_SIGNER
from signing.qr import QrPayload, encode, kid_for, verify
from tests.unit.signing.pki_kit import NOW, Hierarchy
from tests.unit.signing.test_transfer_order import DEPARTMENT, ORDER, tool
from tests.unit.signing.tsa_server import serving

LATER = NOW + timedelta(minutes=10)  # validation after signing; the kit's NOW is import time


@dataclass(frozen=True)
class Signers:
    pki: Hierarchy
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    qr_key: ec.EllipticCurvePrivateKey
    qr_certificate: x509.Certificate

    @classmethod
    def make(cls, pki: Hierarchy) -> Signers:
        key = ec.generate_private_key(ec.SECP256R1())
        qr_key = ec.generate_private_key(ec.SECP256R1())
        return cls(
            pki,
            key,
            pki.issue(OFFICER_SIGNING, "District Education Officer", key=key),
            qr_key,
            pki.issue(QR_SIGNER, "PK-PB QR signer", key=qr_key),
        )

    def sign(self, pdf: bytes, qr_text: str | None, **kwargs: Any) -> bytes:
        return sign_pdf(
            pdf,
            key=self.key,
            certificate=self.certificate,
            chain=[self.pki.issuing],
            qr_text=qr_text,
            **kwargs,
        )

    def qr_for(self, pdf: bytes) -> str:
        """The order's QR text: its fields and the hash of `pdf`, signed by the QR signer."""
        payload = QrPayload(
            document_type=DOCUMENT_TYPE,
            document_hash=hashlib.sha256(pdf).digest(),
            issued_at=NOW.replace(microsecond=0),
            expires_at=None,
            fields=dict(ORDER.qr_fields()),
            issuer="PK-PB",
        )
        der = self.qr_certificate.public_bytes(serialization.Encoding.DER)
        return encode(payload, self.qr_key, kid_for(der))

    def qr_key_for(self, kid: bytes) -> ec.EllipticCurvePublicKey | None:
        der = self.qr_certificate.public_bytes(serialization.Encoding.DER)
        return self.qr_key.public_key() if kid == kid_for(der) else None


@pytest.fixture(scope="module")
def signers() -> Signers:
    return Signers.make(Hierarchy.make())


@pytest.fixture(scope="module")
def rendered() -> bytes:
    return render(ORDER, department=DEPARTMENT)


@pytest.fixture(scope="module")
def qr_text(signers: Signers, rendered: bytes) -> str:
    return signers.qr_for(rendered)


@pytest.fixture(scope="module")
def signed(signers: Signers, rendered: bytes, qr_text: str) -> bytes:
    return signers.sign(rendered, qr_text)


def check(signers: Signers, pdf: bytes, *, now: datetime = LATER) -> PdfCheck:
    return validate_pdf(pdf, trust_roots=[signers.pki.root], now=now)


def pdfsig(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "signed.pdf"
    path.write_bytes(pdf)
    result = subprocess.run(
        [tool("pdfsig"), str(path)], capture_output=True, text=True, check=False, timeout=60
    )
    return result.stdout + result.stderr


def scan(pdf: bytes, tmp_path: Path, dpi: int = 200) -> str:
    """Print the page as poppler would and read the QR with zbar: neither is pyHanko or qrcode."""
    path = tmp_path / "signed.pdf"
    path.write_bytes(pdf)
    subprocess.run(
        [tool("pdftoppm"), "-r", str(dpi), "-png", "-singlefile", str(path), "page"],
        cwd=tmp_path,
        check=True,
        timeout=60,
    )
    zbar = [tool("zbarimg"), "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable"]
    return subprocess.run(
        [*zbar, str(tmp_path / "page.png")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.rstrip("\n")


def signature_dictionary(pdf: bytes) -> generic.DictionaryObject:
    (embedded,) = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    sig_object: generic.DictionaryObject = embedded.sig_object
    return sig_object


def signer_attributes(pdf: bytes) -> tuple[set[str], set[str]]:
    """The types of the signed and unsigned attributes in the PDF's one CMS SignerInfo."""
    (embedded,) = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    info = embedded.signer_info
    signed = {a["type"].native for a in info["signed_attrs"]}
    unsigned = {a["type"].native for a in info["unsigned_attrs"] or []}
    return signed, unsigned


# The good path, judged from outside.


def test_pdfsig_finds_one_valid_signature_over_the_whole_file(
    signed: bytes, tmp_path: Path
) -> None:
    report = pdfsig(signed, tmp_path)
    assert report.count("Signature #") == 1, report
    assert "Signature Validation: Signature is Valid." in report, report
    assert "Total document signed" in report, report
    assert "Signature Type: ETSI.CAdES.detached" in report, report
    assert "Signer Certificate Common Name: District Education Officer" in report, report


def test_validate_pdf_accepts_it(signers: Signers, signed: bytes) -> None:
    result = check(signers, signed)
    assert result == PdfCheck(
        intact=True,
        trusted=True,
        covers_whole_file=True,
        signer=signers.certificate,
        problem=None,
    )
    assert result.ok


def test_the_printed_qr_scans_to_exactly_the_qr_text(
    signers: Signers, signed: bytes, qr_text: str, tmp_path: Path
) -> None:
    scanned = scan(signed, tmp_path)
    assert scanned == qr_text
    # And the scanned code is the one for this file: its hash is SHA-256 of revision 0.
    payload = verify(scanned, signers.qr_key_for, LATER)
    assert payload.document_hash == hashlib.sha256(base_revision(signed)).digest()
    assert payload.fields == ORDER.qr_fields()


def test_the_qr_is_level_q_and_within_the_printable_version(qr_text: str) -> None:
    matrix = qr_matrix(qr_text)
    version = (len(matrix) - 8 - 17) // 4
    assert version <= MAX_QR_VERSION
    # Level Q is part of the format information zbar needs, so a scan proves the code is
    # well-formed; here the level itself: bits 14-13 of the format info, 11 for Q.
    format_bits = [matrix[4 + 8][4 + col] for col in (0, 1)]
    assert format_bits == [False, True]  # 0b11 XOR mask 0b10 = 0b01, left to right


def test_base_revision_is_exactly_the_render(signed: bytes, rendered: bytes) -> None:
    assert base_revision(signed) == rendered
    assert hashlib.sha256(base_revision(signed)).digest() == hashlib.sha256(rendered).digest()
    assert base_revision(rendered) == rendered


def test_base_revision_is_not_fooled_by_eof_markers_inside_revision_0(
    signers: Signers, tmp_path: Path
) -> None:
    """An authority named "%%EOF" puts those bytes in the Info dictionary, in plain text, ahead
    of revision 0's real end: a search for the first %%EOF would cut the file there."""
    order = replace(ORDER, authority="Director %%EOF Lahore")
    pdf = render(order, department=DEPARTMENT)
    assert pdf.count(b"%%EOF") == 2
    signed = signers.sign(pdf, signers.qr_for(pdf))
    assert base_revision(signed) == pdf
    assert check(signers, signed).ok


def test_the_signature_is_pades_b_b_and_certifies_no_changes(signed: bytes) -> None:
    signed_attrs, unsigned_attrs = signer_attributes(signed)
    # PAdES: signing-certificate-v2 is required and signing-time forbidden (the time is /M).
    assert signed_attrs == {"content_type", "message_digest", "signing_certificate_v2"}
    assert unsigned_attrs == set()
    sig = signature_dictionary(signed)
    assert sig["/SubFilter"] == "/ETSI.CAdES.detached"
    (reference,) = sig["/Reference"]
    assert reference["/TransformMethod"] == "/DocMDP"
    assert reference["/TransformParams"]["/P"] == 1


def test_the_widget_is_the_qr_box_and_prints(signed: bytes) -> None:
    reader = PdfFileReader(io.BytesIO(signed))
    (widget,) = [a.get_object() for a in reader.root["/Pages"]["/Kids"][0]["/Annots"]]
    assert [int(v) for v in widget["/Rect"]] == list(QR_BOX)
    assert int(widget["/F"]) & 4  # the Print flag: the QR appears on paper


# pyHanko's PDF object constructors are unannotated; through Any, mypy lets them be called.
pdf_objects: Any = generic
pdf_writer: Any = PdfFileWriter


def simple_page(writer: PdfFileWriter, text: str) -> generic.DictionaryObject:
    """A one-line A4 page dictionary, for pyHanko's writer (not fpdf2) to insert."""
    name = generic.pdf_name
    font = pdf_objects.DictionaryObject(
        {
            name("/Type"): name("/Font"),
            name("/Subtype"): name("/Type1"),
            name("/BaseFont"): name("/Helvetica"),
        }
    )
    stream = generic.StreamObject(
        stream_data=b"BT /F1 14 Tf 72 760 Td (%s) Tj ET" % text.encode("latin-1")
    )
    page: generic.DictionaryObject = pdf_objects.DictionaryObject(
        {
            name("/Type"): name("/Page"),
            name("/MediaBox"): generic.ArrayObject(
                [pdf_objects.NumberObject(n) for n in (0, 0, 595, 842)]
            ),
            name("/Resources"): pdf_objects.DictionaryObject(
                {name("/Font"): pdf_objects.DictionaryObject({name("/F1"): font})}
            ),
            name("/Contents"): writer.add_object(stream),
        }
    )
    return page


# Tampering, appending, and untrusted signers.


def _flip(pdf: bytes, old: bytes, new: bytes, *, start: int = 0) -> bytes:
    at = pdf.index(old, start)
    assert len(old) == len(new)
    return pdf[:at] + new + pdf[at + len(old) :]


def test_a_changed_byte_in_revision_0_breaks_it(
    signers: Signers, signed: bytes, tmp_path: Path
) -> None:
    tampered = _flip(signed, b"/Creator (Shanakht)", b"/Creator (Shanakhu)")
    result = check(signers, tampered)
    assert not result.intact
    assert not result.ok
    assert result.problem == "the signed bytes do not match the signature"
    assert "Signature Validation: Digest Mismatch." in pdfsig(tampered, tmp_path)


def test_a_changed_byte_in_the_signed_update_breaks_it(
    signers: Signers, signed: bytes, rendered: bytes, tmp_path: Path
) -> None:
    rect = re.search(rb"/Rect \[\s*411", signed[len(rendered) :])
    assert rect is not None
    start = len(rendered) + rect.end() - 3
    tampered = signed[:start] + b"412" + signed[start + 3 :]
    result = check(signers, tampered)
    assert not result.intact
    assert result.problem == "the signed bytes do not match the signature"
    assert "Signature Validation: Digest Mismatch." in pdfsig(tampered, tmp_path)


def test_an_update_after_signing_is_caught_though_revision_0_is_unchanged(
    signers: Signers, signed: bytes, rendered: bytes
) -> None:
    """Why a verifier needs validate_pdf as well as the QR's hash of revision 0."""
    writer = IncrementalPdfFileWriter(io.BytesIO(signed))
    writer.root["/PageLayout"] = generic.NameObject("/SinglePage")
    writer.update_root()  # type: ignore[no-untyped-call]
    out = io.BytesIO()
    writer.write(out)  # type: ignore[no-untyped-call]
    appended = out.getvalue()
    assert base_revision(appended) == rendered
    result = check(signers, appended)
    assert result.intact
    assert not result.covers_whole_file
    assert result.problem == "the file was changed after it was signed"
    assert not result.ok


def test_a_signer_from_another_ca_is_not_trusted(signers: Signers, rendered: bytes) -> None:
    stranger = Signers.make(Hierarchy.make())
    signed = stranger.sign(rendered, stranger.qr_for(rendered))
    result = check(signers, signed)
    assert result.intact
    assert result.covers_whole_file
    assert not result.trusted
    assert result.signer == stranger.certificate
    assert result.problem is not None
    assert "not trusted" in result.problem
    # Sanity: its own root does vouch for it.
    assert validate_pdf(signed, trust_roots=[stranger.pki.root], now=LATER).ok


@pytest.mark.parametrize(
    "when",
    [NOW + timedelta(days=3 * 365), NOW - timedelta(days=1)],
    ids=["expired", "not-yet-valid"],
)
def test_a_certificate_outside_its_validity_at_now_is_not_trusted(
    signers: Signers, signed: bytes, when: datetime
) -> None:
    result = check(signers, signed, now=when)
    assert result.intact
    assert not result.trusted
    assert result.problem is not None
    assert "not trusted" in result.problem


def _zeroed_signature(signed: bytes, rendered: bytes) -> bytes:
    contents = re.search(rb"/Contents <([0-9a-fA-F]+)>", signed[len(rendered) :])
    assert contents is not None
    start, end = (len(rendered) + contents.start(1), len(rendered) + contents.end(1))
    return signed[:start] + b"0" * (end - start) + signed[end:]


@pytest.mark.parametrize(
    "damage",
    ["empty", "text", "header-only", "random", "unsigned", "half", "no-eof", "zeroed-cms"],
)
def test_broken_or_unsigned_files_give_a_problem_not_an_exception(
    signers: Signers, signed: bytes, rendered: bytes, damage: str
) -> None:
    pdf = {
        "empty": b"",
        "text": b"this is not a PDF",
        "header-only": b"%PDF-1.7\n",
        "random": random.Random(7).randbytes(4096),
        "unsigned": rendered,
        "half": signed[: len(signed) // 2],
        "no-eof": signed[:-7],
        "zeroed-cms": _zeroed_signature(signed, rendered),
    }[damage]
    result = check(signers, pdf)
    assert isinstance(result, PdfCheck)
    assert not result.ok
    assert not result.intact
    assert result.problem
    if damage == "unsigned":
        assert result.problem == "expected one signature, found 0"


@pytest.mark.parametrize("pdf", [b"", b"not a pdf", b"%PDF-1.7\n%%EOF\n"])
def test_base_revision_of_a_non_pdf_is_a_value_error(pdf: bytes) -> None:
    with pytest.raises(ValueError, match="PDF"):
        base_revision(pdf)


def test_a_naive_now_is_a_callers_bug(signers: Signers, signed: bytes) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        validate_pdf(signed, trust_roots=[signers.pki.root], now=datetime(2026, 3, 14))


async def _validate_in_a_loop(signers: Signers, signed: bytes) -> PdfCheck:
    return check(signers, signed)


def test_inside_an_event_loop_it_refuses_rather_than_reporting_a_bad_signature(
    signers: Signers, signed: bytes
) -> None:
    with pytest.raises(RuntimeError, match="from a thread"):
        asyncio.run(_validate_in_a_loop(signers, signed))


def test_a_first_revision_with_an_xref_stream_is_found_too(signers: Signers) -> None:
    """fpdf2 writes a classic xref table; other producers write xref streams (PDF 1.5+)."""
    writer: PdfFileWriter = pdf_writer(stream_xrefs=True)
    writer.insert_page(simple_page(writer, "An order from elsewhere"))  # type: ignore[no-untyped-call]
    out = io.BytesIO()
    writer.write(out)  # type: ignore[no-untyped-call]
    original = out.getvalue()
    assert b"/XRef" in original
    signed = signers.sign(original, None)
    assert base_revision(signed) == original
    assert check(signers, signed).ok


# Signing options and refusals.


def test_without_qr_text_the_signature_is_invisible(signers: Signers, rendered: bytes) -> None:
    signed = signers.sign(rendered, None)
    assert check(signers, signed).ok
    reader = PdfFileReader(io.BytesIO(signed))
    (widget,) = [a.get_object() for a in reader.root["/Pages"]["/Kids"][0]["/Annots"]]
    assert [int(v) for v in widget["/Rect"]] == [0, 0, 0, 0]


def test_a_qr_text_too_long_to_print_is_refused(signers: Signers, rendered: bytes) -> None:
    with pytest.raises(ValueError, match="version"):
        signers.sign(rendered, "SHK1:" + "A" * 1200)


def test_a_key_that_is_not_the_certificates_is_refused(signers: Signers, rendered: bytes) -> None:
    with pytest.raises(ValueError, match="does not belong"):
        sign_pdf(
            rendered,
            key=ec.generate_private_key(ec.SECP256R1()),
            certificate=signers.certificate,
            chain=[signers.pki.issuing],
        )


def test_signing_a_non_pdf_raises(signers: Signers) -> None:
    with pytest.raises(ValueError, match="not a readable PDF"):
        signers.sign(b"not a pdf at all", None)


# PAdES B-T: a time-stamp from an RFC 3161 authority over HTTP.


def _tsa_certificate(pki: Hierarchy) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """pyHanko's test TSA signs with RSA only; RFC 3161 asks for a critical timeStamping EKU."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=True,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name("Punjab Test TSA"))
        .issuer_name(pki.issuing.subject)
        .public_key(key.public_key())
        .serial_number(new_serial())
        .not_valid_before(NOW - timedelta(minutes=5))
        .not_valid_after(NOW + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(pki.issuing_key, hashes.SHA256())
    )
    return certificate, key


def _asn1(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


@pytest.fixture
def tsa_url(signers: Signers) -> Iterator[str]:
    yield from _serve_tsa(signers.pki)


def _serve_tsa(pki: Hierarchy) -> Generator[str, None, None]:
    certificate, key = _tsa_certificate(pki)
    store = SimpleCertificateStore()  # type: ignore[no-untyped-call]
    store.register(_asn1(pki.issuing))
    stamper = DummyTimeStamper(
        tsa_cert=_asn1(certificate),
        tsa_key=asn1_keys.PrivateKeyInfo.load(
            key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        ),
        certs_to_embed=store,
    )

    def respond(body: bytes) -> bytes:
        return bytes(stamper.request_tsa_response(tsp.TimeStampReq.load(body)).dump())

    with serving(respond) as url:
        yield url


def test_with_a_tsa_the_signature_is_pades_b_t(
    signers: Signers, rendered: bytes, qr_text: str, tsa_url: str, tmp_path: Path
) -> None:
    signed = signers.sign(rendered, qr_text, timestamper=http_timestamper(tsa_url))
    _, unsigned_attrs = signer_attributes(signed)
    assert unsigned_attrs == {"signature_time_stamp_token"}
    assert check(signers, signed, now=datetime.now(UTC) + timedelta(minutes=1)).ok
    assert "Signature is Valid." in pdfsig(signed, tmp_path)
    assert scan(signed, tmp_path) == qr_text
    assert base_revision(signed) == rendered


def test_a_time_stamp_from_an_untrusted_authority_is_a_problem(
    signers: Signers, rendered: bytes, qr_text: str
) -> None:
    other_tsa = _serve_tsa(Hierarchy.make())
    url = next(other_tsa)
    try:
        signed = signers.sign(rendered, qr_text, timestamper=http_timestamper(url))
    finally:
        other_tsa.close()
    result = check(signers, signed, now=datetime.now(UTC) + timedelta(minutes=1))
    assert result.intact
    assert result.trusted  # the signer is; the time-stamp's authority is not
    assert result.problem is not None
    assert "time-stamp" in result.problem
    assert not result.ok


def test_an_unreachable_tsa_fails_the_signing(signers: Signers, rendered: bytes) -> None:
    with pytest.raises(OSError, match="timestamp service"):
        signers.sign(rendered, None, timestamper=http_timestamper("http://127.0.0.1:9/tsa"))
