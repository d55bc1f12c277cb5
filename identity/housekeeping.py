"""Forgetting what is no longer needed: expired one-time codes, sign-in requests, authorization
codes and tokens, ended sessions, spent attempt counters. Keeping them would only keep personal
data longer than its purpose (the audit log, not these tables, is the record of what happened).
docs/retention.md states every table's retention; these are the identity package's sweeps.

Each sweep deletes one batch (`audit.batched`); nothing here touches a sealed table (roles,
clients, role proposals) or the audit log: those are kept, not swept.

A removed account is the one row changed rather than deleted (`erase_removed`): its sealed
profile and mobile number are erased once its retention is over, and its pseudonym and status
stay, since the audit log names the account by that pseudonym for good. That sweep records
what it erased in the log, as it changes what a citizen's record holds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.schema import Table

from audit import AuditEvent, AuditLog
from audit.batched import BATCH, Sweep, delete_batch, deleted, sweep_once
from audit.entry import format_time
from audit.models import entries
from identity.accounts import ERASED, Accounts
from identity.models import (
    auth_requests,
    challenges,
    citizens,
    codes,
    session_clients,
    sessions,
    throttles,
    tokens,
    used_assertions,
)
from identity.reconciled import ACCOUNT_REMOVED

GRACE = timedelta(days=1)  # a day past expiry, so a late request still meets a clear refusal


def _expired(table: Table, key: str, moment: str = "expires_at") -> Sweep:
    """A sweep of the rows whose `moment` is more than GRACE ago."""

    def sweep(session: Session, now: datetime, batch: int) -> int:
        return delete_batch(session, table, key, table.c[moment] < now - GRACE, batch=batch)

    return sweep


def _tokens(session: Session, now: datetime, batch: int) -> int:
    """A token family's rows go together, a GRACE after its last token expired. A rotated
    refresh token must outlive its own expiry while its family lives: presented again, it is
    what reveals the theft and revokes the family (`TokenService.refresh`)."""
    cutoff = now - GRACE
    sibling = tokens.alias("sibling")
    alive = exists().where(sibling.c.family == tokens.c.family, sibling.c.expires_at >= cutoff)
    return delete_batch(session, tokens, "id", tokens.c.expires_at < cutoff, ~alive, batch=batch)


def _codes(session: Session, now: datetime, batch: int) -> int:
    """An authorization code is kept while the token family it began lives (the family is
    named by the code), so a replay of it is still recognised and revokes that family."""
    cutoff = now - GRACE
    alive = exists().where(tokens.c.family == codes.c.id, tokens.c.expires_at >= cutoff)
    return delete_batch(session, codes, "id", codes.c.expires_at < cutoff, ~alive, batch=batch)


def _sessions(session: Session, now: datetime, batch: int) -> int:
    """Sessions that ended more than GRACE ago (the sweeper ends expired ones, and tells their
    e-services), with the note of which e-services they served. A session still named by an
    authorization code waits for the code to go first."""
    named = exists().where(codes.c.session_id == sessions.c.id)
    ended = select(sessions.c.id).where(sessions.c.ended_at < now - GRACE, ~named).limit(batch)
    ids: Sequence[str] = session.execute(ended).scalars().all()
    if not ids:
        return 0
    session.execute(delete(session_clients).where(session_clients.c.session_id.in_(ids)))
    return deleted(session.execute(delete(sessions).where(sessions.c.id.in_(ids))))


# In this order: tokens before the codes of their family, codes before the sessions they name.
SWEEPS: tuple[tuple[str, Sweep], ...] = (
    (challenges.name, _expired(challenges, "id")),
    (auth_requests.name, _expired(auth_requests, "id")),
    (used_assertions.name, _expired(used_assertions, "jti")),
    # Every attempt window is an hour at most: a counter whose window began a GRACE ago counts
    # nothing any more, and one row per address, account or browser would pile up.
    (throttles.name, _expired(throttles, "key", "window_start")),
    (tokens.name, _tokens),
    (codes.name, _codes),
    (sessions.name, _sessions),
)


def purge_expired(session: Session, now: datetime, batch: int = BATCH) -> dict[str, int]:
    """One batch of every identity sweep, in the caller's transaction; how many rows went, by
    table (`audit.batched.sweep_all` runs them until nothing is left)."""
    return sweep_once(session, SWEEPS, now, batch)


REMOVED = ACCOUNT_REMOVED  # `shanakht citizens remove`'s entry
PROFILES_ERASED = "identity.citizen.profiles_erased"
RETENTION_ACTOR = "system:retention"
_REMOVED_AT = b'{"action":"' + REMOVED.encode() + b'"'


def removed_at(session: Session, pseudonym: str) -> datetime | None:
    """When the log recorded the removal of the account of `pseudonym`, or None if it never
    did. The log, not the row, keeps the date (the row has no column for it): its newest
    entries about the subject are read by index, and a removal is among the last."""
    found = session.execute(
        select(entries.c.entry).where(entries.c.subject == pseudonym).order_by(entries.c.seq.desc())
    )
    for data in found.scalars():
        if bytes(data).startswith(_REMOVED_AT):
            return datetime.fromisoformat(json.loads(data)["time"])
    return None


def erase_removed(
    session: Session,
    now: datetime,
    batch: int,
    *,
    audit: AuditLog,
    keep: timedelta,
    accounts: Accounts,
) -> int:
    """Erase the sealed profile (name, father's or husband's name, date of birth, address) and
    mobile number of up to `batch` accounts removed more than `keep` ago, and record how many
    in one entry; how many were erased. An account whose removal the log never recorded is
    kept: nothing says its time is over. Its pseudonym and status stay: every entry about it
    names that pseudonym, and a new registration for the same CNIC must still be refused. Each
    row is erased under its lock and re-sealed (`Accounts.erase`), as every write of it is."""
    cutoff = now - keep
    waiting = session.execute(
        select(citizens.c.id, citizens.c.pseudonym)
        .where(citizens.c.status == "removed", citizens.c.profile != ERASED)
        .order_by(citizens.c.id)
    ).all()
    due: list[str] = []
    for row in waiting:
        removed = removed_at(session, row.pseudonym)
        if removed is not None and removed < cutoff:
            due.append(row.id)
            if len(due) == batch:
                break
    if not due:
        return 0
    erased = sum(accounts.erase(citizen_id) for citizen_id in due)
    if erased:
        audit.append(
            AuditEvent(
                actor=RETENTION_ACTOR,
                action=PROFILES_ERASED,
                purpose="retention",
                details={
                    "count": erased,
                    "removed_before": format_time(cutoff),
                    "kept_days": keep.days,
                },
            )
        )
    return erased
