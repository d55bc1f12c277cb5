"""Consent, remembered per citizen and e-service: asked once per new scope, revocable.

A remembered consent is a sealed row (`audit.row_seal`, migration 0026): its scopes decide
which claims an e-service gets without the citizen being asked, so without a seal whoever can
write the table could add `cnic` or `address` to an e-service's consent, and the citizen's next
sign-in there would release them unasked. A row that fails its seal is no consent: the
citizen is asked again, and an answer replaces the row with what they agreed to then.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session

from audit.prepared import Prepared
from audit.row_seal import RETIRE, RowSeal
from identity.models import grants, tokens
from identity.upsert import insert_if_absent


@dataclass(frozen=True, slots=True)
class Grant:
    client_id: str
    scopes: frozenset[str]
    granted_at: datetime


# What a citizen let an e-service have: read on every authorization and claim release (the
# whole row, for its seal).
_GRANT = Prepared(
    select(grants).where(
        grants.c.citizen_id == bindparam("citizen_id"), grants.c.client_id == bindparam("client_id")
    )
)


class Grants:
    def __init__(self, session: Session, clock: Callable[[], datetime], seal: RowSeal) -> None:
        self._db = session
        self._clock = clock
        self._seal = seal

    def _honoured(self, citizen_id: str, client_id: str) -> Any:
        """The consent's row if the service wrote it as it stands, else None."""
        found = _GRANT.one_or_none(
            self._db.connection(), {"citizen_id": citizen_id, "client_id": client_id}
        )
        return self._seal.honoured(grants, found)

    def scopes(self, citizen_id: str, client_id: str) -> frozenset[str]:
        found = self._honoured(citizen_id, client_id)
        return frozenset(found.scopes.split()) if found and found.scopes else frozenset()

    def granted_since(self, citizen_id: str, client_id: str, moment: datetime) -> bool:
        """Whether consent was given (again) at or after `moment`: prompt=consent asks anew."""
        found = self._honoured(citizen_id, client_id)
        return found is not None and found.granted_at >= moment

    def grant(self, citizen_id: str, client_id: str, scopes: Iterable[str]) -> frozenset[str]:
        """Add scopes to the citizen's consent for this client; return the whole consent.

        The row is made if missing, then locked before it is read, so two consents given at
        once (two tabs) both land: neither fails on the key nor loses the other's scopes. A
        row that fails its seal adds nothing: the consent becomes what was agreed to now."""
        where = (grants.c.citizen_id == citizen_id, grants.c.client_id == client_id)
        empty = {
            "citizen_id": citizen_id,
            "client_id": client_id,
            "scopes": "",
            "granted_at": self._clock(),
        }
        insert_if_absent(
            self._db, grants, self._seal.sealed(grants, empty), ["citizen_id", "client_id"]
        )
        row = self._db.execute(select(grants).where(*where).with_for_update()).one()
        had = row.scopes if self._seal.check(grants, row._mapping) else ""
        now_has = frozenset(had.split()) | frozenset(scopes)
        changed = {"scopes": " ".join(sorted(now_has)), "granted_at": self._clock()}
        self._db.execute(
            update(grants).where(*where).values(self._seal.resealed(grants, row._mapping, changed))
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
            .values(revoked_at=self._clock(), **RETIRE)
        )
        return bool(getattr(result, "rowcount", 0))

    def for_citizen(self, citizen_id: str) -> list[Grant]:
        """The consents the citizen gave, as the service honours them (a row that fails its
        seal gives nothing, so there is nothing in it to withdraw)."""
        rows = self._db.execute(
            select(grants)
            .where(grants.c.citizen_id == citizen_id)
            .order_by(grants.c.granted_at.desc())
        )
        return [
            Grant(r.client_id, frozenset(r.scopes.split()), r.granted_at)
            for r in rows
            if self._seal.check(grants, r._mapping)
        ]
