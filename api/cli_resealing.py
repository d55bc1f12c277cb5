"""`shanakht keys reseal pii|row-seal` and `keys retire pii|row-seal`: after a rotation of a key
whose versions are stored with what they seal, what is stored moves to the newest version, and
then the older ones are deleted (`identity.resealing`, `audit.row_resealing`,
`api.key_retirement`)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import NoReturn

import click

from api.administration import CLI_ACTOR, DiffersFromLog, refuse_what_differs_from_the_log
from api.cli_locker import EXIT_INTERRUPTED, PROGRESS_EVERY
from api.cli_support import EXIT_TAMPERED, cli_runtime, fail, migrate
from api.key_check import check_keys_fit_database
from api.key_retirement import RetiredMeanwhile, RotatedMeanwhile, StillSealed, retire_versions
from api.key_rotation import PII, ROW_SEAL
from api.migrate import SEALED_TABLES
from api.runtime import Runtime
from audit import TamperError
from audit.row_resealing import RowResealReport, reseal_rows
from identity.reconciled import carry_registrations
from identity.resealing import ResealReport, reseal_all

SEALING_KEYS = (PII, ROW_SEAL)
# What each key's values are, for the lines that count them.
WHAT = {PII: "values", ROW_SEAL: "rows"}


@click.command("reseal")
@click.argument("which", type=click.Choice(SEALING_KEYS))
def keys_reseal(which: str) -> None:
    """Seal what is stored under the newest version of the PII or row-seal key (after `keys
    rotate pii|row-seal`).

    pii: personal data, TOTP secrets, token-signing keys and pending challenges; row-seal:
    every row of authorization state (roles, consents, clients, sessions, tokens, accounts,
    documents, shares...). What an older version sealed is sealed again, a batch of rows at a
    time, while the service runs; safe to stop and run again, and done when a run seals
    nothing again. It first runs `shanakht audit integrity`'s reconciliation and seals nothing
    while a row differs from the audit log (exit 1): a row put back from before holds its seal,
    and sealing it anew would carry it over. A value that does not open, or a row whose row
    seal fails, is left as it is and named (exit 1): sealing it anew would bless what someone
    changed.
    """
    with cli_runtime() as runtime:
        migrate(runtime)
        check_keys_fit_database(runtime)
        _refuse_what_differs_from_the_log(runtime)
        try:
            report = _reseal(runtime, which)
        except KeyboardInterrupt:
            fail(f"interrupted: nothing is lost; run `shanakht keys reseal {which}` to finish",
                 EXIT_INTERRUPTED)  # fmt: skip
    click.echo(
        f"{report.resealed} {WHAT[which]} sealed again under {which} key version "
        f"{report.version}, {report.current} already under it, {report.changed_meanwhile} rows "
        "changed or gone meanwhile (run again for those)"
    )
    if report.rotated_meanwhile:
        click.echo(f"the {which} key was rotated during the run: run it again for the newest")
    broken = report.broken if isinstance(report, ResealReport) else []
    left = [f"{what}: does not open" for what in broken] + [
        f"{what}: its row seal fails" for what in report.unsealed_rows
    ]
    for line in left:
        click.echo(f"left as it is: {line}", err=True)
    if left:
        sys.exit(EXIT_TAMPERED)


def _refuse_what_differs_from_the_log(runtime: Runtime) -> None:
    """Exit 1 (nothing sealed or retired) unless the audit log verifies and every reconciled
    row whose seal holds is as it last recorded (`refuse_what_differs_from_the_log`)."""
    try:
        refuse_what_differs_from_the_log(runtime)
    except TamperError as exc:
        fail(f"the audit log FAILED verification: {exc}; nothing was changed", EXIT_TAMPERED)
    except DiffersFromLog as exc:
        _differ(exc)


def _differ(exc: DiffersFromLog) -> NoReturn:
    for mismatch in exc.mismatches:
        click.echo(f"{mismatch.table} {mismatch.key}: {mismatch.problem}", err=True)
    fail(f"{exc} (`shanakht audit integrity`): settle them first, so that none is carried "
         "over under the new key; nothing was changed", EXIT_TAMPERED)  # fmt: skip


def _reseal(runtime: Runtime, which: str) -> RowResealReport:
    progress = _progress()
    if which == PII:
        return reseal_all(
            runtime.transaction, runtime.identity.sealer, runtime.row_seal, runtime.audit_log,
            actor=CLI_ACTOR, progress=progress,
        )  # fmt: skip
    return reseal_rows(
        runtime.transaction, runtime.row_seal, SEALED_TABLES, runtime.audit_log,
        actor=CLI_ACTOR, resealed=carry_registrations(runtime.audit_log, CLI_ACTOR),
        progress=progress,
    )  # fmt: skip


def _progress() -> Callable[[str, int], None]:
    """A line at most once a second: a province's citizens take hours to seal again."""
    last = -PROGRESS_EVERY

    def progress(table: str, rows: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY:
            last = now
            click.echo(f"{table}: {rows} rows done")

    return progress


@click.command("retire")
@click.argument("which", type=click.Choice(SEALING_KEYS))
def keys_retire(which: str) -> None:
    """Delete the older versions of the PII or row-seal key, once `keys reseal` has moved
    everything off them, so the service stops opening (or honouring) what they seal.

    Everything they seal is read first: if a value that opens, or a row whose seal holds, is
    still under an older version, nothing is retired (exit 1; run `shanakht keys reseal`
    until it seals nothing). What does not open or hold is lost already and is counted, not
    kept. The retirement is recorded in the database and the audit log, then the key files
    are deleted; running replicas stop using those versions within a second, and a keys
    folder restored with them is refused. Backups made before still hold them.
    """
    what = WHAT[which]
    with cli_runtime() as runtime:
        migrate(runtime)
        try:
            retired = retire_versions(runtime, which, actor=CLI_ACTOR)
        except StillSealed as exc:
            for version, count in sorted(exc.found.held.items()):
                click.echo(f"version {version} still seals {count} {what} in use", err=True)
            for version in sorted(exc.recorded & exc.found.held.keys()):
                click.echo(f"version {version} is recorded as retired, but not by `keys "
                           "retire`: key_retirements was changed outside the service",
                           err=True)  # fmt: skip
            fail(f"nothing retired: run `shanakht keys reseal {which}` until it seals nothing, "
                 "then this again", EXIT_TAMPERED)  # fmt: skip
        except TamperError as exc:
            fail(f"the audit log FAILED verification: {exc}; nothing was retired", EXIT_TAMPERED)
        except DiffersFromLog as exc:
            _differ(exc)
        except (RetiredMeanwhile, RotatedMeanwhile) as exc:
            fail(str(exc), EXIT_TAMPERED)
    if retired.removed_again:
        again = ", ".join(map(str, retired.removed_again))
        click.echo(f"{which} key versions {again}, retired before, were back: deleted again")
    if retired.versions:
        numbers = ", ".join(map(str, retired.versions))
        click.echo(f"retired {which} key versions {numbers}: their key files are deleted")
    elif not retired.removed_again:
        click.echo(f"no older version of the {which} key to retire")
    for version, count in sorted(retired.broken.items()):
        click.echo(f"{count} {what} under version {version} were unusable already and stay so")
