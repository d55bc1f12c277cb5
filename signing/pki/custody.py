"""The root CA's key: encrypted under a passphrase, in a directory of its own.

The root signs only issuing CAs (every ten years or on compromise), so it can live offline:
`shanakht pki init --root-dir /media/usb/root` writes it there, and nothing else ever reads
it. The key is PKCS#8 encrypted with PBES2 (`BestAvailableEncryption`: a memory-hard or
iterated KDF and AES-256, as `cryptography` chooses), which openssl reads too, so the key can
be audited or moved into an HSM with standard tools.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from signing.errors import SigningError
from signing.pki.ca import make_root, name

KEY_FILE = "root-ca.key.pem"
CERTIFICATE_FILE = "root-ca.crt.pem"
MIN_PASSPHRASE = 12


class CustodyError(SigningError):
    """The root's directory or passphrase will not do; the message says why."""


@dataclass(frozen=True, slots=True)
class RootCa:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate


def create_root(directory: Path, passphrase: str, *, common_name: str, now: datetime) -> RootCa:
    """A new P-384 root in `directory` (made 0700); refuses to overwrite one."""
    if len(passphrase) < MIN_PASSPHRASE:
        raise CustodyError(f"the root passphrase needs at least {MIN_PASSPHRASE} characters")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    key_path, certificate_path = directory / KEY_FILE, directory / CERTIFICATE_FILE
    if key_path.exists() or certificate_path.exists():
        raise CustodyError(f"{directory} already holds a root CA; use it, or choose another")
    key = ec.generate_private_key(ec.SECP384R1())
    certificate = make_root(name(common_name), key, now)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode()),
    )
    _write_private(key_path, encrypted)
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return RootCa(key, certificate)


def load_root(directory: Path, passphrase: str) -> RootCa:
    """The root in `directory`, opened with `passphrase`; CustodyError if either is wrong."""
    try:
        encrypted = (directory / KEY_FILE).read_bytes()
        certificate = x509.load_pem_x509_certificate((directory / CERTIFICATE_FILE).read_bytes())
    except FileNotFoundError:
        raise CustodyError(f"{directory} holds no root CA (run `shanakht pki init`)") from None
    except ValueError:
        raise CustodyError(f"{directory / CERTIFICATE_FILE} is not a PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(encrypted, password=passphrase.encode())
    except (ValueError, TypeError):
        raise CustodyError("the root passphrase is wrong, or the key file is damaged") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != (
        certificate.public_key()
    ):
        raise CustodyError("the root key and certificate do not belong together")
    return RootCa(key, certificate)


def _write_private(path: Path, content: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(content)
