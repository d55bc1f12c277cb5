"""What an administrator does, shared by the `shanakht` command line and the /admin pages.

Each function is one administrative act on the runtime, with its audit entry where it has one;
the CLI and the pages differ only in who they name as the actor ("admin:cli", or the signed-in
administrator's pseudonym) and in how they show the result. Neither click nor FastAPI here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from api.database import snapshot
from api.migrate import SEALED_TABLES
from api.runtime import Runtime
from audit import AuditEvent, VerifyReport, pseudonym, verify_log
from audit.canonical import JsonValue
from audit.reconcile import Kind, Mismatch, reconcile
from audit.row_seal import BadRow, bad_rows
from identity import reconciled as identity_reconciled
from identity.cnic import normalise_cnic
from identity.oidc.clients import ESERVICE
from locker import reconciled as locker_reconciled
from locker.errors import LockerError
from locker.kek import KekProvider, LocalKeks

CLI_ACTOR = "admin:cli"


def find_citizen(
    runtime: Runtime, session: Session, cnic: str, *, sealed: bool = True
) -> tuple[str, str] | None:
    """(citizen id, pseudonym) of the account holding `cnic`, None if no account does; with
    `sealed` false, of a row that fails its seal too (`Accounts.holder`: for closing one).
    Raises InvalidCnic when `cnic` is not a well-formed CNIC."""
    subject = pseudonym(normalise_cnic(cnic), key=runtime.pseudonym_key)
    accounts = runtime.provider(session).accounts
    if not sealed:
        holder = accounts.holder(subject)
        return (holder, subject) if holder is not None else None
    account = accounts.by_pseudonym(subject)
    return (account.id, subject) if account is not None else None


def names_of(runtime: Runtime, session: Session, pseudonyms: list[str]) -> dict[str, str]:
    """The people behind `pseudonyms` (officers, citizens, administrators) by name, as a
    colleague reads them on a page; "" for a pseudonym no account holds."""
    accounts = runtime.provider(session).accounts
    named: dict[str, str] = {}
    for who in dict.fromkeys(p for p in pseudonyms if p):
        account = accounts.by_pseudonym(who)
        named[who] = account.profile.full_name if account is not None else ""
    return named


def default_scopes(kind: str) -> tuple[str, ...]:
    """What a client is allowed when it is registered without scopes."""
    return ("openid", "profile") if kind == ESERVICE else ()


def rotate_signing_keys(
    runtime: Runtime, session: Session, *, actor: str, compromised: bool = False
) -> list[str]:
    """New token-signing keys, recorded in the audit log; their key ids. The old ones stay in
    the JWKS a day, or leave it at once when `compromised` (see SigningKeys.rotate)."""
    kids = runtime.provider(session).keys.rotate(compromised=compromised)
    details: dict[str, JsonValue] = {"kids": list(kids), "compromised": compromised}
    runtime.audit_log(session).append(
        AuditEvent(actor=actor, action="identity.keys.rotated", details=details)
    )
    return kids


def rotate_kek(runtime: Runtime, *, actor: str) -> str:
    """Add a KEK version for new data keys, recorded in the audit log; its id. Existing keys
    stay under the old version until a re-wrap moves them."""
    with runtime.transaction() as session:
        version_id = runtime.keks.rotate()
        runtime.audit_log(session).append(
            AuditEvent(
                actor=actor, action="locker.keys.rotated", details={"kek_version": version_id}
            )
        )
    return version_id


def record_master_rotation(runtime: Runtime, *, resealed: int, actor: str) -> None:
    """Record in the audit log that the master key was rotated (`api.cli_master`): how many
    key files were re-sealed, and nothing about either key, not even a fingerprint."""
    with runtime.transaction() as session:
        runtime.audit_log(session).append(
            AuditEvent(
                actor=actor,
                action="keys.master.rotated",
                resource="keys:master",
                details={"resealed_files": resealed},
            )
        )


CURRENT = "current"
UNWRAP_ONLY = "unwrap only"
UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class KekState:
    version_id: str
    state: str  # CURRENT, UNWRAP_ONLY or UNAVAILABLE
    problem: LockerError | None = None  # why it is unavailable (the CLI says it in English,
    # the keys page in the reader's language: see `api.refusals`)


def kek_states(keks: KekProvider) -> list[KekState]:
    """Every KEK version: whether new keys are wrapped under it, or it only unwraps, or it
    cannot be opened (which a re-wrap would trip over)."""
    current = keks.current().version_id
    states = []
    for version_id in _kek_versions(keks, current):
        try:
            keks.get(version_id)
        except LockerError as exc:
            states.append(KekState(version_id, UNAVAILABLE, exc))
            continue
        states.append(KekState(version_id, CURRENT if version_id == current else UNWRAP_ONLY))
    return states


def _kek_versions(keks: KekProvider, current: str) -> list[str]:
    """Every version the provider has. The provider protocol cannot list them, so for the local
    provider this relies on its numbering (local:1 to local:N, N the current one); any other
    provider shows its current version only."""
    prefix, _, number = current.partition(":")
    if isinstance(keks, LocalKeks) and prefix == "local" and number.isdigit():
        return [f"local:{n}" for n in range(1, int(number) + 1)]
    return [current]


def verify_audit(runtime: Runtime) -> VerifyReport:
    """Re-check the whole audit log and its checkpoints on a consistent snapshot; raises
    TamperError at the first bad entry or checkpoint."""
    with snapshot(runtime.engine) as connection:
        origin = runtime.settings.resolved_audit_origin
        return verify_log(connection, runtime.audit_verifier, origin)


@dataclass(frozen=True, slots=True)
class Integrity:
    """What `shanakht audit integrity` found: the log verified, rows whose seal fails, and
    sealed rows that are not what the log last recorded of them."""

    log: VerifyReport
    bad: list[BadRow]
    mismatches: list[Mismatch]


def reconciled(runtime: Runtime) -> tuple[Kind[Any], ...]:
    """The sealed tables reconciled with the log (`audit.reconcile`), a kind for each, made
    afresh for each check (a kind keeps what it folds)."""
    born_after = runtime.clock() - runtime.identity.policy.session_lifetime
    return (*identity_reconciled.kinds(sessions_born_after=born_after), *locker_reconciled.KINDS)


class DiffersFromLog(Exception):
    """Sealed rows whose seal holds but which differ from the audit log's last word on them:
    a re-seal or a retirement would carry them over as the service's own."""

    def __init__(self, mismatches: list[Mismatch]) -> None:
        super().__init__(f"{len(mismatches)} sealed rows differ from the audit log")
        self.mismatches = mismatches


def refuse_what_differs_from_the_log(runtime: Runtime) -> None:
    """Raise DiffersFromLog if a reconciled row whose seal holds differs from the log (a row
    put back from before, or written with a leaked key), TamperError if the log does not
    verify. A row whose seal fails is left out: nothing seals it anew."""
    honoured = [found for found in check_integrity(runtime).mismatches if found.honoured]
    if honoured:
        raise DiffersFromLog(honoured)


def check_integrity(runtime: Runtime) -> Integrity:
    """Verify the log, reconciling the sealed rows with it in the same pass, and check every
    seal: all on one snapshot, so rows and log are read as of one moment and a change that
    commits meanwhile is no false alarm. Only reads. Raises TamperError as `verify_audit`."""
    with snapshot(runtime.engine) as connection:
        origin = runtime.settings.resolved_audit_origin
        kinds = reconciled(runtime)
        found = reconcile(
            connection, runtime.row_seal, kinds, verifier=runtime.audit_verifier, origin=origin
        )
        unreconciled = [t for t in SEALED_TABLES if t not in {k.table for k in kinds}]
        bad = bad_rows(connection, runtime.row_seal, unreconciled)
    return Integrity(found.log, found.bad + bad, found.mismatches)
