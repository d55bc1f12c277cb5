"""The verifier's page (/verify), no sign-in, through the app: a real signed transfer order
(its PDF, a photo of its QR code, its text) and every way a code or a file can be wrong, each
answered with one verdict in words, never a 500.

`signed_order` makes the PKI, an officer and a QR signer in a runtime and signs an order with
them, as `POST /signing/orders/transfer` does; the browser tests use it too.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
import qrcode
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from PIL import Image, ImageFilter
from sqlalchemy import delete, update

from api.routes.verifier_pages import REASONS
from api.runtime import Runtime
from audit import pseudonym
from identity.cnic import normalise_cnic
from locker.access import Accessor
from locker.documents import DocumentRefused
from locker.models import documents, versions
from signing import files, verdict
from signing.documents.orders import Signer, sign_transfer_order
from signing.documents.pades import LocalTimeStamper
from signing.documents.transfer_order import DOCUMENT_TYPE, TransferOrder
from signing.files import MAX_FILE_BYTES
from signing.pki.authority import Subject
from signing.pki.custody import create_root
from signing.pki.profiles import OFFICER_SIGNING, QR_SIGNER
from signing.qr import decode, encode
from tests.http.oidc_kit import csrf_of
from tests.unit.signing.test_verdict import _parts, _rewrap

TEACHER = "Muhammad Imran Akhtar"
ORDER = {
    "order_no": "SED/TR/2026/004512",
    "order_date": date(2026, 3, 14),
    "teacher_name": TEACHER,
    "from_school": "Govt. High School No. 1, Model Town, Lahore",
    "to_school": "Govt. Boys Higher Secondary School, Shahdara, Lahore",
    "post": "SST (Science)",
    "authority": "CEO (DEA) Lahore",
}


@dataclass(frozen=True)
class SignedOrder:
    """A transfer order signed in `runtime`: its PDF, its QR text, and what signed it."""

    pdf: bytes
    payload: str
    qr_serial: int
    qr_signer: Signer

    def expiring(self, runtime: Runtime, seconds: int = 1) -> str:
        """Another genuine code by the same signer, in force for `seconds` from now."""
        _kid, payload = decode(self.payload)
        issued = runtime.clock().replace(microsecond=0)
        changed = dataclasses.replace(
            payload, issued_at=issued, expires_at=issued + timedelta(seconds=seconds)
        )
        return encode(changed, self.qr_signer.key, _kid)

    def altered(self) -> str:
        """This code with the school it sends the teacher to changed, its signature kept."""
        parts = _parts(self.payload)
        _kid, payload = decode(self.payload)
        fields = {**payload.fields, "to": "Govt. High School, Gulberg, Lahore"}
        parts[2] = dataclasses.replace(payload, fields=fields).to_cbor()
        return _rewrap(parts)

    def stranger(self) -> str:
        """A well-formed code signed by a key no trust list names."""
        _kid, payload = decode(self.payload)
        return encode(payload, ec.generate_private_key(ec.SECP256R1()), b"not-on-the-list")


def signed_order(runtime: Runtime, tmp_path: Path) -> SignedOrder:
    """The PKI initialised, an officer's and a QR signer's certificate in `sed`, and one
    transfer order signed with them (PAdES with a time-stamp, and its QR code)."""
    now = runtime.clock()
    root = create_root(tmp_path / "root", "a long test passphrase", common_name="Test Root",
                       now=now)  # fmt: skip
    order = TransferOrder(
        **ORDER,  # type: ignore[arg-type]
        teacher_pseudonym=pseudonym(normalise_cnic(TEACHER_CNIC), key=runtime.pseudonym_key),
    )
    with runtime.transaction() as session:
        authority = runtime.authority(session)
        authority.initialise(root, actor="admin:test")
        officer = authority.issue(
            OFFICER_SIGNING, Subject("Rana Asif", "sed", None, "CEO (DEA)"), actor="admin:test"
        )
        qr = authority.issue(QR_SIGNER, Subject("SED QR signer", "sed"), actor="admin:test")
        issuing, _ = authority.issuing()
        qr_signer = Signer(authority.private_key(qr), qr.certificate, [issuing])
        signed = sign_transfer_order(
            order,
            department="School Education Department",
            officer=Signer(authority.private_key(officer), officer.certificate, [issuing]),
            qr_signer=qr_signer,
            now=now,
            timestamper=LocalTimeStamper(authority.tsa()),
        )
    return SignedOrder(signed.pdf, signed.qr_text, qr.serial, qr_signer)


def revoke(runtime: Runtime, serial: int) -> None:
    with runtime.transaction() as session:
        runtime.authority(session).revoke(serial, "key_compromise", actor="admin:test")


TEACHER_CNIC = "35202-1000003-3"
ORDER_NO = str(ORDER["order_no"])
REVOCATION_REASON = "Transfer cancelled on the teacher's appeal"


def deliver(runtime: Runtime, order: SignedOrder) -> None:
    """Issue the signed order into the teacher's locker, as `sign_and_deliver` does for a
    teacher with an account: issued by its department (sed) under its order number."""
    teacher = pseudonym(normalise_cnic(TEACHER_CNIC), key=runtime.pseudonym_key)
    with runtime.transaction() as session:
        runtime.locker(session).issue(
            owner=teacher, doctype=DOCUMENT_TYPE, issuer="sed", issuer_doc_id=ORDER_NO,
            title=f"Transfer order {ORDER_NO}", content=[order.pdf],
            content_type="application/pdf", who=Accessor("officer:test", "sed", "issuer"),
        )  # fmt: skip


def revoke_order(runtime: Runtime, reason: str = REVOCATION_REASON) -> None:
    """The department revokes the order in the locker, as /officer/sed/revoke does."""
    with runtime.transaction() as session:
        runtime.locker(session).revoke(
            issuer="sed", issuer_doc_id=ORDER_NO, reason=reason,
            who=Accessor("officer:test", "sed", "issuer"),
        )  # fmt: skip


def png_of_qr(text: str, *, box: int = 6) -> bytes:
    """The code drawn as a PNG, as a phone's photo of the paper would show it (level Q)."""
    out = io.BytesIO()
    qrcode.make(text, error_correction=qrcode.constants.ERROR_CORRECT_Q, box_size=box).save(out)
    return out.getvalue()


