"""Bulk issue through the app: a ZIP of documents and its manifest is checked whole first
(every line's problem beside it, nothing issued while any is wrong, hostile ZIPs refused),
then issued in a background job, each document sealed into the right locker exactly as the
single-issue page does it, and a second run issues nothing twice."""

from __future__ import annotations

import io
import re
import struct
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from api.app import create_app
from api.routes import officer_bulk
from api.routes.locker_views import seal_status
from api.runtime import Runtime, open_runtime
from api.settings import Settings
from locker import jobs
from tests.http.oidc_kit import csrf_of
from tests.http.test_officer_pages import (
    PDF,
    Office,
    entries_of,
    owner_of,
    set_up_office,
    sign_in,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
HEADER = "cnic,doc_id,doctype,title,valid_until,file\n"


@pytest.fixture
def office(oidc_runtime: Runtime, tmp_path: Path) -> Office:
    return set_up_office(oidc_runtime, tmp_path / "root")


@pytest.fixture
def officer(web: TestClient, oidc_runtime: Runtime, office: Office) -> Office:
    sign_in(web, oidc_runtime, office.officer, code=False)
    return office


def make_zip(manifest: str, files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.csv", manifest)
        for name, content in files.items():
            archive.writestr(name, content)
    return out.getvalue()


def good_batch(office: Office) -> bytes:
    manifest = (
        HEADER
        + f"{office.citizen.cnic},BC/1,birth,Birth certificate,2031-01-31,one.pdf\n"
        + f"{office.citizen.cnic},BC/2,birth,Birth certificate (copy),,two.png\n"
        + f"{office.other.cnic},BC/3,birth,Birth certificate,,docs/three.pdf\n"
    )
    return make_zip(
        manifest,
        {"one.pdf": PDF, "two.png": PNG, "docs/three.pdf": PDF.replace(b"birth", b"third")},
    )


def send(web: TestClient, body: bytes, *, csrf: bool = True) -> Response:
    form = web.get("/officer/lgcd/bulk")
    assert form.status_code == 200, form.text
    data = {"csrf": csrf_of(form.text)} if csrf else {}
    return web.post(
        "/officer/lgcd/bulk",
        data=data,
        files={"file": ("batch.zip", body, "application/zip")},
        follow_redirects=False,
    )


def finished(web: TestClient, runtime: Runtime, sent: Response) -> str:
    """The job's page once the job has ended."""
    assert sent.status_code == 303, sent.text
    location = sent.headers["location"]
    job_id = location.rsplit("/", 1)[1]
    officer_bulk.jobs_of(runtime)[job_id].wait(30)
    progress = web.get(f"{location}/progress").json()
    assert progress["status"] == "done"
    assert progress["done"] == progress["total"]
    page = web.get(location)
    assert page.status_code == 200
    return page.text


def outcomes(html: str) -> dict[str, str]:
    """Document number -> the outcome badge's words, from the job's page."""
    found = re.findall(
        r'<td><span dir="ltr">([^<]+)</span></td>\s*<td>[^<]*</td>\s*'
        r'<td><span class="badge [a-z]+">([^<]+)</span>([^<]*)</td>',
        html,
    )
    return {number: (word + rest).strip() for number, word, rest in found}


def test_a_batch_is_issued_sealed_into_each_citizens_locker_and_a_rerun_changes_nothing(
    web: TestClient, oidc_runtime: Runtime, officer: Office
) -> None:
    desk = web.get("/officer")
    assert "/officer/lgcd/bulk" in desk.text
    page = finished(web, oidc_runtime, send(web, good_batch(officer)))
    assert outcomes(page) == {"BC/1": "Created", "BC/2": "Created", "BC/3": "Created"}
    assert "3 created, 0 new versions, 0 unchanged, 0 refused" in page
    assert "Every server of the service shows this batch" in page
    assert officer.citizen.cnic not in page
    with oidc_runtime.transaction() as session:
        mine = oidc_runtime.locker(session).list(owner_of(oidc_runtime, officer.citizen.cnic))
        theirs = oidc_runtime.locker(session).list(owner_of(oidc_runtime, officer.other.cnic))
        seals = [seal_status(oidc_runtime, session, d) for d in [*mine, *theirs]]
    assert sorted(d.issuer_doc_id or "" for d in mine) == ["BC/1", "BC/2"]
    assert [d.issuer_doc_id for d in theirs] == ["BC/3"]
    assert {d.content_type for d in mine} == {"application/pdf", "image/png"}
    valid = {d.issuer_doc_id: d.valid_until for d in mine}
    assert valid["BC/1"] is not None
    assert valid["BC/1"].date().isoformat() == "2031-01-31"
    assert all(s is not None and s["verified"] and "LGCD seal" in s["signer"] for s in seals)
    issued = entries_of(oidc_runtime, "locker.document.issued")
    assert len(issued) == 3
    officer_ref = owner_of(oidc_runtime, officer.officer.cnic)
    for entry in issued:
        text = entry.decode()
        assert f'"official":"{officer_ref}"' in text
        assert not re.search(r"\d{13}", text)
    # The same ZIP again: every line unchanged, nothing new in a locker or the audit log.
    again = finished(web, oidc_runtime, send(web, good_batch(officer)))
    assert outcomes(again) == {"BC/1": "Unchanged", "BC/2": "Unchanged", "BC/3": "Unchanged"}
    assert len(entries_of(oidc_runtime, "locker.document.issued")) == 3
    assert entries_of(oidc_runtime, "locker.document.updated") == []
    with oidc_runtime.transaction() as session:
        assert (
            len(oidc_runtime.locker(session).list(owner_of(oidc_runtime, officer.citizen.cnic)))
            == 2
        )


def test_a_changed_file_is_a_new_version_and_an_unknown_citizen_is_refused(
    web: TestClient, oidc_runtime: Runtime, officer: Office
) -> None:
    finished(web, oidc_runtime, send(web, good_batch(officer)))
    manifest = (
        HEADER
        + f"{officer.citizen.cnic},BC/1,birth,Birth certificate,,one.pdf\n"
        + "3520210000033,BC/9,birth,Birth certificate,,one.pdf\n"
    )
    body = make_zip(manifest, {"one.pdf": PDF + b"% corrected\n"})
    page = finished(web, oidc_runtime, send(web, body))
    found = outcomes(page)
    assert found["BC/1"] == "New version"
    assert found["BC/9"].startswith("Refused")
    assert "No Shanakht account has this CNIC" in found["BC/9"]
    assert "3520210000033" not in page


def test_a_manifest_with_bad_lines_issues_nothing_and_names_each_problem(
    web: TestClient, oidc_runtime: Runtime, officer: Office
) -> None:
    manifest = (
        HEADER
        + f"{officer.citizen.cnic},BC/1,birth,Fine,,one.pdf\n"
        + "35202-12,BC/2,birth,Bad CNIC,,one.pdf\n"
        + f"{officer.citizen.cnic},BC/3,dom,Not ours,,one.pdf\n"
        + f"{officer.citizen.cnic},has space,birth,Bad number,,one.pdf\n"
        + f"{officer.citizen.cnic},BC/5,birth,Missing file,,nowhere.pdf\n"
        + f"{officer.citizen.cnic},BC/6,birth,Not a PDF,,fake.pdf\n"
        + f"{officer.citizen.cnic},BC/7,birth,Old,2001-01-01,one.pdf\n"
        + f"{officer.citizen.cnic},BC/1,birth,Twice,,one.pdf\n"
    )
    body = make_zip(manifest, {"one.pdf": PDF, "fake.pdf": b"<html>no</html>"})
    refused = send(web, body)
    assert refused.status_code == 422
    assert "Nothing was issued" in refused.text
    rows = {
        line: cell.rsplit("<td>", 1)[1]
        for line, cell in re.findall(
            r'<th scope="row"><span dir="ltr">(\d+)</span></th>(.*?)</td>\s*</tr>',
            refused.text,
            re.S,
        )
    }
    assert rows["2"] == "No problem"
    assert "13 digits" in rows["3"]
    assert "Choose one of the types" in rows["4"]
    assert "letters, digits" in rows["5"]
    assert "No file of this name" in rows["6"]
    assert "not a PDF file" in rows["7"]
    assert "after today" in rows["8"]
    assert "on line 2 too" in rows["9"]
    assert officer.citizen.cnic not in refused.text
    assert officer_bulk.jobs_of(oidc_runtime) == {} or all(
        j.desk.department != "lgcd" for j in officer_bulk.jobs_of(oidc_runtime).values()
    )
    with oidc_runtime.transaction() as session:
        assert oidc_runtime.locker(session).list(owner_of(oidc_runtime, officer.citizen.cnic)) == []
    assert entries_of(oidc_runtime, "locker.document.issued") == []


def _field_error(html: str) -> str:
    found = re.search(r'<p class="field-error" id="file-error">([^<]+)</p>', html)
    assert found is not None, "no error beside the file"
    return found.group(1)


def test_a_wrong_header_and_a_zip_that_is_not_one_are_named_beside_the_file(
    web: TestClient, officer: Office
) -> None:
    wrong = send(web, make_zip("cnic,number,file\n1,2,3\n", {}))
    assert wrong.status_code == 400
    assert "first line names the columns" in _field_error(wrong.text)
    not_zip = send(web, b"PK but not really")
    assert not_zip.status_code == 400
    assert "not a ZIP file" in _field_error(not_zip.text)
    no_manifest = make_zip("", {})
    assert "empty" in _field_error(send(web, no_manifest).text)


def test_a_member_that_inflates_past_the_limit_is_refused(
    web: TestClient, oidc_runtime: Runtime, officer: Office, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = oidc_runtime.settings.model_copy(update={"locker_max_bytes": 64 * 1024})
    monkeypatch.setattr(oidc_runtime, "settings", small)
    bomb = PDF + b"0" * (4 * 1024 * 1024)  # 4 MiB of zeros: a few KiB compressed
    manifest = HEADER + f"{officer.citizen.cnic},BC/1,birth,Bomb,,bomb.pdf\n"
    honest = send(web, make_zip(manifest, {"bomb.pdf": bomb}))
    assert honest.status_code == 422
    assert "too large" in honest.text
    # The same bomb with a header that lies (it declares 100 bytes): refused as it inflates.
    lying = _lie_about_size(make_zip(manifest, {"bomb.pdf": bomb}), "bomb.pdf", 100)
    with zipfile.ZipFile(io.BytesIO(lying)) as archive:
        assert archive.getinfo("bomb.pdf").file_size == 100
    refused = send(web, lying)
    assert refused.status_code == 422
    assert "inflates beyond the size the ZIP declares" in refused.text
    with oidc_runtime.transaction() as session:
        assert oidc_runtime.locker(session).list(owner_of(oidc_runtime, officer.citizen.cnic)) == []


def _lie_about_size(body: bytes, name: str, size: int) -> bytes:
    """The ZIP with `name`'s uncompressed size set to `size` in both its headers."""
    data = bytearray(body)
    encoded = name.encode()
    local = data.find(b"PK\x03\x04" + b"")
    while local != -1:
        name_len = struct.unpack_from("<H", data, local + 26)[0]
        if bytes(data[local + 30 : local + 30 + name_len]) == encoded:
            struct.pack_into("<I", data, local + 22, size)
        local = data.find(b"PK\x03\x04", local + 4)
    central = data.find(b"PK\x01\x02")
    while central != -1:
        name_len = struct.unpack_from("<H", data, central + 28)[0]
        if bytes(data[central + 46 : central + 46 + name_len]) == encoded:
            struct.pack_into("<I", data, central + 24, size)
        central = data.find(b"PK\x01\x02", central + 4)
    return bytes(data)


@pytest.mark.parametrize("name", ["../escape.pdf", "/etc/passwd.pdf", "a/../../b.pdf", "c:\\x.pdf"])
def test_a_name_that_leaves_the_zips_folder_refuses_the_whole_zip(
    web: TestClient, oidc_runtime: Runtime, officer: Office, name: str
) -> None:
    manifest = HEADER + f"{officer.citizen.cnic},BC/1,birth,Fine,,one.pdf\n"
    refused = send(web, make_zip(manifest, {"one.pdf": PDF, name: PDF}))
    assert refused.status_code == 400
    assert "leaves its folder" in _field_error(refused.text)
    with oidc_runtime.transaction() as session:
        assert oidc_runtime.locker(session).list(owner_of(oidc_runtime, officer.citizen.cnic)) == []


def test_a_plain_citizen_gets_403_and_a_form_without_csrf_is_refused(
    web: TestClient, oidc_runtime: Runtime, office: Office
) -> None:
    sign_in(web, oidc_runtime, office.citizen, code=False)
    assert web.get("/officer/lgcd/bulk").status_code == 403
    assert web.get("/officer/lgcd/bulk/whatever").status_code == 403
    web.cookies.clear()
    sign_in(web, oidc_runtime, office.officer, code=False)
    refused = send(web, good_batch(office), csrf=False)
    assert refused.status_code == 403
    assert "The form has expired" in refused.text
    assert web.get("/officer/home/bulk").status_code == 403  # not an issuer there
    assert web.get("/officer/lgcd/bulk/nosuchjob").status_code == 404


def test_a_batch_is_seen_the_same_from_another_replica(
    web: TestClient, oidc_runtime: Runtime, officer: Office, settings: Settings
) -> None:
    """A second runtime and app on the same database (another replica, or this one after a
    restart) shows the job, its counts and every line's outcome."""
    sent = send(web, good_batch(officer))
    finished(web, oidc_runtime, sent)
    location = sent.headers["location"]
    other = open_runtime(settings)
    try:
        with TestClient(create_app(other), base_url="https://shanakht.test") as replica:
            replica.cookies.update(web.cookies)
            assert replica.get(f"{location}/progress").json() == {
                "status": "done", "done": 3, "total": 3,
            }  # fmt: skip
            page = replica.get(location)
            assert page.status_code == 200
            assert outcomes(page.text) == {"BC/1": "Created", "BC/2": "Created", "BC/3": "Created"}
            assert "3 created, 0 new versions, 0 unchanged, 0 refused" in page.text
    finally:
        other.close()


def test_a_batch_whose_process_died_shows_as_interrupted_and_says_what_to_do(
    web: TestClient, oidc_runtime: Runtime, officer: Office, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(officer_bulk.BulkJob, "start", lambda *_args: None)  # never runs
    sent = send(web, good_batch(officer))
    location = sent.headers["location"]
    assert web.get(f"{location}/progress").json()["status"] == "running"
    later = oidc_runtime.clock() + jobs.STALE + timedelta(seconds=1)
    monkeypatch.setattr(oidc_runtime, "clock", lambda: later)
    assert web.get(f"{location}/progress").json() == {
        "status": "interrupted", "done": 0, "total": 3,
    }  # fmt: skip
    page = web.get(location)
    assert "The batch was interrupted" in page.text
    assert "Send the same ZIP again to finish it" in page.text
    assert "script-src" not in page.headers["content-security-policy"]
    urdu = web.get(f"/lang/ur?next={location}")
    assert "بیچ درمیان میں رک گیا" in urdu.text


def test_another_officers_batch_is_not_shown(
    web: TestClient, oidc_runtime: Runtime, officer: Office
) -> None:
    with oidc_runtime.transaction() as session:
        theirs = jobs.create(
            session, "bulk-issue", starter="p:someone-else", now=oidc_runtime.clock(),
            total=1, department="lgcd",
        )  # fmt: skip
    assert theirs is not None
    assert web.get(f"/officer/lgcd/bulk/{theirs.id}/progress").status_code == 404
    page = web.get(f"/officer/lgcd/bulk/{theirs.id}")
    assert page.status_code == 404
    assert "You have no batch of that number" in page.text
