"""Background jobs of the locker (a bulk issue, a data-key re-wrap) kept in the database, so
that every API replica reads the same progress and a restart forgets nothing.

The process that runs a job writes its counts at each batch (or row) and a heartbeat
(`beat_at`) at least every `BEAT` seconds; a reader on any replica sees the job as it stands.
A job whose runner stopped beating for `STALE` (its process was killed or restarted) is shown
as interrupted, never as running forever: `Job.status(now)` says so, and `claim` marks it so
when the next run of its kind starts. A kind that runs one at a time (the re-wrap) holds a
`lane`: the unique column is set to the kind while the job is live and cleared when it ends,
so two replicas cannot both start one; an interrupted job's lane is taken over.

What is stored names people by pseudonym only; a bulk job's lines keep the document number,
title and outcome (as `locker_documents` does), never the CNIC the manifest named.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from locker.models import job_lines, jobs

QUEUED, RUNNING, STOPPING, DONE, STOPPED, FAILED, INTERRUPTED = (
    "queued", "running", "stopping", "done", "stopped", "failed", "interrupted",
)  # fmt: skip
LIVE = (QUEUED, RUNNING, STOPPING)
BEAT = 10.0  # seconds between a runner's heartbeats, at most
STALE = timedelta(seconds=60)  # no heartbeat for this long: the runner is gone


@dataclass(frozen=True, slots=True)
class Job:
    """One job as stored: its counts, its summary (JSON-shaped, no PII) and its heartbeat."""

    id: str
    kind: str
    department: str | None
    starter: str
    state: str
    done: int
    total: int
    failed: int
    summary: Mapping[str, Any]
    created_at: datetime
    beat_at: datetime
    ended_at: datetime | None

    def status(self, now: datetime) -> str:
        """The state a reader is shown: a live job whose runner went quiet is interrupted."""
        if self.state in LIVE and now - self.beat_at > STALE:
            return INTERRUPTED
        return self.state


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a bulk job and what it came to; `reason` as the job's runner stored it."""

    line: int
    doc_id: str
    title: str
    outcome: str
    reason: Mapping[str, Any] | None


def _job(row: Any) -> Job:
    return Job(
        row.id, row.kind, row.department, row.starter, row.state, row.done, row.total,
        row.failed, json.loads(row.summary), row.created_at, row.beat_at, row.ended_at,
    )  # fmt: skip


def create(
    session: Session,
    kind: str,
    *,
    starter: str,
    now: datetime,
    total: int = 0,
    department: str | None = None,
    one_at_a_time: bool = False,
) -> Job | None:
    """A new job, running from now; None if `one_at_a_time` and a live one of its kind is
    beating. A live one that stopped beating is marked interrupted and its lane taken."""
    if one_at_a_time:
        session.execute(
            update(jobs)
            .where(jobs.c.lane == kind, jobs.c.beat_at < now - STALE)
            .values(lane=None, state=INTERRUPTED, ended_at=now)
        )
    values = {
        "id": secrets.token_urlsafe(12), "kind": kind, "department": department,
        "starter": starter, "state": RUNNING, "done": 0, "total": total, "failed": 0,
        "summary": "{}", "lane": kind if one_at_a_time else None, "created_at": now,
        "beat_at": now, "ended_at": None,
    }  # fmt: skip
    try:
        with session.begin_nested():
            session.execute(insert(jobs).values(**values))
    except IntegrityError:
        return None  # another replica's run holds the lane
    return get(session, str(values["id"]))


def get(session: Session, job_id: str) -> Job | None:
    row = session.execute(select(jobs).where(jobs.c.id == job_id)).one_or_none()
    return None if row is None else _job(row)


def latest(session: Session, kind: str) -> Job | None:
    """The newest job of `kind`, for a page that shows the last run."""
    row = session.execute(
        select(jobs).where(jobs.c.kind == kind).order_by(jobs.c.created_at.desc()).limit(1)
    ).first()
    return None if row is None else _job(row)


def progress(
    session: Session,
    job_id: str,
    now: datetime,
    *,
    done: int,
    total: int | None = None,
    failed: int | None = None,
    summary: Mapping[str, Any] | None = None,
) -> str:
    """Record the counts (and beat) of a live job; the job's stored state after it, so a runner
    sees a stop asked for from any replica, or that its job was taken over (`create` marked it
    interrupted), and stops: anything but RUNNING ends its run."""
    values: dict[str, Any] = {"done": done, "beat_at": now}
    if total is not None:
        values["total"] = total
    if failed is not None:
        values["failed"] = failed
    if summary is not None:
        values["summary"] = json.dumps(dict(summary), sort_keys=True)
    session.execute(
        update(jobs).where(jobs.c.id == job_id, jobs.c.state.in_(LIVE)).values(**values)
    )
    return str(session.execute(select(jobs.c.state).where(jobs.c.id == job_id)).scalar_one())


def beat(session: Session, job_id: str, now: datetime) -> bool:
    """The runner is alive (while a long batch or row goes on); whether its job still is. A job
    that ended, or was marked interrupted while its runner's beats failed (and may have been
    taken over by another replica's run), is not revived: its runner is to stop."""
    changed = session.execute(
        update(jobs).where(jobs.c.id == job_id, jobs.c.state.in_(LIVE)).values(beat_at=now)
    )
    return bool(changed.rowcount)  # type: ignore[attr-defined]


def request_stop(session: Session, job_id: str) -> bool:
    """Ask a running job to stop after its batch; whether it was running."""
    changed = session.execute(
        update(jobs).where(jobs.c.id == job_id, jobs.c.state == RUNNING).values(state=STOPPING)
    )
    return bool(changed.rowcount)  # type: ignore[attr-defined]


def finish(
    session: Session,
    job_id: str,
    now: datetime,
    state: str,
    *,
    summary: Mapping[str, Any] | None = None,
    done: int | None = None,
    total: int | None = None,
) -> None:
    """The live job ended (done, stopped or failed): its lane is freed. A job already ended or
    interrupted keeps its record: a runner that was taken over does not write over it."""
    values: dict[str, Any] = {"state": state, "lane": None, "beat_at": now, "ended_at": now}
    if summary is not None:
        values["summary"] = json.dumps(dict(summary), sort_keys=True)
    if done is not None:
        values["done"] = done
    if total is not None:
        values["total"] = total
    session.execute(
        update(jobs).where(jobs.c.id == job_id, jobs.c.state.in_(LIVE)).values(**values)
    )


def add_line(session: Session, job_id: str, line: Line, now: datetime) -> None:
    """Record one line's outcome and count it done (and failed, if refused)."""
    session.execute(
        insert(job_lines).values(
            job_id=job_id, line=line.line, doc_id=line.doc_id, title=line.title,
            outcome=line.outcome,
            reason=None if line.reason is None else json.dumps(dict(line.reason), sort_keys=True),
        )
    )  # fmt: skip
    session.execute(
        update(jobs)
        .where(jobs.c.id == job_id)
        .values(
            done=jobs.c.done + 1,
            failed=jobs.c.failed + (1 if line.outcome == "refused" else 0),
            beat_at=now,
        )
    )


def lines(session: Session, job_id: str) -> list[Line]:
    """The job's lines done so far, in manifest order."""
    rows = session.execute(
        select(job_lines).where(job_lines.c.job_id == job_id).order_by(job_lines.c.line)
    )
    return [
        Line(
            r.line, r.doc_id, r.title, r.outcome, None if r.reason is None else json.loads(r.reason)
        )
        for r in rows
    ]
