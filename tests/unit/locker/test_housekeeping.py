"""Retention of the locker's tables (docs/retention.md): finished jobs' records and lines go a
month after they ended, requests that never became a consent a month after they were denied or
ran out; a consent's request stays as long as the consent, and the reconciliation with the
audit log (`shanakht audit integrity`) finds nothing amiss after. Share links, sealed, go their
keeping after expiry, each named in the log's record of the sweep."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select

from api.administration import check_integrity
from api.app import _sweep_locker
from api.retention import sweep_retained
from api.routes.locker_views import sharing
from api.runtime import Runtime
from audit.batched import sweep_all
from audit.models import entries
from identity.models import citizens
from locker import jobs
from locker.housekeeping import JOB_KEEP, REQUEST_KEEP, SWEEPS
from locker.models import consents, job_lines, requests, shares
from locker.models import jobs as job_rows
from locker.reconciled import SHARE_SWEPT
from tests.unit.locker.test_exchange import OWNER, Kit, _approve, _file, _issue
from tests.unit.locker.test_locker_seals import CITIZEN, _share

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


# -- share links: a sealed table, swept with a record ------------------------------------------


def _entries_of(runtime: Runtime, action: str) -> list[dict[str, Any]]:
    with runtime.engine.connect() as connection:
        found = connection.execute(select(entries.c.entry).order_by(entries.c.seq)).scalars()
        return [e for e in map(json.loads, found) if e["action"] == action]


def test_share_links_go_their_keeping_after_expiry_named_in_the_log(kit: Kit) -> None:
    """A link expired (revoked or not) more than `share_link_keep_days` ago is deleted, and one
    entry names every link deleted, so `audit integrity` takes it as meant; a link within its
    keeping stays; a second sweep finds nothing and writes nothing. A swept link put back by
    SQL, seal and all, is listed."""
    runtime = kit.runtime
    keep = timedelta(days=runtime.settings.share_link_keep_days)
    document_id = _issue(kit)
    start = kit.clock.now
    expired, _token = _share(kit, document_id)
    revoked, _token = _share(kit, document_id)
    with runtime.transaction() as session:
        sharing(runtime, session).revoke(revoked, owner=OWNER, who=CITIZEN)
    kit.clock.now = start + keep - DAY
    recent, _token = _share(kit, document_id)
    kit.clock.now = start + keep - timedelta(minutes=1)
    assert sweep_retained(runtime)[shares.name] == 0, "five minutes' life: not yet past keeping"
    assert _ids(runtime, shares.c.id) == {expired, revoked, recent}
    kit.clock.now = start + keep + timedelta(hours=1)
    with runtime.engine.connect() as connection:
        kept_row = dict(
            connection.execute(select(shares).where(shares.c.id == expired)).one()._mapping
        )
    totals = sweep_retained(runtime)
    assert totals[shares.name] == 2
    assert _ids(runtime, shares.c.id) == {recent}
    (entry,) = _entries_of(runtime, SHARE_SWEPT)
    assert entry["details"]["shares"] == sorted([expired, revoked])
    assert entry["details"]["count"] == 2
    assert entry["details"]["kept_days"] == keep.days
    assert OWNER not in json.dumps(entry), "the owner is not named: only the links"
    found = check_integrity(runtime)
    assert (found.bad, found.mismatches) == ([], [])
    assert sweep_retained(runtime) == {shares.name: 0, citizens.name: 0}
    assert len(_entries_of(runtime, SHARE_SWEPT)) == 1, "a sweep with nothing to do is silent"
    with runtime.transaction() as session:
        session.execute(insert(shares).values(**kept_row))
    (mismatch,) = check_integrity(runtime).mismatches
    assert (mismatch.table, mismatch.key) == (shares.name, expired)
    assert "swept" in mismatch.problem
