"""Fixed-window attempt counters in the database, so every server process shares them."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from identity.errors import TooManyAttempts
from identity.models import throttles
from identity.policy import Limit
from identity.upsert import insert_if_absent


class Throttle:
    def __init__(self, session: Session, clock: Callable[[], datetime]) -> None:
        self._session = session
        self._clock = clock

    def _insert_if_absent(self, key: str, now: datetime) -> None:
        values = {"key": key, "window_start": now, "hits": 0}
        insert_if_absent(self._session, throttles, values, ["key"])

    def hit(self, key: str, limit: Limit) -> None:
        """Count one attempt under `key`; raise TooManyAttempts once the limit is passed.

        A refused attempt is not counted, and the caller rolls it back with its transaction,
        so a throttled client cannot push its own window further out.
        """
        now = self._clock()
        self._insert_if_absent(key, now)
        window_start, hits = self._session.execute(
            select(throttles.c.window_start, throttles.c.hits)
            .where(throttles.c.key == key)
            .with_for_update()
        ).one()
        if now - window_start >= limit.window:
            window_start, hits = now, 0
        if hits >= limit.attempts:
            retry = (window_start + limit.window - now).total_seconds()
            raise TooManyAttempts(retry_after=max(1, math.ceil(retry)))
        self._session.execute(
            update(throttles)
            .where(throttles.c.key == key)
            .values(window_start=window_start, hits=hits + 1)
        )
