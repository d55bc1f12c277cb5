"""The locker over HTTP: a department system issues a sealed document for a CNIC; the citizen
lists it as verified, downloads it byte for byte, uploads and deletes their own, shares a
link and names a nominee; every refusal is problem+json and leaves nothing behind."""

from __future__ import annotations

import dataclasses
import http.client
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms  # type: ignore[import-untyped]
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.runtime import Runtime
from audit.models import entries
from identity.nadra import SCENARIOS, read_registry
from identity.oidc.clients import SERVICE
from locker.models import documents
from signing.pki.authority import Authority, Subject
from signing.pki.custody import create_root
from signing.pki.profiles import DEPARTMENT_SEAL
from tests.http.live_server import served
from tests.http.oidc_kit import register_citizen, register_client, token
from tests.http.test_roles_and_entries import _access_token
from tests.s3_server import free_port, s3_store
from tests.unit.signing.pki_kit import openssl, pem

PDF = b"%PDF-1.7\n" + os.urandom(300_000) + b"\n%%EOF\n"
PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class Office:
    """A department (lgcd) with a seal, its records system's token, and two citizens."""

    issuer: str
    citizen: str
    other: str
    cnic: str
    other_cnic: str
    root_pem: Path


def _service_token(
    web: TestClient, runtime: Runtime, client_id: str, scopes: str, department: str | None
) -> str:
    system = register_client(runtime, client_id, kind=SERVICE, secret=True,
                             scopes=tuple(scopes.split()), department=department)  # fmt: skip
    response = token(web, system, grant_type="client_credentials")
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture
def office(web: TestClient, oidc_runtime: Runtime, tmp_path: Path) -> Office:
    root = create_root(tmp_path / "root", "a long test passphrase", common_name="Test Root",
                       now=oidc_runtime.clock())  # fmt: skip
    with oidc_runtime.transaction() as session:
        roles = oidc_runtime.provider(session).roles
        roles.add_department("lgcd", "Local Government")
        roles.add_department("police", "Police")
        authority = oidc_runtime.authority(session)
        authority.initialise(root, actor="admin:test")
        authority.issue(DEPARTMENT_SEAL, Subject("LGCD seal", "lgcd"), actor="admin:test")
        root_certificate = authority.root()
    registry = read_registry(oidc_runtime.identity.nadra_file)
    cnic, other_cnic = SCENARIOS["active_male"], SCENARIOS["active_female"]
    for each in (cnic, other_cnic):
        register_citizen(oidc_runtime, registry[each])
    portal = register_client(oidc_runtime, "portal", scopes=("openid", "locker"))
    citizen = _access_token(web, portal, cnic, "openid locker")
    web.cookies.clear()
    other = _access_token(web, portal, other_cnic, "openid locker")
    web.cookies.clear()
    return Office(
        issuer=_service_token(web, oidc_runtime, "lgcd-crms", "locker.issue.birth", "lgcd"),
        citizen=citizen,
        other=other,
        cnic=cnic,
        other_cnic=other_cnic,
        root_pem=pem(tmp_path / "root.pem", root_certificate),
    )


def _bearer(value: str, **more: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}", **more}


def _issue(
    web: TestClient,
    office: Office,
    content: bytes | Iterator[bytes] = PDF,
    doc_id: str = "BC/2026/0001",
    doctype: str = "birth",
    cnic: str | None = None,
    content_type: str = "application/pdf",
) -> Any:
    headers = _bearer(office.issuer, **{"Content-Type": content_type})
    headers["Shanakht-Cnic"] = cnic or office.cnic
    return web.put(f"/locker/issued/{doctype}", params={"doc_id": doc_id,
                   "title": "Birth certificate"}, content=content, headers=headers)  # fmt: skip


def _mine(web: TestClient, citizen_token: str) -> list[dict[str, Any]]:
    response = web.get("/locker/documents", headers=_bearer(citizen_token))
    assert response.status_code == 200, response.text
    return list(response.json()["documents"])


