"""Text messages that confirm a changed credential (ASVS 4.0.3 2.2.3 and 2.5.5).

After a password is changed or reset, an authenticator app is replaced (the old one stops
when a new key is drawn), set up (with new recovery codes) or removed, or a recovery code is
used, the registered mobile (the number NADRA and the telco tied to the CNIC) is told what
happened and when, in Pakistan time, and whom to call if it was not the citizen. The message
holds nothing else: no code, no name, no CNIC. Accounts keep no language, so it comes in
English and Urdu.

A gateway that fails does not undo the change: the failure is logged (without the number) and
recorded in the audit log, where the change itself already is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from audit import AuditEvent, AuditLog
from identity.policy import IdentityPolicy
from identity.sms import SmsGateway

PKT = timezone(timedelta(hours=5), "PKT")  # Pakistan keeps UTC+5 all year

PASSWORD_CHANGED = "password_changed"  # noqa: S105 (an event's name, not a password)
APP_ADDED = "app_added"
APP_REPLACED = "app_replaced"
APP_REMOVED = "app_removed"
RECOVERY_CODE_USED = "recovery_code_used"

# What happened, in English and in Urdu (its full stop added apart); `{when}` is the time
# in PKT.
_WORDS: dict[str, tuple[str, str]] = {
    PASSWORD_CHANGED: (
        "Your Shanakht password was changed at {when}.",
        "آپ کا شناخت پاس ورڈ {when} پر تبدیل کیا گیا",
    ),
    APP_ADDED: (
        "An authenticator app was set up for your Shanakht account at {when}, with new "
        "recovery codes; any earlier app and codes no longer work.",
        "آپ کے شناخت اکاؤنٹ کے لیے {when} پر ایک تصدیقی ایپ نئے ریکوری کوڈ کے ساتھ لگائی گئی؛ "
        "پہلے والی ایپ اور کوڈ اب کام نہیں کرتے",
    ),
    APP_REPLACED: (
        "The authenticator app of your Shanakht account was replaced at {when}; the old one no "
        "longer works.",
        "آپ کے شناخت اکاؤنٹ کی تصدیقی ایپ {when} پر بدل دی گئی؛ پرانی ایپ اب کام نہیں کرتی",
    ),
    APP_REMOVED: (
        "The authenticator app and recovery codes of your Shanakht account were removed at {when}.",
        "آپ کے شناخت اکاؤنٹ سے تصدیقی ایپ اور ریکوری کوڈ {when} پر ہٹا دیے گئے",
    ),
    RECOVERY_CODE_USED: (
        "A recovery code was used to sign in to your Shanakht account at {when}.",
        "آپ کے شناخت اکاؤنٹ میں سائن اِن کے لیے {when} پر ایک ریکوری کوڈ استعمال ہوا",
    ),
}
URDU_STOP = "\u06d4"  # the Urdu full stop, added to each Urdu sentence below
_CALL = (
    "If this was not you, call {helpline}.",
    "اگر یہ آپ نے نہیں کیا تو {helpline} پر کال کریں",
)

log = logging.getLogger(__name__)


def pkt_time(moment: datetime) -> str:
    """ "2026-11-26 14:05 PKT" for an aware time."""
    return moment.astimezone(PKT).strftime("%Y-%m-%d %H:%M") + " PKT"


def notice_text(event: str, moment: datetime, helpline: str) -> str:
    """The message for `event` at `moment`: English, then Urdu."""
    english, urdu = _WORDS[event]
    when = pkt_time(moment)
    return "\n".join(
        (
            f"{english.format(when=when)} {_CALL[0].format(helpline=helpline)}",
            f"{urdu.format(when=when)}{URDU_STOP} {_CALL[1].format(helpline=helpline)}{URDU_STOP}",
        )
    )


class CredentialNotices:
    def __init__(
        self,
        *,
        sms: SmsGateway,
        audit: AuditLog,
        policy: IdentityPolicy,
        clock: Callable[[], datetime],
    ) -> None:
        self._sms = sms
        self._audit = audit
        self._policy = policy
        self._clock = clock

    def send(self, mobile: str, pseudonym: str, event: str) -> bool:
        """Tell the registered mobile that `event` happened now; False if it could not be
        sent (logged and audited, never raised: the change stands either way)."""
        text = notice_text(event, self._clock(), self._policy.helpline)
        try:
            self._sms.send(mobile, text)
        except Exception as exc:  # any gateway failure: the change it reports must stand
            log.warning("credential notice %s not sent: %s", event, type(exc).__name__)
            self._audit.append(
                AuditEvent(
                    actor="system",
                    action="identity.notice.failed",
                    subject=pseudonym,
                    outcome="failure",
                    details={"notice": event, "channel": "sms"},
                )
            )
            return False
        return True
