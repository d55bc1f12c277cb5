"""The locker's rows that outlive their purpose: finished background jobs and their lines, and
requests that never became a consent. docs/retention.md states every table's retention; these
are the locker's sweeps (`audit.batched` runs them a batch at a time).

The sweeps in `SWEEPS` touch no sealed table (documents, shares, nominees, consents, legal
requests): the public verifier, the citizen's own record and the reconciliation with the audit
log (`shanakht audit integrity`) need them for as long as they exist. Nor the inbox: it is the
citizen's own record of what was done with their documents (a legal access is told there).

One sweep deletes sealed rows, and so is not among them: `sweep_shares`, of share links long
expired. A sealed row that goes without a word is what tampering looks like, so it names every
link it deletes in an entry of the log, in the same transaction, and the reconciliation reads
that entry as the link's end (`locker.reconciled.shares_kind`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, exists, or_, select, tuple_
from sqlalchemy.orm import Session

from audit import AuditEvent, AuditLog
from audit.batched import Sweep, delete_batch, deleted
from audit.entry import format_time
from locker import jobs as job_states
from locker.exchange import DENIED, EXPIRED, PENDING
from locker.models import consents, job_lines, jobs, requests, shares
from locker.reconciled import SHARE_SWEPT

JOB_KEEP = timedelta(days=30)  # an officer reads a batch's outcome, line by line, for a month
REQUEST_KEEP = timedelta(days=30)  # a department learns a request's end by asking for it


def _over(now: datetime) -> ColumnElement[bool]:
    """Jobs past keeping at `now`: ended JOB_KEEP ago, or live by their row but silent for as
    long (their process died and nothing marked them interrupted)."""
    cutoff = now - JOB_KEEP
    return or_(
        jobs.c.ended_at < cutoff,
        and_(jobs.c.state.in_(job_states.LIVE), jobs.c.beat_at < cutoff),
    )


def _job_lines(session: Session, now: datetime, batch: int) -> int:
    """A batch of the lines of jobs past keeping (their document numbers and titles)."""
    over = select(jobs.c.id).where(_over(now))
    chosen = (
        select(job_lines.c.job_id, job_lines.c.line)
        .where(job_lines.c.job_id.in_(over))
        .limit(batch)
    )
    key = tuple_(job_lines.c.job_id, job_lines.c.line)
    return deleted(session.execute(job_lines.delete().where(key.in_(chosen))))


def _jobs(session: Session, now: datetime, batch: int) -> int:
    """Jobs past keeping whose lines are gone (the lines' sweep runs first)."""
    lined = exists().where(job_lines.c.job_id == jobs.c.id)
    return delete_batch(session, jobs, "id", _over(now), ~lined, batch=batch)


def _requests(session: Session, now: datetime, batch: int) -> int:
    """Requests denied, or never answered within their window, REQUEST_KEEP ago. An approved
    request stays as long as its consent (the consent's row names it)."""
    cutoff = now - REQUEST_KEEP
    ended = or_(
        and_(requests.c.status == DENIED, requests.c.decided_at < cutoff),
        and_(requests.c.status.in_((PENDING, EXPIRED)), requests.c.valid_until < cutoff),
    )
    consented = exists().where(consents.c.request_id == requests.c.id)
    return delete_batch(session, requests, "id", ended, ~consented, batch=batch)


# In this order: a job's lines before the job.
SWEEPS: tuple[tuple[str, Sweep], ...] = (
    (job_lines.name, _job_lines),
    (jobs.name, _jobs),
    (requests.name, _requests),
)


def sweep_shares(
    session: Session, now: datetime, batch: int, *, audit: AuditLog, keep: timedelta
) -> int:
    """Delete up to `batch` share links that expired more than `keep` ago (revoked or not: a
    link is dead from its expiry either way), and record them, by id, in one entry; how many
    went. Two replicas sweeping at once each record what they chose; a link named twice is
    gone either way."""
    cutoff = now - keep
    chosen = sorted(
        session.execute(
            select(shares.c.id)
            .where(shares.c.expires_at < cutoff)
            .order_by(shares.c.id)
            .limit(batch)
        ).scalars()
    )
    if not chosen:
        return 0
    gone = deleted(session.execute(delete(shares).where(shares.c.id.in_(chosen))))
    if gone:
        audit.append(
            AuditEvent(
                actor="system:retention",
                action=SHARE_SWEPT,
                purpose="retention",
                details={
                    "count": gone,
                    "shares": chosen,
                    "expired_before": format_time(cutoff),
                    "kept_days": keep.days,
                },
            )
        )
    return gone
