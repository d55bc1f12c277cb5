"""Detached CAdES-B signatures, judged by `openssl cms` both ways: openssl verifies ours, and
verify_detached verifies openssl's."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import cms  # type: ignore[import-untyped]
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from signing.documents import (
    DocumentAltered,
    DocumentSignatureError,
    MalformedSignature,
    UntrustedSigner,
    sign_detached,
    sign_digest,
    verify_detached,
    verify_digest,
)
from signing.errors import SigningError
from signing.pki.profiles import OFFICER_SIGNING, QR_SIGNER
from tests.unit.signing.pki_kit import NOW, Hierarchy, openssl, pem

LATER = NOW + timedelta(minutes=10)
DER = serialization.Encoding.DER
DATA = b"%PDF-1.7 any file at all: a scanned certificate, a CSV, a PDF\x00\xff"


@dataclass(frozen=True)
class Officer:
    pki: Hierarchy
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @classmethod
    def make(cls, pki: Hierarchy) -> Officer:
        key = ec.generate_private_key(ec.SECP256R1())
        return cls(pki, key, pki.issue(OFFICER_SIGNING, "Section Officer", key=key))

    def sign(self, data: bytes) -> bytes:
        return sign_detached(
            data, key=self.key, certificate=self.certificate, chain=[self.pki.issuing]
        )


@pytest.fixture(scope="module")
def officer() -> Officer:
    return Officer.make(Hierarchy.make())


@pytest.fixture(scope="module")
def signature(officer: Officer) -> bytes:
    return officer.sign(DATA)


def verify(officer: Officer, signature: bytes, data: bytes = DATA) -> x509.Certificate:
    return verify_detached(signature, data, trust_roots=[officer.pki.root], now=LATER)


def openssl_verify(
    tmp_path: Path, officer: Officer, signature: bytes, data: bytes = DATA
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "sig.der").write_bytes(signature)
    (tmp_path / "data.bin").write_bytes(data)
    return subprocess.run(
        [
            openssl(),
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            str(tmp_path / "sig.der"),
            "-content",
            str(tmp_path / "data.bin"),
            "-CAfile",
            str(pem(tmp_path / "root.pem", officer.pki.root)),
            "-purpose",
            "any",
            "-out",
            "/dev/null",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def openssl_sign(tmp_path: Path, officer: Officer, *extra: str) -> bytes:
    """A detached signature made by openssl; the key file lives in pytest's tmp dir only."""
    key = tmp_path / "key.pem"
    key.write_bytes(
        officer.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / "data.bin").write_bytes(DATA)
    subprocess.run(
        [
            openssl(),
            "cms",
            "-sign",
            "-binary",
            "-md",
            "sha256",
            "-outform",
            "DER",
            "-in",
            str(tmp_path / "data.bin"),
            "-signer",
            str(pem(tmp_path / "cert.pem", officer.certificate)),
            "-inkey",
            str(key),
            "-certfile",
            str(pem(tmp_path / "issuing.pem", officer.pki.issuing)),
            "-out",
            str(tmp_path / "openssl.der"),
            *extra,
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return (tmp_path / "openssl.der").read_bytes()


# Ours, judged by openssl.


def test_openssl_verifies_our_signature(tmp_path: Path, officer: Officer, signature: bytes) -> None:
    result = openssl_verify(tmp_path, officer, signature)
    assert result.returncode == 0, result.stderr
    assert "Verification successful" in result.stderr


def test_openssl_sees_the_cades_b_attributes(
    tmp_path: Path, officer: Officer, signature: bytes
) -> None:
    (tmp_path / "sig.der").write_bytes(signature)
    printed = subprocess.run(
        [openssl(), "cms", "-cmsout", "-print", "-inform", "DER", "-in", str(tmp_path / "sig.der")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    for attribute in (
        "contentType (1.2.840.113549.1.9.3)",
        "messageDigest (1.2.840.113549.1.9.4)",
        "signingTime (1.2.840.113549.1.9.5)",
        "id-smime-aa-signingCertificateV2 (1.2.840.113549.1.9.16.2.47)",
    ):
        assert f"object: {attribute}" in printed, attribute
    assert "eContent: <ABSENT>" in printed  # detached


def test_the_structure_is_what_cades_b_asks(signature: bytes, officer: Officer) -> None:
    info = cms.ContentInfo.load(signature)
    assert info["content_type"].native == "signed_data"
    signed_data = info["content"]
    assert signed_data["encap_content_info"]["content"].native is None
    (signer,) = signed_data["signer_infos"]
    assert signer["digest_algorithm"]["algorithm"].native == "sha256"
    assert signer["signature_algorithm"]["algorithm"].native == "sha256_ecdsa"
    attributes = {a["type"].native: a["values"][0] for a in signer["signed_attrs"]}
    assert set(attributes) == {
        "content_type",
        "message_digest",
        "signing_time",
        "signing_certificate_v2",
    }
    # signing-certificate-v2 names our certificate by its SHA-256 hash.
    (cert_id,) = attributes["signing_certificate_v2"]["certs"]
    der = officer.certificate.public_bytes(serialization.Encoding.DER)
    assert cert_id["cert_hash"].native == hashlib.sha256(der).digest()
    # The chain travels with it, the root does not: a verifier brings its own.
    carried = {c.chosen.dump() for c in signed_data["certificates"]}
    assert carried == {
        officer.certificate.public_bytes(serialization.Encoding.DER),
        officer.pki.issuing.public_bytes(serialization.Encoding.DER),
    }


def test_round_trip_returns_the_signer(officer: Officer, signature: bytes) -> None:
    assert verify(officer, signature) == officer.certificate


@settings(max_examples=15, deadline=None)
@given(data=st.binary(max_size=2048))
def test_any_bytes_round_trip(officer: Officer, data: bytes) -> None:
    assert verify(officer, officer.sign(data), data) == officer.certificate


# Refusals, each with openssl agreeing where it can judge.


@pytest.mark.parametrize("changed", [DATA[:-1], DATA + b"\n", b"", bytes([DATA[0] ^ 1]) + DATA[1:]])
def test_changed_data_is_refused_by_both(
    tmp_path: Path, officer: Officer, signature: bytes, changed: bytes
) -> None:
    with pytest.raises(DocumentAltered):
        verify(officer, signature, changed)
    result = openssl_verify(tmp_path, officer, signature, changed)
    assert result.returncode != 0
    assert "content verify error" in result.stderr


def test_a_signer_from_another_ca_is_refused_by_both(tmp_path: Path, officer: Officer) -> None:
    stranger = Officer.make(Hierarchy.make())
    signature = stranger.sign(DATA)
    with pytest.raises(UntrustedSigner, match="not trusted"):
        verify(officer, signature)
    result = openssl_verify(tmp_path, officer, signature)
    assert result.returncode != 0
    assert "certificate verify error" in result.stderr


@pytest.mark.parametrize(
    "when", [NOW + timedelta(days=3 * 365), NOW - timedelta(days=1)], ids=["expired", "early"]
)
def test_a_certificate_outside_its_validity_is_refused(
    officer: Officer, signature: bytes, when: datetime
) -> None:
    with pytest.raises(UntrustedSigner):
        verify_detached(signature, DATA, trust_roots=[officer.pki.root], now=when)


def test_a_certificate_without_non_repudiation_is_refused(officer: Officer) -> None:
    """The QR signer's certificate signs QR codes, not documents: it lacks non-repudiation."""
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = officer.pki.issue(QR_SIGNER, "QR signer", key=key)
    signature = sign_detached(DATA, key=key, certificate=certificate, chain=[officer.pki.issuing])
    with pytest.raises(UntrustedSigner):
        verify(officer, signature)


def test_a_swapped_signing_certificate_is_refused(officer: Officer, signature: bytes) -> None:
    """Same key, another certificate: signing-certificate-v2 no longer names it."""
    other = officer.pki.issue(OFFICER_SIGNING, "Impostor", key=officer.key)
    info = cms.ContentInfo.load(signature)
    signed_data = info["content"]
    signed_data["certificates"] = [
        cms.CertificateChoices(
            name="certificate",
            value=cms.Certificate.load(c.public_bytes(serialization.Encoding.DER)),
        )
        for c in (other, officer.pki.issuing)
    ]
    (signer,) = signed_data["signer_infos"]
    signer["sid"] = cms.SignerIdentifier(
        name="issuer_and_serial_number",
        value={
            "issuer": cms.Certificate.load(other.public_bytes(serialization.Encoding.DER)).issuer,
            "serial_number": other.serial_number,
        },
    )
    with pytest.raises(MalformedSignature, match=r"(?i)signing certificate attribute"):
        verify(officer, info.dump(force=True))


def test_openssl_cades_signatures_are_accepted(tmp_path: Path, officer: Officer) -> None:
    signature = openssl_sign(tmp_path, officer, "-cades")
    assert verify(officer, signature) == officer.certificate


def test_plain_cms_without_signing_certificate_v2_is_refused(
    tmp_path: Path, officer: Officer
) -> None:
    signature = openssl_sign(tmp_path, officer)
    assert openssl_verify(tmp_path, officer, signature).returncode == 0  # valid CMS, not CAdES
    with pytest.raises(MalformedSignature, match="signing_certificate_v2"):
        verify(officer, signature)


def test_an_attached_signature_is_refused(tmp_path: Path, officer: Officer) -> None:
    signature = openssl_sign(tmp_path, officer, "-cades", "-nodetach")
    with pytest.raises(MalformedSignature, match="not detached"):
        verify(officer, signature)


@pytest.mark.parametrize(
    "garbage",
    [b"", b"\x30\x00", b"not DER at all", b"\x30\x82\xff\xff" + bytes(64), b"\x00" * 300_000],
)
def test_garbage_is_a_malformed_signature(officer: Officer, garbage: bytes) -> None:
    with pytest.raises(MalformedSignature):
        verify(officer, garbage)


def test_a_truncated_signature_is_malformed(officer: Officer, signature: bytes) -> None:
    with pytest.raises(MalformedSignature):
        verify(officer, signature[:-10])


def test_every_refusal_is_a_signing_error() -> None:
    for kind in (MalformedSignature, DocumentAltered, UntrustedSigner):
        assert issubclass(kind, DocumentSignatureError)
        assert issubclass(kind, SigningError)


def test_a_key_that_is_not_the_certificates_is_refused(officer: Officer) -> None:
    with pytest.raises(ValueError, match="does not belong"):
        sign_detached(
            DATA,
            key=ec.generate_private_key(ec.SECP256R1()),
            certificate=officer.certificate,
            chain=[],
        )


def test_a_signature_checks_against_a_digest_as_against_the_content(
    officer: Officer, signature: bytes
) -> None:
    digest = hashlib.sha256(DATA).digest()
    assert verify_digest(signature, digest, trust_roots=[officer.pki.root], now=LATER) == (
        officer.certificate
    )
    other = hashlib.sha256(DATA + b"!").digest()
    with pytest.raises(DocumentAltered):
        verify_digest(signature, other, trust_roots=[officer.pki.root], now=LATER)
    with pytest.raises(ValueError, match="32 bytes"):
        sign_digest(digest[:16], key=officer.key, certificate=officer.certificate, chain=[])


def test_a_root_passed_in_the_chain_is_still_not_carried(officer: Officer) -> None:
    signature = sign_detached(
        DATA, key=officer.key, certificate=officer.certificate,
        chain=[officer.pki.issuing, officer.pki.root],
    )  # fmt: skip
    carried = cms.ContentInfo.load(signature)["content"]["certificates"]
    root = officer.pki.root.public_bytes(serialization.Encoding.DER)
    assert root not in {c.chosen.dump() for c in carried}
    assert verify(officer, signature) == officer.certificate


def _asn1crypto_encoding(
    signature: bytes, officer: Officer, chain: list[x509.Certificate]
) -> bytes:
    """The same SignedData built object by object with asn1crypto, as sign_digest once did,
    from the values `signature` carries (its signing time, digest and ECDSA signature)."""
    (signer,) = cms.ContentInfo.load(signature)["content"]["signer_infos"]
    values = {a["type"].native: a["values"][0] for a in signer["signed_attrs"]}
    certificate = asn1_x509.Certificate.load(officer.certificate.public_bytes(DER))
    issuer_serial = {"issuer": certificate.issuer, "serial_number": certificate.serial_number}
    attributes = cms.CMSAttributes(
        [
            cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
            cms.CMSAttribute({"type": "signing_time", "values": [values["signing_time"]]}),
            cms.CMSAttribute(
                {"type": "message_digest", "values": [values["message_digest"].native]}
            ),
            cms.CMSAttribute(
                {
                    "type": "signing_certificate_v2",
                    "values": [
                        {
                            "certs": [
                                {
                                    "hash_algorithm": {"algorithm": "sha256"},
                                    "cert_hash": hashlib.sha256(certificate.dump()).digest(),
                                    "issuer_serial": {
                                        "issuer": [
                                            asn1_x509.GeneralName(
                                                {"directory_name": certificate.issuer}
                                            )
                                        ],
                                        "serial_number": certificate.serial_number,
                                    },
                                }
                            ]
                        }
                    ],
                }
            ),
        ]
    )
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier({"issuer_and_serial_number": issuer_serial}),
            "digest_algorithm": {"algorithm": "sha256"},
            "signed_attrs": attributes,
            "signature_algorithm": {"algorithm": "sha256_ecdsa"},
            "signature": signer["signature"].native,
        }
    )
    carried = [certificate] + [asn1_x509.Certificate.load(c.public_bytes(DER)) for c in chain]
    signed_data = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [{"algorithm": "sha256"}],
            "encap_content_info": {"content_type": "data"},
            "certificates": [cms.CertificateChoices({"certificate": c}) for c in carried],
            "signer_infos": [signer_info],
        }
    )
    encoded: bytes = cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()
    return encoded


@pytest.mark.parametrize("with_issuing", [True, False])
def test_the_encoding_is_asn1cryptos_to_the_byte(officer: Officer, with_issuing: bool) -> None:
    """sign_digest assembles its DER from parts encoded once (a seal is made on every issued
    document): the result must be exactly what asn1crypto makes of the same values, lengths in
    the long form, the attributes in DER's SET OF order and the [0] tags included."""
    chain = [officer.pki.issuing] if with_issuing else []
    for data in (b"", DATA, bytes(range(256)) * 64):
        signature = sign_digest(
            hashlib.sha256(data).digest(), key=officer.key, certificate=officer.certificate,
            chain=chain,
        )  # fmt: skip
        assert signature == _asn1crypto_encoding(signature, officer, chain)
        assert cms.ContentInfo.load(signature, strict=True).dump(force=True) == signature
        if with_issuing:  # without it no path reaches the root
            assert verify(officer, signature, data) == officer.certificate
