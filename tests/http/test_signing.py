"""Signing over HTTP: an officer signs a transfer order; anyone verifies it from its text, a
photo of the QR, or the PDF; the trust list is what an offline verifier would load."""

from __future__ import annotations

import io
import shutil
import subprocess
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import base45
import cbor2
import pytest
import qrcode
from fastapi.testclient import TestClient
from PIL import Image
from pyhanko.pdf_utils.reader import PdfFileReader
from sqlalchemy import select

from api.routes.locker_views import seal_status
from api.runtime import Runtime
from audit import pseudonym
from audit.models import entries
from identity.login import ACR_SUBSTANTIAL
from identity.nadra import SCENARIOS, read_registry
from locker.access import Accessor
from signing.files import MAX_FILE_BYTES
from signing.pki.authority import Subject
from signing.pki.custody import create_root
from signing.pki.profiles import OFFICER_SIGNING, QR_SIGNER
from signing.trustlist import load_trust_list
from tests.cli.test_cli import run
from tests.http.oidc_kit import (
    Browser,
    RelyingParty,
    csrf_of,
    press_send,
    query_of,
    register_citizen,
    register_client,
    token,
)
from tests.http.test_roles_and_entries import _access_token, _grant
from tests.unit.signing.pki_kit import openssl

ORDER = {
    "department": "sed",
    "order_no": "SED/TR/2026/004512",
    "order_date": "2026-03-14",
    "teacher_name": "Muhammad Imran Akhtar",
    "teacher_cnic": "35202-1000003-3",
    "from_school": "Govt. High School No. 1, Model Town, Lahore",
    "to_school": "Govt. Boys Higher Secondary School, Shahdara, Lahore",
    "post": "SST (Science)",
    "authority": "CEO (DEA) Lahore",
}


@dataclass(frozen=True)
class Desk:
    """A department ready to sign: the PKI, an officer with the role and a certificate, a QR
    signer, and the officer's access tokens: one fit to sign (the `signing` scope, a sign-in
    with a second factor) and two that are not."""

    token: str
    qr_serial: int
    without_scope: str
    password_only: str


def _stepped_up_token(
    web: TestClient, runtime: Runtime, rp: RelyingParty, cnic: str, scope: str
) -> str:
    """Sign in with password (consenting), then step up with the SMS code; the new token."""
    browser = Browser(web)
    browser.sign_in(rp, cnic, scope=scope)
    response, verifier = browser.authorize(rp, scope=scope, acr_values=ACR_SUBSTANTIAL)
    if not response.headers["location"].startswith(rp.redirect_uri):  # not stepped up yet
        page = browser.follow(response)
        page = browser.follow(press_send(web, page.text))
        record = read_registry(runtime.identity.nadra_file)[cnic]
        sms = runtime.identity.sms.last_to(record.mobile_numbers[0])
        code = sms.text.split()[3].rstrip(".")
        ticket = page.text.split('name="ticket" value="')[1].split('"')[0]
        response = browser.follow(
            web.post(
                str(page.url).removeprefix("https://shanakht.test"),
                data={"ticket": ticket, "code": code, "csrf": csrf_of(page.text)},
                follow_redirects=False,
            )
        )
    callback = query_of(response.headers["location"])
    exchanged = token(web, rp, grant_type="authorization_code", code=callback["code"],
                      redirect_uri=rp.redirect_uri, code_verifier=verifier)  # fmt: skip
    return str(exchanged.json()["access_token"])


@pytest.fixture
def officer(oidc_runtime: Runtime) -> tuple[str, str]:
    record = read_registry(oidc_runtime.identity.nadra_file)[SCENARIOS["active_male"]]
    return record.cnic, register_citizen(oidc_runtime, record)


