"""Forgetting what is no longer needed: expired one-time codes, sign-in requests, authorization
codes and tokens. Keeping them would only keep personal data longer than its purpose (the audit
log, not these tables, is the record of what happened)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from identity.models import auth_requests, challenges, codes, throttles, tokens, used_assertions

GRACE = timedelta(days=1)  # a day past expiry, so a late request still meets a clear refusal


def purge_expired(session: Session, now: datetime) -> dict[str, int]:
    """Delete rows that expired more than GRACE ago; return how many, by table."""
    cutoff = now - GRACE
    counts = {}
    for table in (challenges, auth_requests, codes, tokens, used_assertions):
        result = session.execute(delete(table).where(table.c.expires_at < cutoff))
        counts[table.name] = int(getattr(result, "rowcount", 0) or 0)
    # Attempt counters whose window began more than GRACE ago count nothing any more (every
    # window is an hour at most): one row per address, account or browser would pile up.
    result = session.execute(delete(throttles).where(throttles.c.window_start < cutoff))
    counts[throttles.name] = int(getattr(result, "rowcount", 0) or 0)
    return counts
