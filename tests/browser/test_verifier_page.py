"""The verifier's page in a real browser: a headmaster at the school gate checks a teacher's
transfer order by pasting its code's text, uploading the PDF or a photo of the code, or
scanning it with the camera, in English and in Urdu, on a desk and on a phone, with and
without scripts.

The order is real (`signed_order`: the PKI, an officer and a QR signer in the served runtime).
The camera is Chromium's fake capture device playing a Y4M video made here of the order's
code: qr-scanner, served by the app, reads it in the page (in its worker, started from a
blob: URL under the page's own CSP, since Linux Chromium has no BarcodeDetector) and the
page posts the text for the server's verdict.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, ViewportSize, expect

from api.runtime import Runtime
from tests.browser.conftest import CHROMIUM, assert_accessible
from tests.http.test_verifier_page import (
    ORDER,
    REVOCATION_REASON,
    TEACHER,
    SignedOrder,
    blurred,
    deliver,
    noise_png,
    png_of_qr,
    revoke,
    revoke_order,
    signed_order,
)


@pytest.fixture
def order(site_runtime: Runtime, tmp_path: Path) -> SignedOrder:
    """Signed in a thread of its own: Playwright's loop runs in this one, and pyHanko will not
    run its own beside it."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(signed_order, site_runtime, tmp_path).result()


def _fits(page: Page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{page.url} is {overflow}px wider than the screen"


def _paste(page: Page, text: str) -> None:
    page.goto("/verify")
    page.get_by_label("Text of the QR code").fill(text)
    page.get_by_role("button", name="Check the text").click()
    page.wait_for_selector("#verdict")


def _upload(page: Page, name: str, data: bytes, mime: str) -> None:
    page.goto("/verify")
    page.get_by_label("Photo (PNG or JPEG) or PDF").set_input_files(
        {"name": name, "mimeType": mime, "buffer": data}
    )
    page.get_by_role("button", name="Check the file").click()
    page.wait_for_selector("#verdict")


def _fact(page: Page, label: str) -> str:
    return page.locator(f"#facts dt:text-is('{label}') + dd").inner_text()


@pytest.mark.parametrize("page", ["desktop", "phone"], indirect=True)
def test_a_pasted_order_is_authentic_with_its_fields(page: Page, order: SignedOrder) -> None:
    page.goto("/verify")
    assert_accessible(page)
    _fits(page)
    _paste(page, order.payload)
    verdict = page.get_by_role("heading", level=1)
    expect(verdict).to_have_text("✔ Authentic")
    expect(verdict).to_have_attribute("data-outcome", "authentic")
    assert _fact(page, "Order number") == ORDER["order_no"]
    assert _fact(page, "Teacher") == TEACHER
    assert _fact(page, "From school") == ORDER["from_school"]
    assert _fact(page, "To school") == ORDER["to_school"]
    assert _fact(page, "Code signed by").startswith("SED QR signer")
    assert_accessible(page)
    _fits(page)


def test_an_altered_code_and_a_revoked_signer(
    page: Page, order: SignedOrder, site_runtime: Runtime
) -> None:
    _paste(page, order.altered())
    expect(page.locator("#verdict")).to_have_attribute("data-outcome", "altered")
    expect(page.locator("#verdict")).to_have_text("✖ Altered")
    expect(page.locator("#facts")).to_have_count(0)
    assert_accessible(page)
    revoke(site_runtime, order.qr_serial)
    _paste(page, order.payload)
    expect(page.locator("#verdict")).to_have_text("✖ Revoked")
    expect(page.get_by_text(TEACHER)).to_have_count(0)
    assert_accessible(page)


def test_an_order_its_department_revoked(
    page: Page, order: SignedOrder, site_runtime: Runtime
) -> None:
    deliver(site_runtime, order)
    _paste(page, order.payload)
    expect(page.locator("#verdict")).to_have_text("✔ Authentic")
    revoke_order(site_runtime)
    _paste(page, order.payload)
    expect(page.locator("#verdict")).to_have_attribute("data-outcome", "revoked")
    expect(page.locator("#verdict")).to_have_text("✖ Revoked")
    expect(page.locator("#reason")).to_have_text(
        "The office that issued this document has revoked it: it is no longer in force."
    )
    assert _fact(page, "Revoked on").endswith("PKT")
    expect(page.get_by_text(REVOCATION_REASON)).to_have_count(0)  # the office's words stay its
    expect(page.get_by_text(TEACHER)).to_have_count(0)
    assert_accessible(page)
    _upload(page, "order.pdf", order.pdf, "application/pdf")
    expect(page.locator("#verdict")).to_have_text("✖ Revoked")
    expect(page.get_by_text(REVOCATION_REASON)).to_have_count(0)


def test_an_unknown_issuer(page: Page, order: SignedOrder) -> None:
    _paste(page, order.stranger())
    expect(page.locator("#verdict")).to_have_text("✖ Unknown issuer")


@pytest.mark.parametrize("page", ["desktop", "phone"], indirect=True)
def test_the_pdf_and_a_photo_of_its_code_are_authentic(page: Page, order: SignedOrder) -> None:
    _upload(page, "order.pdf", order.pdf, "application/pdf")
    expect(page.locator("#verdict")).to_have_text("✔ Authentic")
    assert _fact(page, "Teacher") == TEACHER
    expect(page.locator("#checks dt:text-is('Signature on the PDF') + dd")).to_have_text("valid")
    assert_accessible(page)
    _fits(page)
    _upload(page, "photo.png", png_of_qr(order.payload), "image/png")
    expect(page.locator("#verdict")).to_have_text("✔ Authentic")
    assert _fact(page, "Order number") == ORDER["order_no"]


def test_a_qr_code_that_is_not_ours(page: Page, order: SignedOrder) -> None:
    _upload(page, "url.png", png_of_qr("https://example.com/transfer/4512"), "image/png")
    expect(page.locator("#verdict")).to_have_text("⚠ Not a Shanakht document")
    assert_accessible(page)


@pytest.mark.parametrize("kind", ["blurred", "noise"])
def test_a_blurred_or_noisy_photo_cannot_be_read(page: Page, order: SignedOrder, kind: str) -> None:
    data = blurred(png_of_qr(order.payload)) if kind == "blurred" else noise_png()
    _upload(page, "photo.png", data, "image/png")
    expect(page.locator("#verdict")).to_have_text("⚠ Cannot read")
    expect(page.get_by_text("No QR code could be read on it.")).to_be_visible()
    assert_accessible(page)


def test_an_empty_paste_is_said_beside_the_field(page: Page, order: SignedOrder) -> None:
    page.goto("/verify")
    # The browser's own check (required) is bypassed, as an old browser would.
    page.evaluate("document.getElementById('payload').removeAttribute('required')")
    page.get_by_role("button", name="Check the text").click()
    expect(page.locator("#payload-error")).to_be_visible()
    expect(page.locator("#payload")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page)


@pytest.mark.parametrize("page", ["desktop", "phone"], indirect=True)
def test_the_page_and_its_verdict_in_urdu(page: Page, order: SignedOrder) -> None:
    page.goto("/lang/ur?next=/verify")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.get_by_role("heading", level=1)).to_have_text("دستاویز کی تصدیق کریں")
    assert_accessible(page)
    _fits(page)
    page.get_by_label("کیو آر کوڈ کی عبارت").fill(order.payload)
    page.get_by_role("button", name="عبارت جانچیں").click()
    expect(page.locator("#verdict")).to_have_text("✔ مستند")
    expect(page.locator("#facts dt:text-is('استاد') + dd")).to_have_text(TEACHER)
    assert_accessible(page)
    _fits(page)