@pytest.fixture
def desk(web: TestClient, oidc_runtime: Runtime, officer: tuple[str, str], tmp_path: Path) -> Desk:
    cnic, citizen_id = officer
    _grant(oidc_runtime, citizen_id, cnic, "sed", "signing.officer")
    root = create_root(tmp_path / "root", "a long test passphrase", common_name="Test Root",
                       now=oidc_runtime.clock())  # fmt: skip
    with oidc_runtime.transaction() as session:
        authority = oidc_runtime.authority(session)
        authority.initialise(root, actor="admin:test")
        holder = oidc_runtime.provider(session).accounts.by_id(citizen_id)
        assert holder is not None
        authority.issue(OFFICER_SIGNING, Subject("An Officer", "sed", holder.pseudonym, "CEO"),
                        actor="admin:test")  # fmt: skip
        qr = authority.issue(QR_SIGNER, Subject("SED QR signer", "sed"), actor="admin:test")
    rp = register_client(oidc_runtime, "etransfer", scopes=("openid", "roles", "signing"))
    other = register_client(oidc_runtime, "domicile", scopes=("openid", "roles"))
    password_only = _access_token(web, rp, cnic, "openid roles signing")
    web.cookies.clear()  # a new browser: its sign-in is not the low one above
    return Desk(
        _stepped_up_token(web, oidc_runtime, rp, cnic, "openid roles signing"),
        qr.serial,
        _stepped_up_token(web, oidc_runtime, other, cnic, "openid roles"),
        password_only,
    )


def _sign(web: TestClient, desk: Desk, **changes: object) -> bytes:
    response = web.post("/signing/orders/transfer", json={**ORDER, **changes},
                        headers={"Authorization": f"Bearer {desk.token}"})  # fmt: skip
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/pdf"
    return response.content


def _verify_file(web: TestClient, data: bytes, name: str) -> dict:
    response = web.post("/signing/verify", files={"file": (name, data)})
    assert response.status_code == 200, response.text
    return dict(response.json())


