"""The two-person rule's record, shared by legal-basis access (`locker.legal`) and grants of
the powerful roles (`identity.role_proposals`): one person proposes, a different person
decides within `DECISION_WINDOW`, and the decision is a compare-and-set on the proposal's row.

What the two share is the row's life, not its meaning: `status` (pending, approved, refused),
`created_at`, `decided_at`, `decider` and `refusal`, and the rule that a row is decided once,
by someone other than its proposer, before it expires. Here, since `audit` is the package
both `identity` and `locker` may import; each keeps its own table, checks and refusals.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Table, true, update
from sqlalchemy.orm import Session

from audit.entry import holds_cnic

PENDING, APPROVED, REFUSED, EXPIRED = "pending", "approved", "refused", "expired"
DECISION_WINDOW = timedelta(days=7)  # a proposal nobody decides in this time expires
MAX_REASON = 500


def pending_state(status: str, created_at: datetime, now: datetime) -> str:
    """`status` as of `now`: a pending row nobody decided within the window has expired."""
    if status == PENDING and now >= created_at + DECISION_WINDOW:
        return EXPIRED
    return status


def decide(
    db: Session,
    table: Table,
    row_id: str,
    *,
    status: str,
    decider: str,
    refusal: str | None,
    now: datetime,
    not_theirs: ColumnElement[bool],
    unchanged: ColumnElement[bool] | None = None,
    also: Mapping[str, Any] | None = None,
) -> bool:
    """Record `decider`'s decision if the row is still pending, unexpired and `not_theirs`
    holds (the decider is not its proposer, nor whoever else may not decide it). A
    compare-and-set: of two deciders racing, one updates the row and the other finds it
    decided, however the race goes; False then, and nothing is changed.

    A sealed row (`audit.row_seal`) passes `unchanged`, its old MAC as read, so the row is
    decided only as it was checked, and `also`, its new MAC over the decided row."""
    decided = db.execute(
        update(table)
        .where(
            table.c.id == row_id,
            table.c.status == PENDING,
            table.c.created_at > now - DECISION_WINDOW,
            not_theirs,
            true() if unchanged is None else unchanged,
        )
        .values(status=status, decided_at=now, decider=decider, refusal=refusal, **(also or {}))
    )
    return decided.rowcount == 1  # type: ignore[attr-defined, no-any-return]  # a CursorResult


def decision_details(status: str, decider: str | None, refusal: str | None) -> dict[str, str]:
    """The decision's part of an audit entry's details: the decider named as approver or
    refuser, and a refusal's reason; empty while the row is undecided."""
    details: dict[str, str] = {}
    if decider is not None:
        details["approver" if status == APPROVED else "refuser"] = decider
    if refusal is not None:
        details["refusal"] = refusal
    return details


def fit_reason(reason: str) -> bool:
    """A refusal's reason is 1 to `MAX_REASON` characters and names nobody by CNIC."""
    return bool(reason.strip()) and len(reason) <= MAX_REASON and not holds_cnic(reason)
