"""Consent, remembered per citizen and e-service: asked once per new scope, revocable."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session

from audit.prepared import Prepared
from identity.models import grants, tokens
from identity.upsert import insert_if_absent


@dataclass(frozen=True, slots=True)
class Grant:
    client_id: str
    scopes: frozenset[str]
    granted_at: datetime


# What a citizen let an e-service have: read on every authorization and claim release.
_SCOPES = Prepared(
    select(grants.c.scopes).where(
        grants.c.citizen_id == bindparam("citizen_id"), grants.c.client_id == bindparam("client_id")
    )
)


class Grants:
    def __init__(self, session: Session, clock: Callable[[], datetime]) -> None:
        self._db = session
        self._clock = clock

    def scopes(self, citizen_id: str, client_id: str) -> frozenset[str]:
        found = _SCOPES.one_or_none(
            self._db.connection(), {"citizen_id": citizen_id, "client_id": client_id}
        )
        return frozenset(found.scopes.split()) if found and found.scopes else frozenset()

    def granted_since(self, citizen_id: str, client_id: str, moment: datetime) -> bool:
        """Whether consent was given (again) at or after `moment`: prompt=consent asks anew."""
        when = self._db.execute(
            select(grants.c.granted_at).where(
                grants.c.citizen_id == citizen_id, grants.c.client_id == client_id
            )
        ).scalar_one_or_none()
        return when is not None and when >= moment

    def grant(self, citizen_id: str, client_id: str, scopes: Iterable[str]) -> frozenset[str]:
        """Add scopes to the citizen's consent for this client; return the whole consent.

        The row is made if missing, then locked before it is read, so two consents given at
        once (two tabs) both land: neither fails on the key nor loses the other's scopes."""
        where = (grants.c.citizen_id == citizen_id, grants.c.client_id == client_id)
        values = {"citizen_id": citizen_id, "client_id": client_id, "scopes": ""}
        insert_if_absent(self._db, grants, {**values, "granted_at": self._clock()},
                         ["citizen_id", "client_id"])  # fmt: skip
        had = self._db.execute(select(grants.c.scopes).where(*where).with_for_update()).scalar_one()
        now_has = frozenset(had.split()) | frozenset(scopes)
        self._db.execute(
            update(grants)
            .where(*where)
            .values(scopes=" ".join(sorted(now_has)), granted_at=self._clock())
        )
        return now_has

    def revoke(self, citizen_id: str, client_id: str) -> bool:
        """Withdraw consent and every token the client holds for the citizen."""
        result = self._db.execute(
            delete(grants).where(grants.c.citizen_id == citizen_id, grants.c.client_id == client_id)
        )
        self._db.execute(
            update(tokens)
            .where(
                tokens.c.citizen_id == citizen_id,
                tokens.c.client_id == client_id,
                tokens.c.revoked_at.is_(None),
            )
            .values(revoked_at=self._clock())
        )
        return bool(getattr(result, "rowcount", 0))

    def for_citizen(self, citizen_id: str) -> list[Grant]:
        rows = self._db.execute(
            select(grants.c.client_id, grants.c.scopes, grants.c.granted_at)
            .where(grants.c.citizen_id == citizen_id)
            .order_by(grants.c.granted_at.desc())
        )
        return [Grant(r.client_id, frozenset(r.scopes.split()), r.granted_at) for r in rows]