def _qr_text(pdf: bytes, tmp_path: Path) -> str:
    """Read by poppler and zbar, neither of them the code that wrote it."""
    (tmp_path / "order.pdf").write_bytes(pdf)
    pdftoppm = shutil.which("pdftoppm") or "pdftoppm"
    page_one = ["-r", "200", "-png", "-f", "1", "-l", "1"]
    subprocess.run([pdftoppm, *page_one, str(tmp_path / "order.pdf"), str(tmp_path / "page")],
                   check=True)  # fmt: skip
    page = next(tmp_path.glob("page*.png"))
    done = subprocess.run([shutil.which("zbarimg") or "zbarimg", "--raw", "-q", str(page)],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout.strip()


def test_an_officer_signs_an_order_and_its_pdf_verifies(
    web: TestClient, desk: Desk, tmp_path: Path
) -> None:
    pdf = _sign(web, desk)
    verdict = _verify_file(web, pdf, "order.pdf")
    assert verdict["outcome"] == "authentic", verdict
    assert verdict["checked_online"] is True
    assert verdict["pdf"] == {"signature_valid": True, "problem": None}
    assert verdict["fields"]["no"] == ORDER["order_no"]
    assert verdict["fields"]["to"] == ORDER["to_school"]
    assert "id" not in verdict["fields"], "the teacher's pseudonym stays off the QR"
    text = _qr_text(pdf, tmp_path)
    assert text.startswith("SHK1:")
    by_text = web.post("/signing/verify", json={"payload": text}).json()
    assert by_text["outcome"] == "authentic"
    assert by_text["fields"] == verdict["fields"]


def test_a_photo_of_the_qr_verifies_and_a_changed_pdf_byte_does_not(
    web: TestClient, desk: Desk, tmp_path: Path
) -> None:
    pdf = _sign(web, desk)
    text = _qr_text(pdf, tmp_path)
    photo = io.BytesIO()
    qrcode.make(text, error_correction=qrcode.constants.ERROR_CORRECT_Q).save(photo, "PNG")
    assert _verify_file(web, photo.getvalue(), "photo.png")["outcome"] == "authentic"
    jpeg = io.BytesIO()
    Image.open(io.BytesIO(photo.getvalue())).convert("RGB").save(jpeg, "JPEG", quality=85)
    assert _verify_file(web, jpeg.getvalue(), "photo.jpg")["outcome"] == "authentic"
    stream = pdf.index(b"stream\n", pdf.index(b"/Contents")) + 20  # inside the page's text
    changed = pdf[:stream] + bytes([pdf[stream] ^ 0x01]) + pdf[stream + 1 :]
    verdict = _verify_file(web, changed, "changed.pdf")
    assert verdict["outcome"] == "altered", verdict
    assert verdict["pdf"]["signature_valid"] is False


def test_a_revoked_qr_signer_is_reported_and_the_trust_list_follows(
    web: TestClient, desk: Desk, oidc_runtime: Runtime
) -> None:
    text = web.post("/signing/verify", json={"payload": "x"})  # warm: any answer
    assert text.status_code == 200
    pdf = _sign(web, desk)
    before = web.get("/signing/trust-list")
    assert before.headers["content-type"] == "application/jose"
    with oidc_runtime.transaction() as session:
        authority = oidc_runtime.authority(session)
        authority.revoke(desk.qr_serial, "key_compromise", actor="admin:test")
        root = authority.root()
    verdict = _verify_file(web, pdf, "order.pdf")
    assert verdict["outcome"] == "revoked", verdict
    after = load_trust_list(web.get("/signing/trust-list").content, root=root,
                            now=oidc_runtime.clock())  # fmt: skip
    old = load_trust_list(before.content, root=root, now=oidc_runtime.clock())
    assert after.sequence > old.sequence
    assert [s.status for s in after.signers] == ["revoked"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"json": {"payload": ""}}, 400),
        ({"json": {"nothing": 1}}, 400),
        ({"content": b"SHK1:", "headers": {"content-type": "text/plain"}}, 415),
        ({"files": {"file": ("x.txt", b"hello")}}, 400),
        ({"files": {"file": ("x.png", b"\x89PNG\r\n\x1a\nbroken")}}, 400),
        ({"files": {"file": ("blank.png", b"")}}, 400),
    ],
)
def test_bad_verification_requests_are_clear_errors(
    web: TestClient, desk: Desk, body: dict, status: int
) -> None:
    response = web.post("/signing/verify", **body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_text_that_is_no_shanakht_code_is_a_malformed_verdict(web: TestClient, desk: Desk) -> None:
    for text in ("https://example.com/order/4512", "SHK1:NOT-BASE45!", "SHK1:"):
        verdict = web.post("/signing/verify", json={"payload": text}).json()
        assert verdict["outcome"] == "malformed"
        assert verdict["authentic"] is False
        assert verdict["fields"] == {}


def test_an_image_without_a_qr_says_so(web: TestClient, desk: Desk) -> None:
    blank = io.BytesIO()
    Image.new("L", (200, 200), 255).save(blank, "PNG")
    response = web.post("/signing/verify", files={"file": ("blank.png", blank.getvalue())})
    assert response.status_code == 422
    assert "no QR code" in response.json()["detail"]


def test_only_an_officer_of_the_department_signs(
    web: TestClient, desk: Desk, oidc_runtime: Runtime
) -> None:
    no_token = web.post("/signing/orders/transfer", json=ORDER)
    assert no_token.status_code == 401
    for unfit, why in ((desk.without_scope, "signing scope"), (desk.password_only, "second")):
        refused = web.post("/signing/orders/transfer", json=ORDER,
                           headers={"Authorization": f"Bearer {unfit}"})  # fmt: skip
        assert refused.status_code == 403, refused.text
        assert why in refused.json()["detail"]
    elsewhere = web.post("/signing/orders/transfer", json={**ORDER, "department": "health"},
                         headers={"Authorization": f"Bearer {desk.token}"})  # fmt: skip
    assert elsewhere.status_code == 403
    bad = web.post("/signing/orders/transfer", json={**ORDER, "to_school": ORDER["from_school"]},
                   headers={"Authorization": f"Bearer {desk.token}"})  # fmt: skip
    assert bad.status_code == 422
    assert "same school" in bad.json()["detail"]
    bad_cnic = web.post("/signing/orders/transfer", json={**ORDER, "teacher_cnic": "9234567890123"},
                        headers={"Authorization": f"Bearer {desk.token}"})  # fmt: skip
    assert bad_cnic.status_code == 400


def test_a_token_from_before_a_step_up_stays_unfit_to_sign(
    web: TestClient, desk: Desk, oidc_runtime: Runtime, officer: tuple[str, str]
) -> None:
    """A token got with a password alone does not become fit to sign when the same sign-in
    session steps up afterwards; the token issued after the step-up is."""
    cnic, _ = officer
    rp = register_client(oidc_runtime, "esign", scopes=("openid", "roles", "signing"))
    web.cookies.clear()
    before = _access_token(web, rp, cnic, "openid roles signing")
    after = _stepped_up_token(web, oidc_runtime, rp, cnic, "openid roles signing")
    refused = web.post("/signing/orders/transfer", json=ORDER,
                       headers={"Authorization": f"Bearer {before}"})  # fmt: skip
    assert refused.status_code == 403, refused.text
    assert "second factor" in refused.json()["detail"]
    signed = web.post("/signing/orders/transfer", json=ORDER,
                      headers={"Authorization": f"Bearer {after}"})  # fmt: skip
    assert signed.status_code == 201, signed.text


def test_signing_is_recorded_without_the_teachers_cnic(
    web: TestClient, desk: Desk, oidc_runtime: Runtime
) -> None:
    _sign(web, desk)
    with oidc_runtime.sessions() as session:
        recorded = b"".join(session.execute(select(entries.c.entry)).scalars())
    assert b"signing.document.signed" in recorded
    assert ORDER["order_no"].encode() in recorded
    assert b"3520210000033" not in recorded
    assert b"35202-1000003-3" not in recorded


def test_shanakht_verify_on_the_server_and_offline_with_its_exit_codes(
    web: TestClient, desk: Desk, oidc_runtime: Runtime, cli_env: dict[str, str], tmp_path: Path
) -> None:
    pdf = tmp_path / "order.pdf"
    pdf.write_bytes(_sign(web, desk))
    code, output = run(cli_env, "verify", str(pdf))
    assert code == 0, output
    assert output.startswith("AUTHENTIC:")
    assert "PDF signature: valid" in output
    assert f"no: {ORDER['order_no']}" in output
    trust = tmp_path / "trust-list.jws"
    trust.write_bytes(web.get("/signing/trust-list").content)
    root = tmp_path / "root.der"
    root.write_bytes(web.get("/pki/root-ca.crt").content)
    offline = {"PATH": "/usr/bin:/bin"}  # no database named: the offline path needs none
    code, output = run(offline, "verify", str(pdf), "--trust-list", str(trust), "--root", str(root))
    assert code == 0, output
    data = pdf.read_bytes()
    at = data.index(b"stream\n", data.index(b"/Contents")) + 20
    pdf.write_bytes(data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :])
    code, output = run(cli_env, "verify", str(pdf))
    assert code == 10, output
    blank = tmp_path / "blank.png"
    Image.new("L", (64, 64), 255).save(blank, "PNG")
    code, output = run(cli_env, "verify", str(blank))
    assert code == 2
    assert "no QR code" in output
    code, output = run(cli_env, "verify", str(blank), "--root", str(root))
    assert code == 2
    assert "go together" in output


