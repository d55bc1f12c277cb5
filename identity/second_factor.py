"""The second factor: a code from an authenticator app, or one sent by SMS to the registered
mobile (or a recovery code, for a lost phone).

Password plus either is the "substantial" level of assurance; an e-service that asks for it
(`acr_values`) sends a citizen signed in with a password alone through this step-up.

Every wrong code, and every app code used a second time, is refused with an audit entry
(`identity.failures`): outcome failure, the citizen by pseudonym, never the code. So is an SMS
code entered against a ticket that exists but cannot take it (within a per-account cap).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from audit import AuditEvent, AuditLog
from identity.accounts import Account
from identity.challenges import Challenges, new_code
from identity.errors import ChallengeFailed, ReusedCode, WrongCode
from identity.failures import FailureRecords
from identity.login import ACR_SUBSTANTIAL
from identity.notices import RECOVERY_CODE_USED, CredentialNotices
from identity.policy import IdentityPolicy
from identity.sealing import Sealer
from identity.sms import SmsGateway
from identity.throttle import Throttle
from identity.totp import APP_CODE, RECOVERY_CODE, REUSED_CODE, AuthenticatorApps

PURPOSE = "second_factor"
SMS_CODES = "second_factor_sms_codes"  # throttle key prefix: SMS codes tried, per account
SMS_AMR = ("pwd", "sms")
APP_AMR = ("pwd", "otp")


class SecondFactor:
    def __init__(
        self,
        session: Session,
        *,
        sms: SmsGateway,
        sealer: Sealer,
        code_key: bytes,
        pseudonym_key: bytes,
        audit: AuditLog,
        policy: IdentityPolicy,
        clock: Callable[[], datetime],
    ) -> None:
        self._sms = sms
        self._audit = audit
        self._failures = FailureRecords(
            session, audit=audit, pseudonym_key=pseudonym_key, clock=clock
        )
        self._policy = policy
        self._challenges = Challenges(
            session, code_key=code_key, sealer=sealer, policy=policy, clock=clock
        )
        self._throttle = Throttle(session, clock)
        self.apps = AuthenticatorApps(session, sealer=sealer, code_key=code_key, clock=clock)
        self.notices = CredentialNotices(sms=sms, audit=audit, policy=policy, clock=clock)

    def start_sms(self, account: Account, *, sid: str = "") -> str:
        """Send a sign-in code for the session `sid`; TooManyAttempts past the per-account
        limit (policy). Only ever on a request that means it (a POST with its CSRF token).
        Refused too while the account's wrong codes are at their limit: no code could be
        entered, so a text would be wasted."""
        guesses = f"{SMS_CODES}:{account.pseudonym}"
        self._throttle.refuse_if_full(guesses, self._policy.per_account_sms_codes)
        self._throttle.hit(f"second_factor_sms:{account.pseudonym}", self._policy.per_account_sms)
        code = new_code()
        challenge_id = self._challenges.create(
            PURPOSE, account.pseudonym, {"citizen_id": account.id, "sid": sid}, code
        )
        self._sms.send(account.mobile, f"Shanakht sign-in code {code}. Never share it.")
        return challenge_id

    def pending_sms(self, account: Account, *, sid: str) -> str | None:
        """The newest code sent in the session `sid` that can still be entered, if any: the
        code page shows it again rather than send another."""
        for challenge in self._challenges.live_for(PURPOSE, account.pseudonym):
            payload = challenge.payload
            if payload.get("sid") == sid and payload["citizen_id"] == account.id:
                return challenge.id
        return None

    def finish_sms(
        self, challenge_id: str, code: str, *, account: Account, client: str, sid: str | None = None
    ) -> tuple[str, ...]:
        """Check the SMS code for this citizen's session; return the methods (amr) now proven.

        Every try counts against the account before it is judged, whichever code it is for
        (TooManyAttempts past `per_account_sms_codes`); a right one is taken back, so the
        limit is on wrong codes across all the codes sent, not five for each. A wrong code is
        recorded (the WrongCode raised keeps the transaction)."""
        guesses = f"{SMS_CODES}:{account.pseudonym}"
        self._throttle.hit(guesses, self._policy.per_account_sms_codes)
        try:
            self._challenges.verify(challenge_id, PURPOSE, code, pseudonym=account.pseudonym)
        except WrongCode:
            self._failures.second_factor(
                account.pseudonym, method="sms", reason="wrong code", client=client
            )
            raise
        self._throttle.forgive(guesses)
        challenge = self._challenges.consume(challenge_id, PURPOSE)
        theirs = challenge.payload["citizen_id"] != account.id
        if theirs or (sid is not None and challenge.payload.get("sid", sid) != sid):
            raise ChallengeFailed(
                "this code belongs to another sign-in",
                ticket_of=challenge.pseudonym,
                why="another account's ticket" if theirs else "another sign-in's ticket",
            )
        self._record(challenge.pseudonym, "sms")
        return SMS_AMR

    def refused_ticket(self, refused: ChallengeFailed, *, account: Account, client: str) -> bool:
        """After the refusal's rollback: an SMS code the signed-in `account` entered against a
        ticket that exists but could not take it is recorded as a second-factor failure,
        within the per-account cap; whether it was. A ticket that never existed names nobody
        and is not (`identity.failures` says why)."""
        if refused.ticket_of is None or refused.why is None:
            return False
        return self._failures.second_factor_ticket(
            account.pseudonym, reason=refused.why, client=client
        )

    def finish_app(self, account: Account, code: str, *, client: str) -> tuple[str, ...]:
        """Check an authenticator-app or recovery code, throttled like a password. A wrong
        code and a reused one are refused and recorded (the error keeps the transaction)."""
        self._throttle.hit(f"second_factor:{account.pseudonym}", self._policy.per_account)
        kind = self.apps.verify_kind(account.id, code)
        if kind not in (APP_CODE, RECOVERY_CODE):
            reused = kind == REUSED_CODE
            self._failures.second_factor(
                account.pseudonym,
                method="app",
                reason="reused code" if reused else "wrong code",
                client=client,
            )
            raise ReusedCode() if reused else WrongCode(attempts_left=0)
        self._record(account.pseudonym, "app")
        if kind == RECOVERY_CODE:  # a lost phone, or someone holding the printed codes
            self.notices.send(account.mobile, account.pseudonym, RECOVERY_CODE_USED)
        return APP_AMR

    def _record(self, pseudonym: str, method: str) -> None:
        self._audit.append(
            AuditEvent(
                actor=f"citizen:{pseudonym}",
                action="identity.login.second_factor",
                subject=pseudonym,
                details={"method": method, "acr": ACR_SUBSTANTIAL},
            )
        )
