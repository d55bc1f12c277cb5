"""Passwords: the province's policy, checked on every new password, and argon2id hashing.

The policy (Punjab Digital Policy, Annexure 10) asks for at least 8 characters mixing upper
case, lower case, digits and special characters. Composition alone lets `Password@123`
through, so a password is also refused when, stripped of its decoration (case, leading and
trailing digits and symbols, common letter-for-symbol swaps), it is one of the most used
passwords, or when zxcvbn judges it easy to guess given the citizen's own details.

A password is Unicode-normalised (NFKC, as NIST SP 800-63B 5.1.1.2 advises) before it is
measured, checked or hashed, so "é" typed as one code point or as e and a combining accent,
Urdu "ۂ" from either keyboard, or full-width letters from an East Asian input method, are the
same password. At most 128 characters (ASVS 2.1.2), counted after normalising; a longer one
is refused before anything costly sees it (zxcvbn, argon2), and none is ever truncated.

With a pepper (ASVS 2.4.5: a secret kept apart from the hashes, here in the key store and never
in the database), argon2id hashes HMAC-SHA256(pepper, password) instead of the password, so a
copy of the database alone cannot be attacked offline, however weak a password. Such hashes are
marked `PEPPERED`; one made before the pepper is still accepted and replaced at its next login.
"""

from __future__ import annotations

import hashlib
import hmac
import string
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import argon2
from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from identity.errors import WeakPassword

MIN_LENGTH = 8
MAX_LENGTH = 128  # long enough for any passphrase, short enough that hashing cannot be abused
COMMON_COUNT = 10_000
PERSONAL_MIN = 4  # shorter name parts ("ali") occur inside too many ordinary words
MIN_ZXCVBN_SCORE = 2  # "somewhat guessable" at worst: at least 10^8 guesses

_LEET = str.maketrans({"@": "a", "4": "a", "0": "o", "1": "i", "!": "i", "3": "e", "$": "s",
                       "5": "s", "7": "t", "+": "t"})  # fmt: skip
_SIGNS = string.punctuation + " "
_DECORATION = string.digits + _SIGNS


def normalise(password: str) -> str:
    """The password as compared and hashed: NFKC, so the same characters typed on another
    keyboard or system give the same code points."""
    return unicodedata.normalize("NFKC", password)


@cache
def _common_passwords() -> frozenset[str]:
    return frozenset(FREQUENCY_LISTS["passwords"][:COMMON_COUNT])


def _base_words(password: str) -> set[str]:
    """What `password` may be a common password dressed up as, lower-cased: itself, and every
    cut through its leading and trailing runs of digits and signs, as typed, with its signs
    dropped, and with letter-for-symbol swaps undone.

    Cutting only the whole runs misses the common passwords that end in digits of their own:
    "Qwer1234@123" strips to "qwer", so every cut is tried ("qwer1234" is among them). Signs
    are dropped as well because the policy's special character is often pushed into a
    common password's digits ("Abcd@1234" holds "abcd1234"). A password has at most 128
    characters and its letters stay in every cut, so the cuts are few."""
    lower = password.lower()
    words = {lower, lower.translate(_LEET).strip(_DECORATION)}
    for form in (lower, _without_signs(lower)):
        for cut in _cuts(form):
            words.update((cut, cut.translate(_LEET)))
    words.discard("")
    return words


def _without_signs(word: str) -> str:
    return "".join(c for c in word if c not in _SIGNS)


def _cuts(word: str) -> set[str]:
    """`word` less any part of its leading and any part of its trailing decoration."""
    lead = len(word) - len(word.lstrip(_DECORATION))
    trail = min(len(word) - len(word.rstrip(_DECORATION)), len(word) - lead)
    return {word[i : len(word) - j] for i in range(lead + 1) for j in range(trail + 1)}


def personal_words(*values: str) -> list[str]:
    """The words of a citizen's own details (names, CNIC groups, mobile), for zxcvbn to
    penalise: it matches whole tokens, so "Ahmed Khan" must reach it as "ahmed" and "khan"."""
    words: set[str] = set()
    for value in values:
        for part in value.replace("-", " ").replace("+", " ").split():
            words.add(part.lower())
            if part.isdigit() and len(part) > 5:
                words.update({part[:5], part[5:12], part[-7:]})
    return sorted(w for w in words if len(w) >= 3)


