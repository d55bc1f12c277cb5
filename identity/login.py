"""Password login: throttled, locked out after repeated failures, silent about who exists.

Every refusal a stranger can provoke looks the same: unknown CNIC, wrong password and locked
account all raise InvalidCredentials after the same argon2 work. The holder of a locked account
learns of it by SMS, to the number NADRA and the telco tied to their CNIC.

A browser that presents a valid device cookie for the account (`identity.devices`) is counted
apart: its attempts and failures count against its cookie, and a lockout caused by strangers
does not keep it out. Only strangers' failures lock the account, and only for strangers.

The audit entries name the client address by its keyed pseudonym (`audit.address_pseudonym`),
never the address itself: the log is kept for ever, an address is personal data, and the
pseudonym still groups one address's entries and answers "did this address do it?" for
whoever holds the key (`shanakht audit address`). The per-address throttle counts under the
raw address, in a `throttles` row that housekeeping deletes a day after its window began.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from audit import AuditEvent, AuditLog, address_pseudonym, pseudonym
from audit.canonical import JsonValue
from audit.row_seal import RowSeal
from identity.accounts import Accounts, Credentials
from identity.cnic import normalise_cnic
from identity.devices import DeviceCookies
from identity.errors import InvalidCnic, InvalidCredentials
from identity.passwords import PasswordHasher
from identity.policy import IdentityPolicy, Limit
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
    # A fresh device cookie for this browser, when the login was given `devices`.
    device_cookie: str | None = None


@dataclass(frozen=True, slots=True)
class CheckedAttempt:
    """A counted attempt whose password has been hashed, its outcome not yet recorded
    (`PasswordLogin.check`, then `PasswordLogin.record`)."""

    subject: str  # the CNIC's pseudonym
    client: str
    stored: str | None  # the hash it was checked against (None: no active account)
    matches: bool
    rehash: str | None  # the password hashed anew at today's cost, when due
    nonce: str | None  # the valid device cookie's nonce: a known browser
    devices: DeviceCookies | None


class PasswordLogin:
    """Password login in three steps, so the slow hash holds no database lock.

    argon2 takes 15-25 ms by design. Run inside the request's transaction it would hold the
    write lock (SQLite) or the throttle row's lock (PostgreSQL) all that time, and logins from
    every process would queue behind each other. So: (1) a short transaction counts the
    attempt and reads the account, (2) the hash runs with no transaction open, (3) a second
    short transaction records the outcome against the account as it then stands. `login` does
    all three; a caller with more to write on success (the sign-in page's session) runs
    `check`, then `record` in its own transaction, so a login commits once, not twice.
    """

    def __init__(
        self,
        transaction: Callable[[], AbstractContextManager[Session]],
        *,
        sms: SmsGateway,
        hasher: PasswordHasher,
        sealer: Sealer,
        row_seal: RowSeal,
        pseudonym_key: bytes,
        audit_for: Callable[[Session], AuditLog],
        policy: IdentityPolicy,
        clock: Callable[[], datetime],
    ) -> None:
        self._transaction = transaction
        self._sms = sms
        self._hasher = hasher
        self._sealer = sealer
        self._row_seal = row_seal
        self._pseudonym_key = pseudonym_key
        self._audit_for = audit_for
        self._policy = policy
        self._clock = clock

    @property
    def _device_lockout(self) -> Limit:
        return Limit(self._policy.lockout_threshold, self._policy.lockout)

    def login(
        self,
        cnic_text: str,
        password: str,
        *,
        client: str,
        devices: DeviceCookies | None = None,
        device_cookie: str | None = None,
    ) -> LoginResult:
        """Check a CNIC and password; raise InvalidCredentials (already recorded) on failure.

        With `devices`, a valid `device_cookie` for this account makes this a known browser
        (counted and locked out on its own), and a success returns a new cookie to set.
        """
        attempt = self.check(
            cnic_text, password, client=client, devices=devices, device_cookie=device_cookie
        )
        with self._transaction() as session:
            try:
                return self.record(session, attempt)
            except InvalidCredentials as exc:
                refusal = exc  # its record commits with the transaction
        raise refusal

    def check(
        self,
        cnic_text: str,
        password: str,
        *,
        client: str,
        devices: DeviceCookies | None = None,
        device_cookie: str | None = None,
    ) -> CheckedAttempt:
        """Steps (1) and (2): count the attempt (its own short transaction, committed), then
        hash with no transaction open. Nothing is decided yet: `record` does that, in a
        transaction the caller may go on using (a page signs the citizen in within it)."""
        try:
            cnic = normalise_cnic(cnic_text)
        except InvalidCnic:
            self._hasher.verify(None, password)  # the same time as any other refusal
            raise InvalidCredentials("the CNIC or password is not right") from None
        subject = pseudonym(cnic, key=self._pseudonym_key)
        # (1) Throttles first: a refused attempt costs no hashing and counts nothing. A known
        # browser (a cookie made for this very account, since its password was last set)
        # counts against its cookie, so strangers cannot use up its quota.
        with self._transaction() as session:
            seen = Accounts(session, self._sealer, self._row_seal).credentials(subject)
            generation = _generation(seen)
            nonce = (
                devices.nonce(device_cookie, subject, generation) if devices is not None else None
            )
            throttle = Throttle(session, self._clock)
            throttle.hit(f"login:address:{client}", self._policy.per_address)
            if nonce is None:
                throttle.hit(f"login:account:{subject}", self._policy.per_account)
            else:
                throttle.hit(f"login:device:{nonce}", self._policy.per_account)
        # (2) One argon2 verification whatever the account's state, so timing tells nothing,
        # and with no transaction open, so it holds no lock.
        stored = seen.password_hash if seen and seen.status == "active" else None
        matches = self._hasher.verify(stored, password)
        rehash = (
            self._hasher.hash(password)
            if matches and stored is not None and self._hasher.needs_rehash(stored, password)
            else None
        )
        return CheckedAttempt(subject, client, stored, matches, rehash, nonce, devices)

    def record(self, session: Session, attempt: CheckedAttempt) -> LoginResult:
        """Step (3): the outcome, in `session`, against the account as it stands now (it may
        have been locked or its password changed meanwhile: then the old hash's match counts
        for nothing). Raises InvalidCredentials, whose records the caller must commit (it
        says so: `keep_transaction`)."""
        subject, client, nonce = attempt.subject, attempt.client, attempt.nonce
        accounts = Accounts(session, self._sealer, self._row_seal)
        audit = self._audit_for(session)
        throttle = Throttle(session, self._clock)
        account = accounts.credentials(subject, for_update=True)
        now = self._clock()
        if nonce is not None:
            # A known browser is kept out only by its own lockout, never the account's.
            locked = throttle.full(f"login:device_failures:{nonce}", self._device_lockout)
        else:
            locked = (
                account is not None
                and account.locked_until is not None
                and account.locked_until > now
            )
        if (
            account is None
            or account.status != "active"
            or account.password_hash != attempt.stored
            or locked
            or not attempt.matches
        ):
            raise self._refusal(
                accounts, audit, throttle, account, subject, client, locked, now, nonce
            )
        # A known browser's success leaves strangers' lockout of the account standing, and
        # clears its own failures. Failures already clear (the row read under lock, so
        # nobody changes them meanwhile) are not written again: most logins write no update.
        had_failures = account.failed_logins != 0 or account.locked_until is not None
        accounts.record_success(
            account.id, attempt.rehash, clear_failures=nonce is None and had_failures
        )
        if nonce is not None:
            throttle.clear(f"login:device_failures:{nonce}")
        expiry = self._policy.password_expiry
        expired = expiry is not None and account.password_changed_at + expiry <= now
        details: dict[str, JsonValue] = {
            "method": "password",
            "acr": ACR_LOW,
            "client": address_pseudonym(client, key=self._pseudonym_key),
        }
        if nonce is not None:
            details["known_device"] = True
        audit.append(
            AuditEvent(
                actor=f"citizen:{subject}",
                action="identity.login",
                subject=subject,
                details=details,
            )
        )
        devices = attempt.devices
        cookie = (
            devices.issue(subject, _generation(account), nonce=nonce)
            if devices is not None
            else None
        )
        return LoginResult(account.id, subject, ACR_LOW, expired, cookie)

    def _refusal(
        self,
        accounts: Accounts,
        audit: AuditLog,
        throttle: Throttle,
        account: Credentials | None,
        subject: str,
        client: str,
        locked: bool,
        now: datetime,
        nonce: str | None,
    ) -> InvalidCredentials:
        """Record a failed login (and a lockout it causes); return the one answer for all."""
        details: dict[str, JsonValue] = {
            "method": "password",
            "client": address_pseudonym(client, key=self._pseudonym_key),
        }
        newly_locked = None
        if account is not None and not locked and account.status == "active":
            if nonce is not None:
                # A known browser's failures lock out that browser's cookie, not the account.
                counter = f"login:device_failures:{nonce}"
                failures = throttle.add(counter, self._device_lockout)
                details["known_device"] = True
                if failures == self._policy.lockout_threshold:
                    throttle.restart(counter)
                    newly_locked = account.id
                    self._lockout(accounts, audit, account, subject, failures, device=True)
            else:
                failures = account.failed_logins + 1
                lock_until = None
                if failures >= self._policy.lockout_threshold:
                    lock_until = now + self._policy.lockout
                    newly_locked = account.id
                    self._lockout(accounts, audit, account, subject, failures, device=False)
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

    def _lockout(
        self,
        accounts: Accounts,
        audit: AuditLog,
        account: Credentials,
        subject: str,
        failures: int,
        *,
        device: bool,
    ) -> None:
        minutes = int(self._policy.lockout.total_seconds() // 60)
        audit.append(
            AuditEvent(
                actor="system",
                action="identity.device.locked" if device else "identity.account.locked",
                subject=subject,
                details={"failures": failures, "minutes": minutes},
            )
        )
        if device:
            text = (
                f"Shanakht: a browser you signed in with before was locked after {failures} "
                f"failed logins. It opens again in {minutes} minutes; your other devices are "
                "not affected."
            )
        else:
            text = (
                f"Shanakht: your account was locked after {failures} failed logins from "
                f"unknown devices. It opens again in {minutes} minutes, or reset your "
                "password now. Browsers you signed in with before can still sign in."
            )
        # The lockout stands and is logged whether or not the courtesy notice gets through.
        holder = accounts.by_id(account.id)  # the one place a login opens the sealed number
        if holder is None:
            return
        with contextlib.suppress(SmsUnavailable):
            self._sms.send(holder.mobile, text)


def _generation(account: Credentials | None) -> str:
    """The account's credential generation, which a device cookie is bound to: when its
    password was last set (a change or reset voids every cookie). "" for no account."""
    return account.password_changed_at.isoformat() if account is not None else ""