def _download(web: TestClient, token_: str, document_id: str) -> Any:
    return web.get(f"/locker/documents/{document_id}/content", headers=_bearer(token_))


def test_an_issued_document_shows_verified_and_downloads_byte_for_byte(
    web: TestClient, office: Office, tmp_path: Path
) -> None:
    first = _issue(web, office)
    assert first.status_code == 201, first.text
    assert first.json()["outcome"] == "created"
    assert first.json()["uri"] == "lgcd-birth-BC/2026/0001"
    retry = _issue(web, office)
    assert (retry.status_code, retry.json()["outcome"]) == (200, "unchanged")
    assert retry.json()["id"] == first.json()["id"]
    [listed] = _mine(web, office.citizen)
    assert listed["seal"]["verified"] is True, listed["seal"]
    assert "LGCD seal" in listed["seal"]["signer"]
    assert (listed["uploaded"], listed["status"]) == (False, "active")
    download = _download(web, office.citizen, listed["id"])
    assert download.status_code == 200
    assert download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["repr-digest"].startswith("sha-256=:")
    signature = web.get(f"/locker/documents/{listed['id']}/signature",
                        headers=_bearer(office.citizen))  # fmt: skip
    assert signature.headers["content-type"] == "application/pkcs7-signature"
    (tmp_path / "doc.pdf").write_bytes(PDF)
    (tmp_path / "doc.p7s").write_bytes(signature.content)
    checked = subprocess.run(
        [openssl(), "cms", "-verify", "-binary", "-inform", "DER", "-in", str(tmp_path / "doc.p7s"),
         "-content", str(tmp_path / "doc.pdf"), "-CAfile", str(office.root_pem),
         "-purpose", "any", "-out", os.devnull],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr


def _sealed_by(web: TestClient, office: Office, doc_id: str) -> int | str:
    """The serial of the certificate that sealed `doc_id`, or the refusal's status."""
    issued = _issue(web, office, doc_id=doc_id)
    if issued.status_code != 201:
        return f"{issued.status_code}: {issued.json()['title']}"
    signature = web.get(f"/locker/documents/{issued.json()['id']}/signature",
                        headers=_bearer(office.citizen))  # fmt: skip
    (signer,) = cms.ContentInfo.load(signature.content)["content"]["signer_infos"]
    serial: int = signer["sid"].chosen["serial_number"].native
    return serial


def test_the_seal_is_the_departments_newest_good_certificate_from_the_next_document_on(
    web: TestClient, office: Office, oidc_runtime: Runtime
) -> None:
    """Nothing about the seal certificate is cached between documents: a new one seals the
    next document, and a revoked one never seals again."""

    def authority(do: Callable[[Authority], Any]) -> Any:
        with oidc_runtime.transaction() as session:
            return do(oidc_runtime.authority(session))

    first = authority(lambda a: a.current(DEPARTMENT_SEAL, department="lgcd")).serial
    assert _sealed_by(web, office, "BC/1") == first
    second = authority(
        lambda a: a.issue(DEPARTMENT_SEAL, Subject("LGCD seal 2", "lgcd"), actor="admin:test")
    ).serial
    assert _sealed_by(web, office, "BC/2") == second
    authority(lambda a: a.revoke(second, "key_compromise", actor="admin:test"))
    assert _sealed_by(web, office, "BC/3") == first
    authority(lambda a: a.revoke(first, "superseded", actor="admin:test"))
    assert _sealed_by(web, office, "BC/4") == "409: Cannot issue yet: lgcd has no seal certificate"


def test_an_update_is_a_new_version_and_a_revocation_shows_to_the_citizen(
    web: TestClient, office: Office
) -> None:
    _issue(web, office)
    updated = _issue(web, office, content=PDF + b"amended")
    assert (updated.status_code, updated.json()["version"]) == (200, 2)
    [listed] = _mine(web, office.citizen)
    assert _download(web, office.citizen, listed["id"]).content == PDF + b"amended"
    revoked = web.post(
        "/locker/issued/birth/revoke", params={"doc_id": "BC/2026/0001"},
        json={"reason": "issued in error"}, headers=_bearer(office.issuer),
    )  # fmt: skip
    assert revoked.status_code == 200, revoked.text
    [listed] = _mine(web, office.citizen)
    assert (listed["status"], listed["revocation_reason"]) == ("revoked", "issued in error")
    state = web.get("/locker/issued/birth", params={"doc_id": "BC/2026/0001"},
                    headers=_bearer(office.issuer))  # fmt: skip
    assert state.json()["status"] == "revoked"


@pytest.mark.parametrize(
    ("change", "status", "text"),
    [
        ({"doctype": "dl"}, 403, "locker.issue.dl"),
        ({"doctype": "passport"}, 404, "no document type"),
        ({"cnic": "12345"}, 400, "CNIC"),
        ({"cnic": SCENARIOS["expired_card"]}, 404, "no account"),
        ({"content_type": "text/html"}, 422, "not one of"),
        ({"content": b"<script>alert(1)</script>"}, 422, "not application/pdf"),
        ({"content": b""}, 422, "empty"),
        ({"doc_id": "35202-1234567-1"}, 422, "must not hold a CNIC"),
    ],
)
def test_an_issue_that_cannot_be_accepted_is_refused_whole(
    web: TestClient,
    office: Office,
    oidc_runtime: Runtime,
    change: dict[str, Any],
    status: int,
    text: str,
) -> None:
    response = _issue(web, office, **change)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert text in response.text
    with oidc_runtime.sessions() as session:
        assert session.execute(select(func.count()).select_from(documents)).scalar_one() == 0
    assert list(oidc_runtime.store.keys("documents/")) == []


def test_too_large_is_413_whether_declared_or_streamed(
    web: TestClient, office: Office, oidc_runtime: Runtime
) -> None:
    oidc_runtime.settings = oidc_runtime.settings.model_copy(update={"locker_max_bytes": 100_000})
    declared = _issue(web, office)
    assert declared.status_code == 413
    streamed = _issue(web, office, content=iter([PDF[:60_000], PDF[60_000:120_000]]))
    assert streamed.status_code == 413, streamed.text
    assert streamed.headers["content-type"] == PROBLEM
    assert list(oidc_runtime.store.keys("documents/")) == []


def test_a_system_issues_only_for_its_own_department_whatever_its_scopes(
    web: TestClient, office: Office, oidc_runtime: Runtime
) -> None:
    """A police system given the birth-certificate scope by mistake still cannot issue one in
    the name of local government, nor can a system registered with no department."""
    for client_id, department in (("police-records", "police"), ("stray-system", None)):
        token_ = _service_token(web, oidc_runtime, client_id, "locker.issue.birth", department)
        refused = _issue(web, dataclasses.replace(office, issuer=token_))
        assert refused.status_code == 403, refused.text
        assert "not lgcd" in refused.json()["title"]
    assert list(oidc_runtime.store.keys("documents/")) == []


def test_tokens_are_checked_before_anything_is_stored(
    web: TestClient, office: Office, oidc_runtime: Runtime
) -> None:
    anonymous = web.put("/locker/issued/birth", params={"doc_id": "x", "title": "t"},
                        content=PDF, headers={"Content-Type": "application/pdf"})  # fmt: skip
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    headers = {"Content-Type": "application/pdf", "Shanakht-Cnic": office.cnic}
    as_citizen = web.put("/locker/issued/birth", params={"doc_id": "x", "title": "t"},
                         content=PDF, headers=_bearer(office.citizen, **headers))  # fmt: skip
    assert as_citizen.status_code == 403
    as_system = web.get("/locker/documents", headers=_bearer(office.issuer))
    assert as_system.status_code == 403
    assert list(oidc_runtime.store.keys("documents/")) == []


def test_a_citizen_sees_only_their_own(web: TestClient, office: Office) -> None:
    document_id = _issue(web, office).json()["id"]
    assert _mine(web, office.other) == []
    assert _download(web, office.other, document_id).status_code == 404
    mine = web.get(f"/locker/documents/{document_id}", headers=_bearer(office.other))
    assert mine.status_code == 404
    assert mine.headers["content-type"] == PROBLEM


def test_uploads_show_as_uploaded_and_only_they_can_be_deleted(
    web: TestClient, office: Office
) -> None:
    issued_id = _issue(web, office).json()["id"]
    upload = web.post("/locker/documents", params={"title": "My matric", "doctype": "matric"},
                      content=b'{"marks": 901}', headers=_bearer(office.citizen, **{
                          "Content-Type": "application/json"}))  # fmt: skip
    assert upload.status_code == 201, upload.text
    assert upload.json()["uploaded"] is True
    listed = {d["id"]: d for d in _mine(web, office.citizen)}
    assert listed[upload.json()["id"]]["seal"] is None
    refused = web.delete(f"/locker/documents/{issued_id}", headers=_bearer(office.citizen))
    assert refused.status_code == 422
    gone = web.delete(f"/locker/documents/{upload.json()['id']}", headers=_bearer(office.citizen))
    assert gone.status_code == 204
    assert [d["id"] for d in _mine(web, office.citizen)] == [issued_id]


def test_a_share_link_serves_the_document_until_used_up_revoked_or_expired(
    web: TestClient, office: Office, oidc_runtime: Runtime
) -> None:
    document_id = _issue(web, office).json()["id"]

    def share(**body: Any) -> dict[str, Any]:
        made = web.post(f"/locker/documents/{document_id}/shares", json=body,
                        headers=_bearer(office.citizen))  # fmt: skip
        assert made.status_code == 201, made.text
        return dict(made.json())

    once = share(max_uses=1)
    path = once["url"].removeprefix("https://shanakht.test")
    assert web.get(path).content == PDF
    assert web.get(path).status_code == 404, "used up"
    revocable = share()
    path = revocable["url"].removeprefix("https://shanakht.test")
    assert web.get(path).status_code == 200
    assert web.delete(f"/locker/shares/{revocable['id']}",
                      headers=_bearer(office.citizen)).status_code == 204  # fmt: skip
    assert web.get(path).status_code == 404
    expiring = share(hours=1)
    later = oidc_runtime.clock() + timedelta(hours=2)
    oidc_runtime.clock = lambda: later
    assert web.get(expiring["url"].removeprefix("https://shanakht.test")).status_code == 404
    assert web.get("/locker/shared/not-a-token").status_code == 404
    with oidc_runtime.sessions() as session:
        log = b"".join(session.execute(select(entries.c.entry)).scalars())
    assert log.count(b'"action":"locker.share.used"') == 2


def test_a_nominee_reads_but_only_while_named(
    web: TestClient, office: Office, oidc_runtime: Runtime
) -> None:
    document_id = _issue(web, office).json()["id"]
    named = web.put("/locker/nominees", json={"cnic": office.other_cnic, "relation": "guardian"},
                    headers=_bearer(office.citizen))  # fmt: skip
    assert named.status_code == 200, named.text
    nominee_id = named.json()["id"]
    owner_id = web.get("/locker/nominees", headers=_bearer(office.other)).json()["lockers"][0]["id"]
    theirs = web.get(f"/locker/lockers/{owner_id}/documents", headers=_bearer(office.other))
    assert [d["id"] for d in theirs.json()["documents"]] == [document_id]
    read = web.get(f"/locker/lockers/{owner_id}/documents/{document_id}/content",
                   headers=_bearer(office.other))  # fmt: skip
    assert read.content == PDF
    assert web.delete(f"/locker/nominees/{nominee_id}",
                      headers=_bearer(office.citizen)).status_code == 204  # fmt: skip
    again = web.get(f"/locker/lockers/{owner_id}/documents/{document_id}/content",
                    headers=_bearer(office.other))  # fmt: skip
    assert again.status_code == 404
    with oidc_runtime.sessions() as session:
        log = b"".join(session.execute(select(entries.c.entry)).scalars())
    assert b'"basis":"nominee"' in log


def test_what_cannot_be_shared_or_unshared_is_a_clear_4xx_not_a_500(
    web: TestClient, office: Office
) -> None:
    """Found by the API fuzzer: the locker's own refusals (ShareUnusable, ShareRefused) had no
    status of their own and left as 500 "The locker could not answer"."""
    citizen = _bearer(office.citizen)
    for path in ("/locker/shares/no-such-share", "/locker/nominees/no-such-nominee"):
        gone = web.delete(path, headers=citizen)
        assert (gone.status_code, gone.headers["content-type"]) == (404, PROBLEM), path
        assert gone.json()["status"] == 404
    myself = web.put("/locker/nominees", json={"cnic": office.cnic}, headers=citizen)
    assert (myself.status_code, myself.headers["content-type"]) == (422, PROBLEM)
    assert myself.json()["detail"] == "you cannot name yourself"
    _issue(web, office)
    document_id = _mine(web, office.citizen)[0]["id"]
    web.post("/locker/issued/birth/revoke", params={"doc_id": "BC/2026/0001"},
             json={"reason": "issued in error"}, headers=_bearer(office.issuer))  # fmt: skip
    revoked = web.post(f"/locker/documents/{document_id}/shares", json={}, headers=citizen)
    assert (revoked.status_code, revoked.headers["content-type"]) == (422, PROBLEM)
    assert revoked.json()["detail"] == "the document is revoked"


def test_a_download_whose_ciphertext_changed_is_cut_off_not_completed(
    web: TestClient, office: Office, oidc_runtime: Runtime
) -> None:
    big = b"%PDF-1.7\n" + os.urandom(3 * 1024 * 1024)
    document_id = _issue(web, office, content=big).json()["id"]
    [key] = oidc_runtime.store.keys("documents/")
    path = oidc_runtime.settings.data_dir / "objects" / key
    data = bytearray(path.read_bytes())
    data[2_500_000] ^= 1  # past two 1 MiB blocks: they go out before the damage is found
    path.write_bytes(bytes(data))
    with served(oidc_runtime) as address:
        connection = http.client.HTTPConnection(address, timeout=10)
        connection.request("GET", f"/locker/documents/{document_id}/content",
                           headers=_bearer(office.citizen))  # fmt: skip
        response = connection.getresponse()
        assert response.status == 200, "the headers went out before the damage"
        with pytest.raises(http.client.IncompleteRead) as cut:
            response.read()
        connection.close()
    received = cut.value.partial
    assert 0 < len(received) < len(big)
    assert bytes(received) == big[: len(received)], "only authenticated chunks were released"


def test_the_s3_store_serves_the_same_api(
    web: TestClient, office: Office, oidc_runtime: Runtime, s3_endpoint: str
) -> None:
    store = s3_store(s3_endpoint, f"http-{os.urandom(4).hex()}")
    store.ensure_bucket()
    oidc_runtime.store = store
    big = b"%PDF-1.7\n" + os.urandom(9 * 1024 * 1024)  # more than one multipart part
    document_id = _issue(web, office, content=big).json()["id"]
    assert _download(web, office.citizen, document_id).content == big
    [key] = store.keys("documents/")
    assert big[100:200] not in b"".join(store.get(key))


def test_a_store_that_does_not_answer_is_503_and_leaves_nothing(
    web: TestClient, office: Office, oidc_runtime: Runtime
) -> None:
    oidc_runtime.store = s3_store(
        f"http://127.0.0.1:{free_port()}", "nowhere", connect_timeout=0.5, max_attempts=1
    )
    response = _issue(web, office)
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM
    with oidc_runtime.sessions() as session:
        assert session.execute(select(func.count()).select_from(documents)).scalar_one() == 0