def blurred(png: bytes) -> bytes:
    """A photo taken out of focus: no decoder reads it."""
    out = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("L").filter(ImageFilter.GaussianBlur(12)).save(out, "PNG")
    return out.getvalue()


def noise_png(size: int = 240) -> bytes:
    out = io.BytesIO()
    Image.frombytes("L", (size, size), os.urandom(size * size)).save(out, "PNG")
    return out.getvalue()


# -- the client's side ------------------------------------------------------------------------


@pytest.fixture
def order(oidc_runtime: Runtime, tmp_path: Path) -> SignedOrder:
    return signed_order(oidc_runtime, tmp_path)


def _csrf(web: TestClient) -> str:
    page = web.get("/verify")
    assert page.status_code == 200
    return csrf_of(page.text)


def paste(web: TestClient, text: str, **headers: str) -> tuple[int, str, str]:
    """(status, outcome, page) for `text` pasted into the form."""
    response = web.post("/verify", data={"csrf": _csrf(web), "payload": text}, headers=headers)
    return response.status_code, _outcome(response.text), response.text


def upload(web: TestClient, data: bytes, name: str = "photo.png") -> tuple[int, str, str]:
    response = web.post("/verify", data={"csrf": _csrf(web)}, files={"file": (name, data)})
    return response.status_code, _outcome(response.text), response.text


def _outcome(html: str) -> str:
    found = re.search(r'data-outcome="([a-z_]+)"', html)
    return found.group(1) if found else ""


def _facts(html: str) -> dict[str, str]:
    return dict(re.findall(r"<dt>([^<]+)</dt><dd[^>]*>([^<]*)</dd>", html))


# -- verdicts ---------------------------------------------------------------------------------


def test_the_page_allows_its_scripts_and_no_other_page_does(web: TestClient) -> None:
    page = web.get("/verify")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "worker-src blob:" in csp
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert 'src="/static/verify.js"' in page.text
    assert "<script>" not in page.text  # no inline script
    assert "script-src" not in web.get("/").headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"


def test_a_pasted_genuine_order_is_authentic_with_its_signed_fields(
    web: TestClient, order: SignedOrder
) -> None:
    status, outcome, html = paste(web, order.payload + "\r\n")  # a textarea adds a line end
    assert (status, outcome) == (200, "authentic"), html
    facts = _facts(html)
    assert facts["Order number"] == ORDER["order_no"]
    assert facts["Teacher"] == TEACHER
    assert facts["From school"] == ORDER["from_school"]
    assert facts["To school"] == ORDER["to_school"]
    assert facts["Order date"] == "2026-03-14"
    assert facts["Post"] == ORDER["post"]
    assert facts["Document"] == "Teacher transfer order"
    assert facts["Code signed by"].startswith("SED QR signer")
    assert "Signed on" in facts
    assert "Valid until" not in facts
    assert "the online check confirms its signer" in html
    assert _facts(html)["Online revocation check"] == "made"
    assert "35202" not in html, "the teacher's CNIC is on no page"


