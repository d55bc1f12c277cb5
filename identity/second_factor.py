"""The second factor: a one-time code by SMS to the citizen's registered mobile.

Password plus this code is the "substantial" level of assurance; an e-service that asks for it
(`acr_values`) sends a citizen signed in with a password alone through this step-up.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from audit import AuditEvent, AuditLog
from identity.accounts import Account
from identity.challenges import Challenges, new_code
from identity.errors import ChallengeFailed
from identity.login import ACR_SUBSTANTIAL
from identity.policy import IdentityPolicy
from identity.sealing import Sealer
from identity.sms import SmsGateway

PURPOSE = "second_factor"
AMR = ("pwd", "sms")


class SmsSecondFactor:
    def __init__(
        self,
        session: Session,
        *,
        sms: SmsGateway,
        sealer: Sealer,
        code_key: bytes,
        audit: AuditLog,
        policy: IdentityPolicy,
        clock: Callable[[], datetime],
    ) -> None:
        self._sms = sms
        self._audit = audit
        self._challenges = Challenges(
            session, code_key=code_key, sealer=sealer, policy=policy, clock=clock
        )

    def start(self, account: Account) -> str:
        code = new_code()
        challenge_id = self._challenges.create(
            PURPOSE, account.pseudonym, {"citizen_id": account.id}, code
        )
        self._sms.send(account.mobile, f"Shanakht sign-in code {code}. Never share it.")
        return challenge_id

    def finish(self, challenge_id: str, code: str, *, citizen_id: str) -> str:
        """Check the code for this citizen's session; return the new level of assurance."""
        self._challenges.verify(challenge_id, PURPOSE, code)
        challenge = self._challenges.consume(challenge_id, PURPOSE)
        if challenge.payload["citizen_id"] != citizen_id:
            raise ChallengeFailed("this code belongs to another sign-in")
        self._audit.append(
            AuditEvent(
                actor=f"citizen:{challenge.pseudonym}",
                action="identity.login.second_factor",
                subject=challenge.pseudonym,
                details={"method": "sms", "acr": ACR_SUBSTANTIAL},
            )
        )
        return ACR_SUBSTANTIAL
