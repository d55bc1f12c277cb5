"""Transfer orders: the fields, the QR's share of them, and the PDF as poppler reads it."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from signing.documents import DOCUMENT_TYPE, QR_BOX, TransferOrder, render
from signing.documents.transfer_order import (
    MAX_AUTHORITY,
    MAX_DEPARTMENT,
    MAX_NAME,
    MAX_POST,
    MAX_SCHOOL,
)
from signing.qr import QrPayload
from tests.unit.signing.test_qr_codec import TRANSFER_ORDER as QR_CODEC_ORDER

DEPARTMENT = "School Education Department"


def pseudonym(seed: bytes) -> str:
    return "p:" + base64.urlsafe_b64encode(hashlib.sha256(seed).digest()).rstrip(b"=").decode()


ORDER = TransferOrder(
    order_no="SED/TR/2026/004512",
    order_date=date(2026, 3, 14),
    teacher_name="Muhammad Imran Akhtar",
    teacher_pseudonym=pseudonym(b"test teacher"),
    from_school="Govt. High School No. 1, Model Town, Lahore",
    to_school="Govt. Boys Higher Secondary School, Shahdara, Lahore",
    post="SST (Science)",
    authority="CEO (DEA) Lahore",
)


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} must be installed (poppler-utils / zbar-tools): it is the judge here"
    return found


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "order.pdf"
    path.write_bytes(pdf)
    return subprocess.run(
        [tool("pdftotext"), "-layout", str(path), "-"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout


# Rendering.


def test_render_is_deterministic() -> None:
    first = render(ORDER, department=DEPARTMENT)
    again = render(replace(ORDER), department=DEPARTMENT)
    assert first == again
    assert first.startswith(b"%PDF-")


def test_render_depends_on_every_field() -> None:
    base = render(ORDER, department=DEPARTMENT)
    assert render(replace(ORDER, post="SST (Maths)"), department=DEPARTMENT) != base
    assert render(replace(ORDER, order_date=date(2026, 3, 15)), department=DEPARTMENT) != base
    assert render(ORDER, department="Literacy Department") != base


def test_poppler_reads_every_field_from_one_a4_page(tmp_path: Path) -> None:
    pdf = render(ORDER, department=DEPARTMENT)
    path = tmp_path / "order.pdf"
    path.write_bytes(pdf)
    info = subprocess.run(
        [tool("pdfinfo"), str(path)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert "Pages:           1" in info
    assert "595.28 x 841.89 pts (A4)" in info
    text = " ".join(pdf_text(pdf, tmp_path).split())
    for expected in (
        "GOVERNMENT OF THE PUNJAB",
        DEPARTMENT,
        "TRANSFER ORDER",
        "No. SED/TR/2026/004512",
        "Dated: 14 March 2026",
        ORDER.teacher_name,
        ORDER.teacher_pseudonym,
        ORDER.from_school,
        ORDER.to_school,
        ORDER.post,
        ORDER.authority,
        "is transferred from the present school",
        "Scan to verify",
    ):
        assert expected in text, expected


def test_the_qr_box_is_left_empty(tmp_path: Path) -> None:
    """Inside its faint frame, the square the QR stamp will fill is white on the rendered page."""
    path = tmp_path / "order.pdf"
    path.write_bytes(render(ORDER, department=DEPARTMENT))
    dpi = 100
    subprocess.run(
        [tool("pdftoppm"), "-r", str(dpi), "-gray", "-png", "-singlefile", str(path), "page"],
        cwd=tmp_path,
        check=True,
        timeout=60,
    )
    page = Image.open(tmp_path / "page.png").convert("L")
    x1, y1, x2, y2 = QR_BOX
    scale = dpi / 72
    height = page.height
    inset = 3  # pixels clear of the frame's anti-aliased line
    inside = page.crop(
        (
            round(x1 * scale) + inset,
            height - round(y2 * scale) + inset,
            round(x2 * scale) - inset,
            height - round(y1 * scale) - inset,
        )
    )
    assert inside.getextrema() == (255, 255)
    # And the frame itself is drawn where QR_BOX says (a grey line on its left edge).
    frame = page.crop(
        (
            round(x1 * scale) - 1,
            height - round(y2 * scale) + 20,
            round(x1 * scale) + 2,
            height - round(y1 * scale) - 20,
        )
    )
    darkest = frame.getextrema()[0]
    assert isinstance(darkest, int)
    assert darkest < 250


def test_qr_box_is_a_45_mm_square_on_the_page() -> None:
    x1, y1, x2, y2 = QR_BOX
    assert x2 - x1 == y2 - y1
    assert 44 <= (x2 - x1) * 25.4 / 72 <= 46
    assert 0 < x1 < x2 <= 595
    assert 0 < y1 < y2 <= 842


def test_the_date_is_spelled_in_english_whatever_the_locale(tmp_path: Path) -> None:
    for month, name in ((1, "January"), (12, "December")):
        order = replace(ORDER, order_date=date(2025, month, 1))
        assert f"Dated: 1 {name} 2025" in pdf_text(render(order, department=DEPARTMENT), tmp_path)


def test_latin_1_accents_are_printed(tmp_path: Path) -> None:
    order = replace(ORDER, teacher_name="Zoë Müller-Ñúñez")
    assert "Zoë Müller-Ñúñez" in pdf_text(render(order, department=DEPARTMENT), tmp_path)


def test_an_order_too_long_for_the_page_is_refused() -> None:
    """Each field within its limit, but all of them at once in the widest letter there is."""
    long = replace(
        ORDER,
        teacher_name="W" * MAX_NAME,
        from_school="W" * MAX_SCHOOL,
        to_school="M" * MAX_SCHOOL,
        post="W" * MAX_POST,
        authority="W" * MAX_AUTHORITY,
    )
    with pytest.raises(ValueError, match="does not fit"):
        render(long, department="W" * MAX_DEPARTMENT)


def test_the_longest_realistic_order_fits() -> None:
    order = replace(
        ORDER,
        teacher_name="Syeda Ummul Baneen Fatima Zahra Kazmi",
        from_school="Government Girls Higher Secondary School No. 2, Chak No. 105/GB, "
        "Tehsil Jaranwala, District Faisalabad",
        to_school="Government Comprehensive Girls Higher Secondary School, Wahdat Colony, "
        "Tehsil City, District Lahore",
        post="Senior Subject Specialist (Computer Science) BS-17",
        authority="Chief Executive Officer (District Education Authority) Faisalabad",
    )
    render(order, department="School Education Department, Government of the Punjab, Lahore")


def test_render_takes_an_order() -> None:
    with pytest.raises(TypeError):
        render(ORDER.qr_fields(), department=DEPARTMENT)  # type: ignore[arg-type]


# The QR's fields.


def test_qr_fields_use_the_codec_tests_keys_without_the_pseudonym() -> None:
    fields = ORDER.qr_fields()
    assert set(fields) == set(QR_CODEC_ORDER.fields) - {"id"}
    assert fields == {
        "no": "SED/TR/2026/004512",
        "dt": "2026-03-14",
        "nm": "Muhammad Imran Akhtar",
        "fr": "Govt. High School No. 1, Model Town, Lahore",
        "to": "Govt. Boys Higher Secondary School, Shahdara, Lahore",
        "post": "SST (Science)",
        "auth": "CEO (DEA) Lahore",
    }
    assert all(ORDER.teacher_pseudonym not in value for value in fields.values())


def test_qr_fields_and_document_type_make_a_valid_payload() -> None:
    payload = QrPayload(
        document_type=DOCUMENT_TYPE,
        document_hash=hashlib.sha256(render(ORDER, department=DEPARTMENT)).digest(),
        issued_at=datetime(2026, 3, 14, 10, 30, tzinfo=UTC),
        expires_at=None,
        fields=dict(ORDER.qr_fields()),
        issuer="PK-PB",
    )
    assert QrPayload.from_cbor(payload.to_cbor()) == payload


# Validation.


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"order_no": ""}, "order_no must not be empty"),
        ({"order_no": "SED/TR/2026/%%EOF"}, "order_no is letters and digits"),
        ({"order_no": "X" * 41}, "at most 40"),
        ({"order_no": "SED/3520212345671"}, "shape of a CNIC"),
        ({"teacher_name": "   "}, "teacher_name must not be empty"),
        ({"teacher_name": " Imran"}, "spaces"),
        ({"teacher_name": "محمد عمران"}, "Latin-1"),
        ({"teacher_name": "Imran\nAkhtar"}, "control character"),
        ({"teacher_name": "Imran\x85Akhtar"}, "control character"),
        ({"teacher_name": "N" * 101}, "at most 100"),
        ({"teacher_pseudonym": "35202-1234567-1"}, "never the CNIC"),
        ({"teacher_pseudonym": "p:" + "A" * 42}, "43 base64url"),
        ({"from_school": ""}, "from_school must not be empty"),
        ({"to_school": "S" * 151}, "at most 150"),
        ({"to_school": ORDER.from_school.upper()}, "the same school"),
        ({"post": ""}, "post must not be empty"),
        ({"authority": "A" * 101}, "at most 100"),
        ({"authority": "سی ای او"}, "Latin-1"),
        ({"order_date": datetime(2026, 3, 14, tzinfo=UTC)}, "datetime.date"),
        ({"order_date": "2026-03-14"}, "datetime.date"),
        ({"teacher_name": 42}, "must be text"),
    ],
)
def test_bad_fields_are_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(ORDER, **change)  # type: ignore[arg-type]


@pytest.mark.parametrize("department", ["", "  ", "محکمہ تعلیم", "D" * 121])
def test_bad_department_is_refused(department: str) -> None:
    with pytest.raises(ValueError, match="department"):
        render(ORDER, department=department)


@settings(max_examples=40, deadline=None)
@given(name=st.text(max_size=120))
def test_any_name_either_renders_or_is_refused_with_value_error(name: str) -> None:
    try:
        order = replace(ORDER, teacher_name=name)
    except ValueError:
        return
    assert render(order, department=DEPARTMENT) == render(order, department=DEPARTMENT)