def test_the_page_and_the_json_api_give_the_same_verdict(
    web: TestClient, order: SignedOrder
) -> None:
    for text, outcome in ((order.payload, "authentic"), (order.altered(), "altered")):
        api = web.post("/signing/verify", json={"payload": text}).json()
        assert api["outcome"] == outcome
        assert paste(web, text)[1] == outcome


def test_an_altered_code_is_altered_and_shows_nothing_it_claims(
    web: TestClient, order: SignedOrder
) -> None:
    status, outcome, html = paste(web, order.altered())
    assert (status, outcome) == (200, "altered")
    assert "altered or forged" in html
    assert "Gulberg" not in html
    assert TEACHER not in html
    assert "Do not accept this document" in html


def test_a_revoked_signer_is_revoked(
    web: TestClient, order: SignedOrder, oidc_runtime: Runtime
) -> None:
    assert paste(web, order.payload)[1] == "authentic"
    revoke(oidc_runtime, order.qr_serial)
    status, outcome, html = paste(web, order.payload)
    assert (status, outcome) == (200, "revoked")
    assert TEACHER not in html, "a revoked signer's words prove nothing"
    assert "SED QR signer" in html, "but who was revoked is said"
    assert upload(web, order.pdf, "order.pdf")[1] == "revoked"


def test_an_order_its_department_revoked_is_revoked_as_text_pdf_and_photo(
    web: TestClient, order: SignedOrder, oidc_runtime: Runtime
) -> None:
    deliver(oidc_runtime, order)
    assert paste(web, order.payload)[1] == "authentic", "delivered and in force: authentic"
    assert upload(web, order.pdf, "order.pdf")[1] == "authentic"
    revoke_order(oidc_runtime)
    for status, outcome, html in (
        paste(web, order.payload),
        upload(web, order.pdf, "order.pdf"),
        upload(web, png_of_qr(order.payload)),
    ):
        assert (status, outcome) == (200, "revoked"), html
        assert "has revoked it: it is no longer in force" in html
        assert "Authentic" not in html
        assert "in force and" not in html
        facts = _facts(html)
        assert REVOCATION_REASON.replace("'", "&#39;") not in html, "the office's words stay its"
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} PKT", facts["Revoked on"])
        assert TEACHER not in html, "a revoked order's words are not shown as if in force"
    for body in (
        web.post("/signing/verify", json={"payload": order.payload}).json(),
        web.post("/signing/verify", files={"file": ("order.pdf", order.pdf)}).json(),
    ):
        assert body["outcome"] == "revoked", body
        assert body["authentic"] is False
        assert body["reason"] == verdict.DOCUMENT_REVOKED
        assert REVOCATION_REASON not in str(body)
        assert body["revocation"]["revoked_at"] is not None
        assert "issued_at" not in body


def test_an_order_unrevoked_or_moved_by_sql_is_not_valid(
    web: TestClient, order: SignedOrder, oidc_runtime: Runtime
) -> None:
    """A revocation undone by SQL (or the record moved to another locker) fails the row's seal:
    the verifier must not take the record as absent (never delivered: authentic), so it
    refuses the code and says why, in English and Urdu."""
    deliver(oidc_runtime, order)
    revoke_order(oidc_runtime)
    found = documents.c.issuer_doc_id == ORDER_NO
    undo = {"status": "active", "revoked_at": None, "revocation_reason": None}
    for change in (undo, {"owner": "p:" + "M" * 43}):
        with oidc_runtime.transaction() as session:
            session.execute(update(documents).where(found).values(**change))
        status, outcome, html = paste(web, order.payload)
        assert (status, outcome) == (200, "revoked"), html
        assert "fails its integrity check" in html
        assert TEACHER not in html
        body = web.post("/signing/verify", json={"payload": order.payload}).json()
        assert (body["outcome"], body["authentic"]) == ("revoked", False)
        assert body["reason"] == verdict.DOCUMENT_UNSEALED
    urdu = paste(web, order.payload, **{"accept-language": "ur"})[2]
    assert "سالمیت کی جانچ میں ناکام" in urdu


