"""Device cookies: a browser that once signed in to an account is not a stranger to it.

After OWASP's "Slow Down Online Guessing Attacks with Device Cookies". A successful login gives
the browser a cookie that binds the account (by its pseudonym, which the cookie never shows)
to a random nonce and the time it was issued, under an HMAC with a key from the key store.
When a login presents a valid cookie for the account it names, its attempts and failures
count against that cookie alone, and only that cookie is locked out after too many failures;
logins without one count towards the account's lockout, which therefore holds only for
unknown browsers. Whoever knows a CNIC can keep strangers out of the account, but no longer
its holder, whose browser has the cookie.

A cookie is worth nothing for another account, and its nonce (the only thing counted and
locked) is random, so the throttle table learns nothing personal from it. It is also bound to
the account's credential generation (when its password was last set): a password change or
reset voids every cookie, so cookies gathered by someone who had the old password, each with
a guessing budget of its own, are worth nothing against the new one. A known browser's next
login keeps its nonce, so one browser is one counter, not one per login.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

VERSION = "d1"
NONCE_BYTES = 16


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class DeviceCookies:
    def __init__(self, key: bytes, *, lifetime: timedelta, clock: Callable[[], datetime]) -> None:
        if len(key) < 32:
            raise ValueError("a device cookie key needs at least 256 bits")
        self._key = key
        self._lifetime = lifetime
        self._clock = clock

    @property
    def lifetime(self) -> timedelta:
        return self._lifetime

    def _mac(self, subject: str, generation: str, nonce: str, issued: str) -> str:
        message = f"shanakht-device|{VERSION}|{subject}|{generation}|{nonce}|{issued}".encode()
        return _b64(hmac.new(self._key, message, hashlib.sha256).digest())

    def issue(self, subject: str, generation: str, *, nonce: str | None = None) -> str:
        """A cookie value for the account whose pseudonym is `subject`, at its credential
        `generation`; a known browser keeps its `nonce`, a new one gets a fresh one."""
        nonce = nonce or _b64(secrets.token_bytes(NONCE_BYTES))
        issued = str(int(self._clock().timestamp()))
        return f"{VERSION}.{nonce}.{issued}.{self._mac(subject, generation, nonce, issued)}"

    def nonce(self, cookie: str | None, subject: str, generation: str) -> str | None:
        """The cookie's nonce if it is a valid, unexpired cookie for `subject` at its credential
        `generation`, else None."""
        if not cookie or len(cookie) > 200:
            return None
        parts = cookie.split(".")
        if len(parts) != 4 or parts[0] != VERSION or not parts[2].isdigit():
            return None
        _version, nonce, issued, mac = parts
        expected = self._mac(subject, generation, nonce, issued)
        if not hmac.compare_digest(mac.encode(), expected.encode()):
            return None
        age = self._clock().timestamp() - int(issued)
        if age < -300 or age > self._lifetime.total_seconds():  # five minutes of clock skew
            return None
        return nonce
