"""One-time-code challenges: a code sent by SMS, proved within minutes and a few tries.

The browser holds only the challenge id, an unguessable token; the code travels by SMS. The
database keeps an HMAC of the code (under a service key, bound to the challenge id), so a
read of the table does not hand out live codes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from identity.errors import ChallengeFailed, WrongCode
from identity.models import challenges
from identity.policy import IdentityPolicy
from identity.sealing import Sealer

CODE_DIGITS = 6
DEAD = "this code has expired or was already used; start again"


def challenge_context(challenge_id: str) -> str:
    """What a challenge's sealed payload is bound to: its id."""
    return f"challenge:{challenge_id}"


@dataclass(frozen=True, slots=True)
class Challenge:
    id: str
    purpose: str
    pseudonym: str
    payload: dict[str, Any]


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


class Challenges:
    def __init__(
        self,
        session: Session,
        *,
        code_key: bytes,
        sealer: Sealer,
        policy: IdentityPolicy,
        clock: Callable[[], datetime],
    ) -> None:
        self._session = session
        self._code_key = code_key
        self._sealer = sealer
        self._policy = policy
        self._clock = clock

    def _mac(self, challenge_id: str, code: str) -> bytes:
        return hmac.new(self._code_key, f"{challenge_id}:{code}".encode(), hashlib.sha256).digest()

    def create(self, purpose: str, pseudonym: str, payload: dict[str, Any], code: str) -> str:
        challenge_id = secrets.token_urlsafe(24)
        now = self._clock()
        self._session.execute(
            insert(challenges).values(
                id=challenge_id,
                purpose=purpose,
                pseudonym=pseudonym,
                code_hash=self._mac(challenge_id, code),
                attempts=0,
                payload=self._sealer.seal_json(payload, challenge_context(challenge_id)),
                created_at=now,
                expires_at=now + self._policy.code_ttl,
            )
        )
        return challenge_id

    def _live_row(self, challenge_id: str, purpose: str, *, lock: bool = True) -> Any:
        query = select(challenges).where(
            challenges.c.id == challenge_id, challenges.c.purpose == purpose
        )
        row = self._session.execute(query.with_for_update() if lock else query).one_or_none()
        if row is None:
            raise ChallengeFailed(DEAD)
        if row.consumed_at is not None:
            raise ChallengeFailed(DEAD, ticket_of=row.pseudonym, why="used ticket")
        if row.expires_at <= self._clock():
            raise ChallengeFailed(DEAD, ticket_of=row.pseudonym, why="expired ticket")
        return row

    def verify(
        self, challenge_id: str, purpose: str, code: str, *, pseudonym: str | None = None
    ) -> None:
        """Check `code`; each wrong try counts, and the last one burns the challenge. With
        `pseudonym`, only a challenge of that account is tried (others' are not guessed at)."""
        row = self._live_row(challenge_id, purpose)
        if pseudonym is not None and row.pseudonym != pseudonym:
            raise ChallengeFailed(
                "this code belongs to another sign-in",
                ticket_of=row.pseudonym,
                why="another account's ticket",
            )
        if row.verified_at is not None:
            return
        if row.attempts >= self._policy.code_attempts:
            raise ChallengeFailed(
                "too many wrong codes; start again",
                ticket_of=row.pseudonym,
                why="ticket out of attempts",
            )
        if hmac.compare_digest(row.code_hash, self._mac(challenge_id, code.strip())):
            now = self._clock()
            self._session.execute(
                update(challenges)
                .where(challenges.c.id == challenge_id)
                .values(verified_at=now, expires_at=now + self._policy.verified_ttl)
            )
            return
        attempts = row.attempts + 1
        self._session.execute(
            update(challenges).where(challenges.c.id == challenge_id).values(attempts=attempts)
        )
        raise WrongCode(attempts_left=self._policy.code_attempts - attempts)

    def live_for(self, purpose: str, pseudonym: str) -> list[Challenge]:
        """The challenges for `pseudonym` and `purpose` that a code could still prove (not
        expired, used or out of tries), newest first."""
        rows = self._session.execute(
            select(challenges)
            .where(
                challenges.c.purpose == purpose,
                challenges.c.pseudonym == pseudonym,
                challenges.c.consumed_at.is_(None),
                challenges.c.verified_at.is_(None),
                challenges.c.expires_at > self._clock(),
                challenges.c.attempts < self._policy.code_attempts,
            )
            .order_by(challenges.c.created_at.desc())
        )
        return [
            Challenge(
                row.id,
                purpose,
                row.pseudonym,
                self._sealer.open_json(row.payload, challenge_context(row.id)),
            )
            for row in rows
        ]

    def peek(self, challenge_id: str, purpose: str) -> Challenge:
        """A verified challenge's payload without taking it or locking it: for the slow work
        (password checks, hashing) before `consume`, so none of it is done under a lock."""
        row = self._live_row(challenge_id, purpose, lock=False)
        if row.verified_at is None:
            raise ChallengeFailed("enter the code sent to your mobile first")
        payload = self._sealer.open_json(row.payload, challenge_context(challenge_id))
        return Challenge(challenge_id, purpose, row.pseudonym, payload)

    def consume(self, challenge_id: str, purpose: str) -> Challenge:
        """Take a verified challenge's payload, once."""
        row = self._live_row(challenge_id, purpose)
        if row.verified_at is None:
            raise ChallengeFailed("enter the code sent to your mobile first")
        self._session.execute(
            update(challenges)
            .where(challenges.c.id == challenge_id)
            .values(consumed_at=self._clock())
        )
        payload = self._sealer.open_json(row.payload, challenge_context(challenge_id))
        return Challenge(challenge_id, purpose, row.pseudonym, payload)
