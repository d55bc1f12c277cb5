"""The `shanakht` command line. Every command works on the data directory SHANAKHT_DATA_DIR."""

from __future__ import annotations

import base64
import json
import signal
import threading
import time
from typing import Any, TextIO

import click
from prometheus_client import CollectorRegistry, start_http_server
from sqlalchemy.orm import Session

from api.administration import (
    CLI_ACTOR,
    check_integrity,
    default_scopes,
    rotate_kek,
    rotate_signing_keys,
    verify_audit,
)
from api.backchannel import deliver, end_sessions
from api.cli_backup import backup, restore
from api.cli_demo import demo
from api.cli_key_versions import version_table
from api.cli_locker import kek_lines, locker
from api.cli_master import HELP as MASTER_HELP
from api.cli_master import rotate_master
from api.cli_pki import pki
from api.cli_resealing import keys_reseal, keys_retire
from api.cli_support import (
    EXIT_TAMPERED,
    FlatGroup,
    citizen_for,
    cli_runtime,
    fail,
    migrate,
)
from api.cli_verify import verify
from api.integrity_watch import Findings, FindingsCollector, watch
from api.key_check import check_keys_fit_database
from api.key_rotation import (
    AFTERWARDS,
    REFUSED,
    ROTATED,
    add_key_version,
    record_key_rotation,
)
from api.keystore import MAKE_ONE
from api.logging_setup import configure_logging
from api.migrate import prepare, require_current_schema
from api.runtime import Runtime
from audit import AuditError, AuditEvent, TamperError, address_pseudonym
from identity.oidc.clients import (
    CLIENT_SECRET_BASIC,
    ESERVICE,
    PRIVATE_KEY_JWT,
    SERVICE,
    ClientConfigError,
    NewClient,
)
from identity.reconciled import ACCOUNT_REMOVED, CLIENT_REGISTERED, CLIENT_REMOVED, REGISTRATION
from identity.roles import ROLES, RoleError


@click.group(cls=FlatGroup)
def main() -> None:
    """Shanakht: digital identity, document locker and signatures, on one audit log."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes (metrics are summed across them, see PROMETHEUS_MULTIPROC_DIR).",
)
def serve(host: str, port: int, workers: int) -> None:
    """Migrate the database (production: check it is migrated), then serve the API."""
    from api import serving

    with cli_runtime() as runtime:
        if runtime.settings.env == "production":
            # Production migrates in its own step (`db upgrade`), as the role that owns the
            # schema; a replica connects as the application role and only checks the revision.
            runtime.check_database()
            prepare(runtime, migrate_schema=False)
        else:
            migrate(runtime)
        check_keys_fit_database(runtime)
        click.echo(f"Shanakht on http://{host}:{port} (data in {runtime.settings.data_dir})")
        serving.run(runtime, host, port, workers)


@main.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database schema to the latest version (SHANAKHT_DATABASE_MIGRATION_URL)."""
    with cli_runtime() as runtime:
        migrate(runtime)
        click.echo("database is up to date")


@main.group()
def audit() -> None:
    """The tamper-evident audit log."""


@audit.command("verify")
def audit_verify() -> None:
    """Re-check the whole log and its checkpoints; exit 1 naming the first bad entry."""
    with cli_runtime() as runtime:
        migrate(runtime)
        _verify(runtime)


def _verify(runtime: Runtime) -> None:
    try:
        report = verify_audit(runtime)
    except TamperError as exc:
        where = f" at seq {exc.seq}" if exc.seq is not None else ""
        fail(f"audit log FAILED verification{where}: {exc}", EXIT_TAMPERED)
    click.echo(
        f"audit log verified: {report.size} entries, {report.checkpoints} checkpoints, "
        f"root {base64.b64encode(report.root).decode()}"
    )


@audit.command("address")
@click.argument("address")
def audit_address(address: str) -> None:
    """Print the name the log gives a client address, to find its entries."""
    with cli_runtime() as runtime:
        click.echo(address_pseudonym(address, key=runtime.pseudonym_key))


