"""Authenticator apps (RFC 6238 TOTP) and recovery codes: the second factor without SMS.

A code is accepted once: the last time step used is kept, so a code read over a shoulder
cannot be replayed within its 30 seconds. A replayed code is told apart from a wrong one
(`REUSED_CODE`), so that the refusal can be audited as what it is (ASVS 2.8.5). Recovery codes
are for a lost phone; each works once and only an HMAC of it is stored (under a service key,
bound to the citizen).

Recovery codes are 28 characters of Crockford's base32 (140 random bits, ASVS 2.6.2 asks for
112), shown in seven groups of four, `7K2M-9QXD-...`: the alphabet has no I, L, O or U, case
does not matter, spaces and dashes are ignored, and O, I and L are read as 0, 1 and 1, so a
code copied by hand from paper still works. Codes issued before (two groups of eight hex
digits, 64 bits) keep working until used or replaced: they normalise to what they did.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from datetime import datetime

import pyotp
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from identity.models import recovery_codes, totp_factors
from identity.sealing import SealBroken, Sealer

ISSUER_NAME = "Shanakht"
RECOVERY_CODES = 10
RECOVERY_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32
RECOVERY_GROUPS = 7
RECOVERY_GROUP = 4  # 7 groups of 4 characters of 5 bits: 140 bits
_MISREAD = str.maketrans("oil", "011")  # letters Crockford's base32 reads as digits
DRIFT_STEPS = 1  # accept the previous and next 30-second step too: phones' clocks drift
APP_CODE = "app"
RECOVERY_CODE = "recovery"
# An app code right for its step, but no later than a step used already: a replay (or, rarely,
# an older code typed after a newer one was accepted). Refused either way.
REUSED_CODE = "reused"

_log = logging.getLogger("shanakht.integrity")


def totp_context(citizen_id: str) -> str:
    return f"citizen:{citizen_id}:totp"


def new_recovery_code() -> str:
    """A fresh recovery code, as shown: seven groups of four, joined by dashes."""
    length = RECOVERY_GROUPS * RECOVERY_GROUP
    drawn = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(length))
    return "-".join(drawn[i : i + RECOVERY_GROUP] for i in range(0, length, RECOVERY_GROUP))


def normal_recovery_code(typed: str) -> str:
    """A recovery code as typed, in the one form its HMAC is taken of: no spaces or dashes,
    lower case, misread letters as their digits. An old hex code has none of those letters,
    so it comes out as it always did."""
    return "".join(typed.split()).replace("-", "").lower().translate(_MISREAD)


class AuthenticatorApps:
    def __init__(
        self, session: Session, *, sealer: Sealer, code_key: bytes, clock: Callable[[], datetime]
    ) -> None:
        self._db = session
        self._sealer = sealer
        self._code_key = code_key
        self._clock = clock

    def _recovery_mac(self, citizen_id: str, code: str) -> bytes:
        message = f"{citizen_id}:{normal_recovery_code(code)}".encode()
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
                secret=self._sealer.seal(secret.encode(), totp_context(citizen_id)),
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
        try:
            secret = self._sealer.open(row.secret, totp_context(citizen_id))
        except SealBroken:
            # Changed by SQL, or sealed under a retired key version. Its codes are refused,
            # and nothing else with it: recovery codes and SMS codes still sign the citizen
            # in, and setting the app up again replaces the secret. An error page instead
            # would shut them out of the one way to mend it.
            _log.warning(
                "integrity: the authenticator app secret of citizen %s does not open; its "
                "codes are refused until the app is set up again",
                citizen_id,
            )
            return None
        totp = pyotp.TOTP(secret.decode())
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
        codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]
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
