"""No byte of a file uploaded through the pages is written to disk in plaintext (threat model
item 15): a large file (over Starlette's 1 MB spooling threshold) carrying a marker goes
through the citizen's upload, the officer's issue and the bulk ZIP pages, with the temporary
folder pointed at this test's own. While the locker stores it (the store's writes watched), at
the CSRF check, and after, the marker is in no file under the temporary folder or the data
directory, nor in any file this process holds open, a nameless temporary one included (as
Starlette's spooled uploads were). Refused forms (too large, cut short, without their CSRF
token) store nothing, start nothing and leave nothing behind either."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tempfile
import uuid
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import func, select

from api.routes import locker_pages, officer_bulk, officer_locker
from api.runtime import Runtime
from api.web import check_csrf
from locker.models import documents, jobs
from locker.stores import ObjectStore
from tests.http.oidc_kit import csrf_of
from tests.http.test_locker_pages import Lockers, seed_lockers
from tests.http.test_locker_pages import sign_in as citizen_signs_in
from tests.http.test_officer_pages import Office, owner_of, set_up_office, sign_in

MARKER = b"PLAINTEXT-UPLOAD-MARKER-" + uuid.uuid4().hex.encode()
BOUNDARY = "shanakht-test-5b1c"
SIZE = 3 * 1024 * 1024


def marked_pdf() -> bytes:
    half = os.urandom(SIZE // 2)
    return b"%PDF-1.7\n" + half + MARKER + half[::-1] + b"\n%%EOF\n"


# -- where plaintext could be -------------------------------------------------------------------


def _holds(path: str, marker: bytes) -> bool:
    try:
        with open(path, "rb") as file:
            tail = b""
            while block := file.read(1024 * 1024):
                if marker in tail + block:
                    return True
                tail = block[-len(marker) :]
    except OSError:
        return False
    return False


def open_files() -> Iterator[tuple[str, str]]:
    """Every regular file this process has open: a path to read it by, and what it names
    (a file deleted or never named reads all the same through /proc)."""
    for fd in os.listdir("/proc/self/fd"):
        link = f"/proc/self/fd/{fd}"
        try:
            if stat.S_ISREG(os.stat(link).st_mode):
                yield link, os.readlink(link)
        except OSError:
            continue


def plaintext_on_disk(folders: Iterable[Path], marker: bytes = MARKER) -> list[str]:
    found = [
        str(p) for f in folders for p in f.rglob("*") if p.is_file() and _holds(str(p), marker)
    ]
    return found + [name for link, name in open_files() if _holds(link, marker)]


class Watch:
    """Looks for the marker on disk while the locker stores (after the first chunk of
    ciphertext, part way, and once the content has all been read) and at the CSRF check."""

    def __init__(self, folders: list[Path]) -> None:
        self.folders = folders
        self.found: list[str] = []
        self.looks = 0

    def look(self) -> None:
        self.looks += 1
        self.found += plaintext_on_disk(self.folders)

    def stream(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for index, chunk in enumerate(chunks):
            yield chunk
            if index in (1, 20):
                self.look()
        self.look()


class WatchedStore:
    """The runtime's store, its writes watched."""

    def __init__(self, store: ObjectStore, watch: Watch) -> None:
        self._store, self._watch = store, watch

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        return self._store.put(key, self._watch.stream(chunks))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@pytest.fixture
def watch(oidc_runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Watch:
    """The temporary folder pointed at this test's own, and the store and CSRF check watched."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    watching = Watch([temporary, oidc_runtime.settings.data_dir])
    monkeypatch.setattr(oidc_runtime, "store", WatchedStore(oidc_runtime.store, watching))

    def checked(*args: Any) -> None:
        watching.look()
        check_csrf(*args)

    for module in (locker_pages, officer_locker, officer_bulk):
        monkeypatch.setattr(module, "check_csrf", checked)
    return watching


def nothing_left(runtime: Runtime, watch: Watch) -> None:
    """No plaintext anywhere now, no spool of ours still open, no scrap in the store."""
    assert plaintext_on_disk(watch.folders) == []
    temporary = str(watch.folders[0])
    assert [n for _, n in open_files() if n.startswith(temporary)] == []
    objects = runtime.settings.data_dir / "objects"
    assert [p.name for p in objects.rglob("*") if p.is_file() and ".tmp" in p.name] == []


def multipart(fields: dict[str, str], file: tuple[str, bytes, str], *, close: bool = True) -> bytes:
    out = bytearray()
    for name, value in fields.items():
        out += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    name, content, kind = file
    out += (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: {kind}\r\n\r\n"
    ).encode()
    out += content + b"\r\n"
    if close:
        out += f"--{BOUNDARY}--\r\n".encode()
    return bytes(out)


def post_raw(web: TestClient, path: str, body: bytes) -> Response:
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    return web.post(path, content=body, headers=headers, follow_redirects=False)


def count(runtime: Runtime, table: Any) -> int:
    with runtime.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def limit_to(runtime: Runtime, monkeypatch: pytest.MonkeyPatch, size: int) -> None:
    smaller = runtime.settings.model_copy(update={"locker_max_bytes": size})
    monkeypatch.setattr(runtime, "settings", smaller)


# -- the citizen's upload -----------------------------------------------------------------------


@pytest.fixture
def lockers(oidc_runtime: Runtime, tmp_path: Path) -> Lockers:
    return seed_lockers(oidc_runtime, tmp_path / "root")


@pytest.fixture
def me(web: TestClient, lockers: Lockers) -> TestClient:
    citizen_signs_in(web, lockers.cnic)
    return web


def _citizen_form(web: TestClient, csrf: bool = True) -> dict[str, str]:
    token = {"csrf": csrf_of(web.get("/documents").text)} if csrf else {}
    return {**token, "title": "Degree", "doctype": "other"}


def test_a_citizens_large_upload_is_never_on_disk_in_plaintext(
    me: TestClient, oidc_runtime: Runtime, watch: Watch
) -> None:
    content = marked_pdf()
    done = me.post("/documents", data=_citizen_form(me),
                   files={"file": ("degree.pdf", content, "application/pdf")},
                   follow_redirects=False)  # fmt: skip
    assert done.status_code == 303, done.text
    assert watch.looks >= 4  # the CSRF check, and three while the locker stored it
    assert watch.found == []
    nothing_left(oidc_runtime, watch)
    page = done.headers["location"].split("?")[0]
    assert me.get(f"{page}/content").content == content  # every byte, parsed as it arrived


@pytest.mark.parametrize("refusal", ["too large", "cut short", "no csrf"])
def test_a_refused_citizens_upload_stores_nothing_and_leaves_nothing(
    me: TestClient,
    lockers: Lockers,
    oidc_runtime: Runtime,
    watch: Watch,
    monkeypatch: pytest.MonkeyPatch,
    refusal: str,
) -> None:
    content = marked_pdf()
    before, keys = count(oidc_runtime, documents), sorted(oidc_runtime.store.keys())
    form = _citizen_form(me, csrf=refusal != "no csrf")
    if refusal == "too large":  # declared within the limit's slack: found so as it streams
        limit_to(oidc_runtime, monkeypatch, len(content) - 32 * 1024)
    body = multipart(form, ("degree.pdf", content, "application/pdf"), close=refusal != "cut short")
    refused = post_raw(me, "/documents", body)
    status, says = {
        "too large": (413, "too large"),
        "cut short": (400, "did not arrive whole"),
        "no csrf": (403, "The form has expired"),
    }[refusal]
    assert refused.status_code == status, refused.text
    assert says in refused.text
    assert count(oidc_runtime, documents) == before
    assert sorted(oidc_runtime.store.keys()) == keys
    assert watch.looks >= 1
    assert watch.found == []
    nothing_left(oidc_runtime, watch)


def test_a_citizens_form_sending_its_file_before_its_fields_is_refused(
    me: TestClient, oidc_runtime: Runtime, watch: Watch
) -> None:
    """The page checks the fields before it takes a byte of the file, so they come first (as
    the page's own form sends them); a field after the file is a form it does not take."""
    form = _citizen_form(me)
    body = multipart({"csrf": form["csrf"]}, ("a.pdf", b"%PDF-1.7\n%%EOF", "application/pdf"))
    late = body.replace(
        f"--{BOUNDARY}--".encode(),
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="title"\r\n\r\nLate\r\n'
        f"--{BOUNDARY}--".encode(),
    )
    before = count(oidc_runtime, documents)
    refused = post_raw(me, "/documents", late)
    assert refused.status_code == 400
    assert "did not arrive whole" in refused.text
    assert count(oidc_runtime, documents) == before


# -- the officer's pages ------------------------------------------------------------------------


@pytest.fixture
def officer(web: TestClient, oidc_runtime: Runtime, tmp_path: Path) -> Office:
    office = set_up_office(oidc_runtime, tmp_path / "root")
    sign_in(web, oidc_runtime, office.officer, code=False)
    return office


def _issue_form(web: TestClient, office: Office, csrf: bool = True) -> dict[str, str]:
    token = {"csrf": csrf_of(web.get("/officer/lgcd/issue").text)} if csrf else {}
    return {**token, "doctype": "birth", "cnic": office.citizen.cnic, "doc_id": "BC/9",
            "title": "Birth certificate", "valid_until": ""}  # fmt: skip


def _lockers_documents(runtime: Runtime, office: Office) -> list[Any]:
    with runtime.transaction() as session:
        return runtime.locker(session).list(owner_of(runtime, office.citizen.cnic))


def test_an_officers_large_issue_is_never_on_disk_in_plaintext(
    web: TestClient, oidc_runtime: Runtime, officer: Office, watch: Watch
) -> None:
    content = marked_pdf()
    done = web.post("/officer/lgcd/issue", data=_issue_form(web, officer),
                    files={"file": ("birth.pdf", content, "application/pdf")},
                    follow_redirects=False)  # fmt: skip
    assert done.status_code == 303, done.text
    assert watch.looks >= 4
    assert watch.found == []
    nothing_left(oidc_runtime, watch)
    (issued,) = _lockers_documents(oidc_runtime, officer)
    assert (issued.size, issued.sha256) == (len(content), hashlib.sha256(content).digest())


@pytest.mark.parametrize("refusal", ["too large", "cut short", "no csrf"])
def test_a_refused_officers_issue_stores_nothing_and_leaves_nothing(
    web: TestClient,
    oidc_runtime: Runtime,
    officer: Office,
    watch: Watch,
    monkeypatch: pytest.MonkeyPatch,
    refusal: str,
) -> None:
    content = marked_pdf()
    keys = sorted(oidc_runtime.store.keys())
    form = _issue_form(web, officer, csrf=refusal != "no csrf")
    if refusal == "too large":
        limit_to(oidc_runtime, monkeypatch, len(content) - 32 * 1024)
    body = multipart(form, ("birth.pdf", content, "application/pdf"), close=refusal != "cut short")
    refused = post_raw(web, "/officer/lgcd/issue", body)
    status, says = {
        "too large": (400, "The file is too large"),
        "cut short": (400, "did not arrive whole"),
        "no csrf": (403, "The form has expired"),
    }[refusal]
    assert refused.status_code == status, refused.text
    assert says in refused.text
    assert _lockers_documents(oidc_runtime, officer) == []
    assert sorted(oidc_runtime.store.keys()) == keys
    assert watch.found == []
    nothing_left(oidc_runtime, watch)


def _batch(office: Office, content: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:  # the marker as it is
        archive.writestr(
            "manifest.csv",
            f"cnic,doc_id,doctype,title,file\n{office.citizen.cnic},BC/7,birth,Birth,big.pdf\n",
        )
        archive.writestr("big.pdf", content)
    return out.getvalue()


def _bulk_csrf(web: TestClient) -> dict[str, str]:
    return {"csrf": csrf_of(web.get("/officer/lgcd/bulk").text)}


def test_a_large_batch_is_never_on_disk_in_plaintext(
    web: TestClient, oidc_runtime: Runtime, officer: Office, watch: Watch
) -> None:
    content = marked_pdf()
    batch = _batch(officer, content)
    assert MARKER in batch
    sent = web.post("/officer/lgcd/bulk", data=_bulk_csrf(web),
                    files={"file": ("batch.zip", batch, "application/zip")},
                    follow_redirects=False)  # fmt: skip
    assert sent.status_code == 303, sent.text
    job_id = sent.headers["location"].rsplit("/", 1)[1]
    officer_bulk.jobs_of(oidc_runtime)[job_id].wait(60)
    assert web.get(f"{sent.headers['location']}/progress").json()["status"] == "done"
    assert watch.looks >= 4  # at the CSRF check, and while the job stored the document
    assert watch.found == []
    nothing_left(oidc_runtime, watch)  # the spool is closed, so gone, with its job
    (issued,) = _lockers_documents(oidc_runtime, officer)
    assert (issued.size, issued.sha256) == (len(content), hashlib.sha256(content).digest())


@pytest.mark.parametrize("refusal", ["too large", "cut short", "no csrf"])
def test_a_refused_batch_starts_nothing_and_leaves_nothing(
    web: TestClient,
    oidc_runtime: Runtime,
    officer: Office,
    watch: Watch,
    monkeypatch: pytest.MonkeyPatch,
    refusal: str,
) -> None:
    batch = _batch(officer, marked_pdf())
    if refusal == "too large":  # the ZIP's cap, passed as it streams into the spool
        monkeypatch.setattr(officer_bulk, "MAX_TOTAL_BYTES", len(batch) - 1000)
    form = _bulk_csrf(web) if refusal != "no csrf" else {}
    body = multipart(form, ("batch.zip", batch, "application/zip"), close=refusal != "cut short")
    refused = post_raw(web, "/officer/lgcd/bulk", body)
    status, says = {
        "too large": (400, "The ZIP is too large"),
        "cut short": (400, "did not arrive whole"),
        "no csrf": (403, "The form has expired"),
    }[refusal]
    assert refused.status_code == status, refused.text
    assert says in refused.text
    assert count(oidc_runtime, jobs) == 0
    assert officer_bulk.jobs_of(oidc_runtime) == {}
    assert _lockers_documents(oidc_runtime, officer) == []
    assert watch.found == []
    nothing_left(oidc_runtime, watch)


def test_a_broken_body_gets_each_pages_400_not_a_crash(
    web: TestClient, oidc_runtime: Runtime, officer: Office
) -> None:
    garbage = f"--{BOUNDARY}\r\nno header here\r\n\r\n".encode() + os.urandom(2000)
    for path in ("/officer/lgcd/issue", "/officer/lgcd/bulk"):
        refused = post_raw(web, path, garbage)
        assert refused.status_code == 400, (path, refused.text)
        assert "did not arrive whole" in refused.text
        assert 'name="csrf"' in refused.text  # the form again, to send once more
    citizen_signs_in(web, officer.citizen.cnic)
    refused = post_raw(web, "/documents", garbage)
    assert refused.status_code == 400
    assert "did not arrive whole" in refused.text
    assert count(oidc_runtime, documents) == 0
