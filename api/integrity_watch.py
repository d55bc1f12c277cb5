"""`shanakht audit watch`: the integrity check on a schedule, its findings for Prometheus.

`shanakht audit integrity` finds what a seal cannot (an earlier row put back with its MAC, a
row deleted) and what the service would only notice when it reads the row; but it finds it
only when someone runs it, and until then a closed account put back open signs in, a session
put back live serves its old cookie. So production runs the check continuously, in a process
of its own (docker-compose.yml's `integrity` service): a full check reads the whole log, which
the API's replicas should not pay for while they serve. Prometheus scrapes what the last check
found, and `deploy/prometheus/alerts.yml` pages when a check finds anything, and when checks
stop completing (a watcher that died, or cannot reach the database, must not read as a clean
database).

The metrics come from a collector over the last result, not from prometheus_client's metric
objects, which in a container with PROMETHEUS_MULTIPROC_DIR set would keep their values in
files meant for the API's workers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from api.administration import Integrity, check_integrity
from api.errors import StartupError
from api.migrate import require_current_schema
from api.runtime import Runtime
from audit import TamperError

log = logging.getLogger("shanakht.integrity")

# Rows named in the log per check: enough to start looking, not a flood when a restore from an
# old backup puts thousands of rows out of step (the count is in the metrics).
ROWS_LOGGED = 20


@dataclass
class Findings:
    """What the watcher's checks have found so far; the metrics read it as it stands."""

    started_at: float  # when the watcher started (Unix time): the staleness alert's origin
    completed_at: float | None = None  # when the last check ran to its end (Unix time)
    seconds: float = 0.0  # how long it took
    log_verified: bool = False
    log_entries: int = 0
    bad_seals: int = 0  # rows whose seal fails (written or changed without the service's keys)
    differ: int = 0  # sealed rows that are not what the log last recorded
    failed_runs: int = 0  # checks that could not run to the end (no database, say)


class FindingsCollector(Collector):
    def __init__(self, findings: Findings) -> None:
        self._findings = findings

    def collect(self) -> Iterator[Metric]:
        found = self._findings
        yield _gauge("started_timestamp_seconds", "When the watcher started", found.started_at)
        if found.completed_at is not None:
            yield _gauge("checked_timestamp_seconds", "When the last check completed",
                         found.completed_at)  # fmt: skip
            yield _gauge("check_seconds", "How long the last check took", found.seconds)
            yield _gauge("log_verified", "1 if the last check verified the audit log, else 0",
                         int(found.log_verified))  # fmt: skip
            yield _gauge("log_entries", "Entries in the log the last check verified",
                         found.log_entries)  # fmt: skip
            rows = GaugeMetricFamily(
                "shanakht_integrity_rows",
                "Rows the last check found wrong: `seal`, failing its seal; `log`, not as the "
                "log last recorded it",
                labels=["problem"],
            )
            rows.add_metric(["seal"], found.bad_seals)
            rows.add_metric(["log"], found.differ)
            yield rows
        yield CounterMetricFamily(
            "shanakht_integrity_failed_checks",
            "Checks that could not run to their end (the database unreachable, say)",
            value=found.failed_runs,
        )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"shanakht_integrity_{name}", documentation, value=value)


def check_once(
    runtime: Runtime, findings: Findings, clock: Callable[[], float] = time.time
) -> None:
    """One check, its result into `findings`, what it found into the log (by table and key,
    as `audit integrity` prints it: ids and pseudonyms, never personal data). A check that
    cannot run is counted and logged (a database error by its kind alone: its text may name
    the server), and leaves the last result standing, with its time, for the staleness alert
    to judge; so is one on a schema this code does not read (an upgrade ran, and this watcher
    is the old release's)."""
    started = time.perf_counter()
    try:
        require_current_schema(runtime.engine)
        found = check_integrity(runtime)
    except StartupError as exc:  # an upgrade ran: this watcher's code reads the old schema
        findings.failed_runs += 1
        log.error("the integrity check did not run: %s", exc)
        return
    except TamperError as exc:
        where = f" at seq {exc.seq}" if exc.seq is not None else ""
        log.error("audit log FAILED verification%s", where)
        findings.log_verified, findings.log_entries = False, 0
        findings.bad_seals = findings.differ = 0  # a log that fails says nothing of the rows
    except SQLAlchemyError as exc:
        findings.failed_runs += 1
        log.error("the integrity check could not run: %s", type(exc).__name__)
        return
    except Exception:  # a bug: whatever stops one check must not stop the watch
        findings.failed_runs += 1
        log.exception("the integrity check failed")
        return
    else:
        _record(findings, found)
    findings.completed_at = clock()
    findings.seconds = time.perf_counter() - started


def _record(findings: Findings, found: Integrity) -> None:
    findings.log_verified, findings.log_entries = True, found.log.size
    findings.bad_seals, findings.differ = len(found.bad), len(found.mismatches)
    named = [f"{b.table} {b.key}: {b.problem} MAC, not honoured" for b in found.bad]
    named += [f"{m.table} {m.key}: {m.problem}" for m in found.mismatches]
    for line in named[:ROWS_LOGGED]:
        log.error("%s", line)
    if named:
        log.error(
            "%d rows FAILED their seal, %d differ from the audit log (%d named above)",
            len(found.bad), len(found.mismatches), min(len(named), ROWS_LOGGED),
        )  # fmt: skip


def watch(runtime: Runtime, findings: Findings, every: float, stop: threading.Event) -> None:
    """Check, then wait `every` seconds (from the end of one check to the start of the next,
    so a slow check never runs twice at once), until `stop` is set."""
    while not stop.is_set():
        check_once(runtime, findings)
        stop.wait(every)
