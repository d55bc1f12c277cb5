"""Who else may read a citizen's documents: share links and nominees.

A share link is a random token the citizen hands to someone (a landlord, an employer); the
service keeps only its SHA-256, serves the document itself (decrypting it: never a presigned
URL to ciphertext), and honours the link until it expires, is revoked or has been used as
often as allowed. A nominee or guardian is another citizen the owner names, who may then read
(never change) the owner's documents.

Both are sealed rows (`audit.row_seal`): a link whose document, expiry, revocation or use count
was changed by SQL, a nomination inserted by SQL, or either with its MAC set NULL, is no link
and no nomination (logged, and listed by `shanakht audit integrity`). A link's revocation and
each use re-seal its row, a compare-and-set on the old MAC, so a use is counted only on the row
as it was checked.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, insert, select, update
from sqlalchemy.orm import Session

from audit import AuditLog
from audit.row_seal import MAC_COLUMN, RowSeal
from locker.access import Accessor, record
from locker.documents import ACTIVE, Document
from locker.errors import LockerError
from locker.ids import new_id
from locker.models import nominees, shares

MAX_SHARE_LIFE = timedelta(days=30)
RELATIONS = frozenset({"nominee", "guardian"})


class ShareRefused(LockerError):
    """A share link or nomination that cannot be made as asked; the message says why."""


class ShareUnusable(LockerError):
    """A share link that does not exist, has expired, was revoked or is used up. One error
    for all four, so a guessed token learns nothing."""


@dataclass(frozen=True, slots=True)
class Share:
    id: str
    document_id: str
    owner: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    uses: int
    max_uses: int | None

    def live(self, now: datetime) -> bool:
        used_up = self.max_uses is not None and self.uses >= self.max_uses
        return self.revoked_at is None and now < self.expires_at and not used_up


@dataclass(frozen=True, slots=True)
class Nominee:
    owner: str
    nominee: str
    relation: str
    created_at: datetime


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class Sharing:
    def __init__(
        self,
        session: Session,
        *,
        audit: AuditLog,
        clock: Callable[[], datetime],
        seal: RowSeal,
    ) -> None:
        self._db = session
        self._audit = audit
        self._clock = clock
        self._seal = seal

    # -- share links --------------------------------------------------------------------------

    def share(
        self, document: Document, *, who: Accessor, life: timedelta, max_uses: int | None
    ) -> tuple[Share, str]:
        """A new link to `document` and its token (shown once; only its hash is kept)."""
        if document.state(self._clock()) != ACTIVE:
            raise ShareRefused(f"the document is {document.state(self._clock())}")
        if not timedelta(minutes=5) <= life <= MAX_SHARE_LIFE:
            raise ShareRefused("a share link lasts from 5 minutes to 30 days")
        if max_uses is not None and not 1 <= max_uses <= 1000:
            raise ShareRefused("a share link allows 1 to 1000 uses")
        token = secrets.token_urlsafe(32)
        now = self._clock()
        share_id = new_id()
        row = {
            "id": share_id, "token_hash": _token_hash(token), "document_id": document.id,
            "owner": document.owner, "created_at": now, "expires_at": now + life,
            "revoked_at": None, "uses": 0, "max_uses": max_uses,
        }  # fmt: skip
        self._db.execute(insert(shares).values(self._seal.sealed(shares, row)))
        record(self._audit, "locker.share.created", who, owner=document.owner,
               resource=document.uri, fields="content", output="link", share=share_id)  # fmt: skip
        return self._share(share_id), token

    def shares(self, owner: str) -> list[Share]:
        rows = self._db.execute(
            select(shares).where(shares.c.owner == owner).order_by(shares.c.created_at.desc())
        )
        return [_share(row) for row in rows if self._seal.check(shares, row._mapping)]

    def revoke(self, share_id: str, *, owner: str, who: Accessor) -> None:
        found = self._db.execute(
            select(shares).where(shares.c.id == share_id, shares.c.owner == owner)
        ).first()
        if found is None or not self._seal.check(shares, found._mapping):
            raise ShareUnusable("no such share link")
        if found.revoked_at is None:
            if not self._reseal(found._mapping, {"revoked_at": self._clock()}):
                raise ShareUnusable("the share link changed meanwhile; try again")
            record(self._audit, "locker.share.revoked", who, owner=owner, resource=None,
                   fields="link", output="none", share=share_id)  # fmt: skip

    def redeem(self, token: str) -> Share:
        """Count one use of the link `token` and return it; ShareUnusable otherwise. The use
        is counted with a compare-and-set, so a link for one use serves one request even when
        two arrive at once."""
        found = self._db.execute(
            select(shares).where(shares.c.token_hash == _token_hash(token))
        ).first()
        now = self._clock()
        if (
            found is None
            or not self._seal.check(shares, found._mapping)
            or not _share(found).live(now)
        ):
            raise ShareUnusable("this link is not valid: it may have expired or been revoked")
        counted = {"uses": found.uses + 1}
        if not self._reseal(found._mapping, counted):
            raise ShareUnusable("this link is not valid: it may have expired or been revoked")
        return _share({**found._mapping, **counted})

    def _share(self, share_id: str) -> Share:
        return _share(self._db.execute(select(shares).where(shares.c.id == share_id)).one())

    def _reseal(self, row: Mapping[Any, Any], changes: Mapping[Any, Any]) -> bool:
        """Write `changes` to the link `row` (one whose seal verified) with a new seal, unless
        the row is no longer what was read: its old MAC is the compare-and-set."""
        sealed = self._seal.sealed(shares, {**row, **changes})
        written = self._db.execute(
            update(shares)
            .where(shares.c.id == row["id"], shares.c.mac == row[MAC_COLUMN])
            .values(**changes, mac=sealed[MAC_COLUMN])
        )
        return getattr(written, "rowcount", 0) == 1

    # -- nominees -----------------------------------------------------------------------------

    def nominate(self, owner: str, nominee: str, relation: str, *, who: Accessor) -> Nominee:
        """Let `nominee` read `owner`'s documents; naming them again changes the relation."""
        if relation not in RELATIONS:
            raise ShareRefused(f"the relation is one of {', '.join(sorted(RELATIONS))}")
        if nominee == owner:
            raise ShareRefused("you cannot name yourself")
        now = self._clock()
        self._db.execute(
            delete(nominees).where(nominees.c.owner == owner, nominees.c.nominee == nominee)
        )
        row = {"owner": owner, "nominee": nominee, "relation": relation, "created_at": now}
        self._db.execute(insert(nominees).values(self._seal.sealed(nominees, row)))
        record(self._audit, "locker.nominee.named", who, owner=owner, resource=None,
               fields="access", output="none", nominee=nominee, relation=relation)  # fmt: skip
        return Nominee(owner, nominee, relation, now)

    def remove_nominee(self, owner: str, nominee: str, *, who: Accessor) -> None:
        removed = self._db.execute(
            delete(nominees).where(nominees.c.owner == owner, nominees.c.nominee == nominee)
        )
        if getattr(removed, "rowcount", 0) == 0:
            raise ShareUnusable("no such nominee")
        record(self._audit, "locker.nominee.removed", who, owner=owner, resource=None,
               fields="access", output="none", nominee=nominee)  # fmt: skip

    def nominees(self, owner: str) -> list[Nominee]:
        return self._nominations(nominees.c.owner == owner)

    def nominated_by(self, nominee: str) -> list[Nominee]:
        """Whose lockers `nominee` may read."""
        return self._nominations(nominees.c.nominee == nominee)

    def relation(self, owner: str, nominee: str) -> str | None:
        """How `nominee` may read `owner`'s locker, if they were named (and the row is sealed)."""
        found = self._nominations(nominees.c.owner == owner, nominees.c.nominee == nominee)
        return found[0].relation if found else None

    def _nominations(self, *where: ColumnElement[bool]) -> list[Nominee]:
        """The nominations `where` finds whose rows are sealed; the others are logged, not
        honoured."""
        rows = self._db.execute(select(nominees).where(*where))
        return [
            Nominee(r.owner, r.nominee, r.relation, r.created_at)
            for r in rows
            if self._seal.check(nominees, r._mapping)
        ]


def _share(row: Any) -> Share:
    values = row if isinstance(row, Mapping) else row._mapping
    return Share(
        values["id"], values["document_id"], values["owner"], values["created_at"],
        values["expires_at"], values["revoked_at"], values["uses"], values["max_uses"],
    )  # fmt: skip
