"""Fuzzing what people type and upload: CNIC numbers and locker files.

Each property either refuses with the parser's documented error or accepts something that
satisfies the parser's documented rules; nothing else may come out.
"""

from __future__ import annotations

import re
import string
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.runtime import Runtime
from identity.cnic import PROVINCES, format_cnic, normalise_cnic, province_of
from identity.errors import InvalidCnic
from locker.access import Accessor
from locker.documents import CONTENT_TYPES, DocumentRefused, DocumentTooLarge, _checked
from tests.fuzz.parser_kit import ANY_TEXT, budget, fuzz_runtime

__all__ = ["fuzz_runtime"]

# -- CNIC ------------------------------------------------------------------------------------

_SHAPE = re.compile(r"[0-9]{5}-[0-9]{7}-[0-9]|[0-9]{13}")
PROVINCE_DIGITS = "".join(sorted(PROVINCES))


def _expected(text: str) -> str | None:
    """The module docstring's rule, restated: what `normalise_cnic` must answer, or None."""
    candidate = text.strip()
    if not _SHAPE.fullmatch(candidate):
        return None
    digits = candidate.replace("-", "")
    if digits[0] not in PROVINCE_DIGITS or digits[5:12] == "0000000":
        return None
    return digits


valid_digits: st.SearchStrategy[str] = st.builds(
    lambda p, rest, g: p + rest + g,
    st.sampled_from(PROVINCE_DIGITS),
    st.text("0123456789", min_size=11, max_size=11).filter(lambda r: r[4:11] != "0000000"),
    st.sampled_from(string.digits),
)
# Near misses: a valid number in either form with one character changed, added or removed,
# from digits, separators, spaces, and digits of other scripts (Arabic-Indic, fullwidth).
_NEAR = string.digits + "-\u2013 _/.\u0660\u0661\u06f5\uff11\n\t\u00a0"  # \u2013: en dash


@st.composite
def near_miss(draw: st.DrawFn) -> str:
    digits: str = draw(valid_digits)
    text: str = draw(st.sampled_from([digits, format_cnic(digits)]))
    at = draw(st.integers(0, len(text)))
    kind = draw(st.sampled_from(["replace", "insert", "delete"]))
    if kind == "insert" or at == len(text):
        return text[:at] + draw(st.sampled_from(_NEAR)) + text[at:]
    if kind == "delete":
        return text[:at] + text[at + 1 :]
    return text[:at] + draw(st.sampled_from(_NEAR)) + text[at + 1 :]


@budget("cnic")
@given(st.one_of(ANY_TEXT, near_miss(), valid_digits))
def test_cnic_any_text_is_refused_or_canonical(text: str) -> None:
    """For any text: InvalidCnic, or 13 ASCII digits that re-parse to themselves in both forms;
    and exactly the documented forms are accepted."""
    try:
        digits = normalise_cnic(text)
    except InvalidCnic:
        assert _expected(text) is None, f"{text!r} is a valid CNIC but was refused"
        return
    assert digits == _expected(text)
    assert re.fullmatch(r"[0-9]{13}", digits, re.ASCII)
    assert normalise_cnic(digits) == digits
    assert normalise_cnic(format_cnic(digits)) == digits
    assert province_of(digits) == PROVINCES[digits[0]]


@budget("cnic")
@given(valid_digits, st.sampled_from(["", " ", "\t", "\n", " \u3000"]))
def test_cnic_dashed_and_plain_forms_are_both_accepted(digits: str, space: str) -> None:
    dashed = format_cnic(digits)
    assert re.fullmatch(r"[0-9]{5}-[0-9]{7}-[0-9]", dashed)
    assert normalise_cnic(digits) == normalise_cnic(dashed) == digits
    assert normalise_cnic(space + dashed + space) == digits


@budget("cnic")
@given(st.sampled_from("0123456789"), valid_digits)
def test_cnic_province_digit_rule(first: str, valid: str) -> None:
    """The first digit names a province, 1 to 8: every other digit is refused in both forms."""
    digits = first + valid[1:]
    for form in (digits, format_cnic(digits)):
        if first in PROVINCES:
            assert normalise_cnic(form) == digits
        else:
            with pytest.raises(InvalidCnic):
                normalise_cnic(form)


@budget("cnic")
@given(st.one_of(st.binary(), st.integers(), st.none(), st.lists(st.integers()), st.floats()))
def test_cnic_not_text_is_refused(value: object) -> None:
    with pytest.raises(InvalidCnic):
        normalise_cnic(value)  # type: ignore[arg-type]  # what a careless caller may pass


# -- uploads ---------------------------------------------------------------------------------

MAGIC = {
    "application/pdf": b"%PDF-",
    "image/png": b"\x89PNG\r\n\x1a\n",
    "image/jpeg": b"\xff\xd8\xff",
    "application/json": b"{",
    "application/xml": b"<",
}
LIMIT = 4096


