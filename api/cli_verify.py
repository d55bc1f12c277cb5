"""`shanakht verify FILE`: one verdict on a photo of a QR code or a signed PDF.

On a Shanakht server it checks against the deployment's own trust list and the CA's current
status, and whether the issuing department has revoked the order itself in the teacher's
locker, as `POST /signing/verify` does. Anywhere else, give it a trust list and the root to
pin (`--trust-list`, `--root`, both fetched once from /signing/trust-list and
/pki/root-ca.crt) and it works offline, with no database, and so cannot see an order's own
revocation, only its signer's. The exit code says which verdict, so scripts can act on it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import click
from cryptography import x509

from api.cli_support import EXIT_USAGE, cli_runtime, fail, migrate
from api.routes.signing import with_document_status
from signing.errors import SigningError
from signing.files import FileVerdict, check_file
from signing.pki.authority import serial_text
from signing.trustlist import TrustList, load_trust_list
from signing.verdict import Outcome, StatusCheck

EXIT_CODES = {
    Outcome.AUTHENTIC: 0,
    Outcome.ALTERED: 10,
    Outcome.REVOKED: 11,
    Outcome.EXPIRED: 12,
    Outcome.UNKNOWN_SIGNER: 13,
    Outcome.MALFORMED: 14,
}


def _certificate(path: Path) -> x509.Certificate:
    data = path.read_bytes()
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        fail(f"{path} is not a certificate (PEM or DER)")


def _offline(data: bytes, trust_file: Path, root_file: Path) -> FileVerdict:
    now = datetime.now(UTC)
    root = _certificate(root_file)
    trust = load_trust_list(trust_file.read_bytes().strip(), root=root, now=now)
    return check_file(data, trust, root=root, now=now)


def _on_server(data: bytes) -> FileVerdict:
    with cli_runtime() as runtime:
        migrate(runtime)
        with runtime.sessions() as session:
            authority = runtime.authority(session)
            root = authority.root()
            now = runtime.clock()
            trust: TrustList = load_trust_list(authority.trust_list(), root=root, now=now)
            status: StatusCheck = authority.online_status
            checked = check_file(data, trust, root=root, now=now, status=status)
            # As the API answers: revoked if the issuing department revoked the order itself.
            return replace(checked, verdict=with_document_status(runtime, session, checked.verdict))


@click.command("verify")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--trust-list",
    "trust_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Verify offline against this trust list (from /signing/trust-list).",
)
@click.option(
    "--root",
    "root_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The root CA certificate to pin, with --trust-list (from /pki/root-ca.crt).",
)
def verify(file: Path, trust_file: Path | None, root_file: Path | None) -> None:
    """Verify the QR code on a PNG, JPEG or PDF (and a PDF's own signature). Exit 0 if
    authentic; 10 altered, 11 revoked, 12 expired, 13 unknown signer, 14 malformed."""
    if (trust_file is None) != (root_file is None):
        fail("--trust-list and --root go together")
    data = file.read_bytes()
    try:
        if trust_file is not None and root_file is not None:
            checked = _offline(data, trust_file, root_file)
        else:
            checked = _on_server(data)
    except SigningError as exc:
        fail(str(exc), EXIT_USAGE)
    verdict = checked.verdict
    click.echo(f"{verdict.outcome.value.upper().replace('_', ' ')}: {verdict.reason}")
    for key, value in verdict.fields.items():
        click.echo(f"  {key}: {value}")
    if verdict.signer is not None and verdict.authentic:
        subject = verdict.signer.certificate.subject.rfc4514_string()
        serial = serial_text(verdict.signer.certificate.serial_number)
        click.echo(f"  signed by: {subject} ({serial})")
    if verdict.revoked_at is not None:
        click.echo(f"  revoked on: {verdict.revoked_at:%Y-%m-%d %H:%M} UTC")
    if checked.pdf is not None:
        state = "valid" if checked.pdf.ok else f"NOT valid ({checked.pdf.problem})"
        click.echo(f"  PDF signature: {state}")
    raise SystemExit(EXIT_CODES[verdict.outcome])
