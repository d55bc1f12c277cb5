"""Our base45 against RFC 9285's examples and the PyPI `base45` package, an independent
implementation of the same RFC."""

from __future__ import annotations

import base45 as oracle
import pytest
from hypothesis import given
from hypothesis import strategies as st

from signing.qr import base45

RFC_9285 = [(b"AB", "BB8"), (b"Hello!!", "%69 VD92EX0"), (b"base-45", "UJCLQE7W581"),
            (b"ietf!", "QED8WEX0"), (b"", "")]  # fmt: skip


@pytest.mark.parametrize(("data", "text"), RFC_9285)
def test_the_rfcs_examples(data: bytes, text: str) -> None:
    assert base45.encode(data) == text
    assert base45.decode(text) == data


@given(st.binary(max_size=600))
def test_agrees_with_the_base45_package(data: bytes) -> None:
    text = base45.encode(data)
    assert text == oracle.b45encode(data).decode()
    assert base45.decode(text) == data


@given(st.text(alphabet=base45.ALPHABET.decode(), max_size=60))
def test_decodes_what_the_package_decodes_and_refuses_what_it_refuses(text: str) -> None:
    try:
        expected = oracle.b45decode(text)
    except ValueError:
        with pytest.raises(ValueError, match="base45"):
            base45.decode(text)
    else:
        assert base45.decode(text) == expected


@pytest.mark.parametrize(
    "text", ["GGW", "A", "ABCD", "ab", "QED8WEX0\n", "QED8 WEX0é", ":::", "Z:"]
)
def test_refuses_what_rfc_9285_does_not_allow(text: str) -> None:
    with pytest.raises(ValueError, match="base45"):
        base45.decode(text)
