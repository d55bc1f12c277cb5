"""`shanakht keys rotate checkpoint|consent|pii`: a new version of a key in the key store.

The audit checkpoint key and the consent key sign statements that others keep and check
without asking this service: checkpoints that auditors and witnesses hold, consent artifacts
that departments show an auditor. So a rotation never replaces a key; it adds a version
(`LocalKeyStore.add_version`) that signs from then on, and every earlier version stays
published (`/audit/keys`, `/exchange/consent-keys`) and verifies what it signed, told apart by
the key id each statement carries (a signed note's key hash, a JWS header's `kid`).

Each version is a key of its own to the key check (`api.key_check`): its fingerprint is
recorded, and a version lost or swapped afterwards is refused by name. The rotation is an
audit entry that names the new version and its fingerprint, nothing else about it.

The PII sealing key rotates the same way, for a different reason: what it protects is stored
here, not held by others, so a version that may have leaked must stop protecting it. Its new
version seals from then on, every version opens what it sealed (a value names its version,
`identity.sealing`), `shanakht keys reseal pii` (`identity.resealing`) then seals what is
stored under the new one, and `shanakht keys retire pii` (`api.key_retirement`) deletes the
older versions, which then open nothing.

The row-seal key rotates in the same way and for the same reason: what it vouches for (every
row of authorization state, `audit.row_seal`) is stored here. A MAC names its version by its
length and first byte, `shanakht keys reseal row-seal` (`audit.row_resealing`) seals the
stored rows anew, carrying each client registration's fingerprint in the audit log from its
old MAC to its new one (`identity.reconciled`), and `keys retire row-seal` deletes the older
versions.

The pseudonym key is refused here, with its reason (`REFUSED`): its pseudonyms are the log's
subjects.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.errors import StartupError
from api.key_check import check_keys_fit_database, fingerprint
from api.keystore import version_number
from api.runtime import (
    AUDIT_CHECKPOINT_KEY,
    CONSENT_KEY,
    IDENTITY_SEAL_KEY,
    STATE_MAC_KEY,
    Runtime,
)
from audit import AuditEvent, row_seal
from audit.entry import grouped
from identity import sealing

PII = "pii"
ROW_SEAL = "row-seal"
# What `keys rotate` calls each key that rotates, and its name in the key store.
ROTATED = {
    "checkpoint": AUDIT_CHECKPOINT_KEY,
    "consent": CONSENT_KEY,
    PII: IDENTITY_SEAL_KEY,
    ROW_SEAL: STATE_MAC_KEY,
}
# The keys whose values name their version in one byte, and so have at most this many.
SEALING = {PII: sealing.MAX_VERSION, ROW_SEAL: row_seal.MAX_VERSION}
# What each rotation leaves to be done, for the line that reports it.
AFTERWARDS = {
    "checkpoint": "every earlier version still verifies what it signed",
    "consent": "every earlier version still verifies what it signed",
    PII: (
        "it seals from now on and every earlier version still opens what it sealed; run "
        "`shanakht keys reseal pii` to seal what is stored under it, then `shanakht keys "
        "retire pii`"
    ),
    ROW_SEAL: (
        "it seals rows from now on and every earlier version still vouches for the rows it "
        "sealed; run `shanakht keys reseal row-seal` to seal the stored rows under it, then "
        "`shanakht keys retire row-seal`"
    ),
}

# The keys that do not rotate, and why, in the one line `keys rotate` answers.
REFUSED = {
    "pseudonym": (
        "the pseudonym key is not rotated: the append-only audit log names people by "
        "pseudonyms made with it, and a new key would stop a person's new entries linking "
        "to their old ones (see docs/threat-model.md section 7, item 14)"
    ),
}


def key_action(which: str, verb: str) -> str:
    """The audit action for `verb` done to the key `which`: `keys.row_seal.rotated`."""
    return f"keys.{which.replace('-', '_')}.{verb}"


class KeyVersionsExhausted(StartupError):
    """No further version of this key can be told apart from the others."""


@dataclass(frozen=True, slots=True)
class KeyRotation:
    """A new version of a signing key: its key name (`audit-checkpoint.v2`), its number and
    its fingerprint (`api.key_check.fingerprint`, the one `key_fingerprints` records), written
    by `grouped`."""

    key: str
    version: int
    fingerprint: str


def add_key_version(runtime: Runtime, which: str) -> KeyRotation:
    """Make the next version of the key `which` (a key of ROTATED), once the keys at
    hand are checked to be the database's (a rotation must not start from another
    deployment's keys). Records nothing: see `record_key_rotation`."""
    check_keys_fit_database(runtime)
    name = ROTATED[which]
    most = SEALING.get(which)
    if most is not None and version_number(name, runtime.keys.current(name)) >= most:
        raise KeyVersionsExhausted(
            f"the {which} key has {most} versions, as many as what it seals can name"
        )
    new = runtime.keys.add_version(name)
    found = fingerprint(runtime.keys.secret(new), new)
    return KeyRotation(new, version_number(name, new), grouped(found))


def record_key_rotation(runtime: Runtime, which: str, rotation: KeyRotation, *, actor: str) -> None:
    """Record the new version's fingerprint (`api.key_check`) and the rotation in the audit
    log. `runtime` is opened after the rotation, so a new checkpoint key signs at once: the
    checkpoint made here, covering the rotation's entry, is the new version's first."""
    check_keys_fit_database(runtime)
    with runtime.transaction() as session:
        log = runtime.audit_log(session)
        log.append(
            AuditEvent(
                actor=actor,
                action=key_action(which, "rotated"),
                resource=f"keys:{ROTATED[which]}",
                details={"version": rotation.version, "fingerprint": rotation.fingerprint},
            )
        )
        if which == "checkpoint":
            log.checkpoint()
