"""`shanakht pki ...`: the government PKI, from the root's offline directory to revocation."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import click
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy.orm import Session

from api.cli_support import citizen_for, cli_runtime, fail, migrate
from api.runtime import Runtime
from signing.errors import SigningError
from signing.pki.authority import REASONS, IssuedCertificate, Subject, load_csr, parse_serial
from signing.pki.authority import serial_text as serial_of
from signing.pki.custody import CERTIFICATE_FILE, create_root, load_root
from signing.pki.profiles import DEPARTMENT_SEAL, OFFICER_SIGNING, QR_SIGNER

PASSPHRASE_ENV = "SHANAKHT_ROOT_PASSPHRASE"  # noqa: S105 (the variable's name, not a secret)
ISSUABLE = {p.name: p for p in (DEPARTMENT_SEAL, OFFICER_SIGNING, QR_SIGNER)}
ROOT_NAME = "Punjab Root CA"


@click.group()
def pki() -> None:
    """The government PKI: root, issuing CA, certificates, revocation."""


def _passphrase(confirm: bool) -> str:
    """From SHANAKHT_ROOT_PASSPHRASE (scripts, tests), else asked for on the terminal."""
    given = os.environ.get(PASSPHRASE_ENV)
    if given:
        return given
    return str(
        click.prompt("root CA passphrase", hide_input=True, confirmation_prompt=confirm, err=True)
    )


@pki.command("init")
@click.option(
    "--root-dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Where the root CA's encrypted key lives (keep it offline afterwards).",
)
def pki_init(root_dir: Path) -> None:
    """Make (or open) the root CA, then the issuing CA and its OCSP responder."""
    existing = (root_dir / CERTIFICATE_FILE).exists()
    passphrase = _passphrase(confirm=not existing)
    with cli_runtime() as runtime:
        migrate(runtime)
        try:
            now = datetime.now(UTC)
            if existing:
                root = load_root(root_dir, passphrase)
            else:
                root = create_root(root_dir, passphrase, common_name=ROOT_NAME, now=now)
            with runtime.transaction() as session:
                issuing = runtime.authority(session).initialise(root, actor="admin:cli")
        except SigningError as exc:
            fail(str(exc))
    click.echo(f"root CA     {root.certificate.subject.rfc4514_string()}")
    click.echo(f"            key {root_dir / 'root-ca.key.pem'} (encrypted; keep it offline)")
    click.echo(f"issuing CA  {issuing.subject.rfc4514_string()}")
    click.echo(f"            serial {serial_of(issuing.serial_number)}")


@pki.command("issue")
@click.argument("profile", type=click.Choice(sorted(ISSUABLE)))
@click.option("--department", required=True, help="The department's id.")
@click.option("--officer", "cnic", help="officer-signing: the officer's CNIC.")
@click.option("--post", help="officer-signing: the officer's post, e.g. 'CEO (DEA) Lahore'.")
@click.option("--name", "common_name", help="Seal and QR signer: the certificate's name.")
@click.option(
    "--csr",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Certify the key in this PKCS#10 request instead of making one here.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the PEM here.")
def pki_issue(
    profile: str,
    department: str,
    cnic: str | None,
    post: str | None,
    common_name: str | None,
    csr: Path | None,
    out: Path | None,
) -> None:
    """Issue a certificate: an officer's (who must hold signing.officer there), a seal, a QR
    signer."""
    with cli_runtime() as runtime:
        migrate(runtime)
        try:
            request = load_csr(csr.read_bytes()) if csr else None
            with runtime.transaction() as session:
                provider = runtime.provider(session)
                names = dict(provider.roles.departments())
                if department not in names:
                    fail(f"no department {department!r}; add it with `shanakht departments add`")
                if profile == OFFICER_SIGNING.name:
                    if not cnic or not post:
                        fail("an officer's certificate needs --officer CNIC and --post")
                    citizen_id, holder = citizen_for(runtime, session, cnic)
                    held = {(g.department, g.role) for g in provider.roles.of(citizen_id)}
                    if (department, "signing.officer") not in held:
                        fail(f"that officer does not hold signing.officer in {department}")
                    account = provider.accounts.by_id(citizen_id)
                    if account is None:  # citizen_for found it a moment ago, in this transaction
                        fail("no account holds that CNIC")
                    subject = Subject(account.profile.full_name, department, holder, post)
                else:
                    label = "QR signer" if profile == QR_SIGNER.name else "seal"
                    subject = Subject(common_name or f"{names[department]} {label}", department)
                issued = runtime.authority(session).issue(
                    ISSUABLE[profile], subject, actor="admin:cli", csr=request
                )
        except SigningError as exc:
            fail(str(exc))
    _emit(issued, out, f"issued {profile} {serial_of(issued.serial)}")


def _emit(issued: IssuedCertificate, out: Path | None, done: str) -> None:
    """The certificate as PEM to `out` or standard output; what was done to standard error,
    so the PEM can be piped on."""
    pem = issued.certificate.public_bytes(Encoding.PEM)
    if out:
        out.write_bytes(pem)
    else:
        click.echo(pem.decode(), nl=False)
    click.echo(done, err=True)


@pki.command("revoke")
@click.argument("serial")
@click.option("--reason", required=True, type=click.Choice(sorted(REASONS)))
def pki_revoke(serial: str, reason: str) -> None:
    """Revoke a certificate (RFC 5280 reason) and publish a new CRL."""
    with cli_runtime() as runtime:
        migrate(runtime)
        try:
            with runtime.transaction() as session:
                revoked = runtime.authority(session).revoke(
                    parse_serial(serial), reason, actor="admin:cli"
                )
        except SigningError as exc:
            fail(str(exc))
    click.echo(f"revoked {serial_of(revoked.serial)} ({reason}); the CRL is republished")


@pki.command("renew")
@click.argument("serial")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the PEM here.")
def pki_renew(serial: str, out: Path | None) -> None:
    """Certify the same key and subject again, for a new validity period."""
    with cli_runtime() as runtime:
        migrate(runtime)
        try:
            with runtime.transaction() as session:
                authority = runtime.authority(session)
                found = authority.get(parse_serial(serial))
                if found is not None and found.profile == OFFICER_SIGNING.name:
                    _still_an_officer(runtime, session, found.holder, found.department)
                renewed = authority.renew(parse_serial(serial), actor="admin:cli")
        except SigningError as exc:
            fail(str(exc))
    _emit(renewed, out, f"renewed {serial} as {serial_of(renewed.serial)}")


def _still_an_officer(
    runtime: Runtime, session: Session, holder: str | None, department: str | None
) -> None:
    """An officer's certificate is renewed only while they hold signing.officer there."""
    provider = runtime.provider(session)
    account = provider.accounts.by_pseudonym(holder) if holder else None
    held = {(g.department, g.role) for g in provider.roles.of(account.id)} if account else set()
    if (department, "signing.officer") not in held:
        fail(f"the holder no longer has signing.officer in {department}: revoke, don't renew")


@pki.command("list")
@click.option("--department", help="Only this department's certificates.")
def pki_list(department: str | None) -> None:
    """List issued certificates: serial, profile, department, status, subject."""
    with cli_runtime() as runtime:
        migrate(runtime)
        try:
            with runtime.transaction() as session:
                listed = runtime.authority(session).listed(department=department)
        except SigningError as exc:
            fail(str(exc))
    for issued in listed:
        click.echo(_row(issued))


def _row(issued: IssuedCertificate) -> str:
    status = f"revoked:{issued.reason}" if issued.revoked_at else "good"
    expires = issued.certificate.not_valid_after_utc.date().isoformat()
    return "\t".join(
        [
            serial_of(issued.serial),
            issued.profile,
            issued.department or "-",
            status,
            expires,
            issued.certificate.subject.rfc4514_string(),
        ]
    )
