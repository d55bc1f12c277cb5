"""A teacher's transfer order: its fields, the QR's share of them, and its PDF.

The PDF is rendered deterministically (the same order gives the same bytes) because its SHA-256
goes into the QR code before it is signed: the department, an auditor, or a test must be able
to render an order again and get the hash that was signed.

Text is set in Helvetica, one of the PDF core fonts, which every reader has and nothing embeds.
Core fonts cover Latin-1 only, so a name in Urdu script is refused up front with a ValueError
that says so, rather than failing inside fpdf2. Embedding a font was considered and left out:
no Nastaliq font is installed here (Debian ships one in fonts-noto-extra), DejaVu's Arabic
glyphs come out unshaped (isolated letters, left to right) since fpdf2 shapes text only with
uharfbuzz, which is not installed, and an embedded font file would make the bytes, and so the
signed hash, depend on which version of the font the rendering machine happens to have.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from audit.entry import holds_cnic
from audit.pseudonym import PSEUDONYM_PREFIX
from signing.errors import OrderInvalid

DOCUMENT_TYPE = "tto"  # a DigiLocker-style doctype code: the QR pays for every byte

PKT = timezone(timedelta(hours=5), "PKT")
MM = 72 / 25.4  # PDF points per millimetre
PAGE_WIDTH_MM, PAGE_HEIGHT_MM = 210.0, 297.0
MARGIN_MM = 20.0

# The square left empty for the signature's QR stamp, in PDF points with the origin at the
# bottom left of the page (pyHanko's convention): 128 pt is 45.2 mm, at the bottom right.
QR_SIZE_PT = 128
QR_BOX = (411, 85, 411 + QR_SIZE_PT, 85 + QR_SIZE_PT)
QR_GAP_MM = 4.0  # the least white space between the text and the QR square

MAX_ORDER_NO = 40
MAX_NAME = 100
MAX_SCHOOL = 150
MAX_POST = 80
MAX_AUTHORITY = 100
MAX_DEPARTMENT = 120
ORDER_NO = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9 ./()-]*[A-Za-z0-9)])?")
PSEUDONYM = re.compile(re.escape(PSEUDONYM_PREFIX) + r"[A-Za-z0-9_-]{43}")
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def _check_text(label: str, value: object, max_chars: int) -> str:
    """Printable Latin-1 text, trimmed by the caller: what Helvetica can set and a QR can carry.

    Surrounding spaces are refused rather than stripped, so that the order that is rendered, and
    hashed, is exactly the order that was built.
    """
    if not isinstance(value, str):
        raise OrderInvalid(f"{label} must be text, not {type(value).__name__}", field=label)
    if not value.strip():
        raise OrderInvalid(f"{label} must not be empty", code="order.empty", field=label)
    if value != value.strip():
        raise OrderInvalid(
            f"{label} must not start or end with spaces", code="order.spaces", field=label
        )
    if len(value) > max_chars:
        raise OrderInvalid(
            f"{label} must be at most {max_chars} characters (got {len(value)})",
            code="order.too_long", field=label, most=max_chars,
        )  # fmt: skip
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp"):
            raise OrderInvalid(
                f"{label} holds a control character (U+{ord(char):04X})",
                code="order.control", field=label,
            )  # fmt: skip
        if ord(char) > 0xFF:
            raise OrderInvalid(
                f"{label} holds {char!r} (U+{ord(char):04X}): orders are printed in Helvetica, "
                "which has Latin-1 characters only; write the name in Latin letters",
                code="order.latin", field=label, char=char,
            )  # fmt: skip
    return value


@dataclass(frozen=True, slots=True)
class TransferOrder:
    """One teacher's transfer from one school to another, as the authority ordered it."""

    order_no: str
    order_date: date
    teacher_name: str
    teacher_pseudonym: str
    from_school: str
    to_school: str
    post: str
    authority: str

    def __post_init__(self) -> None:
        _check_text("order_no", self.order_no, MAX_ORDER_NO)
        if not ORDER_NO.fullmatch(self.order_no):
            raise OrderInvalid(
                "order_no is letters and digits, joined by spaces or . / ( ) -, "
                f"got {self.order_no!r}",
                code="order.number", field="order_no",
            )  # fmt: skip
        if holds_cnic(self.order_no):  # it is recorded in the audit log, which refuses CNICs
            raise OrderInvalid(
                "order_no must not hold a run of 13 digits, the shape of a CNIC",
                code="text.cnic", field="order_no",
            )  # fmt: skip
        # A datetime is a date to isinstance, but an order is dated, not timed.
        if not isinstance(self.order_date, date) or isinstance(self.order_date, datetime):
            raise OrderInvalid("order_date must be a datetime.date", field="order_date")
        _check_text("teacher_name", self.teacher_name, MAX_NAME)
        if not isinstance(self.teacher_pseudonym, str) or not PSEUDONYM.fullmatch(
            self.teacher_pseudonym
        ):
            raise OrderInvalid(
                f"teacher_pseudonym must be {PSEUDONYM_PREFIX!r} and 43 base64url characters "
                "(audit.pseudonym), never the CNIC itself"
            )
        _check_text("from_school", self.from_school, MAX_SCHOOL)
        _check_text("to_school", self.to_school, MAX_SCHOOL)
        if self.from_school.casefold() == self.to_school.casefold():
            raise OrderInvalid(
                "from_school and to_school are the same school",
                code="order.same_school", field="to_school",
            )  # fmt: skip
        _check_text("post", self.post, MAX_POST)
        _check_text("authority", self.authority, MAX_AUTHORITY)

    def qr_fields(self) -> dict[str, str]:
        """The fields a scanner shows, under the QR payload's short keys.

        The pseudonym is left out on purpose: it is the same on every order a teacher ever gets,
        so printing it in a code anyone can scan would let them link those orders. The PDF
        carries it, and the QR's document hash binds the PDF.
        """
        return {
            "no": self.order_no,
            "dt": self.order_date.isoformat(),
            "nm": self.teacher_name,
            "fr": self.from_school,
            "to": self.to_school,
            "post": self.post,
            "auth": self.authority,
        }


