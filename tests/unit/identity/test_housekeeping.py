"""Retention of the identity tables (docs/retention.md): what is past its time goes, a batch
per transaction; what is within it stays, and so does anything that still grants access or
that a replay's detection needs (a rotated refresh token, a spent code, while their family
lives)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from api.migrate import SEALED_TABLES
from api.retention import retention_sweeps, sweep_retained
from api.runtime import Runtime
from audit import AuditEvent, pseudonym
from audit.batched import sweep_all
from audit.models import entries
from audit.models import metadata as audit_metadata
from identity import housekeeping
from identity.accounts import ERASED, Profile
from identity.housekeeping import GRACE, PROFILES_ERASED, REMOVED, SWEEPS, purge_expired
from identity.models import (
    auth_requests,
    challenges,
    citizens,
    clients,
    codes,
    session_clients,
    sessions,
    throttles,
    tokens,
    used_assertions,
)
from identity.nadra import CitizenRecord
from locker import housekeeping as locker_housekeeping
from tests.unit.identity.conftest import Clock

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
PAST = NOW - GRACE - timedelta(seconds=1)  # just past retention
WITHIN = NOW - GRACE + timedelta(minutes=1)  # just within it
CLIENT = "rp"
CITIZEN = "c" * 32


def _add(runtime: Runtime, table: Table, *rows: dict[str, Any]) -> None:
    with runtime.transaction() as session:
        for row in rows:
            session.execute(insert(table).values(**row))


def _keys(runtime: Runtime, table: Table, key: str = "id") -> set[Any]:
    with runtime.engine.connect() as connection:
        return set(connection.execute(select(table.c[key])).scalars())


def _purge(runtime: Runtime, now: datetime = NOW) -> dict[str, int]:
    return sweep_all(runtime.transaction, SWEEPS, now)


def _client_and_citizen(runtime: Runtime) -> None:
    _add(runtime, clients, {
        "id": CLIENT, "name": "An e-service", "kind": "eservice", "auth_method": "none",
        "redirect_uris": "[]", "post_logout_redirect_uris": "[]", "scopes": "openid",
        "id_token_alg": "ES256", "require_par": False, "require_dpop": False, "created_at": NOW,
    })  # fmt: skip
    _add(runtime, citizens, {
        "id": CITIZEN, "pseudonym": "p" * 45, "profile": b"sealed", "mobile": b"sealed",
        "password_hash": "argon2id", "password_changed_at": NOW, "status": "active",
        "created_at": NOW,
    })  # fmt: skip


def _session(name: str, ended_at: datetime | None) -> dict[str, Any]:
    return {
        "id": name, "sid": name, "citizen_id": CITIZEN, "token_hash": name, "acr": "low",
        "amr": '["pwd"]', "auth_time": NOW - timedelta(days=3),
        "client_address": "203.0.113.7", "user_agent": "Firefox",
        "created_at": NOW - timedelta(days=3), "last_seen": NOW - timedelta(days=3),
        "expires_at": ended_at or NOW + timedelta(hours=1), "ended_at": ended_at,
        "ended_reason": None if ended_at is None else "logout",
    }  # fmt: skip


def _code(family: str, session_id: str, expires_at: datetime) -> dict[str, Any]:
    return {
        "id": family, "client_id": CLIENT, "session_id": session_id, "params": "{}",
        "expires_at": expires_at, "used_at": expires_at - timedelta(seconds=30),
    }  # fmt: skip


def _token(name: str, family: str, kind: str, expires_at: datetime, **more: Any) -> dict[str, Any]:
    return {
        "id": name, "kind": kind, "family": family, "client_id": CLIENT, "citizen_id": CITIZEN,
        "session_id": "s-live", "scope": "openid", "issued_at": expires_at - timedelta(hours=12),
        "expires_at": expires_at, **more,
    }  # fmt: skip


def test_short_lived_rows_go_a_day_past_their_time_and_not_before(runtime: Runtime) -> None:
    _client_and_citizen(runtime)
    _add(runtime, challenges, *(
        {"id": name, "purpose": "reset", "pseudonym": "p", "code_hash": b"h" * 32,
         "payload": b"sealed", "created_at": NOW - timedelta(days=2), "expires_at": at}
        for name, at in (("old", PAST), ("young", WITHIN))
    ))  # fmt: skip
    _add(runtime, auth_requests, *(
        {"id": name, "client_id": CLIENT, "params": "{}", "pushed": True,
         "created_at": at - timedelta(minutes=1), "expires_at": at}
        for name, at in (("old", PAST), ("young", WITHIN))
    ))  # fmt: skip
    _add(runtime, used_assertions, {"jti": "old", "expires_at": PAST},
         {"jti": "young", "expires_at": WITHIN})  # fmt: skip
    _add(runtime, throttles, {"key": "old", "window_start": PAST, "hits": 3},
         {"key": "young", "window_start": WITHIN, "hits": 3})  # fmt: skip
    counts = _purge(runtime)
    for table, key in ((challenges, "id"), (auth_requests, "id"),
                       (used_assertions, "jti"), (throttles, "key")):  # fmt: skip
        assert _keys(runtime, table, key) == {"young"}, table.name
        assert counts[table.name] == 1, table.name


def test_a_token_family_is_kept_whole_while_any_of_its_tokens_lives(runtime: Runtime) -> None:
    """A refresh token rotated long ago is what reveals a theft if it comes back: it stays
    while its family lives, and so does the code that began the family (a replayed code
    revokes it). A family whose every token is a day past its expiry goes, code and all."""
    _client_and_citizen(runtime)
    _add(runtime, sessions, _session("s-live", None))
    _add(runtime, codes, _code("living", "s-live", NOW - timedelta(days=3)),
         _code("dead", "s-live", NOW - timedelta(days=3)))  # fmt: skip
    rotated = NOW - timedelta(days=2)
    _add(runtime, tokens,
         _token("r1", "living", "refresh", rotated, used_at=rotated),
         _token("a1", "living", "access", rotated),
         _token("r2", "living", "refresh", NOW + timedelta(hours=6)),
         _token("r-old", "dead", "refresh", PAST, used_at=PAST - timedelta(hours=1)),
         _token("r-last", "dead", "refresh", PAST, revoked_at=PAST - timedelta(hours=2)),
         _token("cc", "client", "access", PAST))  # fmt: skip
    _purge(runtime)
    assert _keys(runtime, tokens) == {"r1", "a1", "r2"}
    assert _keys(runtime, codes) == {"living"}
    # The family's last token a day past its expiry: now it all goes.
    _purge(runtime, NOW + timedelta(hours=6) + GRACE + timedelta(seconds=1))
    assert _keys(runtime, tokens) == set()
    assert _keys(runtime, codes) == set()


def test_ended_sessions_go_a_day_after_their_end_with_their_clients(runtime: Runtime) -> None:
    _client_and_citizen(runtime)
    _add(runtime, sessions, _session("s-live", None), _session("s-old", PAST),
         _session("s-recent", WITHIN), _session("s-coded", PAST))  # fmt: skip
    _add(runtime, session_clients, {"session_id": "s-old", "client_id": CLIENT},
         {"session_id": "s-live", "client_id": CLIENT})  # fmt: skip
    # A code of a family that lives names the session: the session waits for it.
    _add(runtime, codes, _code("family", "s-coded", NOW - timedelta(days=3)))
    _add(runtime, tokens, _token("r", "family", "refresh", NOW + timedelta(hours=1)))
    counts = _purge(runtime)
    assert counts[sessions.name] == 1
    assert _keys(runtime, sessions) == {"s-live", "s-recent", "s-coded"}
    assert _keys(runtime, session_clients, "session_id") == {"s-live"}
    _purge(runtime, NOW + timedelta(hours=1) + GRACE + timedelta(seconds=1))
    assert _keys(runtime, sessions) == {"s-live"}, "the code went, then its session"


def test_a_backlog_is_swept_a_batch_per_transaction(runtime: Runtime) -> None:
    _add(
        runtime, throttles, *({"key": f"k{n}", "window_start": PAST, "hits": 1} for n in range(25))
    )
    with runtime.transaction() as session:
        assert purge_expired(session, NOW, batch=10)[throttles.name] == 10
    opened: list[int] = []

    @contextlib.contextmanager
    def counted() -> Iterator[Session]:
        opened.append(1)
        with runtime.transaction() as session:
            yield session

    totals = sweep_all(counted, SWEEPS, NOW, batch=10)
    assert totals[throttles.name] == 15
    assert len(opened) == 2, "two rounds: the second one's batch of throttles short"
    assert _keys(runtime, throttles, "key") == set()


def test_no_sweep_deletes_from_a_sealed_table_or_the_audit_log() -> None:
    """But ended sessions, and expired tokens and codes: a row deleted signs nobody in and
    grants nothing, and nothing reconciles them."""
    swept = {name for name, _sweep in (*housekeeping.SWEEPS, *locker_housekeeping.SWEEPS)}
    assert swept & {table.name for table in SEALED_TABLES} == {
        sessions.name,
        tokens.name,
        codes.name,
    }
    assert swept.isdisjoint(audit_metadata.tables)
    recorded = {name for name, _sweep in retention_sweeps(_NO_RUNTIME)}
    assert recorded & {table.name for table in SEALED_TABLES} == {
        "locker_shares",
        "identity_citizens",
    }, (
        "links are swept with a record the reconciliation reads; accounts are not deleted, "
        "their details are erased and the row re-sealed"
    )
    assert recorded.isdisjoint(audit_metadata.tables)


# -- removed accounts: the profile erased, the pseudonym kept ----------------------------------


class _Settings:
    share_link_keep_days = 90
    removed_account_keep_days = 365


class _NoRuntime:
    """Enough of a runtime to name the recorded sweeps, which read only its settings then."""

    settings = _Settings()


_NO_RUNTIME: Any = _NoRuntime()


def _account(runtime: Runtime, record: CitizenRecord) -> tuple[str, str]:
    subject = pseudonym(record.cnic, key=runtime.pseudonym_key)
    with runtime.transaction() as session:
        citizen_id = runtime.provider(session).accounts.create(
            pseudonym=subject, profile=Profile.from_record(record),
            mobile=record.mobile_numbers[0], password_hash="argon2id", now=runtime.clock(),
        )  # fmt: skip
    return citizen_id, subject


def _remove(runtime: Runtime, citizen_id: str, subject: str, *, logged: bool = True) -> None:
    """As `shanakht citizens remove` does: the status, and the entry that dates it."""
    with runtime.transaction() as session:
        runtime.provider(session).accounts.remove(citizen_id)
        if logged:
            runtime.audit_log(session).append(
                AuditEvent(actor="admin:cli", action=REMOVED, subject=subject, purpose="test")
            )


def _row(runtime: Runtime, citizen_id: str) -> Any:
    with runtime.engine.connect() as connection:
        return connection.execute(select(citizens).where(citizens.c.id == citizen_id)).one()


def _erasures(runtime: Runtime) -> list[dict[str, Any]]:
    with runtime.engine.connect() as connection:
        found = connection.execute(select(entries.c.entry).order_by(entries.c.seq)).scalars()
        return [e for e in map(json.loads, found) if e["action"] == PROFILES_ERASED]


def test_a_removed_accounts_profile_is_erased_after_its_keeping_its_pseudonym_kept(
    runtime: Runtime, registry: dict[str, CitizenRecord]
) -> None:
    """Past `removed_account_keep_days` from the logged removal, the sealed profile and mobile
    number are erased and one entry counts them; the pseudonym and status stay, as does the
    log. An account removed more recently, an active one, and one whose removal the log never
    dated keep theirs. A second sweep erases nothing and writes nothing."""
    clock = Clock()
    runtime.clock = clock
    keep = timedelta(days=runtime.settings.removed_account_keep_days)
    old, recent, active, undated = (
        _account(runtime, record) for record in list(registry.values())[:4]
    )
    _remove(runtime, *old)
    _remove(runtime, *undated, logged=False)
    clock.now += keep - DAY
    _remove(runtime, *recent)
    clock.now += DAY - timedelta(minutes=1)
    assert sweep_retained(runtime)[citizens.name] == 0, "a minute short of its keeping"
    clock.now += timedelta(minutes=2)
    assert removed_at_of(runtime, old[1]) is not None
    totals = sweep_retained(runtime)
    assert totals[citizens.name] == 1
    erased = _row(runtime, old[0])
    assert (erased.profile, erased.mobile) == (ERASED, ERASED)
    assert (erased.pseudonym, erased.status) == (old[1], "removed")
    with runtime.sessions() as session:
        accounts = runtime.provider(session).accounts
        assert accounts.by_id(old[0]) is None, "an erased account opens as no account"
        assert accounts.by_pseudonym(old[1]) is None
        assert accounts.standing(old[0]) == (old[1], "removed")
        for kept in (recent, active, undated):
            account = accounts.by_id(kept[0])
            assert account is not None, kept
            assert account.profile.full_name
    (entry,) = _erasures(runtime)
    assert (entry["actor"], entry["details"]["count"]) == ("system:retention", 1)
    assert entry["details"]["kept_days"] == keep.days
    assert old[1] not in json.dumps(entry), "a count, naming nobody"
    assert sweep_retained(runtime) == {"locker_shares": 0, citizens.name: 0}
    assert len(_erasures(runtime)) == 1, "a sweep with nothing to do is silent"


def removed_at_of(runtime: Runtime, subject: str) -> datetime | None:
    with runtime.sessions() as session:
        return housekeeping.removed_at(session, subject)
