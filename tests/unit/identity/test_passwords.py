"""The password policy's limits and its Unicode: ASVS 4.0.3 2.1.2 (at least 64 characters
allowed, more than 128 refused), 2.1.3 (no truncation), 2.1.4 (any printable Unicode, spaces
and emoji included), and NIST SP 800-63B 5.1.1.2 (normalise Unicode, NFKC or NFKD), so the
same password typed on another keyboard or system is the same password."""

from __future__ import annotations

import time
import unicodedata
from typing import Any

import pytest

from identity import passwords
from identity.errors import WeakPassword
from identity.passwords import MAX_LENGTH, PasswordHasher, check_password, policy_failures
from tests.unit.identity.conftest import FAST_HASH

# Ten words of Urdu, Punjabi and English with a digit and a sign: 64 characters and more.
PASSPHRASE = "Chanab ke kinare 7 kikar ke darakht, aur sham ki thandi hawa hai!"

# Letters and digits as an East Asian input method types them: U+FF01 on, 0xFEE0 past ASCII.
FULL_WIDTH = {c: c + 0xFEE0 for c in range(0x21, 0x7F) if chr(c).isalnum()}


class SpyArgon2:
    """argon2-cffi's hasher, noting the length of every password it is given."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.lengths: list[int] = []

    def hash(self, password: str) -> str:
        self.lengths.append(len(password))
        return str(self.inner.hash(password))

    def verify(self, encoded: str, password: str) -> bool:
        self.lengths.append(len(password))
        return bool(self.inner.verify(encoded, password))


@pytest.fixture
def hasher() -> PasswordHasher:
    return PasswordHasher(FAST_HASH)


def test_a_long_passphrase_is_allowed_up_to_128_characters_and_refused_past_them() -> None:
    assert len(PASSPHRASE) >= 64
    assert policy_failures(PASSPHRASE) == []
    longest = (PASSPHRASE + " " + PASSPHRASE)[:MAX_LENGTH]
    assert len(longest) == MAX_LENGTH == 128
    assert policy_failures(longest) == []
    with pytest.raises(WeakPassword) as refused:
        check_password(longest + "x")
    assert refused.value.failures == ["use at most 128 characters"]


def test_any_printable_unicode_is_allowed_spaces_emoji_and_urdu_too() -> None:
    for password in ("Barish 🌧 mein Chai ☕ 2027!", "Lahore ka Qila ۲۰۲۷ سرخ Darwaza #9"):
        assert policy_failures(password) == [], password


def test_a_megabyte_password_is_refused_before_any_costly_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The length is the first rule: zxcvbn (slow on long input) never sees such a password."""

    def no_zxcvbn(*_args: object, **_kwargs: object) -> dict[str, int]:
        raise AssertionError("zxcvbn was given an overlong password")

    monkeypatch.setattr(passwords, "zxcvbn", no_zxcvbn)
    started = time.perf_counter()
    with pytest.raises(WeakPassword) as refused:
        check_password("Aa1#" * 250_000)
    assert time.perf_counter() - started < 1.0
    assert refused.value.failures == ["use at most 128 characters"]


def test_an_overlong_password_is_never_hashed(hasher: PasswordHasher) -> None:
    """No account has a password past the limit, so a login with one is refused without
    argon2: a megabyte posted to /login costs no hashing at all."""
    encoded = hasher.hash(PASSPHRASE)
    spy = SpyArgon2(hasher._hasher)
    hasher._hasher = spy  # type: ignore[assignment]
    assert not hasher.verify(encoded, PASSPHRASE + "x" * 1_000_000)
    assert not hasher.verify(None, "x" * 1_000_000)
    assert spy.lengths == []
    assert hasher.verify(encoded, PASSPHRASE), "and the limit does not truncate"
    assert not hasher.verify(encoded, PASSPHRASE[:-1])


@pytest.mark.parametrize(
    ("typed_here", "typed_there"),
    [
        # é as one code point (Windows, most phones) and as e + combining acute (macOS).
        ("Caf\u00e9#Lahore2027", "Cafe\u0301#Lahore2027"),
        # Urdu heh with hamza: one code point on one keyboard, heh + hamza above on another.
        ("Kinnow#\u06c2\u06cc2027a", "Kinnow#\u06c1\u0654\u06cc2027a"),
        # Full-width Latin letters and digits.
        ("Mango#Season2027", "Mango#Season2027".translate(FULL_WIDTH)),
    ],
)
def test_a_password_typed_on_another_keyboard_is_the_same_password(
    hasher: PasswordHasher, typed_here: str, typed_there: str
) -> None:
    assert typed_here != typed_there
    encoded = hasher.hash(typed_here)
    assert hasher.verify(encoded, typed_there)
    assert hasher.verify(hasher.hash(typed_there), typed_here)


def test_the_length_limit_counts_the_normalised_password() -> None:
    """130 characters typed with e + combining acute are 116 once composed: allowed."""
    typed = ("Cafe\u0301#2027" * 16)[:128] + "e\u0301"
    assert len(typed) > MAX_LENGTH > len(unicodedata.normalize("NFKC", typed))
    assert "use at most 128 characters" not in policy_failures(typed)


def test_a_hash_made_before_normalisation_still_verifies(hasher: PasswordHasher) -> None:
    """Passwords set before normalising were hashed as typed: the citizen who typed the
    decomposed form then, and types it again now, still gets in."""
    typed = "Cafe\u0301#Lahore2027"
    legacy = hasher._hasher.hash(typed)
    assert hasher.verify(legacy, typed)
    assert not hasher.verify(legacy, "Cafe\u0301#Lahore2028")


def test_a_hash_made_of_the_password_as_typed_is_replaced_at_the_next_login(
    hasher: PasswordHasher,
) -> None:
    """Until it is, every wrong guess at that account costs two hashes: the login that matches
    the typed form asks for a rehash, and the new hash is of the normalised password."""
    typed = "Cafe\u0301#Lahore2027"
    legacy = hasher._hasher.hash(typed)
    assert hasher.needs_rehash(legacy, typed)
    renewed = hasher.hash(typed)
    assert not hasher.needs_rehash(renewed, typed)
    assert hasher.verify(renewed, typed)
    assert hasher._hasher.verify(renewed, "Caf\u00e9#Lahore2027")
    assert not hasher.needs_rehash(hasher.hash("Plain#Lahore2027"), "Plain#Lahore2027")