@audit.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign, record and print a checkpoint of the log as it stands."""
    with cli_runtime() as runtime:
        migrate(runtime)
        with runtime.sessions() as session, session.begin():
            signed = runtime.audit_log(session).checkpoint()
        click.echo(signed.note, nl=False)


@audit.command("prove")
@click.argument("seq", type=click.IntRange(min=0))
def audit_prove(seq: int) -> None:
    """Print entry SEQ, its inclusion proof and a checkpoint, as JSON."""
    with cli_runtime() as runtime:
        migrate(runtime)
        with runtime.sessions() as session, session.begin():
            log = runtime.audit_log(session)
            try:
                entry = log.entry(seq)
                signed = log.latest_checkpoint()
                if signed is None or signed.checkpoint.size <= seq:
                    signed = log.checkpoint()
                proof = log.inclusion_proof(seq, signed.checkpoint.size)
            except AuditError as exc:
                fail(str(exc))
        bundle = {
            "entry": entry.to_bytes().decode(),
            "index": proof.index,
            "size": proof.size,
            "leaf_hash": base64.b64encode(proof.leaf_hash).decode(),
            "proof": [base64.b64encode(h).decode() for h in proof.proof],
            "checkpoint": signed.note,
            "verifier_key": runtime.checkpoint_key_of(signed.note),
        }
        click.echo(json.dumps(bundle, indent=2, ensure_ascii=False))


@audit.command("integrity")
def audit_integrity() -> None:
    """Check the seal of every account, sign-in session, e-service's consent, role grant, role
    proposal, client registration, and locker consent, document, share link, nominee and
    legal-access request, and reconcile each of them
    with what the log last recorded of it; exit 1 listing each row that is not honoured
    (written or changed by someone without the service's keys) or is not the log's latest (an
    earlier sealed row put back, a row deleted, or a live row the log never recorded).

    Run it on a schedule and alert on what it finds (`audit watch` does both): a refused row is
    also a warning in the API's log (logger shanakht.integrity), but only when something reads
    it, and a forged role on an account nobody uses would never be read; an earlier row put
    back verifies, and only the log tells it from the latest.

    It only reads: it neither migrates nor seals (a schema that is not current is refused, as
    `serve` in production refuses it), so what it reports is the database as it stands. It
    reads the log once, verifying it as `audit verify` does."""
    with cli_runtime() as runtime:
        runtime.check_database()
        require_current_schema(runtime.engine)
        try:
            found = check_integrity(runtime)
        except TamperError as exc:
            where = f" at seq {exc.seq}" if exc.seq is not None else ""
            fail(f"audit log FAILED verification{where}: {exc}", EXIT_TAMPERED)
        for bad in found.bad:
            click.echo(f"{bad.table} {bad.key}: {bad.problem} MAC, not honoured")
        for mismatch in found.mismatches:
            click.echo(f"{mismatch.table} {mismatch.key}: {mismatch.problem}")
        if found.bad:
            click.echo(f"{len(found.bad)} rows of authorization state FAILED their seal")
        if found.mismatches:
            click.echo(
                f"{len(found.mismatches)} rows of authorization state differ from the audit log"
            )
        if found.bad or found.mismatches:
            fail("authorization state FAILED its integrity check", EXIT_TAMPERED)
        click.echo(
            "authorization state verified: every account, sign-in session, e-service's "
            "consent, role, proposal, client, locker consent, document, share link, nominee "
            "and legal-access request is sealed and as the audit log last recorded it "
            f"({found.log.size} entries)"
        )


WATCH_STOP_SECONDS = 5.0  # within docker's 10 s between SIGTERM and SIGKILL


@audit.command("watch")
@click.option("--every", type=click.IntRange(min=1), default=900, show_default=True,
              help="Seconds from the end of one check to the start of the next.")  # fmt: skip
@click.option("--host", default="127.0.0.1", show_default=True, help="Where to serve /metrics.")
@click.option("--port", type=click.IntRange(1, 65535), default=9101, show_default=True)
def audit_watch(every: int, host: str, port: int) -> None:
    """`audit integrity` on a schedule until stopped (SIGTERM or Ctrl-C), what the last check
    found served at /metrics for Prometheus, and each row it finds logged (logger
    shanakht.integrity). docker-compose.yml runs it as the `integrity` service; see
    docs/deployment.md for its metrics and alerts. Like `audit integrity` it only reads, and
    refuses to start on a schema that is not current."""
    stopping = {signal.SIGTERM, signal.SIGINT}
    # Taken by `sigwait` below, on this thread, never by a handler: every thread started from
    # here on inherits the mask, so none is interrupted by them.
    signal.pthread_sigmask(signal.SIG_BLOCK, stopping)
    with cli_runtime() as runtime:
        runtime.check_database()
        require_current_schema(runtime.engine)
        configure_logging(runtime.settings.log_level, runtime.settings.log_format)
        findings = Findings(started_at=time.time())
        registry = CollectorRegistry(auto_describe=True)
        registry.register(FindingsCollector(findings))
        try:
            server, _thread = start_http_server(port, host, registry=registry)
        except OSError as exc:
            fail(f"cannot serve metrics on {host}:{port}: {exc.strerror}")
        stop = threading.Event()
        checks = threading.Thread(
            target=watch, args=(runtime, findings, every, stop), name="integrity", daemon=True
        )
        click.echo(f"watching: a check every {every} s; metrics at http://{host}:{port}/metrics")
        checks.start()
        signal.sigwait(stopping)
        stop.set()
        # A check under way only reads: it is waited for a while, then left to the exit.
        checks.join(timeout=WATCH_STOP_SECONDS)
        server.shutdown()
        click.echo("stopped")


@main.group()
def clients() -> None:
    """E-services and department systems registered with the OpenID Connect provider."""


@clients.command("add")
@click.argument("client_id")
@click.option("--name", required=True, help="What citizens see on the consent page.")
@click.option(
    "--kind",
    type=click.Choice([ESERVICE, SERVICE]),
    default=ESERVICE,
    show_default=True,
    help="An e-service signs citizens in; a department system calls APIs as itself.",
)
@click.option(
    "--auth",
    "auth_method",
    type=click.Choice([PRIVATE_KEY_JWT, CLIENT_SECRET_BASIC]),
    default=PRIVATE_KEY_JWT,
    show_default=True,
)
@click.option("--jwks", "jwks_file", type=click.File(), help="The client's public JWKS (file).")
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Exact redirect URI.")
@click.option("--post-logout-redirect-uri", "post_logout_uris", multiple=True)
@click.option("--scope", "scopes", multiple=True, help="A scope it may ask for (repeat).")
@click.option("--backchannel-logout-uri", help="Where its back-channel logout tokens go.")
@click.option("--id-token-alg", type=click.Choice(["RS256", "ES256"]), default="RS256")
@click.option("--require-par", is_flag=True, help="FAPI 2.0: requests must be pushed.")
@click.option("--require-dpop", is_flag=True, help="FAPI 2.0: tokens must be DPoP-bound.")
@click.option("--department", help="A department system: the department it speaks for.")
def clients_add(
    client_id: str,
    name: str,
    kind: str,
    auth_method: str,
    jwks_file: Any,
    redirect_uris: tuple[str, ...],
    post_logout_uris: tuple[str, ...],
    scopes: tuple[str, ...],
    backchannel_logout_uri: str | None,
    id_token_alg: str,
    require_par: bool,
    require_dpop: bool,
    department: str | None,
) -> None:
    """Register a client; prints its secret once when it uses client_secret_basic."""
    try:
        jwks = json.load(jwks_file) if jwks_file else None
    except ValueError as exc:
        fail(f"the JWKS file is not JSON: {exc}")
    new = NewClient(
        id=client_id,
        name=name,
        kind=kind,
        auth_method=auth_method,
        redirect_uris=redirect_uris,
        post_logout_redirect_uris=post_logout_uris,
        scopes=scopes or default_scopes(kind),
        jwks=jwks,
        backchannel_logout_uri=backchannel_logout_uri,
        id_token_alg=id_token_alg,
        require_par=require_par,
        require_dpop=require_dpop,
        department=department,
    )
    with cli_runtime() as runtime:
        migrate(runtime)
        try:
            with runtime.transaction() as session:
                registry = runtime.provider(session).clients
                client, secret = registry.add(new)
                _record_client(runtime, session, CLIENT_REGISTERED, client.id, {
                    "kind": client.kind, "auth_method": client.auth_method,
                    "scopes": sorted(client.scopes),
                    REGISTRATION: registry.registration(client.id),
                })  # fmt: skip
        except ClientConfigError as exc:
            fail(str(exc))
        click.echo(f"registered {client.id} ({client.kind}, {client.auth_method})")
        if secret:
            click.echo(f"client secret (shown once, keep it safe): {secret}")


@clients.command("list")
def clients_list() -> None:
    """List registered clients, one line each."""
    with cli_runtime() as runtime:
        migrate(runtime)
        with runtime.transaction() as session:
            for c in runtime.provider(session).clients.all():
                click.echo(
                    f"{c.id}\t{c.kind}\t{c.auth_method}\t{' '.join(sorted(c.scopes))}\t{c.name}"
                )


@clients.command("remove")
@click.argument("client_id")
def clients_remove(client_id: str) -> None:
    """Remove a client, with its consents and tokens."""
    with cli_runtime() as runtime:
        migrate(runtime)
        with runtime.transaction() as session:
            removed = runtime.provider(session).clients.remove(client_id)
            if removed:
                _record_client(runtime, session, CLIENT_REMOVED, client_id, {})
        if not removed:
            fail(f"no client {client_id!r}")
        click.echo(f"removed {client_id}")


def _record_client(
    runtime: Runtime, session: Session, action: str, client_id: str, details: dict[str, Any]
) -> None:
    """The operator's registration or removal of a client, recorded as the admin pages record
    theirs: `audit integrity` reconciles each client with its latest entry."""
    runtime.audit_log(session).append(
        AuditEvent(actor=CLI_ACTOR, action=action, resource=f"client:{client_id}", details=details)
    )


KEY_SETS = ("oidc", "locker", "all")
MASTER = "master"


@main.group()
def keys() -> None:
    """The provider's token-signing keys (oidc), the locker's KEKs (locker), the audit
    checkpoint and consent keys, the PII and row-seal keys, the master key."""


@keys.command("rotate", epilog=MASTER_HELP)
@click.argument(
    "which",
    type=click.Choice((*KEY_SETS, *ROTATED, MASTER, *REFUSED)),
    default="all",
    required=False,
)
@click.option(
    "--compromised",
    is_flag=True,
    help="The signing keys leaked: withdraw them from the JWKS now, not after a day.",
)
@click.option(
    "--new-key-file",
    type=click.File("r"),
    help="master: the file (`-`: standard input) holding the new master key, base64.",
)
def keys_rotate(which: str, compromised: bool, new_key_file: TextIO | None) -> None:
    """New signing keys (old ones stay in the JWKS a day) and/or a new locker KEK; or a new
    version of the checkpoint, consent, PII sealing or row-seal key; or a new master key.

    WHICH: oidc (the token-signing keys), locker (a KEK version; `shanakht locker rewrap` then
    moves the stored data keys to it) or all, the default; or master (below). With
    --compromised, tokens the old signing keys signed stop verifying at once (e-services
    refresh theirs). checkpoint or consent (never part of `all`): a new version of the audit
    checkpoint key or of the consent key signs from now on; every earlier version stays
    published (/audit/keys, /exchange/consent-keys) and verifies what it signed. Running
    replicas sign with the new version within a second, without a restart. pii (never part
    of `all`): a new version of the key that seals personal data, TOTP secrets and token-signing
    keys in the database seals from now on, every earlier version still opens what it sealed,
    and `shanakht keys reseal pii` then seals what is stored under the new one. row-seal (never
    part of `all`): the same for the key that seals rows of authorization state, then `keys
    reseal row-seal`. The pseudonym key does not rotate: asked to, it says why.
    """
    if which in REFUSED:
        fail(REFUSED[which])
    if which in ROTATED:
        if compromised or new_key_file is not None:
            fail(f"--compromised and --new-key-file are not for `keys rotate {which}`")
        _add_key_version(which)
        return
    if which == MASTER:
        if compromised:
            fail("--compromised is for the oidc keys; a leaked master key is replaced the same way")
        if new_key_file is None:
            fail(f"keys rotate master needs --new-key-file: make one with (umask 077; {MAKE_ONE} "
                 "> new-master.key)")  # fmt: skip
        rotate_master(new_key_file)
        return
    if new_key_file is not None:
        fail("--new-key-file is for `keys rotate master` only")
    with cli_runtime() as runtime:
        migrate(runtime)
        if which in ("oidc", "all"):
            with runtime.transaction() as session:
                kids = rotate_signing_keys(
                    runtime, session, actor=CLI_ACTOR, compromised=compromised
                )
            withdrawn = " (the old ones withdrawn from the JWKS now)" if compromised else ""
            click.echo("new signing keys: " + ", ".join(kids) + withdrawn)
        if which in ("locker", "all"):
            version_id = rotate_kek(runtime, actor=CLI_ACTOR)
            click.echo(f"new locker KEK: {version_id} (`shanakht locker rewrap` moves old keys)")


def _add_key_version(which: str) -> None:
    """A new version of the checkpoint, consent or PII key, then its record made by a runtime
    opened anew, so that the new version is the one that signs (or seals) from it on."""
    with cli_runtime() as runtime:
        migrate(runtime)
        rotation = add_key_version(runtime, which)
    with cli_runtime() as runtime:
        record_key_rotation(runtime, which, rotation, actor=CLI_ACTOR)
    click.echo(
        f"new {which} key: version {rotation.version} ({rotation.key}, fingerprint "
        f"{rotation.fingerprint}); {AFTERWARDS[which]}"
    )


keys.add_command(keys_reseal)
keys.add_command(keys_retire)


@keys.command("list")
@click.argument("which", type=click.Choice((*KEY_SETS, *ROTATED)), default="all", required=False)
def keys_list(which: str) -> None:
    """Signing keys (oidc); checkpoint, consent or PII key versions; KEK versions (locker); or
    all.

    `oidc` prints kid, algorithm, created and retired. `checkpoint`, `consent`, `pii` and
    `row-seal` print a table of every version: its number, key name, state (current: it signs
    or seals; verifies only, opens only or checks only; or retired, its file deleted by `keys
    retire`), when it was made (UTC), its key id (the key hash a signed note carries, the JWS
    kid, or for the PII and row-seal keys the version byte what they seal carries, in hex) and
    its fingerprint (as `keys rotate` printed it). `locker` lists each KEK version as current
    (new keys are wrapped under it) or unwrap only. `all`, the default, lists them all.
    """
    with cli_runtime() as runtime:
        migrate(runtime)
        if which in ("oidc", "all"):
            with runtime.transaction() as session:
                for k in runtime.provider(session).keys.all():
                    retired = k.retired_at.isoformat() if k.retired_at else "in use"
                    click.echo(f"{k.kid}\t{k.alg}\t{k.created_at.isoformat()}\t{retired}")
        for rotated in ROTATED:
            if which in (rotated, "all"):
                for line in version_table(runtime, rotated):
                    click.echo(line)
        if which in ("locker", "all"):
            for line in kek_lines(runtime.keks):
                click.echo(line)


@main.group()
def dev() -> None:
    """Development helpers for the simulated NADRA and SMS gateway."""


@dev.command("outbox")
@click.option("--to", help="Only messages to this number (E.164).")
def dev_outbox(to: str | None) -> None:
    """Print the development SMS outbox (one-time codes included)."""
    with cli_runtime() as runtime:
        for message in runtime.identity.sms.messages():
            if to is None or message.to == to:
                click.echo(f"{message.sent_at}\t{message.to}\t{message.text}")


@main.group()
def departments() -> None:
    """Government departments, whose officers hold roles."""


@departments.command("add")
@click.argument("department_id")
@click.option("--name", required=True, help="The department's full name.")
def departments_add(department_id: str, name: str) -> None:
    """Register a department (a short id such as `sed`, and its name)."""
    with cli_runtime() as runtime:
        migrate(runtime)
        try:
            with runtime.transaction() as session:
                runtime.provider(session).roles.add_department(department_id, name)
        except RoleError as exc:
            fail(str(exc))
        click.echo(f"added department {department_id}")


@main.group()
def roles() -> None:
    """Officers' roles within departments (they reach e-services as the `roles` claim)."""


@roles.command("grant")
@click.argument("cnic")
@click.argument("department_id")
@click.argument("role", type=click.Choice(sorted(ROLES)))
def roles_grant(cnic: str, department_id: str, role: str) -> None:
    """Give the holder of CNIC a role in a department."""
    with cli_runtime() as runtime:
        migrate(runtime)
        try:
            with runtime.transaction() as session:
                citizen_id, subject = citizen_for(runtime, session, cnic)
                runtime.provider(session).roles.grant(
                    citizen_id, subject, department_id, role, by="admin:cli"
                )
        except RoleError as exc:
            fail(str(exc))
        click.echo(f"granted {role} in {department_id}")


@roles.command("revoke")
@click.argument("cnic")
@click.argument("department_id")
@click.argument("role", type=click.Choice(sorted(ROLES)))
def roles_revoke(cnic: str, department_id: str, role: str) -> None:
    """Take a role away."""
    with cli_runtime() as runtime:
        migrate(runtime)
        with runtime.transaction() as session:
            citizen_id, subject = citizen_for(runtime, session, cnic)
            removed = runtime.provider(session).roles.revoke(
                citizen_id, subject, department_id, role, by="admin:cli"
            )
        if not removed:
            fail("that role was not held")
        click.echo(f"revoked {role} in {department_id}")


@roles.command("list")
@click.argument("cnic")
def roles_list(cnic: str) -> None:
    """List the roles the holder of CNIC has."""
    with cli_runtime() as runtime:
        migrate(runtime)
        with runtime.transaction() as session:
            citizen_id, _subject = citizen_for(runtime, session, cnic)
            for grant in runtime.provider(session).roles.of(citizen_id):
                click.echo(f"{grant.department}\t{grant.role}")


@main.group()
def citizens() -> None:
    """Citizens' accounts (administration)."""


@citizens.command("remove")
@click.argument("cnic")
@click.option("--reason", required=True, help="Why, for the audit log.")
def citizens_remove(cnic: str, reason: str) -> None:
    """Close an account: end its sessions everywhere and withdraw every consent. It reaches an
    account whose row fails its seal too (changed by SQL): closing one only takes away."""
    with cli_runtime() as runtime:
        migrate(runtime)
        with runtime.transaction() as session:
            citizen_id, subject = citizen_for(runtime, session, cnic, sealed=False)
            provider = runtime.provider(session)
            if provider.accounts.by_id(citizen_id) is None:
                # Its row was changed outside the service: its pseudonym may have been moved
                # to another account's row. Say so, with the row's id, to check in the log.
                click.echo(
                    f"warning: account row {citizen_id} fails its seal (changed outside the "
                    "service); closing it all the same, see `shanakht audit integrity`",
                    err=True,
                )
            provider.accounts.remove(citizen_id)
            for grant in provider.grants.for_citizen(citizen_id):
                provider.grants.revoke(citizen_id, grant.client_id)
            ended = provider.sessions.end_all(citizen_id, "removed")
            notices = end_sessions(runtime, provider, ended, "removed")
            runtime.audit_log(session).append(
                AuditEvent(
                    actor="admin:cli",
                    action=ACCOUNT_REMOVED,
                    subject=subject,
                    purpose=reason,
                )
            )
        deliver(runtime, notices)
        click.echo(f"removed; {len(ended)} sessions ended, {len(notices)} e-services told")


main.add_command(demo)
main.add_command(pki)
main.add_command(verify)
main.add_command(locker)
main.add_command(backup)
main.add_command(restore)
