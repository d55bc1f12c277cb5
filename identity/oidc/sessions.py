"""Single sign-on sessions: one per browser, shared by every e-service the citizen visits.

The cookie holds a random token; the table keeps only its SHA-256, so a read of the table
cannot be replayed as a cookie. The token changes whenever the session's assurance rises
(`step_up`): the cookie a browser had before the second factor no longer opens the session
(no session fixation), while the session itself, its `sid`, its e-services and its tokens
stay as they were. A session unused for the idle time, or older than its lifetime, is over
(`IdentityPolicy.session_idle` and `session_lifetime`).

Ending a session (logout, expiry, "sign out everywhere", a password change) revokes every token
issued in it and returns the e-services to notify by back-channel logout, which is how one
sign-out ends every e-service's session.

A session's row is sealed (`audit.row_seal`, migration 0024): it is what a cookie opens, so
without a seal whoever can write the table (a DBA, the API's own database role) could insert a
session for any citizen under a cookie of their choosing, raise a session's `acr` past a second
factor never given, or revive an ended one. Every write seals the whole row; every read that
lets a cookie or an access token act (`current`, `is_live`, `by_sid`, `active_for`) checks
the seal and treats a row that fails it as no session. Writes after the read (the idle
timeout's touch, a step-up, the end) are compare-and-set on the MAC that was checked, so they
never bless a row changed meanwhile.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, bindparam, exists, insert, select, update
from sqlalchemy.orm import Session

from audit.entry import grouped
from audit.prepared import Prepared
from audit.row_seal import MAC_COLUMN, RETIRE, RowSeal
from identity.models import session_clients, sessions, tokens
from identity.policy import IdentityPolicy

IDLE_TIMEOUT = IdentityPolicy().session_idle  # the defaults; a provider may be given others
MAX_LIFETIME = IdentityPolicy().session_lifetime
TOUCH_EVERY = timedelta(minutes=1)  # last_seen is written at most this often


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SsoSession:
    id: str
    sid: str
    citizen_id: str
    acr: str
    amr: tuple[str, ...]
    auth_time: datetime
    client_address: str
    user_agent: str
    created_at: datetime
    last_seen: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class EndedSession:
    """What a session's end leaves to do: tell these e-services, for this citizen and sid."""

    sid: str
    citizen_id: str
    client_ids: tuple[str, ...]


def logged_as(sid: str) -> str:
    """How the audit log names a session (`identity.reconciled`): a fingerprint of its `sid`,
    not the sid itself, which e-services hold in their ID tokens and a log reader need not be
    able to match. 128 bits in hex, in groups of eight: the log refuses a run of 13 digits as
    a CNIC, which a sid (hex, about one in 56) or a plain encoding of the hash may hold, and
    then the session could never be ended. A group of eight never does."""
    return grouped(hashlib.sha256(sid.encode()).hexdigest()[:32])


def _from_row(row: Any) -> SsoSession:
    return SsoSession(
        id=row.id,
        sid=row.sid,
        citizen_id=row.citizen_id,
        acr=row.acr,
        amr=tuple(json.loads(row.amr)),
        auth_time=row.auth_time,
        client_address=row.client_address,
        user_agent=row.user_agent,
        created_at=row.created_at,
        last_seen=row.last_seen,
        expires_at=row.expires_at,
    )


def _standing(now: Any, seen_after: Any, born_after: Any) -> list[ColumnElement[bool]]:
    """What a live session's row satisfies at `now`: not ended, not past its `expires_at`,
    used since `seen_after` (now less the idle time) and begun since `born_after` (now less
    the lifetime). `expires_at` alone is not enough: a row keeps the times the policy of its
    day gave it (before migration 0012 sessions were written with two hours idle), so the
    policy in force is checked against `last_seen` and `created_at` on every row."""
    return [sessions.c.ended_at.is_(None), _timely(now, seen_after, born_after)]


def _timely(now: Any, seen_after: Any, born_after: Any) -> ColumnElement[bool]:
    return and_(
        sessions.c.expires_at > now,
        sessions.c.last_seen > seen_after,
        sessions.c.created_at > born_after,
    )


def live_at(session_id: Any, now: Any, seen_after: Any, born_after: Any) -> ColumnElement[bool]:
    """`Sessions.live` with the session and the times as values or bound parameters, for a
    statement built once (`Sessions.bounds` gives the times)."""
    return exists().where(sessions.c.id == session_id, *_standing(now, seen_after, born_after))