def policy_failures(password: str, user_inputs: Sequence[str] = ()) -> list[str]:
    """Every rule `password` breaks, in words a citizen can act on; empty when it passes."""
    password = normalise(password)
    failures = []
    if len(password) < MIN_LENGTH:
        failures.append(f"use at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        failures.append(f"use at most {MAX_LENGTH} characters")
    if not any(c.isupper() for c in password):
        failures.append("add an upper-case letter")
    if not any(c.islower() for c in password):
        failures.append("add a lower-case letter")
    if not any(c.isdigit() for c in password):
        failures.append("add a digit")
    if all(c.isalnum() for c in password):
        failures.append("add a special character such as @ # $ %")
    if failures:
        return failures
    if _base_words(password) & _common_passwords():
        return ["this is one of the most common passwords; choose another"]
    lowered = password.lower()
    plain = lowered.translate(_LEET)
    if any(w in lowered or w in plain for w in user_inputs if len(w) >= PERSONAL_MIN):
        return ["leave your name, CNIC and mobile number out of your password"]
    # zxcvbn refuses more than 72 characters unless told otherwise (a ValueError, a 500).
    strength = zxcvbn(password, user_inputs=list(user_inputs), max_length=MAX_LENGTH)
    if strength["score"] < MIN_ZXCVBN_SCORE:
        return ["this password is easy to guess; make it longer or less predictable"]
    return []


def check_password(password: str, user_inputs: Sequence[str] = ()) -> None:
    """Raise WeakPassword, listing what to change, unless `password` meets the policy."""
    failures = policy_failures(password, user_inputs)
    if failures:
        raise WeakPassword(failures)


@dataclass(frozen=True, slots=True)
class HashParameters:
    """argon2id cost. The default is Keycloak's: 7 MiB, 5 iterations, one lane."""

    time_cost: int = 5
    memory_kib: int = 7 * 1024
    parallelism: int = 1


PEPPERED = "hmac-sha256$"  # before an argon2id hash of HMAC-SHA256(pepper, password)


class PasswordHasher:
    """argon2id through argon2-cffi, with a dummy hash to spend the same time on unknown users."""

    def __init__(
        self, parameters: HashParameters = HashParameters(), *, pepper: bytes | None = None
    ) -> None:
        self._pepper = pepper
        self._hasher = argon2.PasswordHasher(
            time_cost=parameters.time_cost,
            memory_cost=parameters.memory_kib,
            parallelism=parameters.parallelism,
            hash_len=32,
            salt_len=16,
            type=argon2.Type.ID,
        )
        self._dummy = self._hash("not a password anyone has: " + "x" * 16)

    def hash(self, password: str) -> str:
        return self._hash(normalise(password))

    def _hash(self, password: str) -> str:
        if self._pepper is None:
            return self._hasher.hash(password)
        return PEPPERED + self._hasher.hash(self._peppered(password))

    def _peppered(self, password: str) -> bytes:
        assert self._pepper is not None  # noqa: S101 (only called with a pepper)
        return hmac.digest(self._pepper, password.encode(), hashlib.sha256)

    def verify(self, encoded: str | None, password: str) -> bool:
        """True if `password` matches; for a missing account (None) spend the same time, False.

        One longer than any password can be (the policy refused it) is refused unhashed: that
        says nothing of the account. A hash made before passwords were normalised was made of
        the password as typed, so that is tried too when it differs."""
        normal = normalise(password)
        if len(normal) > MAX_LENGTH:
            return False
        if self._matches(encoded, normal):
            return True
        return normal != password and self._matches(encoded, password)

    def _matches(self, encoded: str | None, password: str) -> bool:
        stored = encoded or self._dummy
        secret: str | bytes = password
        if stored.startswith(PEPPERED):
            if self._pepper is None:  # no way to check it: refused, after the same work
                stored, secret = self._dummy, "x"
            else:
                stored, secret = stored.removeprefix(PEPPERED), self._peppered(password)
        try:
            return self._hasher.verify(stored, secret) and encoded is not None
        except argon2.exceptions.VerificationError:
            return False
        except argon2.exceptions.InvalidHashError:
            return False

    def needs_rehash(self, encoded: str, password: str) -> bool:
        """True when `encoded`, which `password` just matched, should be replaced at this
        login: weaker than today's parameters, or made of the password as typed before
        passwords were normalised (each wrong guess at it costs a second hash until then), or
        made before the pepper."""
        if self._pepper is not None and not encoded.startswith(PEPPERED):
            return True
        if self._hasher.check_needs_rehash(encoded.removeprefix(PEPPERED)):
            return True
        normal = normalise(password)
        return normal != password and not self._matches(encoded, normal)
