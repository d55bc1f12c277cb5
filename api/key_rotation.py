"""`shanakht keys rotate checkpoint|consent`: a new version of a signing key in the key store.

The audit checkpoint key and the consent key sign statements that others keep and check
without asking this service: checkpoints that auditors and witnesses hold, consent artifacts
that departments show an auditor. So a rotation never replaces a key; it adds a version
(`LocalKeyStore.add_version`) that signs from then on, and every earlier version stays
published (`/audit/keys`, `/exchange/consent-keys`) and verifies what it signed, told apart by
the key id each statement carries (a signed note's key hash, a JWS header's `kid`).

Each version is a key of its own to the key check (`api.key_check`): its fingerprint is
recorded, and a version lost or swapped afterwards is refused by name. The rotation is an
audit entry that names the new version and its fingerprint, nothing else about it.

The keys the other kinds of statement rest on are refused here, each with its reason
(`REFUSED`): what they protect lives in rows that would have to be re-sealed, or, for the
pseudonym key, in the append-only log itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.key_check import check_keys_fit_database, fingerprint
from api.keystore import version_number
from api.runtime import AUDIT_CHECKPOINT_KEY, CONSENT_KEY, Runtime
from audit import AuditEvent
from audit.entry import grouped

# What `keys rotate` calls each signing key that rotates, and its name in the key store.
ROTATED = {"checkpoint": AUDIT_CHECKPOINT_KEY, "consent": CONSENT_KEY}

# The keys that do not rotate, and why, in the one line `keys rotate` answers.
REFUSED = {
    "pseudonym": (
        "the pseudonym key is not rotated: the append-only audit log names people by "
        "pseudonyms made with it, and a new key would stop a person's new entries linking "
        "to their old ones (see docs/threat-model.md section 7, item 14)"
    ),
    "pii": (
        "the PII sealing key cannot be rotated yet: every sealed column (personal data, TOTP "
        "secrets, OIDC keys) would first have to be re-sealed under the new version (see "
        "docs/threat-model.md section 7, item 14)"
    ),
    "row-seal": (
        "the row-seal key cannot be rotated yet: every sealed row of authorization state "
        "would first have to be re-sealed under the new version (see docs/threat-model.md "
        "section 7, item 14)"
    ),
}


@dataclass(frozen=True, slots=True)
class KeyRotation:
    """A new version of a signing key: its key name (`audit-checkpoint.v2`), its number and
    its fingerprint (`api.key_check.fingerprint`, the one `key_fingerprints` records), written
    by `grouped`."""

    key: str
    version: int
    fingerprint: str


def add_key_version(runtime: Runtime, which: str) -> KeyRotation:
    """Make the next version of the signing key `which` (a key of ROTATED), once the keys at
    hand are checked to be the database's (a rotation must not start from another
    deployment's keys). Records nothing: see `record_key_rotation`."""
    check_keys_fit_database(runtime)
    name = ROTATED[which]
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
                action=f"keys.{which}.rotated",
                resource=f"keys:{ROTATED[which]}",
                details={"version": rotation.version, "fingerprint": rotation.fingerprint},
            )
        )
        if which == "checkpoint":
            log.checkpoint()
