from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from identity.cnic import format_cnic, normalise_cnic, province_of
from identity.errors import InvalidCnic


@pytest.mark.parametrize(
    "text", ["35202-1234567-1", "3520212345671", " 35202-1234567-1 ", "35202-1234567-1\n"]
)
def test_accepted_forms_normalise_to_13_digits(text: str) -> None:
    assert normalise_cnic(text) == "3520212345671"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "3520-21234567-1",
        "35202 1234567 1",
        "35202-1234567-12",
        "352021234567",
        "35202123456712",
        "95202-1234567-1",
        "05202-1234567-1",
        "35202-0000000-1",
        "٣٥٢٠٢١٢٣٤٥٦٧١",  # Arabic-Indic digits: isdigit() is true, but NADRA's numbers are ASCII
        "35202-1234567-1; DROP TABLE",
        "3520212345671\x00",
        "35202—1234567—1",
    ],
)
def test_everything_else_is_refused(text: str) -> None:
    with pytest.raises(InvalidCnic):
        normalise_cnic(text)


def test_non_text_is_refused() -> None:
    with pytest.raises(InvalidCnic):
        normalise_cnic(3520212345671)  # type: ignore[arg-type]


@given(st.text(max_size=20))
def test_any_text_is_either_13_ascii_digits_or_refused(text: str) -> None:
    try:
        digits = normalise_cnic(text)
    except InvalidCnic:
        return
    assert len(digits) == 13
    assert digits.isascii()
    assert digits.isdigit()


def test_format_and_province() -> None:
    assert format_cnic("3520212345671") == "35202-1234567-1"
    assert province_of("3520212345671") == "Punjab"
    assert province_of("4210112345672") == "Sindh"