@pytest.mark.parametrize("hide", ["marked deleted", "version row deleted"])
def test_a_revoked_order_hidden_by_sql_is_not_valid(
    web: TestClient, order: SignedOrder, oidc_runtime: Runtime, hide: str
) -> None:
    """The record of a revoked order hidden from the lookup (its status set to deleted, which
    fails its seal; or its version row deleted, which carries none) must not read as no record
    (never delivered: authentic); nor may the department's next issue of that number fail."""
    deliver(oidc_runtime, order)
    revoke_order(oidc_runtime)
    found = documents.c.issuer_doc_id == ORDER_NO
    with oidc_runtime.transaction() as session:
        if hide == "marked deleted":
            session.execute(update(documents).where(found).values(status="deleted"))
        else:
            document_id = session.execute(documents.select().where(found)).one().id
            session.execute(delete(versions).where(versions.c.document_id == document_id))
    body = web.post("/signing/verify", json={"payload": order.payload}).json()
    assert (body["outcome"], body["authentic"]) == ("revoked", False), body
    assert body["reason"] == verdict.DOCUMENT_UNSEALED
    teacher = pseudonym(normalise_cnic(TEACHER_CNIC), key=oidc_runtime.pseudonym_key)
    with pytest.raises(DocumentRefused) as refused, oidc_runtime.transaction() as session:
        oidc_runtime.locker(session).issue(
            owner=teacher, doctype=DOCUMENT_TYPE, issuer="sed", issuer_doc_id=ORDER_NO,
            title="Transfer order, again", content=[b"%PDF-1.7 again"],
            content_type="application/pdf", who=Accessor("officer:test", "sed", "issuer"),
        )  # fmt: skip
    assert refused.value.code == "document.unsealed"


def test_a_revoked_order_reads_as_revoked_in_urdu(
    web: TestClient, order: SignedOrder, oidc_runtime: Runtime
) -> None:
    deliver(oidc_runtime, order)
    revoke_order(oidc_runtime)
    status, outcome, html = paste(web, order.payload, **{"accept-language": "ur"})
    assert (status, outcome) == (200, "revoked")
    assert "اسے منسوخ کر دیا ہے" in html
    assert REVOCATION_REASON.replace("'", "&#39;") not in html
    assert "has revoked it" not in html


def test_revoking_another_order_or_in_another_department_leaves_this_one_authentic(
    web: TestClient, order: SignedOrder, oidc_runtime: Runtime
) -> None:
    """Only the department's record of this very order counts: not another order's, and not
    an order of the same number that was never delivered (no record: it stays authentic)."""
    assert paste(web, order.payload)[1] == "authentic", "never delivered: no record to revoke"
    deliver(oidc_runtime, order)
    teacher = pseudonym(normalise_cnic(TEACHER_CNIC), key=oidc_runtime.pseudonym_key)
    with oidc_runtime.transaction() as session:
        locker = oidc_runtime.locker(session)
        locker.issue(
            owner=teacher, doctype=DOCUMENT_TYPE, issuer="sed", issuer_doc_id="SED/TR/2026/9",
            title="Transfer order SED/TR/2026/9", content=[b"%PDF-1.7 another"],
            content_type="application/pdf", who=Accessor("officer:test", "sed", "issuer"),
        )  # fmt: skip
        locker.revoke(issuer="sed", issuer_doc_id="SED/TR/2026/9", reason="Another order",
                      who=Accessor("officer:test", "sed", "issuer"))  # fmt: skip
    assert paste(web, order.payload)[1] == "authentic"
    assert web.post("/signing/verify", json={"payload": order.payload}).json()["outcome"] == (
        "authentic"
    )


def test_a_revoked_order_is_revoked_even_once_it_has_expired(
    web: TestClient, order: SignedOrder, oidc_runtime: Runtime
) -> None:
    deliver(oidc_runtime, order)
    text = order.expiring(oidc_runtime, seconds=1)
    time.sleep(1.1)
    assert paste(web, text)[1] == "expired"
    revoke_order(oidc_runtime)
    assert paste(web, text)[1] == "revoked"


def test_an_expired_code_is_expired_with_its_fields(
    web: TestClient, order: SignedOrder, oidc_runtime: Runtime
) -> None:
    text = order.expiring(oidc_runtime, seconds=1)
    time.sleep(1.1)  # in force for one second from its signing, to the second
    status, outcome, html = paste(web, text)
    assert (status, outcome) == (200, "expired")
    assert _facts(html)["Teacher"] == TEACHER
    assert "Valid until" in _facts(html)


