"""`shanakht keys list checkpoint|consent|pii|row-seal`: every version of a rotating key, as a
table.

After `keys rotate checkpoint|consent`, an operator (or someone holding a checkpoint or a
consent artifact) needs to tell which version signs now and which one signed what they hold.
So each version is listed with its key id, the one a statement carries (a signed note's key
hash, a consent artifact's JWS `kid`), its fingerprint (the one the key check records and the
rotation's audit entry names, in groups of eight hex digits so it reads and compares by eye),
when it was made, and whether it is the current one. Listing makes no key: a consent key not
used yet is said to be so rather than made.

When a version was made is not kept as such. Its file's mtime is that time until a rotation of
the master key re-seals the file or a restore writes it, both later than the moment the
database first recorded the version's fingerprint (the rotation itself, or for version 1 the
first start); so the earlier of the two is shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from api.key_check import fingerprint
from api.key_rotation import PII, ROTATED, ROW_SEAL
from api.keystore import KeyGone, is_version_of, version_number
from api.models import key_fingerprints, key_retirements
from api.runtime import Runtime
from audit import NoteSigner
from audit.entry import grouped
from locker.consents import ConsentSigner

CURRENT = "current"
RETIRED = "retired"
# What an older version still does.
OLDER = {
    "checkpoint": "verifies only",
    "consent": "verifies only",
    PII: "opens only",
    ROW_SEAL: "checks only",
}
# The keys a version of which is named by a byte in what it seals: their key id.
VERSION_BYTE = (PII, ROW_SEAL)
HEADER = ("VERSION", "KEY", "STATE", "CREATED (UTC)", "KEY ID", "FINGERPRINT")


@dataclass(frozen=True, slots=True)
class KeyVersionRow:
    """One version of a rotating signing key, as `keys list` shows it."""

    version: int
    key: str  # its name in the key store: `audit-checkpoint.v2`
    state: str  # CURRENT (it signs or seals), OLDER's, or RETIRED
    created: datetime
    key_id: str  # what a statement it signed carries to name it
    fingerprint: str  # grouped, as the rotation's audit entry writes it


def version_rows(runtime: Runtime, which: str) -> list[KeyVersionRow]:
    """Every version of the key `which` (a key of ROTATED) made so far, oldest first, the
    retired ones (`keys retire pii`: their files are gone) from their records."""
    name = ROTATED[which]
    made = runtime.keys.versions(name)
    recorded = _recorded_at(runtime, made)
    rows = _retired_rows(runtime, which)
    for key in made:
        try:
            secret, written = runtime.keys.existing(key), runtime.keys.written_at(key)
        except (KeyGone, FileNotFoundError):
            continue  # retired since the listing: its record is read above
        rows.append(
            KeyVersionRow(
                version=version_number(name, key),
                key=key,
                state=CURRENT if key == made[-1] else OLDER[which],
                created=min(written, recorded[key]) if key in recorded else written,
                key_id=_key_id(runtime, which, key),
                fingerprint=grouped(fingerprint(secret, key)),
            )
        )
    return sorted(rows, key=lambda row: row.version)


def _retired_rows(runtime: Runtime, which: str) -> list[KeyVersionRow]:
    """The retired versions of the key `which`, made when their fingerprints were recorded."""
    name = ROTATED[which]
    query = select(
        key_retirements.c.name, key_retirements.c.fingerprint, key_fingerprints.c.recorded_at
    ).join(key_fingerprints, key_fingerprints.c.name == key_retirements.c.name)
    with runtime.engine.connect() as connection:
        found = [row for row in connection.execute(query) if is_version_of(name, row.name)]
    return [
        KeyVersionRow(
            version=version_number(name, row.name),
            key=row.name,
            state=RETIRED,
            created=row.recorded_at,
            key_id=f"{version_number(name, row.name):02x}" if which in VERSION_BYTE else "-",
            fingerprint=grouped(row.fingerprint),
        )
        for row in found
    ]


def version_table(runtime: Runtime, which: str) -> list[str]:
    """The lines `keys list` prints for the key `which`: a title, then a header and a row per
    version in aligned columns, or a line saying none was made yet."""
    title = f"{which} key versions ({ROTATED[which]})"
    rows = version_rows(runtime, which)
    if not rows:
        return [f"{title}: none yet, version 1 is made when it first signs"]
    cells = [HEADER] + [
        (
            str(row.version),
            row.key,
            row.state,
            row.created.astimezone(UTC).isoformat(timespec="seconds"),
            row.key_id,
            row.fingerprint,
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(HEADER))]
    body = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    ]
    return [f"{title}:", *body]


def _key_id(runtime: Runtime, which: str, key: str) -> str:
    """The checkpoint key's note key hash (hex, as in its verifier key), the consent key's
    JWK thumbprint (its `kid`), or the PII or row-seal key's version, as the first byte of what
    it seals (a row-seal version 1 MAC has none: it is the bare digest)."""
    if which in VERSION_BYTE:
        return f"{version_number(ROTATED[which], key):02x}"
    private = runtime.keys.ed25519(key)
    if which == "checkpoint":
        return NoteSigner(runtime.settings.resolved_audit_origin, private).key_hash.hex()
    return ConsentSigner(private).kid


def _recorded_at(runtime: Runtime, names: list[str]) -> dict[str, datetime]:
    """When the database first recorded each of `names` (`api.key_check`), if it has."""
    if not names:
        return {}
    query = select(key_fingerprints.c.name, key_fingerprints.c.recorded_at).where(
        key_fingerprints.c.name.in_(names)
    )
    with runtime.engine.connect() as connection:
        return {row.name: row.recorded_at for row in connection.execute(query)}
