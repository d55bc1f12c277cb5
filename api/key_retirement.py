"""`shanakht keys retire pii|row-seal`: a key's older versions deleted, once nothing needs them.

After `keys rotate pii` and `keys reseal pii`, what is stored is sealed under the new version,
but the old one still opens what it sealed. If it leaked, whoever holds it and can write the
database can still plant a value the service reads as its own (a TOTP secret of their
choosing, a mobile number to send reset codes to). Retiring a version deletes its file, so
from then on the sealer refuses what it sealed (`identity.sealing`: a version it lacks), in
every replica within a second (`api.key_versions`).

The row-seal key's versions retire the same way, after `keys reseal row-seal`: a row an older
version sealed then has no seal that holds, so one a database writer forges under the leaked
version is not honoured.

A version is retired only if nothing that still opens (or, for the row-seal key, holds) is
sealed under it: a census (`identity.resealing.census`, `audit.row_resealing.census`) reads
every sealed value or row first, and one that would be lost refuses the whole run. Those under
it that do not open or hold (the re-seal names them) are lost already and do not stop it.

The order makes every stop safe. The census; then one transaction that records the retirement
(`key_retirements`, which the key check reads) and its audit entry; then the files deleted. A
run stopped before the deletion leaves files the key check refuses as "retired, but back",
which the next run deletes without a census (the recorded one found nothing). So does a keys
folder restored from before a retirement.

Backups: `shanakht backup` copies the keys after its database snapshot, and checks that its
copy holds every key the snapshot's database records but has not retired. A retirement between
the two fails that backup (run it again) rather than leaving one that cannot be restored.
Backups made before the retirement still hold the old version and the values it sealed then:
keep or destroy them by that light.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from api.key_check import check_keys_fit_database, fingerprint, retired_keys
from api.key_rotation import PII, ROTATED, key_action
from api.keystore import version_number
from api.migrate import SEALED_TABLES
from api.models import key_retirements
from api.runtime import Runtime
from audit import AuditEvent
from audit.entry import grouped
from audit.row_resealing import Census
from audit.row_resealing import census as row_census
from identity.resealing import census

RETIRED = "retired"  # the verb of the audit action (`key_action`)


class StillSealed(Exception):
    """Some version to retire still seals values that open: nothing was retired."""

    def __init__(self, found: Census) -> None:
        super().__init__("values that open are still sealed under an older version")
        self.found = found


class RetiredMeanwhile(Exception):
    """Another run retired these versions first: nothing more was changed."""


@dataclass(frozen=True, slots=True)
class Retirement:
    """What a run retired (version numbers), and what was lost under them already."""

    versions: tuple[int, ...]
    broken: Counter[int]


def retire_versions(runtime: Runtime, which: str, *, actor: str) -> Retirement:
    """Retire every version of the key `which` (PII or ROW_SEAL) older than the current one
    (see the module's docstring); StillSealed if any still seals what opens or holds."""
    name = ROTATED[which]
    for key in retired_keys(runtime) & set(runtime.keys.names()):
        runtime.keys.remove(key)  # retired before, back since: no census needed
    check_keys_fit_database(runtime)
    older = runtime.keys.versions(name)[:-1]
    if not older:
        return Retirement((), Counter())
    numbers = {version_number(name, key): key for key in older}
    found = _census(runtime, which, numbers)
    if found.held:
        raise StillSealed(found)
    prints = {key: fingerprint(runtime.keys.secret(key), key) for key in older}
    try:
        with runtime.transaction() as session:
            now = runtime.clock()
            rows = [{"name": k, "fingerprint": f, "retired_at": now} for k, f in prints.items()]
            session.execute(insert(key_retirements), rows)
            runtime.audit_log(session).append(
                AuditEvent(
                    actor=actor,
                    action=key_action(which, RETIRED),
                    resource=f"keys:{name}",
                    details={
                        "versions": sorted(numbers),
                        "fingerprints": [grouped(prints[numbers[n]]) for n in sorted(numbers)],
                        "lost_already": found.broken.total(),
                    },
                )
            )
    except IntegrityError:
        raise RetiredMeanwhile(
            f"another `keys retire {which}` retired these versions first"
        ) from None
    for key in older:
        runtime.keys.remove(key)
    return Retirement(tuple(sorted(numbers)), found.broken)


def _census(runtime: Runtime, which: str, versions: Collection[int]) -> Census:
    if which == PII:
        return census(runtime.transaction, runtime.identity.sealer, versions)
    return row_census(runtime.transaction, runtime.row_seal, SEALED_TABLES, versions)
