"""The tunable numbers of the identity service, in one place, with the reasons for each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class Limit:
    """At most `attempts` in any fixed window of `window`."""

    attempts: int
    window: timedelta


THROTTLE_WINDOW = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class IdentityPolicy:
    # One-time codes: six digits, a few minutes, a few tries (1 in 200,000 to guess).
    code_ttl: timedelta = timedelta(minutes=5)
    code_attempts: int = 5
    # After the code, the citizen has this long to choose a password.
    verified_ttl: timedelta = timedelta(minutes=15)
    # The province's policy: passwords expire; repeated failures lock the account.
    password_expiry: timedelta | None = timedelta(days=90)
    lockout_threshold: int = 5
    lockout: timedelta = timedelta(minutes=15)
    # Throttles answer 429 before any hashing: per account against guessing one password,
    # per client address against spraying one password over many accounts.
    per_account: Limit = Limit(10, THROTTLE_WINDOW)
    per_address: Limit = Limit(100, THROTTLE_WINDOW)
    # Second-factor codes by SMS, per account: each costs a text and brings five new guesses
    # at a new code, and the page that sends one is a link anyone can make a browser open.
    per_account_sms: Limit = Limit(5, THROTTLE_WINDOW)
    # Wrong SMS codes, per account, whatever the number of codes sent: each code allows
    # `code_attempts` tries of its own, so without this 5 sends would bring 25 guesses a window.
    # With it, 5 guesses at a six-digit code in 15 minutes (1 in 200,000).
    per_account_sms_codes: Limit = Limit(5, THROTTLE_WINDOW)
    # Registration and reset each cost a NADRA query and an SMS: throttle per CNIC and address.
    per_cnic_enrolment: Limit = Limit(5, timedelta(hours=1))
    per_address_enrolment: Limit = Limit(30, timedelta(hours=1))
    # Sign-in sessions (ASVS 4.0.3 3.3.2, Level 2): a session unused for `session_idle` ends,
    # and none outlives `session_lifetime` whatever its use; either way the citizen signs in
    # again and every e-service in the session hears of the end by back-channel logout.
    session_idle: timedelta = timedelta(minutes=30)
    session_lifetime: timedelta = timedelta(hours=12)
    # Device cookies (OWASP "Slow Down Online Guessing Attacks with Device Cookies"): a browser
    # that once signed in to an account keeps a signed cookie for it this long. Its failures
    # count against that cookie alone (the lockout threshold and time above apply to it), so a
    # stranger who locks the account out for unknown browsers does not lock out its holder.
    device_cookie_lifetime: timedelta = timedelta(days=365)
    # Named in the text message sent after every change of password or second factor
    # (SHANAKHT_HELPLINE: the province's own support number).
    helpline: str = "the Shanakht helpline"
