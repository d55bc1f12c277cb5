"""Retention of the locker's unsealed tables (docs/retention.md): finished jobs' records and
lines go a month after they ended, requests that never became a consent a month after they
were denied or ran out; a consent's request stays as long as the consent, and the
reconciliation with the audit log (`shanakht audit integrity`) finds nothing amiss after."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from api.administration import check_integrity
from api.app import _sweep_locker
from api.runtime import Runtime
from audit.batched import sweep_all
from locker import jobs
from locker.housekeeping import JOB_KEEP, REQUEST_KEEP, SWEEPS
from locker.models import consents, job_lines, requests
from locker.models import jobs as job_rows
from tests.unit.locker.test_exchange import OWNER, Kit, _approve, _file, _issue

DAY = timedelta(days=1)


def _job(runtime: Runtime, lines: int, *, ended: bool) -> str:
    now = runtime.clock()
    with runtime.transaction() as session:
        job = jobs.create(session, "bulk-issue", starter="citizen:p:x", now=now, total=lines)
        assert job is not None
        for line in range(lines):
            jobs.add_line(
                session, job.id, jobs.Line(line, f"BC-{line}", "Birth", "issued", None), now
            )
        if ended:
            jobs.finish(session, job.id, now, jobs.DONE)
    return job.id


def _ids(runtime: Runtime, column: object) -> set[str]:
    with runtime.engine.connect() as connection:
        return set(connection.execute(select(column)).scalars())  # type: ignore[call-overload]


def test_finished_jobs_go_a_month_after_they_ended_with_their_lines(kit: Kit) -> None:
    runtime = kit.runtime
    start = kit.clock.now
    finished = _job(runtime, 7, ended=True)
    abandoned = _job(runtime, 2, ended=False)  # its process died; nothing marked it
    kit.clock.now = start + JOB_KEEP - DAY
    recent = _job(runtime, 3, ended=True)
    running = _job(runtime, 1, ended=False)
    sweep_all(runtime.transaction, SWEEPS, kit.clock.now, batch=4)
    assert _ids(runtime, job_rows.c.id) == {finished, abandoned, recent, running}
    kit.clock.now = start + JOB_KEEP + timedelta(seconds=1)
    with runtime.transaction() as session:
        assert jobs.beat(session, running, kit.clock.now), "a live job beats on"
    totals = sweep_all(runtime.transaction, SWEEPS, kit.clock.now, batch=4)
    assert totals[job_lines.name] == 9
    assert totals[job_rows.name] == 2
    assert _ids(runtime, job_rows.c.id) == {recent, running}
    assert _ids(runtime, job_lines.c.job_id) == {recent, running}


def test_unanswered_and_denied_requests_go_a_month_on_a_consents_stays(kit: Kit) -> None:
    _issue(kit)
    start = kit.clock.now
    denied = _file(kit)
    kit.run(lambda exchange: exchange.deny(denied, owner=OWNER))
    unanswered = _file(kit, valid_until=start + DAY)
    approved = _file(kit)
    consent = _approve(kit, approved)
    waiting = _file(kit, valid_until=start + 2 * REQUEST_KEEP)
    everything = {denied, unanswered, approved, waiting}
    kit.clock.now = start + REQUEST_KEEP - timedelta(minutes=1)
    _sweep_locker(kit.runtime)
    assert _ids(kit.runtime, requests.c.id) == everything, "none is a month past its end yet"
    kit.clock.now = start + REQUEST_KEEP + 2 * DAY
    _sweep_locker(kit.runtime)
    assert _ids(kit.runtime, requests.c.id) == {approved, waiting}
    assert _ids(kit.runtime, consents.c.id) == {consent.id}, "a consent is sealed: never swept"
    found = check_integrity(kit.runtime)
    assert (found.bad, found.mismatches) == ([], [])
