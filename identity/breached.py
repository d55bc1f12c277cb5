"""Passwords seen in breaches, looked up in a local mirror of Have I Been Pwned's corpus.

The common-password list catches what people choose; it cannot catch a password that is
unusual but was leaked from another site, which an attacker tries first (credential stuffing).
NIST SP 800-63B 5.1.1.2 and ASVS 2.1.7 ask for a check against breached passwords.
Pwned Passwords holds about a billion of them as SHA-1 digests, published in 16^5 "range"
files, one per first five hex digits of the digest, each line the other 35 digits and a count
(`haveibeenpwned-downloader -s false` writes that folder).

The corpus is read from a folder on the server's own disk, never from the online API: a
citizen's password, even as a digest prefix, does not leave the province's network, and a
registration does not depend on a foreign service being up. SHA-1 here is the corpus's lookup
key, not a protection of anything.

A range file that is missing means the mirror is incomplete, not that the password is safe:
the check then fails closed (`BreachCorpusUnavailable`), as a NADRA outage does.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol

from identity.errors import BreachCorpusUnavailable

PREFIX_DIGITS = 5
# What a citizen is told while the mirror cannot answer (a page shows it in their language).
CANNOT_CHECK = "new passwords cannot be checked just now; nothing was changed, try again later"
# Two ends of the range: a folder without them is not a mirror (a wrong path, an empty disk).
_ENDS = ("00000.txt", "FFFFF.txt")


class BreachedPasswords(Protocol):
    def seen(self, password: str) -> bool:
        """Whether `password` is in the corpus; BreachCorpusUnavailable if it cannot be told."""
        ...


class PwnedPasswordsMirror:
    """The range files of Pwned Passwords (SHA-1 version) in one folder."""

    def __init__(self, folder: Path) -> None:
        missing = [name for name in _ENDS if not (folder / name).is_file()]
        if missing:
            raise ValueError(
                f"{folder} is not a Pwned Passwords mirror (no {', '.join(missing)}): "
                "download it with `haveibeenpwned-downloader -s false`"
            )
        self._folder = folder

    def seen(self, password: str) -> bool:
        digest = hashlib.sha1(password.encode(), usedforsecurity=False).hexdigest().upper()
        prefix, suffix = digest[:PREFIX_DIGITS], digest[PREFIX_DIGITS:]
        try:
            with (self._folder / f"{prefix}.txt").open("rb") as lines:
                return any(_counted(line, suffix.encode()) for line in lines)
        except OSError:
            # Fail closed: a missing range file is an incomplete mirror, not a safe password.
            raise BreachCorpusUnavailable(CANNOT_CHECK) from None


def _counted(line: bytes, suffix: bytes) -> bool:
    """`line` is `suffix:count` with a count above zero (the API pads its answers with zeros)."""
    found, _, count = line.strip().partition(b":")
    return found.upper() == suffix and count.strip() not in (b"", b"0")
