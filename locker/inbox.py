"""The citizen's locker inbox: what departments asked for, and who opened their documents.

The inbox is the notice that always arrives (an SMS can be lost, or the number changed), so
every request and every legal-basis access posts here in the same transaction as the action.
A message under a disclosure delay is written now, dated when it becomes visible, so nothing
needs to run later for the citizen to be told.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from locker.models import inbox

MAX_MESSAGE = 500
REQUEST, LEGAL_ACCESS = "exchange.request", "exchange.legal_access"

# What a message's facts may hold: names, codes and references, one or several.
Params = Mapping[str, str | list[str]]


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    kind: str
    message: str
    reference: str | None
    created_at: datetime
    visible_from: datetime
    read_at: datetime | None
    params: dict[str, str | list[str]] = field(default_factory=dict)


class Inbox:
    def __init__(self, session: Session, *, clock: Callable[[], datetime]) -> None:
        self._db = session
        self._clock = clock

    def post(
        self,
        owner: str,
        kind: str,
        message: str,
        *,
        reference: str | None = None,
        visible_from: datetime | None = None,
        params: Params | None = None,
    ) -> None:
        """Leave `message` for `owner`, shown from `visible_from` (at once by default); a long
        message is cut to fit rather than refused, since the action it reports stands.
        `message` is the record, in English; `params` are its facts, from which a page says
        the same in the reader's language."""
        now = self._clock()
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 1] + "…"
        self._db.execute(
            insert(inbox).values(
                owner=owner, kind=kind, message=message, reference=reference, created_at=now,
                visible_from=visible_from or now, params=json.dumps(params) if params else None,
            )
        )  # fmt: skip

    def visible(self, owner: str, *, limit: int = 100) -> list[Message]:
        """`owner`'s messages that may be shown now, the most recently shown first."""
        rows = self._db.execute(
            select(inbox)
            .where(inbox.c.owner == owner, inbox.c.visible_from <= self._clock())
            .order_by(inbox.c.visible_from.desc(), inbox.c.id.desc())
            .limit(limit)
        )
        return [
            Message(
                r.id, r.kind, r.message, r.reference, r.created_at, r.visible_from, r.read_at,
                json.loads(r.params) if r.params else {},
            )
            for r in rows
        ]  # fmt: skip

    def mark_read(self, owner: str, message_id: int) -> bool:
        """Mark one of `owner`'s visible messages read; False if there is no such message."""
        marked = self._db.execute(
            update(inbox)
            .where(
                inbox.c.id == message_id,
                inbox.c.owner == owner,
                inbox.c.visible_from <= self._clock(),
            )
            .values(read_at=func.coalesce(inbox.c.read_at, self._clock()))
        )
        return getattr(marked, "rowcount", 0) == 1
