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

A retirement first waits SETTLE_SECONDS on its own clock and checks that no newer version came
meanwhile, so that no replica still seals under an older one when the census counts. The
census opens or checks each version under its own key, read from its file, whatever the
database records of it. Then the integrity check's reconciliation runs again (as before the
re-seal): a sealed row put back since is not left standing under a key about to vouch alone.
Then one transaction records the retirement (`key_retirements`, which the key check reads) and
its audit entry, as the schema's owner (SHANAKHT_DATABASE_MIGRATION_URL, when it names another
role than the API's: the application role may only read that table, so whoever holds the API's
database credentials cannot write a retirement that stops replicas opening a version), and the
files are deleted. A run stopped before the deletion leaves files the
key check refuses as "retired, but back"; so does a keys folder restored from before a
retirement; the next run counts them again and deletes them. The key check refuses a
retirement row the service cannot have written (a key that does not retire, the current
version, a fingerprint that is not the key's), and this command deletes only what its own
census counted as empty, so a row written into `key_retirements` by SQL never costs data: at
worst replicas stop opening that version until the row is deleted, a denial a database writer
has anyway, and `keys retire` then says the row is not its own.

What a retirement does not undo: whoever held the leaked version before the re-seal could
write a value or a row the re-seal then took for the service's own and sealed anew. `keys
reseal` runs the integrity check first and refuses while a row differs from the audit log, but
values and rows the log says nothing of (a TOTP secret, a token) cannot be told apart.

Backups: `shanakht backup` copies the keys after its database snapshot, and checks that its
copy holds every key the snapshot's database records but has not retired. A retirement between
the two fails that backup (run it again) rather than leaving one that cannot be restored.
Backups made before the retirement still hold the old version and the values it sealed then:
keep or destroy them by that light.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from api.administration import refuse_what_differs_from_the_log
from api.database import create_db_engine
from api.errors import StartupError
from api.key_check import check_keys_fit_database, fingerprint, retired_keys
from api.key_rotation import PII, ROTATED, key_action
from api.key_versions import RECHECK_SECONDS
from api.keystore import version_number
from api.migrate import SEALED_TABLES
from api.models import key_retirements
from api.runtime import Runtime
from audit import AuditEvent
from audit.entry import grouped
from audit.row_resealing import Census
from audit.row_resealing import census as row_census
from audit.row_seal import RowSeal
from identity.resealing import census
from identity.sealing import Sealer

RETIRED = "retired"  # the verb of the audit action (`key_action`)
# How long a retirement waits before it counts: every replica lists the keys folder at least
# once a RECHECK_SECONDS, and seals under the newest version from then on.
SETTLE_SECONDS = 3 * RECHECK_SECONDS
INSUFFICIENT_PRIVILEGE = "42501"  # PostgreSQL's SQLSTATE


class StillSealed(Exception):
    """Some version to retire still seals values that open: nothing was retired. `recorded`:
    those of them the database records as retired, which `keys retire` cannot have done."""

    def __init__(self, found: Census, recorded: set[int]) -> None:
        super().__init__("values that open are still sealed under an older version")
        self.found = found
        self.recorded = recorded


class RotatedMeanwhile(Exception):
    """A newer version came while the run waited: nothing was retired."""


class RetiredMeanwhile(Exception):
    """Another run retired these versions first: nothing more was changed."""


@dataclass(frozen=True, slots=True)
class Retirement:
    """What a run retired (version numbers), the retired versions whose files it found back
    and removed again, and what was lost under them already."""

    versions: tuple[int, ...]
    removed_again: tuple[int, ...]
    broken: Counter[int]


def retire_versions(runtime: Runtime, which: str, *, actor: str) -> Retirement:
    """Retire every version of the key `which` (PII or ROW_SEAL) older than the current one
    (see the module's docstring); StillSealed if any still seals what opens or holds,
    RotatedMeanwhile if a new version came while it waited for the replicas."""
    name = ROTATED[which]
    check_keys_fit_database(runtime, retired_back=True)
    made = runtime.keys.versions(name)
    if len(made) < 2:
        return Retirement((), (), Counter())
    time.sleep(SETTLE_SECONDS)  # every replica lists the keys and seals under the newest
    if runtime.keys.versions(name)[-1] != made[-1]:
        raise RotatedMeanwhile(f"the {which} key was rotated meanwhile: re-seal, then run this")
    older = made[:-1]
    numbers = {version_number(name, key): key for key in older}
    # Every version to remove is counted, under its own key whatever the database records of
    # it: a retirement's row is no proof that nothing is sealed under that version (one
    # written by SQL would otherwise hide what the deletion loses).
    found = _census(runtime, which, numbers)
    retired = retired_keys(runtime)
    if found.held:
        raise StillSealed(found, {n for n, key in numbers.items() if key in retired})
    refuse_what_differs_from_the_log(runtime)  # nothing put back since the re-seal's own check
    new = [key for key in older if key not in retired]
    if new:
        _record(runtime, which, new, found.broken.total(), actor=actor)
    for key in older:
        runtime.keys.remove(key)
    return Retirement(
        tuple(version_number(name, key) for key in new),
        tuple(version_number(name, key) for key in older if key in retired),
        found.broken,
    )


def _record(runtime: Runtime, which: str, keys: list[str], lost: int, *, actor: str) -> None:
    """The retirement of `keys` (versions of the key `which`) in `key_retirements` and the
    audit log, in one transaction, before any file is removed."""
    name = ROTATED[which]
    prints = {key: fingerprint(runtime.keys.existing(key), key) for key in keys}
    try:
        with _as_owner(runtime) as session:
            now = runtime.clock()
            rows = [{"name": k, "fingerprint": f, "retired_at": now} for k, f in prints.items()]
            session.execute(insert(key_retirements), rows)
            runtime.audit_log(session).append(
                AuditEvent(
                    actor=actor,
                    action=key_action(which, RETIRED),
                    resource=f"keys:{name}",
                    details={
                        "versions": [version_number(name, key) for key in keys],
                        "fingerprints": [grouped(prints[key]) for key in keys],
                        "lost_already": lost,
                    },
                )
            )
    except IntegrityError:
        raise RetiredMeanwhile(
            f"another `keys retire {which}` retired these versions first"
        ) from None
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) != INSUFFICIENT_PRIVILEGE:
            raise
        raise StartupError(
            "nothing retired: a retirement is recorded as the schema's owner, and this role "
            "may only read key_retirements; set SHANAKHT_DATABASE_MIGRATION_URL to the owner's URL"
        ) from None


@contextmanager
def _as_owner(runtime: Runtime) -> Iterator[Session]:
    """A transaction as the schema's owner: through the migration URL when it differs from the
    API's (the application role only reads `key_retirements`), else the runtime's own."""
    settings = runtime.settings
    if settings.resolved_migration_url == settings.resolved_database_url:
        with runtime.transaction() as session:
            yield session
        return
    engine = create_db_engine(settings.resolved_migration_url)
    try:
        with Session(engine) as session, session.begin():
            yield session
    finally:
        engine.dispose()


def _census(runtime: Runtime, which: str, versions: dict[int, str]) -> Census:
    """What `versions` (by number, their key names) still seal, opened or checked under their
    own keys, read from their files whatever the database records of them."""
    keys = {number: runtime.keys.existing(key) for number, key in versions.items()}
    if which == PII:
        return census(runtime.transaction, Sealer.numbered(keys), versions)
    return row_census(runtime.transaction, RowSeal.numbered(keys), SEALED_TABLES, versions)