@st.composite
def upload_bytes(draw: st.DrawFn) -> bytes:
    """Arbitrary bytes, often starting like one of the accepted types (after whitespace/BOM)."""
    head = draw(
        st.sampled_from([b"", b"[", b" \r\n", b"\xef\xbb\xbf", b"\xef\xbb", *MAGIC.values()])
    )
    return head + draw(st.binary(max_size=LIMIT + 64))


def _starts_right(content: bytes, content_type: str) -> bool:
    """Whether `content` begins as its declared type does: the module's rule, restated."""
    if content_type in ("application/json", "application/xml"):
        content = content.lstrip(b" \t\r\n").removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
        starts = (b"{", b"[") if content_type == "application/json" else (b"<",)
        return content.startswith(starts)
    return content.startswith(MAGIC[content_type])


@budget("upload")
@given(upload_bytes(), st.sampled_from(sorted(CONTENT_TYPES)))
def test_upload_sniffing_refuses_or_passes_through(content: bytes, content_type: str) -> None:
    """Any bytes under any accepted type: DocumentRefused (the documented refusal), or the very
    same bytes, and accepted exactly when non-empty, within the limit and rightly typed."""
    try:
        passed = b"".join(_checked([content], content_type, LIMIT))
    except DocumentTooLarge:
        assert len(content) > LIMIT
        return
    except DocumentRefused:
        assert not content or not _starts_right(content, content_type)
        return
    assert passed == content
    assert 0 < len(content) <= LIMIT
    assert _starts_right(content, content_type)


@budget("upload")
@given(st.lists(st.binary(max_size=64), max_size=12), st.sampled_from(sorted(CONTENT_TYPES)))
def test_upload_sniffing_any_chunking(chunks: list[bytes], content_type: str) -> None:
    """However a body arrives in chunks (a PDF's first byte alone, say), the verdict is the
    whole body's: refused exactly when it is empty, too large or starts wrong."""
    content = b"".join(chunks)
    try:
        passed = b"".join(_checked(iter(chunks), content_type, 256))
    except DocumentTooLarge:
        assert len(content) > 256
        return
    except DocumentRefused:
        assert not content or not _starts_right(content, content_type)
        return
    assert passed == content
    assert _starts_right(content, content_type)


def test_a_signature_split_across_chunks_is_still_read() -> None:
    pdf = [b"%", b"PD", b"F-1.7\n", b"rest"]
    assert b"".join(_checked(iter(pdf), "application/pdf", 256)) == b"".join(pdf)
    with pytest.raises(DocumentRefused):
        list(_checked(iter([b"%", b"PDX-1.7"]), "application/pdf", 256))


# Billion laughs: ten levels of ten references, a billion "lol"s (3 GB) if expanded.
BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol "lol">\n'
    + b"".join(
        b'<!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]>\n<lolz>&lol9;</lolz>\n"
)
XXE = b'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<r>&x;</r>\n'
XXE_PARAMETER = (
    b'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]>'
    b"\n<r/>\n"
)
OWNER = "p:" + "F" * 43
CITIZEN = Accessor(OWNER, "citizen", "owner")


def _upload_and_read(runtime: Runtime, content: bytes, content_type: str) -> bytes:
    with runtime.transaction() as session:
        locker = runtime.locker(session)
        document = locker.upload(
            owner=OWNER,
            doctype="other",
            title="fuzz",
            content=[content],
            content_type=content_type,
            who=CITIZEN,
        )
        return b"".join(locker.content(document, who=CITIZEN))


@pytest.mark.parametrize(
    "document", [BILLION_LAUGHS, XXE, XXE_PARAMETER], ids=["laughs", "xxe", "xxe-param"]
)
def test_xml_entities_are_never_expanded_or_fetched(fuzz_runtime: Runtime, document: bytes) -> None:
    """The locker keeps an XML document as the bytes it was given: no entity is expanded (the
    billion laughs would be 3 GB) and no external entity is read (no /etc/passwd inside)."""
    started = time.monotonic()
    stored = _upload_and_read(fuzz_runtime, document, "application/xml")
    assert stored == document
    assert b"root:" not in stored
    assert time.monotonic() - started < 5


@budget("upload_locker")
@given(upload_bytes(), st.one_of(st.sampled_from(sorted(CONTENT_TYPES)), ANY_TEXT))
def test_locker_upload_refuses_or_keeps_the_bytes(
    fuzz_runtime: Runtime, content: bytes, content_type: str
) -> None:
    """Through the locker itself, under any declared type at all: DocumentRefused, or stored
    and read back byte for byte."""
    try:
        stored = _upload_and_read(fuzz_runtime, content[:LIMIT], content_type)
    except DocumentRefused:
        assert content_type not in CONTENT_TYPES or not _starts_right(content, content_type)
        return
    assert stored == content[:LIMIT]
    assert content_type in CONTENT_TYPES
