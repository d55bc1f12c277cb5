"""The citizen's locker pages through the app: documents with their badges, uploads refused
beside the field for each reason, share links, deletion, nominees; another citizen's document
is a 404 page, and a form without its CSRF token is a 403 that changes nothing."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import func, select

from api.local_time import day
from api.routes.locker import department_seal, issue_sealed
from api.runtime import Runtime
from audit import pseudonym
from audit.models import entries
from identity.cnic import normalise_cnic
from identity.nadra import SCENARIOS, read_registry
from locker.access import Accessor
from locker.doctypes import document_type
from locker.models import documents
from signing.pki.authority import Subject
from signing.pki.custody import create_root
from signing.pki.profiles import DEPARTMENT_SEAL
from tests.http.oidc_kit import (
    HOSTILE,
    PASSWORD,
    assert_escaped,
    csrf_of,
    register_citizen,
    rename_in_registry,
)
from tests.http.test_telemetry import sample

PDF = b"%PDF-1.7\n" + os.urandom(50_000) + b"\n%%EOF\n"
SMALL = b"%PDF-1.7\n%%EOF\n"


@dataclass(frozen=True)
class Lockers:
    """Two citizens with accounts; the first holds a sealed birth certificate from lgcd and
    a domicile certificate from home that expires in ten days."""

    cnic: str
    other_cnic: str
    birth: str
    domicile: str


def seed_office(runtime: Runtime, root_dir: Path) -> None:
    """A PKI with a root, and seals for lgcd and home (departments with names)."""
    root = create_root(root_dir, "a long test passphrase", common_name="Test Root",
                       now=runtime.clock())  # fmt: skip
    with runtime.transaction() as session:
        roles = runtime.provider(session).roles
        roles.add_department("lgcd", "Local Government")
        roles.add_department("home", "Home Department")
        authority = runtime.authority(session)
        authority.initialise(root, actor="admin:test")
        authority.issue(DEPARTMENT_SEAL, Subject("LGCD seal", "lgcd"), actor="admin:test")
        authority.issue(DEPARTMENT_SEAL, Subject("Home seal", "home"), actor="admin:test")


def issue(
    runtime: Runtime,
    cnic: str,
    doctype: str,
    doc_id: str,
    title: str,
    content: bytes = PDF,
    valid_until: datetime | None = None,
) -> str:
    """Issue a sealed document into `cnic`'s locker as its department's system would."""
    kind = document_type(doctype)
    owner = pseudonym(normalise_cnic(cnic), key=runtime.pseudonym_key)
    with runtime.transaction() as session:
        seal = department_seal(runtime, session, kind.department)
        assert seal is not None
        issued = issue_sealed(
            runtime, session, kind, seal, owner=owner, doc_id=doc_id, title=title,
            valid_until=valid_until, content=[content], content_type="application/pdf",
            who=Accessor(f"client:{kind.department}-system", kind.department, "issuer"),
        )  # fmt: skip
        return issued.document.id


def seed_lockers(runtime: Runtime, root_dir: Path) -> Lockers:
    seed_office(runtime, root_dir)
    registry = read_registry(runtime.identity.nadra_file)
    cnic, other_cnic = SCENARIOS["active_male"], SCENARIOS["active_female"]
    for each in (cnic, other_cnic):
        register_citizen(runtime, registry[each])
    birth = issue(runtime, cnic, "birth", "BC/2026/0001", "Birth certificate")
    soon = runtime.clock() + timedelta(days=10)
    domicile = issue(runtime, cnic, "dom", "DOM/77", "Domicile", valid_until=soon)
    return Lockers(cnic, other_cnic, birth, domicile)


def sign_in(web: TestClient, cnic: str) -> None:
    web.cookies.clear()
    page = web.get("/login")
    done = web.post("/login", data={"csrf": csrf_of(page.text), "cnic": cnic,
                                    "password": PASSWORD}, follow_redirects=False)  # fmt: skip
    assert done.status_code == 303, done.text


@pytest.fixture
def lockers(oidc_runtime: Runtime, tmp_path: Path) -> Lockers:
    return seed_lockers(oidc_runtime, tmp_path / "root")


@pytest.fixture
def me(web: TestClient, lockers: Lockers) -> TestClient:
    """The first citizen, signed in."""
    sign_in(web, lockers.cnic)
    return web


def _csrf(web: TestClient, path: str = "/documents") -> str:
    return csrf_of(web.get(path).text)


def _upload(web: TestClient, name: str, content: bytes, mime: str, **fields: str) -> Any:
    form = {"csrf": _csrf(web), "title": "My degree", "doctype": "other", **fields}
    return web.post("/documents", data=form, files={"file": (name, content, mime)},
                    follow_redirects=False)  # fmt: skip


def _field_error(html: str, name: str) -> str:
    found = re.search(rf'<p class="field-error" id="{name}-error">([^<]*)</p>', html)
    assert found, f"no error beside {name}"
    return found.group(1)


def _limit(runtime: Runtime, size: int) -> None:
    runtime.settings = runtime.settings.model_copy(update={"locker_max_bytes": size})


def _count(runtime: Runtime, table: Any) -> int:
    with runtime.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def _log(runtime: Runtime) -> bytes:
    with runtime.sessions() as session:
        return b"".join(session.execute(select(entries.c.entry)).scalars())


def test_signing_in_is_needed_and_brings_the_citizen_back(web: TestClient) -> None:
    page = web.get("/documents", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2Fdocuments"


def test_the_list_shows_badges_issuers_and_uploads_newest_first(
    me: TestClient, lockers: Lockers
) -> None:
    page = me.get("/documents")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.text.count('<span class="badge ok">Verified</span>') == 2
    assert "Issued by Local Government" in page.text
    assert "Issued by Home Department" in page.text
    soon = day(datetime.now(UTC) + timedelta(days=10))  # pages say dates as Pakistan has them
    assert f"Expires soon: {soon}" in page.text
    assert page.text.index("Domicile") < page.text.index("Birth certificate</a>")
    made = _upload(me, "degree.pdf", PDF, "application/pdf")
    assert made.status_code == 303, made.text
    assert re.fullmatch(r"/documents/[a-p]{32}\?done=uploaded", made.headers["location"])
    after = me.get("/documents")
    assert after.text.index("My degree") < after.text.index("Domicile")
    assert "Uploaded by you" in after.text
    shown = me.get(made.headers["location"])
    assert "Your document is uploaded" in shown.text
    assert "documents you upload carry no issuer&#39;s seal" in shown.text
    assert b'"action":"locker.document.uploaded"' in _log(me.app.state.runtime)  # type: ignore[attr-defined]


def test_a_document_page_shows_its_facts_and_streams_its_content(
    me: TestClient, lockers: Lockers, oidc_runtime: Runtime
) -> None:
    page = me.get(f"/documents/{lockers.birth}")
    assert page.status_code == 200
    assert "LGCD seal" in page.text
    assert "script-src" not in page.headers["content-security-policy"]
    with oidc_runtime.sessions() as session:
        digest = session.execute(select(documents.c.id)).scalars().all()
    assert lockers.birth in digest
    preview = me.get(f"/documents/{lockers.birth}/content?disposition=inline")
    assert preview.status_code == 200
    assert preview.content == PDF
    assert preview.headers["content-disposition"].startswith("inline;")
    download = me.get(f"/documents/{lockers.birth}/content?disposition=attachment")
    assert download.content == PDF
    assert download.headers["content-disposition"].startswith("attachment;")
    assert "sandbox" in download.headers["content-security-policy"]
    assert _log(oidc_runtime).count(b'"action":"locker.document.read"') == 2
    assert PDF[:32].hex() not in page.text  # the page shows the digest, never the content


def test_page_uploads_and_downloads_count_as_locker_bytes(me: TestClient, lockers: Lockers) -> None:
    stored, served = _bytes(me, "in"), _bytes(me, "out")
    assert _upload(me, "notes.txt", b"hello", "text/plain").status_code == 400
    assert _bytes(me, "in") == stored, "a refused upload stores nothing"
    assert _upload(me, "a.pdf", SMALL, "application/pdf").status_code == 303
    assert _bytes(me, "in") == stored + len(SMALL)
    assert me.get(f"/documents/{lockers.birth}/content").content == PDF
    assert _bytes(me, "out") == served + len(PDF)


def _bytes(web: TestClient, direction: str) -> float:
    return sample(web, "shanakht_locker_bytes_total", direction=direction)


@pytest.mark.parametrize(
    ("name", "content", "mime", "fields", "status", "field", "says"),
    [
        ("", b"", "application/octet-stream", {}, 400, "file", "Choose a file to upload."),
        ("empty.pdf", b"", "application/pdf", {}, 400, "file", "That file is empty."),
        ("notes.txt", b"hello", "text/plain", {}, 400, "file", "Upload a PDF, PNG, JPEG"),
        ("fake.pdf", b"<html>", "application/pdf", {}, 422, "file", "is not a PDF, PNG"),
        ("big.pdf", b"%PDF-" + b"0" * 5000, "application/pdf", {}, 413, "file", "too large"),
        ("a.pdf", SMALL, "application/pdf", {"title": ""}, 400, "title", "Give the document"),
        ("a.pdf", SMALL, "application/pdf", {"title": "x" * 201}, 400, "title", "200 characters"),
        ("a.pdf", SMALL, "application/pdf", {"title": "CNIC 3520212345671"}, 400, "title", "CNIC"),
        ("a.pdf", SMALL, "application/pdf", {"doctype": "nope"}, 400, "doctype", "Choose one"),
    ],
)
def test_an_upload_that_cannot_be_kept_is_refused_beside_its_field(
    me: TestClient,
    lockers: Lockers,
    oidc_runtime: Runtime,
    name: str,
    content: bytes,
    mime: str,
    fields: dict[str, str],
    status: int,
    field: str,
    says: str,
) -> None:
    _limit(oidc_runtime, 4096)
    before = _count(oidc_runtime, documents)
    refused = _upload(me, name, content, mime, **{"title": "Kept title", **fields})
    assert refused.status_code == status, refused.text
    assert says in _field_error(refused.text, field)
    assert f'id="{field}"' in refused.text
    assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', refused.text)
    if "title" not in fields:
        assert 'value="Kept title"' in refused.text
    assert _count(oidc_runtime, documents) == before
    assert list(oidc_runtime.store.keys("documents/")) == [] or before > 0


def test_a_body_declared_far_too_large_is_refused_before_it_is_read(
    me: TestClient, lockers: Lockers, oidc_runtime: Runtime
) -> None:
    _limit(oidc_runtime, 1024)
    body = b"x" * 200_000
    refused = me.post("/documents", content=body, headers={
        "Content-Type": "multipart/form-data; boundary=zz"})  # fmt: skip
    assert refused.status_code == 413
    assert "too large" in _field_error(refused.text, "file")


def test_another_citizens_document_is_a_404_page(
    web: TestClient, lockers: Lockers, oidc_runtime: Runtime
) -> None:
    sign_in(web, lockers.other_cnic)
    assert "Birth certificate</a>" not in web.get("/documents").text
    csrf = _csrf(web)
    for answer in (
        web.get(f"/documents/{lockers.birth}"),
        web.get(f"/documents/{lockers.birth}/content?disposition=attachment"),
        web.get(f"/documents/{lockers.birth}/delete"),
        web.post(f"/documents/{lockers.birth}/delete", data={"csrf": csrf}),
        web.post(f"/documents/{lockers.birth}/shares", data={"csrf": csrf, "hours": "2"}),
        web.get(f"/documents/{'a' * 32}"),
    ):
        assert answer.status_code == 404
        assert answer.headers["content-type"].startswith("text/html")
        assert "No such document" in answer.text
        assert PDF[:20] not in answer.content
    assert b'"action":"locker.document.read"' not in _log(oidc_runtime)
    assert b"locker.share.created" not in _log(oidc_runtime)


def test_forms_without_their_csrf_token_are_refused_and_change_nothing(
    me: TestClient, lockers: Lockers, oidc_runtime: Runtime
) -> None:
    before = _log(oidc_runtime)
    for path, data in (
        ("/documents", {"title": "x", "doctype": "other"}),
        (f"/documents/{lockers.birth}/shares", {"hours": "2"}),
        (f"/documents/{lockers.birth}/delete", {}),
        (f"/documents/{lockers.birth}/shares/{'a' * 32}/revoke", {}),
        ("/nominees", {"cnic": lockers.other_cnic, "relation": "nominee"}),
        (f"/nominees/{'a' * 32}/remove", {}),
    ):
        for csrf in ({}, {"csrf": "forged"}):
            files = {"file": ("a.pdf", PDF, "application/pdf")} if path == "/documents" else None
            refused = me.post(path, data={**data, **csrf}, files=files)
            assert refused.status_code == 403, (path, refused.text)
            assert "The form has expired" in refused.text
    # Nothing changed: the log gained only the refusals themselves, 10 of the 12 (the cap per
    # account in 15 minutes, threat model item 12), and no other entry.
    after = _log(oidc_runtime)
    assert after.startswith(before)
    added = after[len(before) :]
    assert added.count(b'"action":"identity.csrf.refused"') == 10
    assert added.count(b'"action":') == 10


def test_a_share_link_is_shown_once_works_and_stops_when_revoked(
    me: TestClient, lockers: Lockers, oidc_runtime: Runtime
) -> None:
    path = f"/documents/{lockers.birth}/shares"
    for bad, field in (({"hours": "0"}, "hours"), ({"hours": "721"}, "hours"),
                       ({"hours": "two"}, "hours"), ({"hours": "2", "max_uses": "0"}, "max_uses"),
                       ({"hours": "2", "max_uses": "1001"}, "max_uses")):  # fmt: skip
        refused = me.post(path, data={"csrf": _csrf(me), **bad})
        assert refused.status_code == 400
        assert _field_error(refused.text, field)
    made = me.post(path, data={"csrf": _csrf(me), "hours": "2", "max_uses": "3"})
    assert made.status_code == 200
    url = re.search(r'id="share-url" readonly value="([^"]+)"', made.text).group(1)  # type: ignore[union-attr]
    assert url.startswith("https://shanakht.test/locker/shared/")
    shared = url.removeprefix("https://shanakht.test")
    assert shared not in me.get(f"/documents/{lockers.birth}").text, "shown once"
    me.cookies.clear()
    assert me.get(shared).content == PDF
    sign_in(me, lockers.cnic)
    listed = me.get(f"/documents/{lockers.birth}").text
    assert "1 of 3" in listed
    revoke = re.search(r'action="(/documents/[a-p]+/shares/[a-p]+/revoke)"', listed).group(1)  # type: ignore[union-attr]
    done = me.post(revoke, data={"csrf": _csrf(me)}, follow_redirects=False)
    assert done.status_code == 303
    assert "The link is revoked" in me.get(done.headers["location"]).text
    assert me.get(shared).status_code == 404
    assert b'"action":"locker.share.revoked"' in _log(oidc_runtime)


def test_only_uploads_are_deleted_and_only_after_confirming(
    me: TestClient, lockers: Lockers, oidc_runtime: Runtime
) -> None:
    issued = me.get(f"/documents/{lockers.birth}/delete")
    assert issued.status_code == 409
    assert "Issued documents cannot be deleted" in issued.text
    refused = me.post(f"/documents/{lockers.birth}/delete", data={"csrf": _csrf(me)})
    assert refused.status_code == 409
    assert "Issued documents cannot be deleted" in me.get(f"/documents/{lockers.birth}").text
    made = _upload(me, "scan.png", b"\x89PNG\r\n\x1a\n" + b"0" * 100, "image/png")
    document = made.headers["location"].split("?")[0]
    confirm = me.get(f"{document}/delete")
    assert confirm.status_code == 200
    assert "Yes, delete it" in confirm.text
    gone = me.post(f"{document}/delete", data={"csrf": csrf_of(confirm.text)},
                   follow_redirects=False)  # fmt: skip
    assert (gone.status_code, gone.headers["location"]) == (303, "/documents?done=deleted")
    assert me.get(document).status_code == 404
    assert b'"action":"locker.document.deleted"' in _log(oidc_runtime)


def test_a_nominee_is_named_by_cnic_and_reads_read_only_until_removed(
    web: TestClient, lockers: Lockers, oidc_runtime: Runtime
) -> None:
    sign_in(web, lockers.cnic)
    no_account = SCENARIOS["expired_card"]
    for cnic, says in (("12345", "Type the 13 digits"), (no_account, "no Shanakht account"),
                       (lockers.cnic, "cannot name yourself")):  # fmt: skip
        refused = web.post("/nominees", data={"csrf": _csrf(web, "/nominees"), "cnic": cnic,
                                              "relation": "nominee"})  # fmt: skip
        assert refused.status_code == 422
        assert says in _field_error(refused.text, "cnic")
        assert f'value="{cnic}"' in refused.text
    wrong = web.post("/nominees", data={"csrf": _csrf(web, "/nominees"), "cnic": lockers.other_cnic,
                                        "relation": "owner"})  # fmt: skip
    assert wrong.status_code == 422
    assert _field_error(wrong.text, "relation")
    assert b"locker.nominee.named" not in _log(oidc_runtime)
    form = {"csrf": _csrf(web, "/nominees"), "cnic": lockers.other_cnic, "relation": "guardian"}
    named = web.post("/nominees", data=form, follow_redirects=False)
    assert (named.status_code, named.headers["location"]) == (303, "/nominees?done=named")
    mine = web.get("/nominees").text
    other_name = read_registry(oidc_runtime.identity.nadra_file)[lockers.other_cnic].full_name
    assert other_name in mine
    remove = re.search(r'action="(/nominees/[^"]+/remove)"', mine).group(1)  # type: ignore[union-attr]

    sign_in(web, lockers.other_cnic)
    theirs = web.get("/nominees").text
    link = re.search(r'href="(/nominees/[^"]+/documents)"', theirs).group(1)  # type: ignore[union-attr]
    listed = web.get(link)
    assert listed.status_code == 200
    assert "Birth certificate" in listed.text
    assert "/delete" not in listed.text
    assert "/shares" not in listed.text
    content = f"{link}/{lockers.birth}/content?disposition=attachment"
    assert web.get(content).content == PDF
    assert b'"basis":"nominee"' in _log(oidc_runtime)
    assert web.get(f"/documents/{lockers.birth}").status_code == 404, "read-only, theirs"

    sign_in(web, lockers.cnic)
    assert web.post(remove, data={"csrf": _csrf(web, "/nominees")}).status_code == 200
    sign_in(web, lockers.other_cnic)
    assert web.get(link).status_code == 404
    assert web.get(content).status_code == 404


def test_a_locker_one_is_not_named_for_is_not_there(web: TestClient, lockers: Lockers) -> None:
    sign_in(web, lockers.other_cnic)
    owner = pseudonym(normalise_cnic(lockers.cnic), key=web.app.state.runtime.pseudonym_key)  # type: ignore[attr-defined]
    assert web.get(f"/nominees/{owner}/documents").status_code == 404
    content = web.get(f"/nominees/{owner}/documents/{lockers.birth}/content")
    assert content.status_code == 404
    assert PDF[:20] not in content.content


def test_titles_reasons_and_names_from_elsewhere_are_shown_as_text(
    web: TestClient, oidc_runtime: Runtime, tmp_path: Path
) -> None:
    """A department's document title and revocation reason, a name NADRA hands over (the
    owner's, the nominee's), and a title the citizen typed, on every locker page that shows
    them: escaped, never markup."""
    names = {SCENARIOS["active_male"]: HOSTILE, SCENARIOS["active_female"]: HOSTILE}
    rename_in_registry(oidc_runtime, tmp_path / "nadra", names)
    lockers = seed_lockers(oidc_runtime, tmp_path / "root")
    odd = issue(oidc_runtime, lockers.cnic, "birth", "BC/2026/0666", HOSTILE)
    with oidc_runtime.transaction() as session:
        oidc_runtime.locker(session).revoke(
            issuer="lgcd", issuer_doc_id="BC/2026/0666", reason=HOSTILE,
            who=Accessor("client:lgcd-system", "lgcd", "issuer"),
        )  # fmt: skip
    sign_in(web, lockers.cnic)
    assert_escaped(web.get("/documents").text)
    shown = web.get(f"/documents/{odd}").text
    assert shown.count("&lt;script&gt;") >= 3, "the title (twice) and the reason"
    assert_escaped(shown)
    refused = _upload(web, "notes.txt", b"hello", "text/plain", title=HOSTILE)
    assert refused.status_code == 400
    assert f'value="{escape(HOSTILE)}"' in refused.text, "kept in its field, escaped"
    assert_escaped(refused.text)
    form = {"csrf": _csrf(web, "/nominees"), "cnic": lockers.other_cnic, "relation": "guardian"}
    assert web.post("/nominees", data=form, follow_redirects=False).status_code == 303
    assert_escaped(web.get("/nominees").text)

    sign_in(web, lockers.other_cnic)
    named_by = web.get("/nominees").text
    assert_escaped(named_by)
    link = re.search(r'href="(/nominees/[^"]+/documents)"', named_by).group(1)  # type: ignore[union-attr]
    theirs = web.get(link).text
    assert theirs.count("&lt;script&gt;") >= 4, "the owner's name and the title"
    assert_escaped(theirs)