_NEW_SESSION = Prepared(insert(sessions))  # built once: every login makes a session
# Every API call with a citizen's access token asks it (userinfo, the locker, the exchange):
# the whole row, for its seal.
_IS_LIVE = Prepared(
    select(sessions).where(
        sessions.c.id == bindparam("session_id"),
        *_standing(bindparam("now"), bindparam("seen_after"), bindparam("born_after")),
    )
)


class Sessions:
    def __init__(
        self,
        session: Session,
        clock: Callable[[], datetime],
        seal: RowSeal,
        *,
        idle: timedelta = IDLE_TIMEOUT,
        lifetime: timedelta = MAX_LIFETIME,
    ) -> None:
        self._db = session
        self._clock = clock
        self._seal = seal
        self._idle = idle
        self._lifetime = lifetime

    def create(
        self,
        citizen_id: str,
        *,
        acr: str,
        amr: Sequence[str],
        client_address: str,
        user_agent: str,
    ) -> tuple[str, SsoSession]:
        """Start a session; return the cookie token (shown once) and the session."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        values = {
            "id": secrets.token_hex(32),  # the record's own name, never the cookie's
            "token_hash": _hash(token),
            "sid": uuid.uuid4().hex,
            "citizen_id": citizen_id,
            "acr": acr,
            "amr": json.dumps(list(amr)),
            "auth_time": now,
            "client_address": client_address[:64],
            "user_agent": user_agent[:200],
            "created_at": now,
            "last_seen": now,
            "expires_at": now + min(self._idle, self._lifetime),
            "ended_at": None,
            "ended_reason": None,
        }
        _NEW_SESSION.execute(self._db.connection(), self._seal.sealed(sessions, values))
        return token, _from_row(SimpleNamespace(**values))

    def _honoured(self, row: Row[Any] | None) -> Row[Any] | None:
        """`row` if the service wrote it as it stands (its seal holds), else None."""
        return self._seal.honoured(sessions, row)  # type: ignore[no-any-return]

    def _unended_locked(self, session_id: str) -> Row[Any] | None:
        """The session's row, under its lock, unless it has ended."""
        return self._db.execute(
            select(sessions)
            .where(sessions.c.id == session_id, sessions.c.ended_at.is_(None))
            .with_for_update()
        ).one_or_none()

    def _reseal(self, row: Row[Any], **changes: Any) -> bool:
        """Write `changes` to the session `row` (one whose seal was checked) with a new seal,
        if the row still has the MAC that was checked; whether it did."""
        written = self._db.execute(
            update(sessions)
            .where(sessions.c.id == row.id, sessions.c[MAC_COLUMN] == row.mac)
            .values(self._seal.resealed(sessions, row._mapping, changes))
        )
        return getattr(written, "rowcount", 0) == 1

    def current(self, token: str | None, *, touch: bool = True) -> SsoSession | None:
        """The live session a cookie names, sliding its idle timeout (unless `touch` is False:
        a look that is no use of the session); None if ended or expired."""
        if not token:
            return None
        row = self._honoured(
            self._db.execute(
                select(sessions).where(
                    sessions.c.token_hash == _hash(token), sessions.c.ended_at.is_(None)
                )
            ).one_or_none()
        )
        now = self._clock()
        if row is None or row.expires_at <= now:
            return None
        found = _from_row(row)
        # The policy as it stands now, whatever the row was given when written: a shorter
        # idle time or lifetime takes effect at once for sessions already open.
        if now - found.last_seen >= self._idle or now - found.created_at >= self._lifetime:
            return None
        if touch and now - found.last_seen >= TOUCH_EVERY:
            expires = min(now + self._idle, found.created_at + self._lifetime)
            # Lost to a request of the same browser that touched it first: nothing to do.
            self._reseal(row, last_seen=now, expires_at=expires)
        return found

    def bounds(self) -> dict[str, datetime]:
        """The times `live_at` compares with, now: `now`, `seen_after`, `born_after`."""
        now = self._clock()
        return {
            "now": now,
            "seen_after": now - self._idle,
            "born_after": now - self._lifetime,
        }

    def _live_now(self) -> list[ColumnElement[bool]]:
        return _standing(**self.bounds())

    def _over_now(self) -> ColumnElement[bool]:
        return ~_timely(**self.bounds())

    def by_sid(self, sid: str) -> SsoSession | None:
        row = self._honoured(
            self._db.execute(
                select(sessions).where(sessions.c.sid == sid, sessions.c.ended_at.is_(None))
            ).one_or_none()
        )
        return _from_row(row) if row is not None else None

    def live(self, session_id: str | None) -> ColumnElement[bool]:
        """A condition true while the session stands, for a write that must not outlive it
        (checked in the statement that writes, so no logout slips in between). SQL cannot
        check a seal: a write that needs one checks `is_live` first."""
        return live_at(session_id, **self.bounds())

    def holds(self, row: Mapping[str, Any], *, prefix: str = "") -> bool:
        """Whether `row`, a session's row read with another (its columns named `prefix` and
        the column's name), is one the service wrote: False for no row at all."""
        values = {column.name: row[f"{prefix}{column.name}"] for column in sessions.c}
        return values["id"] is not None and self._seal.check(sessions, values)

    def is_live(self, session_id: str | None) -> bool:
        """Whether the session stands: not ended, and neither idle nor older than the policy
        allows (whatever its row's `expires_at` says), and its row holds its seal."""
        if session_id is None:
            return False
        found = _IS_LIVE.one_or_none(
            self._db.connection(), {"session_id": session_id, **self.bounds()}
        )
        return self._honoured(found) is not None

    def step_up(self, session_id: str, *, acr: str, amr: Sequence[str]) -> str | None:
        """Raise the session's assurance and renew its cookie token (ASVS 3.2.1): return the
        new token, to set as the cookie; the old one opens nothing from now on. The session
        keeps its record, `sid`, e-services and tokens, so single sign-on carries on. None if
        the session ended, or its row fails its seal, since it was read."""
        row = self._honoured(self._unended_locked(session_id))
        if row is None:
            return None
        token = secrets.token_urlsafe(32)
        raised = self._reseal(
            row,
            token_hash=_hash(token),
            acr=acr,
            amr=json.dumps(list(amr)),
            auth_time=self._clock(),
        )
        return token if raised else None

    def join(self, session_id: str, client_id: str) -> None:
        """Note that an e-service got tokens in this session, so its end reaches it."""
        present = self._db.execute(
            select(session_clients.c.client_id).where(
                session_clients.c.session_id == session_id,
                session_clients.c.client_id == client_id,
            )
        ).first()
        if present is None:
            self._db.execute(
                insert(session_clients).values(session_id=session_id, client_id=client_id)
            )

    def active_for(self, citizen_id: str) -> list[SsoSession]:
        rows = self._db.execute(
            select(sessions)
            .where(sessions.c.citizen_id == citizen_id, *self._live_now())
            .order_by(sessions.c.created_at.desc())
        )
        return [_from_row(row) for row in rows if self._honoured(row) is not None]

    def end(self, session_id: str, reason: str) -> EndedSession | None:
        """End one session and revoke its tokens; None if it had already ended.

        A row that fails its seal is ended too (ending grants nothing), but not re-sealed:
        it stays a row the service did not write, for `shanakht audit integrity` to list."""
        now = self._clock()
        row = self._unended_locked(session_id)
        if row is None:
            return None
        if self._honoured(row) is None:
            self._db.execute(
                update(sessions)
                .where(sessions.c.id == session_id)
                .values(ended_at=now, ended_reason=reason)
            )
        else:
            self._reseal(row, ended_at=now, ended_reason=reason)
        self._db.execute(
            update(tokens)
            .where(tokens.c.session_id == session_id, tokens.c.revoked_at.is_(None))
            .values(revoked_at=now, **RETIRE)
        )
        client_ids = self._db.execute(
            select(session_clients.c.client_id).where(session_clients.c.session_id == session_id)
        ).scalars()
        return EndedSession(row.sid, row.citizen_id, tuple(sorted(client_ids)))

    def end_all(
        self, citizen_id: str, reason: str, *, keep: str | None = None
    ) -> list[EndedSession]:
        """End every session of the citizen but `keep`, those whose rows fail their seal too,
        which no list shows (a password change must leave none standing)."""
        ids = self._db.execute(
            select(sessions.c.id).where(
                sessions.c.citizen_id == citizen_id, sessions.c.ended_at.is_(None)
            )
        ).scalars()
        ended = [self.end(session_id, reason) for session_id in list(ids) if session_id != keep]
        return [e for e in ended if e is not None]

    def end_expired(self) -> list[EndedSession]:
        """The sweeper: end sessions whose time is up (by their row or by the policy in force),
        so their e-services hear of it."""
        ids = self._db.execute(
            select(sessions.c.id).where(sessions.c.ended_at.is_(None), self._over_now())
        ).scalars()
        ended = [self.end(session_id, "expired") for session_id in list(ids)]
        return [e for e in ended if e is not None]
