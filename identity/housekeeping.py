"""Forgetting what is no longer needed: expired one-time codes, sign-in requests, authorization
codes and tokens, ended sessions, spent attempt counters. Keeping them would only keep personal
data longer than its purpose (the audit log, not these tables, is the record of what happened).
docs/retention.md states every table's retention; these are the identity package's sweeps.

Each sweep deletes one batch (`audit.batched`); nothing here touches a sealed table (roles,
clients, role proposals) or the audit log: those are kept, not swept.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.schema import Table

from audit.batched import BATCH, Sweep, delete_batch, deleted, sweep_once
from identity.models import (
    auth_requests,
    challenges,
    codes,
    session_clients,
    sessions,
    throttles,
    tokens,
    used_assertions,
)

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
