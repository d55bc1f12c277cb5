"""Password login: throttled, locked out after repeated failures, silent about who exists.

Every refusal a stranger can provoke looks the same: unknown CNIC, wrong password and locked
account all raise InvalidCredentials after the same argon2 work. The holder of a locked account
learns of it by SMS, to the number NADRA and the telco tied to their CNIC.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from audit import AuditEvent, AuditLog, pseudonym
from audit.canonical import JsonValue
from identity.accounts import Account, Accounts
from identity.cnic import normalise_cnic
from identity.errors import InvalidCnic, InvalidCredentials
from identity.passwords import PasswordHasher
from identity.policy import IdentityPolicy
from identity.sealing import Sealer
from identity.sms import SmsGateway, SmsUnavailable
from identity.throttle import Throttle

# Levels of assurance, carried to e-services as `acr`.
ACR_LOW = "urn:shanakht:loa:low"
ACR_SUBSTANTIAL = "urn:shanakht:loa:substantial"


@dataclass(frozen=True, slots=True)
class LoginResult:
    citizen_id: str
    pseudonym: str
    acr: str
    password_expired: bool


class PasswordLogin:
    """Password login in three steps, so the slow hash holds no database lock.

    argon2 takes 15-25 ms by design. Run inside the request's transaction it would hold the
    write lock (SQLite) or the throttle row's lock (PostgreSQL) all that time, and logins from
    every process would queue behind each other. So: (1) a short transaction counts the
    attempt and reads the account, (2) the hash runs with no transaction open, (3) a second
    short transaction records the outcome against the account as it then stands.
    """

    def __init__(
        self,
        transaction: Callable[[], AbstractContextManager[Session]],
        *,
        sms: SmsGateway,
        hasher: PasswordHasher,
        sealer: Sealer,
        pseudonym_key: bytes,
        audit_for: Callable[[Session], AuditLog],
        policy: IdentityPolicy,
        clock: Callable[[], datetime],
    ) -> None:
        self._transaction = transaction
        self._sms = sms
        self._hasher = hasher
        self._sealer = sealer
        self._pseudonym_key = pseudonym_key
        self._audit_for = audit_for
        self._policy = policy
        self._clock = clock

    def login(self, cnic_text: str, password: str, *, client: str) -> LoginResult:
        """Check a CNIC and password; raise InvalidCredentials (already recorded) on failure."""
        try:
            cnic = normalise_cnic(cnic_text)
        except InvalidCnic:
            self._hasher.verify(None, password)  # the same time as any other refusal
            raise InvalidCredentials("the CNIC or password is not right") from None
        subject = pseudonym(cnic, key=self._pseudonym_key)
        # (1) Throttles first: a refused attempt costs no hashing and counts nothing.
        with self._transaction() as session:
            throttle = Throttle(session, self._clock)
            throttle.hit(f"login:address:{client}", self._policy.per_address)
            throttle.hit(f"login:account:{subject}", self._policy.per_account)
            seen = Accounts(session, self._sealer).by_pseudonym(subject)
        # (2) One argon2 verification whatever the account's state, so timing tells nothing,
        # and with no transaction open, so it holds no lock.
        stored = seen.password_hash if seen and seen.status == "active" else None
        matches = self._hasher.verify(stored, password)
        rehash = (
            self._hasher.hash(password)
            if matches and stored is not None and self._hasher.needs_rehash(stored)
            else None
        )
        # (3) The outcome, against the account as it stands now (it may have been locked or
        # its password changed meanwhile: then the old hash's match counts for nothing).
        with self._transaction() as session:
            accounts = Accounts(session, self._sealer)
            audit = self._audit_for(session)
            account = accounts.by_pseudonym(subject, for_update=True)
            now = self._clock()
            locked = (
                account is not None
                and account.locked_until is not None
                and account.locked_until > now
            )
            if (
                account is None
                or account.status != "active"
                or account.password_hash != stored
                or locked
                or not matches
            ):
                refusal = self._refusal(accounts, audit, account, subject, client, locked, now)
            else:
                accounts.record_success(account.id, rehash)
                expiry = self._policy.password_expiry
                expired = expiry is not None and account.password_changed_at + expiry <= now
                audit.append(
                    AuditEvent(
                        actor=f"citizen:{subject}",
                        action="identity.login",
                        subject=subject,
                        details={"method": "password", "acr": ACR_LOW, "client": client},
                    )
                )
                return LoginResult(account.id, subject, ACR_LOW, expired)
        raise refusal

    def _refusal(
        self,
        accounts: Accounts,
        audit: AuditLog,
        account: Account | None,
        subject: str,
        client: str,
        locked: bool,
        now: datetime,
    ) -> InvalidCredentials:
        """Record a failed login (and a lockout it causes); return the one answer for all."""
        details: dict[str, JsonValue] = {"method": "password", "client": client}
        newly_locked = None
        if account is not None and not locked and account.status == "active":
            failures = account.failed_logins + 1
            lock_until = None
            if failures >= self._policy.lockout_threshold:
                lock_until = now + self._policy.lockout
                newly_locked = account.id
                self._lockout(audit, account, subject, failures)
            accounts.record_failure(account.id, failures, lock_until)
            details["failures"] = failures
        elif locked:
            details["reason"] = "locked"
        else:
            details["reason"] = "no such account"
        audit.append(
            AuditEvent(
                actor="anonymous",
                action="identity.login",
                subject=subject,
                outcome="failure",
                details=details,
            )
        )
        return InvalidCredentials("the CNIC or password is not right", locked_citizen=newly_locked)

    def _lockout(self, audit: AuditLog, account: Account, subject: str, failures: int) -> None:
        minutes = int(self._policy.lockout.total_seconds() // 60)
        audit.append(
            AuditEvent(
                actor="system",
                action="identity.account.locked",
                subject=subject,
                details={"failures": failures, "minutes": minutes},
            )
        )
        # The lockout stands and is logged whether or not the courtesy notice gets through.
        with contextlib.suppress(SmsUnavailable):
            self._sms.send(
                account.mobile,
                f"Shanakht: your account was locked after {failures} failed logins. It opens "
                f"again in {minutes} minutes, or reset your password now.",
            )
