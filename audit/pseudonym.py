"""Keyed pseudonyms: how the log names a person without holding their CNIC.

HMAC-SHA256 under a key only the service holds: the same CNIC always maps to the same
pseudonym (so a citizen's entries can be found), but nobody without the key can test a guessed
CNIC against the log, which a plain hash of a 13-digit number would allow in seconds.

Client addresses get the same treatment (`address_pseudonym`), under a key derived from the
pseudonym key for that use alone: entries from one address share one name, so an investigator
can still group them and, holding the service's key, test whether a given address made them
(`shanakht audit address`); a reader of the log alone learns no address. Truncation to a /24 or
/48 was the alternative: it still names a network, and groups strangers behind it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress

from audit.errors import EntryError

PSEUDONYM_PREFIX = "p:"
ADDRESS_PREFIX = "a:"
_ADDRESS_KEY_LABEL = b"shanakht audit: client address pseudonyms v1"
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


def address_pseudonym(address: str, *, key: bytes) -> str:
    """The log's name for a client address: `a:` and 22 characters of base64url (128 bits).

    `key` is the pseudonym key; the HMAC runs under a key derived from it, so an address's
    name can never equal a CNIC's. The address is written canonically first (IPv6 compressed,
    an IPv4-mapped IPv6 address as IPv4), so one address has one name however it was
    spelled; anything that is not an IP address (a test client's name) is taken as given.
    """
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the pseudonym key must be at least {MIN_KEY_BYTES} bytes")
    try:
        parsed = ipaddress.ip_address(address.strip())
    except ValueError:
        canonical = address.strip()
    else:
        mapped = parsed.ipv4_mapped if isinstance(parsed, ipaddress.IPv6Address) else None
        canonical = (mapped or parsed).compressed
    derived = hmac.new(key, _ADDRESS_KEY_LABEL, hashlib.sha256).digest()
    mac = hmac.new(derived, canonical.encode(), hashlib.sha256).digest()[:16]
    return ADDRESS_PREFIX + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
