"""Opaque ids for records the audit log names (locker documents, share links, requests,
consents; proposed role grants).

They appear in audit entries, and the audit log refuses any string holding a run of exactly 13
digits, the shape of a CNIC; a random hex id has one about once in a hundred. So ids are 128
random bits written in the letters a to p instead of hex digits: no digit can ever appear.
"""

from __future__ import annotations

import secrets

_LETTERS = str.maketrans("0123456789abcdef", "abcdefghijklmnop")
ID_LENGTH = 32


def new_id() -> str:
    """32 letters, 128 random bits."""
    return secrets.token_hex(16).translate(_LETTERS)
