from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from identity.errors import IdentityError, InvalidMobile
from identity.phone import normalise_mobile

E164_MOBILE = re.compile(r"\+923[0-4][0-9]{8}")


@pytest.mark.parametrize(
    "text",
    [
        "03001234567",
        "0300-1234567",
        "0300 1234567",
        "+923001234567",
        "+92 300 1234567",
        "+92-300-1234567",
        "923001234567",
        "0092 300 1234567",
        "00923001234567",
        " 03001234567\n",
    ],
)
def test_accepted_forms_normalise_to_e164(text: str) -> None:
    assert normalise_mobile(text) == "+923001234567"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0312-7654321", "+923127654321"),
        ("03219876543", "+923219876543"),
        ("+923331112223", "+923331112223"),
        ("0345 0000000", "+923450000000"),
        ("03499999999", "+923499999999"),
    ],
)
def test_every_operator_range_is_kept_digit_for_digit(text: str, expected: str) -> None:
    assert normalise_mobile(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "0300123456",  # one digit short
        "030012345678",  # one too many
        "03501234567",  # operator prefix 35x: not a mobile range
        "03551234567",
        "03901234567",
        "02001234567",  # not a 3 after the trunk 0
        "042-35761234",  # a Lahore landline
        "0423576123",
        "+92 0300 1234567",  # trunk 0 after the country code
        "+9203001234567",
        "++923001234567",
        "+91 300 1234567",  # India's country code
        "+1 300 123 4567",
        "3001234567",  # no prefix at all
        "0300--1234567",
        "0300  1234567",
        "0300.1234567",
        "0300/1234567",
        "(0300) 1234567",
        "0300 123 4567",
        "٠٣٠٠١٢٣٤٥٦٧",  # Arabic-Indic digits
        "\uff10\uff13\uff10\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17",  # full-width
        "0300123456\uff17",
        "0300-1234567 ext 2",
        "03001234567\x00",
        "0300-12345a7",
    ],
)
def test_everything_else_is_refused(text: str) -> None:
    with pytest.raises(InvalidMobile):
        normalise_mobile(text)


def test_non_text_is_refused() -> None:
    with pytest.raises(InvalidMobile):
        normalise_mobile(3001234567)  # type: ignore[arg-type]


def test_invalid_mobile_is_an_identity_error() -> None:
    assert issubclass(InvalidMobile, IdentityError)


@given(st.text(max_size=24))
def test_any_text_either_normalises_to_a_mobile_or_is_refused(text: str) -> None:
    try:
        number = normalise_mobile(text)
    except InvalidMobile:
        return
    assert E164_MOBILE.fullmatch(number)


@given(
    st.sampled_from("01234"),
    st.from_regex(r"[0-9]{8}", fullmatch=True),
    st.sampled_from(["0{op}{rest}", "0{op}-{rest}", "+92{op}{rest}", "92{op}{rest}",
                     "0092 {op} {rest}", "+92 {op} {rest}", "0{op} {rest}"]),
)  # fmt: skip
def test_every_written_form_of_a_mobile_gives_the_same_number(
    operator: str, digits: str, form: str
) -> None:
    op, rest = f"3{operator}{digits[0]}", digits[1:]
    assert normalise_mobile(form.format(op=op, rest=rest)) == f"+92{op}{rest}"


@given(st.from_regex(r"\+923[0-4][0-9]{8}", fullmatch=True))
def test_normalising_is_idempotent(number: str) -> None:
    assert normalise_mobile(number) == number
    assert normalise_mobile(normalise_mobile(number)) == number
