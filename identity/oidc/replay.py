"""A one-time-use register for client assertions and DPoP proofs, shared by every replica."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from identity.models import used_assertions


def spend_once(db: Session, key: str, *, until: int, now: datetime) -> bool:
    """Record `key` as used until the epoch second `until`; False if it was already used."""
    db.execute(delete(used_assertions).where(used_assertions.c.expires_at < now))
    try:
        with db.begin_nested():
            db.execute(
                insert(used_assertions).values(
                    jti=key[:200], expires_at=datetime.fromtimestamp(until, UTC)
                )
            )
    except IntegrityError:
        return False
    return True
