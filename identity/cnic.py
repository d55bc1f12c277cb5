"""CNIC numbers: normalised and validated before anything else sees them.

A CNIC is 13 digits, written `PDDTU-FFFFFFF-G`: the first digit is the province of domicile,
the next four its division, district, tehsil and union council, seven a family number, and the
last the holder's gender (odd for men, even for women). Only its shape is checked here; whether
it exists is NADRA's to say.
"""

from __future__ import annotations

import re

from identity.errors import InvalidCnic

# 1 Khyber Pakhtunkhwa, 2 former FATA, 3 Punjab, 4 Sindh, 5 Balochistan, 6 Islamabad,
# 7 Gilgit-Baltistan, 8 Azad Jammu and Kashmir.
PROVINCES = {
    "1": "Khyber Pakhtunkhwa",
    "2": "Former FATA",
    "3": "Punjab",
    "4": "Sindh",
    "5": "Balochistan",
    "6": "Islamabad Capital Territory",
    "7": "Gilgit-Baltistan",
    "8": "Azad Jammu and Kashmir",
}

_DASHED = re.compile(r"^[0-9]{5}-[0-9]{7}-[0-9]$")
_PLAIN = re.compile(r"^[0-9]{13}$")


def normalise_cnic(text: str) -> str:
    """The 13 digits of a CNIC given as `12345-1234567-1` or `1234512345671`.

    Anything else is refused: other separators, spaces inside, non-ASCII digits, a province
    digit no province has, or an all-zero family number.
    """
    if not isinstance(text, str):
        raise InvalidCnic("a CNIC is text")
    candidate = text.strip()
    if _DASHED.match(candidate):
        digits = candidate.replace("-", "")
    elif _PLAIN.match(candidate):
        digits = candidate
    else:
        raise InvalidCnic("a CNIC is 13 digits, as 12345-1234567-1 or 1234512345671")
    if digits[0] not in PROVINCES:
        raise InvalidCnic("a CNIC's first digit names a province, 1 to 8")
    if digits[5:12] == "0000000":
        raise InvalidCnic("a CNIC's family number is never all zeros")
    return digits


def format_cnic(digits: str) -> str:
    """`12345-1234567-1`, the way the card prints it."""
    return f"{digits[:5]}-{digits[5:12]}-{digits[12]}"


def province_of(digits: str) -> str:
    return PROVINCES[digits[0]]
