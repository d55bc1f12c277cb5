"""Keyed pseudonyms: how the log names a person without holding their CNIC.

HMAC-SHA256 under a key only the service holds: the same CNIC always maps to the same
pseudonym (so a citizen's entries can be found), but nobody without the key can test a guessed
CNIC against the log, which a plain hash of a 13-digit number would allow in seconds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from audit.errors import EntryError

PSEUDONYM_PREFIX = "p:"
MIN_KEY_BYTES = 32


def _normalise(cnic: str) -> str:
    digits = cnic.replace("-", "")
    if len(digits) != 13 or not digits.isascii() or not digits.isdigit():
        raise EntryError("a CNIC has 13 digits, written with or without dashes")
    return digits


def pseudonym(cnic: str, *, key: bytes) -> str:
    """The log's name for the holder of `cnic`: `p:` and 43 characters of base64url."""
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the pseudonym key must be at least {MIN_KEY_BYTES} bytes")
    mac = hmac.new(key, _normalise(cnic).encode(), hashlib.sha256).digest()
    return PSEUDONYM_PREFIX + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