def test_an_officer_signs_any_file_and_openssl_cms_verifies_it(
    web: TestClient, desk: Desk, tmp_path: Path
) -> None:
    data = b"minutes of the transfer committee, 14 March 2026\n" * 100
    response = web.post("/signing/cms?department=sed", content=data,
                        headers={"Authorization": f"Bearer {desk.token}"})  # fmt: skip
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/pkcs7-signature"
    (tmp_path / "data.bin").write_bytes(data)
    (tmp_path / "sig.p7s").write_bytes(response.content)
    root = tmp_path / "root.der"
    root.write_bytes(web.get("/pki/root-ca.crt").content)
    issuing = tmp_path / "issuing.der"
    issuing.write_bytes(web.get("/pki/issuing-ca.crt").content)
    pems = []
    for der in (root, issuing):
        pem = der.with_suffix(".pem")
        subprocess.run([openssl(), "x509", "-inform", "DER", "-in", str(der), "-out", str(pem)],
                       check=True)  # fmt: skip
        pems.append(pem)

    def cms_verify(content: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [openssl(), "cms", "-verify", "-binary", "-inform", "DER", "-in",
             str(tmp_path / "sig.p7s"), "-content", str(content), "-CAfile", str(pems[0]),
             "-certfile", str(pems[1]), "-purpose", "any", "-out", "/dev/null"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip

    good = cms_verify(tmp_path / "data.bin")
    assert good.returncode == 0, good.stderr
    assert "Verification successful" in good.stderr
    (tmp_path / "changed.bin").write_bytes(data.replace(b"14 March", b"15 March"))
    assert cms_verify(tmp_path / "changed.bin").returncode != 0
    nobody = web.post("/signing/cms?department=sed", content=data)
    assert nobody.status_code == 401
    empty = web.post("/signing/cms?department=sed", content=b"",
                     headers={"Authorization": f"Bearer {desk.token}"})  # fmt: skip
    assert empty.status_code == 400


def test_oversized_requests_are_refused_before_they_are_read(web: TestClient, desk: Desk) -> None:
    big = b"x" * (MAX_FILE_BYTES + 1)
    signed = web.post("/signing/cms?department=sed", content=big,
                      headers={"Authorization": f"Bearer {desk.token}"})  # fmt: skip
    assert signed.status_code == 413
    text = web.post("/signing/verify", content=b'{"payload": "' + b"A" * 20000 + b'"}',
                    headers={"content-type": "application/json"})  # fmt: skip
    assert text.status_code == 413
    photo = web.post("/signing/verify", files={"file": ("big.png", big)})
    assert photo.status_code == 413
    for status in (signed, text, photo):
        assert status.headers["content-type"] == "application/problem+json"


def test_a_pdf_with_a_giant_page_is_drawn_small_and_a_broken_png_is_a_clear_error(
    web: TestClient, desk: Desk
) -> None:
    giant = (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 14400 14400]>>endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )
    started = time.monotonic()
    response = web.post("/signing/verify", files={"file": ("giant.pdf", giant)})
    assert response.status_code == 422  # no QR on it; and no gigabytes spent finding that out
    assert time.monotonic() - started < 20
    broken = web.post(
        "/signing/verify", files={"file": ("b.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")}
    )
    assert broken.status_code == 400
    assert broken.headers["content-type"] == "application/problem+json"


def test_signed_orders_carry_a_time_stamp_of_the_service_s_own_authority(
    web: TestClient, desk: Desk
) -> None:
    signature = PdfFileReader(io.BytesIO(_sign(web, desk))).embedded_signatures[0]
    unsigned = signature.signer_info["unsigned_attrs"]
    tokens = [a for a in unsigned if a["type"].native == "signature_time_stamp_token"]
    assert tokens, "PAdES B-T: the signature carries an RFC 3161 time-stamp token"
    signed_data = tokens[0]["values"][0]["content"]
    certificates = [c.chosen.subject.human_friendly for c in signed_data["certificates"]]
    assert any("Punjab Time-Stamping Authority" in c for c in certificates), certificates


def test_openssl_ts_verifies_a_time_stamp_from_the_tsa_endpoint(
    web: TestClient, desk: Desk, tmp_path: Path
) -> None:
    data = tmp_path / "minutes.txt"
    data.write_bytes(b"the committee met at ten\n")
    query = tmp_path / "q.tsq"
    subprocess.run([openssl(), "ts", "-query", "-data", str(data), "-sha256", "-cert",
                    "-out", str(query)], check=True)  # fmt: skip
    refused = web.post("/pki/tsa", content=query.read_bytes())
    assert refused.status_code == 415
    answer = web.post("/pki/tsa", content=query.read_bytes(),
                      headers={"content-type": "application/timestamp-query"})  # fmt: skip
    assert answer.headers["content-type"] == "application/timestamp-reply"
    reply = tmp_path / "r.tsr"
    reply.write_bytes(answer.content)
    pems = []
    for name in ("root", "issuing"):
        der = tmp_path / f"{name}.der"
        der.write_bytes(web.get(f"/pki/{name}-ca.crt").content)
        subprocess.run([openssl(), "x509", "-inform", "DER", "-in", str(der), "-out",
                        str(der.with_suffix(".pem"))], check=True)  # fmt: skip
        pems.append(der.with_suffix(".pem"))
    verified = subprocess.run(
        [openssl(), "ts", "-verify", "-data", str(data), "-in", str(reply),
         "-CAfile", str(pems[0]), "-untrusted", str(pems[1])],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "Verification: OK" in verified.stdout, verified.stdout + verified.stderr


def test_a_signed_order_lands_in_the_teachers_locker_sealed_by_its_signer(
    web: TestClient, desk: Desk, oidc_runtime: Runtime
) -> None:
    unregistered = web.post("/signing/orders/transfer", json=ORDER,
                            headers={"Authorization": f"Bearer {desk.token}"})  # fmt: skip
    assert unregistered.headers["shanakht-locker"].startswith("not-delivered; the teacher has no")
    record = read_registry(oidc_runtime.identity.nadra_file)[SCENARIOS["active_female"]]
    register_citizen(oidc_runtime, record)
    order = {**ORDER, "order_no": "SED/TR/2026/004513", "teacher_cnic": record.cnic}
    signed = web.post("/signing/orders/transfer", json=order,
                      headers={"Authorization": f"Bearer {desk.token}"})  # fmt: skip
    assert signed.status_code == 201, signed.text
    delivered = signed.headers["shanakht-locker"]
    assert delivered.startswith("delivered; document=")
    teacher = pseudonym(record.cnic, key=oidc_runtime.pseudonym_key)
    with oidc_runtime.transaction() as session:
        document, content = oidc_runtime.locker(session).open(
            delivered.split("=")[1], owner=teacher, who=Accessor(teacher, "citizen", "owner")
        )
        assert b"".join(content) == signed.content
        seal = seal_status(oidc_runtime, session, document)
    assert (document.doctype, document.uri) == ("tto", "sed-tto-SED/TR/2026/004513")
    assert seal is not None
    assert seal["verified"] is True
    assert "An Officer" in seal["signer"]


def test_an_order_its_department_revokes_in_the_locker_verifies_as_revoked(
    web: TestClient, desk: Desk, oidc_runtime: Runtime, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """Signed and delivered into the teacher's locker by `POST /signing/orders/transfer`, then
    revoked by its department there: its text, its PDF and `shanakht verify` on the server all
    say revoked, with the department's reason; the other order, not revoked, stays authentic."""
    record = read_registry(oidc_runtime.identity.nadra_file)[SCENARIOS["active_female"]]
    register_citizen(oidc_runtime, record)
    kept, withdrawn = "SED/TR/2026/004514", "SED/TR/2026/004515"
    pdfs, texts = {}, {}
    for number in (kept, withdrawn):
        response = web.post("/signing/orders/transfer",
                            json={**ORDER, "order_no": number, "teacher_cnic": record.cnic},
                            headers={"Authorization": f"Bearer {desk.token}"})  # fmt: skip
        assert response.status_code == 201, response.text
        assert response.headers["shanakht-locker"].startswith("delivered; document=")
        pdfs[number] = response.content
        work = tmp_path / number.replace("/", "-")
        work.mkdir()
        texts[number] = _qr_text(response.content, work)
    assert web.post("/signing/verify", json={"payload": texts[withdrawn]}).json()["authentic"]
    with oidc_runtime.transaction() as session:
        oidc_runtime.locker(session).revoke(
            issuer="sed", issuer_doc_id=withdrawn, reason="Cancelled on appeal",
            who=Accessor("officer:test", "sed", "issuer"),
        )  # fmt: skip
    for verdict in (
        web.post("/signing/verify", json={"payload": texts[withdrawn]}).json(),
        _verify_file(web, pdfs[withdrawn], "order.pdf"),
    ):
        assert verdict["outcome"] == "revoked", verdict
        assert verdict["authentic"] is False
        assert "has revoked it" in verdict["reason"]
        assert "Cancelled on appeal" not in str(verdict), "the department's words stay its own"
        assert verdict["revocation"]["revoked_at"].startswith(str(oidc_runtime.clock().year))
    for verdict in (
        web.post("/signing/verify", json={"payload": texts[kept]}).json(),
        _verify_file(web, pdfs[kept], "order.pdf"),
    ):
        assert verdict["outcome"] == "authentic", verdict
        assert "revocation" not in verdict
    (tmp_path / "withdrawn.pdf").write_bytes(pdfs[withdrawn])
    code, output = run(cli_env, "verify", str(tmp_path / "withdrawn.pdf"))
    assert code == 11, output
    assert output.startswith("REVOKED: The office that issued this document has revoked it")
    assert "revoked on: " in output
    assert "Cancelled on appeal" not in output, "a verifier learns when, not the department's why"
    (tmp_path / "kept.pdf").write_bytes(pdfs[kept])
    code, output = run(cli_env, "verify", str(tmp_path / "kept.pdf"))
    assert code == 0, output


def test_the_qr_dictionary_is_published_for_outside_verifiers(
    web: TestClient, desk: Desk, tmp_path: Path
) -> None:
    text = _qr_text(_sign(web, desk), tmp_path)
    published = web.get("/signing/qr-dictionary")
    compressed = base45.b45decode(text.removeprefix("SHK1:"))
    assert int.from_bytes(compressed[2:6], "big") == int(
        published.headers["shanakht-dictionary-id"], 16
    )
    cose = zlib.decompressobj(zdict=published.content).decompress(compressed)
    assert cbor2.loads(cose).tag == 18, "any zlib reads the code with the published dictionary"