def test_a_code_from_a_signer_nobody_trusts_is_an_unknown_issuer(
    web: TestClient, order: SignedOrder
) -> None:
    status, outcome, html = paste(web, order.stranger())
    assert (status, outcome) == (200, "unknown_issuer")
    assert TEACHER not in html


@pytest.mark.parametrize(
    ("text", "outcome"),
    [
        ("https://example.com/order/4512", "not_shanakht"),
        ("WIFI:S:School;T:WPA;P:secret;;", "not_shanakht"),
        ("hello", "not_shanakht"),
        ("SHK1:NOT-BASE45!", "cannot_read"),
        ("SHK1:", "cannot_read"),
        ("SHK9:ABC", "cannot_read"),
    ],
)
def test_text_that_is_not_a_readable_shanakht_code(
    web: TestClient, order: SignedOrder, text: str, outcome: str
) -> None:
    status, found, html = paste(web, text)
    assert (status, found) == (200, outcome)
    assert '<dl class="facts" id="facts">' not in html


def test_a_cut_off_code_cannot_be_read(web: TestClient, order: SignedOrder) -> None:
    assert paste(web, order.payload[: len(order.payload) // 2])[1] == "cannot_read"


def test_the_signed_pdf_and_a_photo_of_its_code_are_authentic(
    web: TestClient, order: SignedOrder
) -> None:
    status, outcome, html = upload(web, order.pdf, "order.pdf")
    assert (status, outcome) == (200, "authentic"), html
    facts = _facts(html)
    assert facts["Signature on the PDF"] == "valid"
    assert facts["PDF signed by"].startswith("Rana Asif")
    assert facts["Teacher"] == TEACHER
    status, outcome, html = upload(web, png_of_qr(order.payload))
    assert (status, outcome) == (200, "authentic"), html
    assert _facts(html)["To school"] == ORDER["to_school"]


def test_a_changed_pdf_byte_is_altered(web: TestClient, order: SignedOrder) -> None:
    pdf = order.pdf
    at = pdf.index(b"stream\n", pdf.index(b"/Contents")) + 20
    changed = pdf[:at] + bytes([pdf[at] ^ 0x01]) + pdf[at + 1 :]
    status, outcome, html = upload(web, changed, "order.pdf")
    assert (status, outcome) == (200, "altered")
    assert "not the one it was issued for" in html
    assert TEACHER not in html
    assert _facts(html)["Signature on the PDF"] == "broken"


def _random_pdf() -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text="Minutes of the school council")
    return bytes(pdf.output())


@pytest.mark.parametrize(
    ("name", "make", "outcome"),
    [
        ("a QR code of a URL", lambda: png_of_qr("https://example.com/order/4512"), "not_shanakht"),
        ("a blank PNG", lambda: _blank(), "cannot_read"),
        ("a PNG of noise", noise_png, "cannot_read"),
        ("a blurred photo of the code", None, "cannot_read"),
        ("a random PDF", _random_pdf, "cannot_read"),
        ("garbage bytes", lambda: os.urandom(3000), "cannot_read"),
        ("a broken PNG", lambda: b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "cannot_read"),
        ("a broken PDF", lambda: b"%PDF-1.7\n" + os.urandom(500), "cannot_read"),
        ("a text file", lambda: b"SHK1:ABC", "cannot_read"),
    ],
)
def test_files_that_hold_no_shanakht_code(
    web: TestClient, order: SignedOrder, name: str, make: object, outcome: str
) -> None:
    data = blurred(png_of_qr(order.payload)) if make is None else make()  # type: ignore[operator]
    status, found, html = upload(web, data, "upload.bin")
    assert (status, found) == (200, outcome), (name, html[-2000:])


def _blank() -> bytes:
    out = io.BytesIO()
    Image.new("L", (200, 200), 255).save(out, "PNG")
    return out.getvalue()


# -- the forms: what is wrong is said beside the field ----------------------------------------


def test_an_empty_paste_and_an_empty_upload_are_said_beside_their_fields(
    web: TestClient,
) -> None:
    response = web.post("/verify", data={"csrf": _csrf(web), "payload": "  \r\n"})
    assert response.status_code == 400
    assert 'id="payload-error"' in response.text
    assert 'aria-invalid="true"' in response.text
    empty = web.post("/verify", data={"csrf": _csrf(web)}, files={"file": ("", b"")})
    assert empty.status_code == 400
    assert 'id="file-error"' in empty.text
    nothing = web.post("/verify", data={"csrf": _csrf(web)}, files={"other": ("x.png", b"x")})
    assert nothing.status_code == 400
    assert 'id="file-error"' in nothing.text


def test_too_large_uploads_and_texts_are_refused_with_the_signing_routes_limits(
    web: TestClient,
) -> None:
    big = web.post(
        "/verify",
        data={"csrf": _csrf(web)},
        files={"file": ("big.png", b"x" * (MAX_FILE_BYTES + 1))},
    )
    assert big.status_code == 413
    assert "at most 20 MB" in big.text
    assert 'id="file-error"' in big.text
    long_text = web.post("/verify", data={"csrf": _csrf(web), "payload": "SHK1:" + "A" * 8200})
    assert long_text.status_code == 413
    assert 'id="payload-error"' in long_text.text
    huge_text = web.post("/verify", data={"csrf": _csrf(web), "payload": "%" * 40000})
    assert huge_text.status_code == 413


def test_a_form_without_its_csrf_token_is_refused(web: TestClient, order: SignedOrder) -> None:
    _csrf(web)  # the browser has the cookie; the forged form lacks the field
    assert web.post("/verify", data={"payload": order.payload}).status_code == 403
    assert web.post("/verify", data={"csrf": "forged", "payload": order.payload}).status_code == 403
    files = {"file": ("order.pdf", order.pdf)}
    assert web.post("/verify", files=files).status_code == 403


def test_before_the_pki_is_set_up_the_page_says_so(web: TestClient) -> None:
    response = web.post("/verify", data={"csrf": _csrf(web), "payload": "SHK1:ABC"})
    assert response.status_code == 503
    assert "cannot be checked yet" in response.text
    assert response.headers["content-type"].startswith("text/html")


def test_other_bodies_are_a_clear_answer_not_a_crash(web: TestClient, order: SignedOrder) -> None:
    csrf = _csrf(web)
    text = web.post("/verify", content=b"SHK1:", headers={"content-type": "text/plain"})
    assert text.status_code == 415
    assert 'id="payload"' in text.text, "the form again, to send it right"
    no_boundary = web.post("/verify", content=b"--xx\r\n",
                           headers={"content-type": "multipart/form-data"})  # fmt: skip
    assert no_boundary.status_code == 400
    assert 'id="file-error"' in no_boundary.text
    many = {"csrf": csrf, "a": "1", "b": "2", "c": "3", "d": "4", "e": "5"}
    assert web.post("/verify", data=many).status_code == 403  # fields past 4 are not read
    not_utf8 = web.post("/verify", content=f"csrf={csrf}&payload=%FF%FE%C0".encode(),
                        headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert not_utf8.status_code == 200
    assert _outcome(not_utf8.text) == "not_shanakht"


def test_the_verdict_reads_in_urdu(web: TestClient, order: SignedOrder) -> None:
    status, outcome, html = paste(web, order.payload, **{"accept-language": "ur"})
    assert (status, outcome) == (200, "authentic")
    assert 'lang="ur"' in html
    assert 'dir="rtl"' in html
    assert "مستند" in html  # "authentic"
    assert TEACHER in html, "the signed words themselves are never translated"
    assert "Authentic" not in html


def test_every_domain_sentence_is_the_page_s_english_word_for_word() -> None:
    sentences = [getattr(verdict, n) for n in dir(verdict) if n.isupper() and n != "EPOCH"]
    sentences = [s for s in sentences if isinstance(s, str) and s != verdict.EXPIRED]
    sentences += [files.PDF_ALTERED, files.PDF_SIGNER_REVOKED]
    for sentence in sentences:
        assert sentence in REASONS, sentence
        assert str(REASONS[sentence]) == sentence


def test_the_page_weighs_under_200_kb_with_its_scripts(web: TestClient) -> None:
    page = web.get("/verify")
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
    assert "/static/vendor/qr-scanner.umd.min.js" in assets
    # The worker module qr-scanner imports once the camera starts counts too.
    assets.append("/static/vendor/qr-scanner-worker.min.js")
    total = len(page.content)
    for path in assets:
        response = web.get(path)
        assert response.status_code == 200, path
        total += len(response.content)
    assert total < 200 * 1024, total
