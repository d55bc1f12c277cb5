"""`shanakht locker ...`: housekeeping of the document locker, and its side of `keys`."""

from __future__ import annotations

import time
from collections.abc import Callable

import click

from api.administration import kek_states
from api.cli_support import cli_runtime, fail, migrate
from locker.errors import LockerError
from locker.kek import KekProvider
from locker.rewrap import BATCH_SIZE, rewrap_all

ACTOR = "admin:cli"
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130  # what a shell reports for a command ended by Ctrl-C
PROGRESS_EVERY = 1.0  # seconds between progress lines: a million keys is 2,000 batches


@click.group()
def locker() -> None:
    """The document locker: data keys and stored ciphertext."""


@locker.command("rewrap")
@click.option("--batch-size", default=BATCH_SIZE, show_default=True, type=click.IntRange(1))
def locker_rewrap(batch_size: int) -> None:
    """Re-wrap every data key under the newest KEK; safe to stop and run again."""
    with cli_runtime() as runtime:
        migrate(runtime)
        try:
            report = rewrap_all(
                runtime.transaction, runtime.keks, runtime.audit_log,
                actor=ACTOR, batch_size=batch_size, progress=_progress_printer(),
            )  # fmt: skip
        except LockerError as exc:
            fail(f"{exc}; the keys before it are done, run again once it is dealt with",
                 EXIT_FAILED)  # fmt: skip
        except KeyboardInterrupt:
            fail("interrupted: every key is readable; run `shanakht locker rewrap` to finish",
                 EXIT_INTERRUPTED)  # fmt: skip
        click.echo(
            f"{report.rewrapped} data keys re-wrapped under KEK {report.kek_version}, "
            f"{report.already_current} already under it, {report.changed} left as they were "
            "(deleted or re-wrapped by another process meanwhile)"
        )


def _progress_printer() -> Callable[[int, int], None]:
    """A progress callback that prints a line at most once a second, and the last one."""
    last = -PROGRESS_EVERY

    def progress(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if done >= total or now - last >= PROGRESS_EVERY:
            last = now
            click.echo(f"{done}/{total} data keys done")

    return progress


@locker.command("sweep")
def locker_sweep() -> None:
    """Remove the ciphertext of deleted documents, then orphaned objects over 6 hours old."""
    with cli_runtime() as runtime:
        migrate(runtime)
        with runtime.transaction() as session:
            swept = runtime.locker(session)
            shredded = swept.sweep()
            orphans = swept.sweep_orphans()
        click.echo(
            f"removed {shredded} objects of deleted documents and {orphans} orphaned objects"
        )


def kek_lines(keks: KekProvider) -> list[str]:
    """One line per KEK version: its id, and whether new keys are wrapped under it or it only
    unwraps (or cannot be opened, which `locker rewrap` would trip over)."""
    return [
        f"{k.version_id}\tKEK\t{k.state}" + (f": {k.problem}" if k.problem else "")
        for k in kek_states(keks)
    ]