def test_upload_and_paste_work_without_scripts(
    chromium: Browser, base_url: str, order: SignedOrder
) -> None:
    context = chromium.new_context(base_url=base_url, java_script_enabled=False)
    try:
        page = context.new_page()
        _paste(page, order.payload)
        expect(page.locator("#verdict")).to_have_text("✔ Authentic")
        _upload(page, "order.pdf", order.pdf, "application/pdf")
        expect(page.locator("#verdict")).to_have_text("✔ Authentic")
        page.goto("/verify")
        expect(page.locator("#camera")).to_be_hidden()  # nothing there works without scripts
    finally:
        context.close()


# -- the camera ---------------------------------------------------------------------------------


def y4m_of(image: Image.Image, path: Path, frames: int = 4) -> Path:
    """`image` as a short Y4M video (4:2:0, 10 frames a second), which Chromium's fake
    capture device plays in a loop as the camera."""
    width, height = image.size
    y, cb, cr = image.convert("YCbCr").split()
    half = (width // 2, height // 2)
    frame = (
        b"FRAME\n"
        + y.tobytes()
        + cb.resize(half, Image.Resampling.BOX).tobytes()
        + cr.resize(half, Image.Resampling.BOX).tobytes()
    )
    header = f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode()
    path.write_bytes(header + frame * frames)
    return path


def _scene(png: bytes, size: tuple[int, int] = (1280, 720)) -> Image.Image:
    """The code as a phone held over the paper sees it: on white, in the middle."""
    code = Image.open(io.BytesIO(png)).convert("RGB")
    scene = Image.new("RGB", size, (250, 250, 245))
    scene.paste(code, ((size[0] - code.width) // 2, (size[1] - code.height) // 2))
    return scene


@pytest.fixture
def camera(chromium: Browser, tmp_path: Path, order: SignedOrder) -> Iterator[Browser]:
    """A Chromium of its own, whose camera shows the order's QR code (launched by the shared
    browser's Playwright: one Playwright runs per process)."""
    video = y4m_of(_scene(png_of_qr(order.payload, box=6)), tmp_path / "camera.y4m")
    browser = chromium.browser_type.launch(
        executable_path=CHROMIUM,
        args=[
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ],
    )
    yield browser
    browser.close()


@pytest.mark.parametrize(
    "viewport",
    [ViewportSize(width=1280, height=900), ViewportSize(width=360, height=740)],
    ids=["desktop", "phone"],
)
def test_the_camera_reads_the_code_and_the_server_judges_it(
    camera: Browser, base_url: str, order: SignedOrder, viewport: ViewportSize
) -> None:
    context = camera.new_context(base_url=base_url, viewport=viewport, permissions=["camera"])
    try:
        page = context.new_page()
        refused: list[str] = []
        page.on(
            "console",
            lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
        )
        page.goto("/verify")
        start = page.get_by_role("button", name="Start the camera")
        expect(start).to_be_visible()
        assert_accessible(page)
        start.click()
        page.wait_for_selector("#verdict", timeout=30_000)
        expect(page.locator("#verdict")).to_have_text("✔ Authentic")
        assert _fact(page, "Teacher") == TEACHER
        assert "You gave the text of the code." in page.content()
        assert refused == [], refused
    finally:
        context.close()