def _long_date(day: date) -> str:
    """ "14 March 2026": spelled out by hand, since strftime's %B follows the process locale."""
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def qr_box_mm() -> tuple[float, float, float]:
    """QR_BOX as fpdf2 places things: (left, top, size) in millimetres from the top left."""
    x1, _, _, y2 = QR_BOX
    return x1 / MM, PAGE_HEIGHT_MM - y2 / MM, QR_SIZE_PT / MM


def _new_document(order: TransferOrder) -> FPDF:
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_margins(MARGIN_MM, MARGIN_MM, MARGIN_MM)
    pdf.set_auto_page_break(auto=False)
    # The only clock fpdf2 reads; the file /ID is an MD5 of the content and this date.
    pdf.set_creation_date(datetime.combine(order.order_date, time(), tzinfo=PKT))
    pdf.set_title(f"Transfer Order {order.order_no}")
    pdf.set_author(order.authority)
    pdf.set_creator("Shanakht")
    pdf.add_page()
    return pdf


def _heading(pdf: FPDF, department: str) -> None:
    pdf.set_font("Helvetica", "B", 15)
    pdf.cell(0, 8, "GOVERNMENT OF THE PUNJAB", align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 12)
    pdf.multi_cell(0, 6, department, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 17)
    pdf.cell(0, 9, "TRANSFER ORDER", align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    y = pdf.get_y() + 2
    pdf.set_line_width(0.4)
    pdf.line(MARGIN_MM, y, PAGE_WIDTH_MM - MARGIN_MM, y)
    pdf.set_y(y + 5)


def _number_and_date(pdf: FPDF, order: TransferOrder) -> None:
    pdf.set_font("Helvetica", "B", 11)
    half = (PAGE_WIDTH_MM - 2 * MARGIN_MM) / 2
    pdf.cell(half, 7, f"No. {order.order_no}", align="L")
    pdf.cell(
        half,
        7,
        f"Dated: {_long_date(order.order_date)}",
        align="R",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.ln(5)


def _order_paragraph(pdf: FPDF) -> None:
    """The operative words, without the fields: the table below says who, from where, to where."""
    pdf.set_font("Helvetica", "", 11)
    pdf.multi_cell(
        0,
        6,
        "In the public interest, and with immediate effect, the teacher named below is "
        "transferred from the present school and posted to the school shown. The teacher shall "
        "hand over charge at the present school and report to the new school forthwith.",
        align="J",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.ln(4)


def _field_table(pdf: FPDF, order: TransferOrder) -> None:
    rows = (
        ("Order number", order.order_no),
        ("Order date", order.order_date.isoformat()),
        ("Name of teacher", order.teacher_name),
        ("CNIC pseudonym", order.teacher_pseudonym),
        ("Post", order.post),
        ("Transferred from", order.from_school),
        ("Posted to", order.to_school),
        ("Ordering authority", order.authority),
    )
    pdf.set_font("Helvetica", "", 10)
    with pdf.table(
        col_widths=(32, 68),
        first_row_as_headings=False,
        text_align=("LEFT", "LEFT"),
        line_height=5,
        padding=1.2,
    ) as table:
        for label, value in rows:
            row = table.row()
            row.cell(label)
            row.cell(value)


def _check_fits(pdf: FPDF) -> None:
    """Refuse an order whose table would run into the QR square: the stamp would cover it."""
    _, top, _ = qr_box_mm()
    if pdf.get_y() > top - QR_GAP_MM:
        raise OrderInvalid(
            "the order's text does not fit above the QR code; shorten its fields",
            code="order.too_full",
        )  # fmt: skip


def _qr_area(pdf: FPDF) -> None:
    """A faint frame around the empty QR square, and a caption under it.

    The frame sits on the square's edge, outside the QR's own quiet zone, so it never touches
    the code that the signature stamps in.
    """
    left, top, size = qr_box_mm()
    pdf.set_draw_color(160)
    pdf.set_line_width(0.3)
    pdf.rect(left, top, size, size)
    pdf.set_draw_color(0)
    pdf.set_xy(left, top + size + 1)
    pdf.set_font("Helvetica", "", 8)
    pdf.cell(size, 4, "Scan to verify", align="C")


def _authority(pdf: FPDF, order: TransferOrder) -> None:
    """The ordering authority beside the QR square: the QR stamp is its signature."""
    left, top, _ = qr_box_mm()
    width = left - MARGIN_MM - 8
    pdf.set_xy(MARGIN_MM, top)
    pdf.set_font("Helvetica", "B", 11)
    pdf.multi_cell(width, 6, order.authority, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "I", 9)
    pdf.cell(width, 5, "(signed digitally)", align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)
    pdf.set_font("Helvetica", "", 8)
    pdf.multi_cell(
        width,
        4,
        "This order is signed digitally by the ordering authority. Scan the code to check it, "
        "offline or online, or open the file in a PDF reader to check its signature. A printed "
        "copy is genuine only if the code verifies and its details match this page.",
        align="L",
    )


def render(order: TransferOrder, *, department: str) -> bytes:
    """The order as an A4 PDF, with QR_BOX left empty for the signature's QR stamp.

    Deterministic: fpdf2's clock is pinned to the order date and its file /ID is derived from
    the content, so two renders of one order are byte for byte the same.
    """
    if not isinstance(order, TransferOrder):
        raise TypeError("render takes a TransferOrder")
    _check_text("department", department, MAX_DEPARTMENT)
    pdf = _new_document(order)
    _heading(pdf, department)
    _number_and_date(pdf, order)
    _order_paragraph(pdf)
    _field_table(pdf, order)
    _check_fits(pdf)
    _qr_area(pdf)
    _authority(pdf, order)
    return bytes(pdf.output())
