"""Authenticator apps (RFC 6238 TOTP) and recovery codes: the second factor without SMS.

A code is accepted once: the last time step used is kept, so a code read over a shoulder
cannot be replayed within its 30 seconds. A replayed code is told apart from a wrong one
(`REUSED_CODE`), so that the refusal can be audited as what it is (ASVS 2.8.5). Recovery
codes are for a lost phone; each works once and only an HMAC of it is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime

import pyotp
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from identity.models import recovery_codes, totp_factors
from identity.sealing import Sealer

ISSUER_NAME = "Shanakht"
RECOVERY_CODES = 10
DRIFT_STEPS = 1  # accept the previous and next 30-second step too: phones' clocks drift
APP_CODE = "app"
RECOVERY_CODE = "recovery"
# An app code right for its step, but no later than a step used already: a replay (or, rarely,
# an older code typed after a newer one was accepted). Refused either way.
REUSED_CODE = "reused"


def _context(citizen_id: str) -> str:
    return f"citizen:{citizen_id}:totp"


class AuthenticatorApps:
    def __init__(
        self, session: Session, *, sealer: Sealer, code_key: bytes, clock: Callable[[], datetime]
    ) -> None:
        self._db = session
        self._sealer = sealer
        self._code_key = code_key
        self._clock = clock

    def _recovery_mac(self, citizen_id: str, code: str) -> bytes:
        normal = code.replace("-", "").strip().lower()
        message = f"{citizen_id}:{normal}".encode()
        return hmac.new(self._code_key, message, hashlib.sha256).digest()

    def enabled(self, citizen_id: str) -> bool:
        confirmed = self._db.execute(
            select(totp_factors.c.confirmed_at).where(totp_factors.c.citizen_id == citizen_id)
        ).scalar_one_or_none()
        return confirmed is not None

    def begin(self, citizen_id: str, account_label: str) -> tuple[str, str]:
        """A new secret, not yet in force: (the secret, its otpauth:// URI for a QR code)."""
        secret = pyotp.random_base32()
        self._db.execute(delete(totp_factors).where(totp_factors.c.citizen_id == citizen_id))
        self._db.execute(
            insert(totp_factors).values(
                citizen_id=citizen_id,
                secret=self._sealer.seal(secret.encode(), _context(citizen_id)),
                confirmed_at=None,
                last_step=0,
            )
        )
        uri = pyotp.TOTP(secret).provisioning_uri(name=account_label, issuer_name=ISSUER_NAME)
        return secret, uri

    def _step_of(self, citizen_id: str, code: str, *, confirmed: bool) -> tuple[int, int] | None:
        """(the step in the drift window whose code this is, the last step used), or None if
        no step's code is this one (or the factor is not in the state asked for)."""
        row = self._db.execute(
            select(totp_factors).where(totp_factors.c.citizen_id == citizen_id).with_for_update()
        ).one_or_none()
        if row is None or (row.confirmed_at is not None) != confirmed:
            return None
        totp = pyotp.TOTP(self._sealer.open(row.secret, _context(citizen_id)).decode())
        current = totp.timecode(self._clock())
        for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
            if hmac.compare_digest(totp.generate_otp(step), code.strip()):
                return step, int(row.last_step)
        return None

    def _matching_step(self, citizen_id: str, code: str, *, confirmed: bool) -> int | None:
        """The step of this code if it is right and no later than any step used before."""
        found = self._step_of(citizen_id, code, confirmed=confirmed)
        return found[0] if found is not None and found[0] > found[1] else None

    def confirm(self, citizen_id: str, code: str) -> list[str] | None:
        """Put the new secret in force with a first code; return fresh recovery codes."""
        step = self._matching_step(citizen_id, code, confirmed=False)
        if step is None:
            return None
        self._db.execute(
            update(totp_factors)
            .where(totp_factors.c.citizen_id == citizen_id)
            .values(confirmed_at=self._clock(), last_step=step)
        )
        self._db.execute(delete(recovery_codes).where(recovery_codes.c.citizen_id == citizen_id))
        codes = [f"{secrets.token_hex(4)}-{secrets.token_hex(4)}" for _ in range(RECOVERY_CODES)]
        self._db.execute(
            insert(recovery_codes),
            [
                {"citizen_id": citizen_id, "code_hash": self._recovery_mac(citizen_id, c)}
                for c in codes
            ],
        )
        return codes

    def verify(self, citizen_id: str, code: str) -> bool:
        """An app code (once per step) or an unused recovery code."""
        return self.verify_kind(citizen_id, code) in (APP_CODE, RECOVERY_CODE)

    def verify_kind(self, citizen_id: str, code: str) -> str | None:
        """As `verify`, saying which kind of code it was: APP_CODE or RECOVERY_CODE when
        accepted; REUSED_CODE (refused) for an app code whose step was used already; None."""
        found = self._step_of(citizen_id, code, confirmed=True)
        if found is not None:
            step, last_step = found
            if step <= last_step:
                return REUSED_CODE
            self._db.execute(
                update(totp_factors)
                .where(totp_factors.c.citizen_id == citizen_id)
                .values(last_step=step)
            )
            return APP_CODE
        used = self._db.execute(
            update(recovery_codes)
            .where(
                recovery_codes.c.citizen_id == citizen_id,
                recovery_codes.c.code_hash == self._recovery_mac(citizen_id, code),
                recovery_codes.c.used_at.is_(None),
            )
            .values(used_at=self._clock())
        )
        return RECOVERY_CODE if getattr(used, "rowcount", 0) else None

    def disable(self, citizen_id: str) -> None:
        self._db.execute(delete(totp_factors).where(totp_factors.c.citizen_id == citizen_id))
        self._db.execute(delete(recovery_codes).where(recovery_codes.c.citizen_id == citizen_id))
