"""ASVS 4.0.3 2.1.7: the most used passwords are refused even when dressed to pass the
province's composition rules (an upper-case letter, a digit and a special character added
to "password" give "Password1!", which meets every rule and is among the first guesses of
any attacker)."""

from __future__ import annotations

import pytest
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from identity.passwords import COMMON_COUNT, policy_failures

COMMON = "this is one of the most common passwords; choose another"
# How citizens meet "upper, lower, digit and special": a capital, then digits and signs
# before, after or both (the forms breached lists are full of).
DRESSINGS = (
    "{}1!", "{}123!", "{}@123", "{}@1234", "{}#1", "!{}1", "1{}!", "{}!1", "{}2024!",
    "{}_1", "{}1234!", "{}.1", "{}@12345", "{}$1", "{}!@#1", "{}1!!", "{}@2023", "@{}1",
    "{}*1", "{}1@", "{}12!", "{}007!", "{}1#",
)  # fmt: skip
TOP = 1_000


def dressed(word: str) -> list[str]:
    """`word` as a citizen might type it to satisfy the composition rules."""
    capital = word[:1].upper() + word[1:]
    return [dressing.format(capital) for dressing in DRESSINGS]


@pytest.mark.parametrize(
    "password",
    [
        "Password1!", "Password123!", "P@ssw0rd", "P@ssw0rd1", "Pa$$w0rd", "!Password1",
        "1Password!", "Password#2023", "pASSWORD1!", "Qwerty@12345", "Welcome1!", "Pakistan@123",
        # Common passwords with digits of their own: cutting the whole run of trailing digits
        # and signs left "qwer", "abcd", "q1w2e" and "abc", none of them common.
        "Qwer1234@123", "Abcd1234!", "Abcd@1234", "Q1w2e3r4t5@123", "Abc123@123", "1Abc123!",
        "Zxc123123!", "Michael1@2023", "Blink182!@#1",
    ],
)  # fmt: skip
def test_a_common_password_meeting_the_composition_rules_is_refused(password: str) -> None:
    assert policy_failures(password) == [COMMON], password


def test_the_top_thousand_passwords_dressed_in_case_digits_and_signs_are_all_refused() -> None:
    """Every one of the thousand most used passwords that has letters, in each of the usual
    dressings: none gets through (the composition rules alone would let most of them)."""
    top = [w for w in FREQUENCY_LISTS["passwords"][:TOP] if any(c.isalpha() for c in w)]
    assert TOP <= COMMON_COUNT
    assert len(top) > 900
    allowed = [p for word in top for p in dressed(word) if policy_failures(p) == []]
    assert allowed == []


@pytest.mark.parametrize(
    "password",
    [
        "Kx9#mQ2!vT", "Chanab ke kinare 7 kikar!", "2027#Kinnow-Sargodha",
        "Barish 🌧 mein Chai ☕ 2027!", "9 Mango trees, 3 Kikar!",
    ],
)  # fmt: skip
def test_an_uncommon_password_with_digits_and_signs_around_it_is_still_allowed(
    password: str,
) -> None:
    """The cuts through leading and trailing digits and signs keep every letter of the
    password, so a password whose words are not common passes as before."""
    assert policy_failures(password) == [], password
