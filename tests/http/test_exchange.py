"""The once-only exchange over HTTP: a department asks for a citizen's documents, the citizen
is told and decides, the department fetches under the signed consent while it allows, and an
officer with a legal basis opens documents without consent, recorded and disclosed.

Every refusal is problem+json and leaves nothing half-written; every action is an audit entry
with the Schedule II fields and no CNIC in it."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jws
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet, OKPKey
from sqlalchemy import func, select, update

from api.denials import DECIDED_ONCE, LEGAL_GRANT, SUBSTANTIAL, page_rule
from api.routes.exchange import exchange_service
from api.runtime import Runtime
from audit import pseudonym
from audit.models import entries
from identity.nadra import SCENARIOS, read_registry
from identity.oidc.clients import SERVICE
from locker.access import Accessor
from locker.doctypes import DOCUMENT_TYPES, Classification, DocumentType
from locker.errors import StoreUnavailable
from locker.exchange import SMS_REQUEST, RequestClosed
from locker.inbox import Inbox
from locker.models import consents, legal_requests, requests, versions
from tests.http.live_server import served
from tests.http.oidc_kit import RelyingParty, register_citizen, register_client, token
from tests.http.test_roles_and_entries import _access_token, _grant
from tests.http.test_signing import _stepped_up_token

PROBLEM = "application/problem+json"
PDF = b"%PDF-1.7\n" + os.urandom(200_000) + b"\n%%EOF\n"  # four 64 KiB chunks
SEAL = b"0\x82\x01\x00 a detached CMS by the lgcd seal"
PURPOSE = "Admission to Government College, Lahore: proof of date of birth"


@dataclass(frozen=True)
class Scene:
    """A citizen with documents of every kind, her tokens, and two department systems."""

    cnic: str
    owner: str
    mobile: str
    strong: str  # her token from a sign-in with a second factor
    weak: str  # her token from a password-only sign-in
    college: RelyingParty  # the department system that asks
    police: RelyingParty  # another department system
    birth: str  # issued, active, sealed
    revoked: str  # issued, then revoked
    upload: str  # her own copy of a birth certificate
    expired: str  # a domicile certificate past its validity
    matric: str  # issued, active, of a type nobody asks for
    character: str  # issued, Sensitive


def _issue(
    runtime: Runtime,
    owner: str,
    doctype: str,
    issuer: str,
    doc_id: str,
    valid_until: datetime | None = None,
) -> str:
    with runtime.transaction() as session:
        issued = runtime.locker(session).issue(
            owner=owner,
            doctype=doctype,
            issuer=issuer,
            issuer_doc_id=doc_id,
            title=f"{DOCUMENT_TYPES[doctype].name} {doc_id}",
            content=[PDF],
            content_type="application/pdf",
            who=Accessor(f"client:{issuer}", issuer, "issuer"),
            valid_until=valid_until,
            seal=lambda _digest: SEAL,
        )
    return issued.document.id


@pytest.fixture
def scene(web: TestClient, oidc_runtime: Runtime) -> Scene:
    runtime = oidc_runtime
    record = read_registry(runtime.identity.nadra_file)[SCENARIOS["active_female"]]
    register_citizen(runtime, record)
    owner = pseudonym(record.cnic, key=runtime.pseudonym_key)
    portal = register_client(runtime, "portal", scopes=("openid", "locker", "roles"))
    weak = _access_token(web, portal, record.cnic, "openid locker")
    web.cookies.clear()
    strong = _stepped_up_token(web, runtime, portal, record.cnic, "openid locker")
    web.cookies.clear()
    now = runtime.clock()
    birth = _issue(runtime, owner, "birth", "lgcd", "BC-2026-0001")
    revoked = _issue(runtime, owner, "birth", "lgcd", "BC-2019-0417")
    with runtime.transaction() as session:
        locker = runtime.locker(session)
        locker.revoke(
            issuer="lgcd",
            issuer_doc_id="BC-2019-0417",
            reason="issued in error",
            who=Accessor("client:lgcd", "lgcd", "issuer"),
        )
        upload = locker.upload(
            owner=owner,
            doctype="birth",
            title="My birth certificate (scan)",
            content=[PDF],
            content_type="application/pdf",
            who=Accessor(owner, "citizen", "owner"),
        ).id
    return Scene(
        cnic=record.cnic,
        owner=owner,
        mobile=record.mobile_numbers[0],
        strong=strong,
        weak=weak,
        college=register_client(
            runtime, "gc-admissions", kind=SERVICE, secret=True, scopes=("locker.request",)
        ),
        police=register_client(
            runtime, "police-records", kind=SERVICE, secret=True, scopes=("locker.request",)
        ),
        birth=birth,
        revoked=revoked,
        upload=upload,
        expired=_issue(runtime, owner, "dom", "home", "DOM-2020-77", now - timedelta(days=1)),
        matric=_issue(runtime, owner, "matric", "bise", "MT-2008-5521"),
        character=_issue(runtime, owner, "chr", "police", "CC-2026-0042"),
    )


def _bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def _system(web: TestClient, rp: RelyingParty) -> dict[str, str]:
    """A fresh client-credentials token of a department system, as headers."""
    response = token(web, rp, grant_type="client_credentials")
    assert response.status_code == 200, response.text
    return _bearer(response.json()["access_token"])


def _file(web: TestClient, scene: Scene, rp: RelyingParty | None = None, **changes: Any) -> Any:
    body = {
        "cnic": scene.cnic,
        "doctypes": ["birth", "dom"],
        "purpose_code": "edu.admission",
        "purpose_text": PURPOSE,
        "data_life_days": 30,
        "valid_days": 7,
        "fetch_limit": 3,
        **changes,
    }
    return web.post("/exchange/requests", json=body, headers=_system(web, rp or scene.college))


def _consent(web: TestClient, scene: Scene, **changes: Any) -> dict[str, Any]:
    """A request filed and approved: the consent as the citizen gets it."""
    filed = _file(web, scene, **changes)
    assert filed.status_code == 201, filed.text
    approved = web.post(
        f"/exchange/requests/{filed.json()['id']}/approve", headers=_bearer(scene.strong)
    )
    assert approved.status_code == 201, approved.text
    return dict(approved.json())


def _fetch(
    web: TestClient, scene: Scene, consent_id: str, document_id: str, rp: RelyingParty | None = None
) -> Any:
    return web.get(
        f"/exchange/consents/{consent_id}/documents/{document_id}",
        headers=_system(web, rp or scene.college),
    )


def _manifest(web: TestClient, scene: Scene, consent_id: str) -> Any:
    return web.get(
        f"/exchange/consents/{consent_id}/documents", headers=_system(web, scene.college)
    )


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    return dict(response.json())


def _log(runtime: Runtime) -> list[dict[str, Any]]:
    with runtime.sessions() as session:
        return [
            json.loads(e)
            for e in session.execute(select(entries.c.entry).order_by(entries.c.seq)).scalars()
        ]


def _actions(runtime: Runtime) -> list[str]:
    return [e["action"] for e in _log(runtime)]


def _count(runtime: Runtime, table: Any) -> int:
    with runtime.sessions() as session:
        return int(session.execute(select(func.count()).select_from(table)).scalar_one())


# -- filing ------------------------------------------------------------------------------------


def test_a_request_that_cannot_be_accepted_is_refused_whole(
    web: TestClient, scene: Scene, oidc_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(
        DOCUMENT_TYPES,
        "dossier",
        DocumentType("dossier", "Intelligence dossier", "police", Classification.SECRET),
    )
    before = _actions(oidc_runtime)
    sent = len(oidc_runtime.identity.sms.messages())
    assert (
        _problem(_file(web, scene, cnic="95202-1234567-1"), 400)["title"] == "The CNIC is not valid"
    )
    unknown = _problem(_file(web, scene, cnic=SCENARIOS["two_mobiles"]), 404)
    assert unknown["title"] == "No account for that CNIC"
    assert (
        "no document type 'passport'"
        in _problem(_file(web, scene, doctypes=["passport"]), 422)["detail"]
    )
    assert (
        "Secret" in _problem(_file(web, scene, doctypes=["dossier"], fetch_limit=1), 422)["detail"]
    )
    sensitive = _problem(_file(web, scene, doctypes=["chr"], fetch_limit=2), 422)
    assert "explicit consent" in sensitive["detail"]
    assert "uploads" in _problem(_file(web, scene, doctypes=["other"]), 422)["detail"]
    in_purpose = _file(web, scene, purpose_text=f"Admission of the holder of {scene.cnic}")
    assert _problem(in_purpose, 422)["detail"] == "a purpose must not hold a CNIC"
    assert scene.cnic not in in_purpose.text, "nothing from the request is echoed"
    _problem(_file(web, scene, valid_days=None), 400)  # no end to the window
    _problem(_file(web, scene, valid_until="2030-01-01T00:00:00"), 400)  # a time with no zone
    past = (oidc_runtime.clock() - timedelta(days=1)).isoformat()
    _problem(_file(web, scene, valid_days=None, valid_until=past), 422)
    body = {
        "cnic": scene.cnic,
        "doctypes": ["birth"],
        "purpose_code": "x",
        "purpose_text": "x",
        "data_life_days": 1,
        "valid_days": 1,
        "fetch_limit": 1,
    }
    as_citizen = web.post("/exchange/requests", json=body, headers=_bearer(scene.strong))
    assert _problem(as_citizen, 403)["title"].startswith("this API is for department systems")
    no_scope = register_client(
        oidc_runtime, "no-scope", kind=SERVICE, secret=True, scopes=("locker.fetch",)
    )
    _problem(_file(web, scene, rp=no_scope), 403)
    _problem(web.post("/exchange/requests", json=body), 401)
    assert _count(oidc_runtime, requests) == 0
    assert "locker.exchange.requested" not in _actions(oidc_runtime)[len(before) :]
    assert len(oidc_runtime.identity.sms.messages()) == sent


def test_a_request_tells_the_citizen_by_sms_and_inbox_and_shows_her_what_and_why(
    web: TestClient, scene: Scene, oidc_runtime: Runtime
) -> None:
    filed = _file(web, scene)
    assert filed.status_code == 201, filed.text
    request_id = filed.json()["id"]
    assert filed.json()["status"] == "pending"
    assert filed.headers["location"] == f"/exchange/requests/{request_id}"
    sms = oidc_runtime.identity.sms.last_to(scene.mobile)
    assert sms is not None
    assert sms.text == SMS_REQUEST
    assert "Admission" not in sms.text, "the purpose stays in the locker"
    inbox = web.get("/exchange/inbox", headers=_bearer(scene.weak)).json()["messages"]
    assert [m["reference"] for m in inbox] == [request_id]
    assert "The gc-admissions service asks for your Birth certificate" in inbox[0]["message"]
    assert inbox[0]["read"] is False
    message = f"/exchange/inbox/{inbox[0]['id']}/read"
    missing = web.post("/exchange/inbox/999999/read", headers=_bearer(scene.weak))
    assert missing.status_code == 404
    # Found by the API fuzzer: an id no column can hold was a 500 (the driver's OverflowError).
    too_big = web.post(f"/exchange/inbox/{2**64}/read", headers=_bearer(scene.weak))
    _problem(too_big, 400)
    assert web.post(message, headers=_bearer(scene.weak)).status_code == 204
    assert web.get("/exchange/inbox", headers=_bearer(scene.weak)).json()["messages"][0]["read"]
    pending = web.get("/exchange/requests?status=pending", headers=_bearer(scene.weak))
    [shown] = pending.json()["requests"]
    assert shown["requester"] == {"id": "gc-admissions", "name": "The gc-admissions service"}
    assert shown["purpose"] == {"code": "edu.admission", "text": PURPOSE}
    assert [d["code"] for d in shown["doctypes"]] == ["birth", "dom"]
    assert shown["fetch_limit"] == 3
    assert shown["data_life_days"] == 30
    start = datetime.fromisoformat(shown["valid_from"])
    assert datetime.fromisoformat(shown["valid_until"]) - start == timedelta(days=7)
    assert web.get("/exchange/requests?status=approved", headers=_bearer(scene.weak)).json() == {
        "requests": []
    }
    state = web.get(f"/exchange/requests/{request_id}", headers=_system(web, scene.college))
    assert state.json()["status"] == "pending"
    assert state.json()["consent"] is None


# -- deciding ----------------------------------------------------------------------------------


def test_approving_needs_a_sign_in_with_a_second_factor(
    web: TestClient, scene: Scene, oidc_runtime: Runtime
) -> None:
    request_id = _file(web, scene).json()["id"]
    refused = web.post(f"/exchange/requests/{request_id}/approve", headers=_bearer(scene.weak))
    assert _problem(refused, 403)["title"] == "Sign in with a second factor first"
    assert _count(oidc_runtime, consents) == 0
    pending = web.get("/exchange/requests?status=pending", headers=_bearer(scene.weak))
    assert [r["id"] for r in pending.json()["requests"]] == [request_id]
    system = web.post(
        f"/exchange/requests/{request_id}/approve", headers=_system(web, scene.college)
    )
    _problem(system, 403)  # a department cannot consent for her


def test_a_token_from_before_a_step_up_still_cannot_approve(
    web: TestClient, scene: Scene, oidc_runtime: Runtime
) -> None:
    """The token's own acr decides, not its session's: an e-service that asked only for a
    password gets no power to consent when the citizen later steps up in that same session;
    a token issued after the step-up has it."""
    app = register_client(oidc_runtime, "citizen-app", scopes=("openid", "locker"))
    before = _access_token(web, app, scene.cnic, "openid locker")
    after = _stepped_up_token(web, oidc_runtime, app, scene.cnic, "openid locker")
    web.cookies.clear()
    request_id = _file(web, scene).json()["id"]
    approve = f"/exchange/requests/{request_id}/approve"
    refused = web.post(approve, headers=_bearer(before))
    assert _problem(refused, 403)["title"] == "Sign in with a second factor first"
    assert _count(oidc_runtime, consents) == 0
    approved = web.post(approve, headers=_bearer(after))
    assert approved.status_code == 201, approved.text


def test_an_approval_is_a_signed_artifact_with_exactly_the_terms(
    web: TestClient, scene: Scene, oidc_runtime: Runtime
) -> None:
    filed = _file(web, scene).json()
    consent = _consent_for(web, scene, filed["id"])
    keys = web.get("/exchange/consent-keys")
    assert keys.headers["content-type"] == "application/jwk-set+json"
    [jwk] = keys.json()["keys"]
    assert jwk["kid"] == OKPKey.import_key(jwk).thumbprint()
    assert (jwk["kty"], jwk["crv"], jwk["alg"]) == ("OKP", "Ed25519", "Ed25519")
    assert "d" not in jwk
    signed = jws.deserialize_compact(
        consent["artifact"], KeySet.import_key_set(keys.json()), algorithms=["Ed25519"]
    )
    assert signed.headers() == {"alg": "Ed25519", "kid": jwk["kid"], "typ": "shanakht-consent+jws"}
    terms = json.loads(signed.payload)
    assert terms == {
        "ver": 1,
        "id": consent["id"],
        "request_id": filed["id"],
        "requester": "gc-admissions",
        "owner": scene.owner,
        "doctypes": ["birth", "dom"],
        "purpose": {"code": "edu.admission", "text": PURPOSE},
        "data_life_days": 30,
        "valid_from": filed["valid_from"],
        "valid_until": filed["valid_until"],
        "fetch_limit": 3,
        "issued_at": consent["created_at"],
    }
    state = web.get(f"/exchange/requests/{filed['id']}", headers=_system(web, scene.college))
    assert state.json()["status"] == "approved"
    assert state.json()["consent_id"] == consent["id"]
    assert state.json()["consent"]["artifact"] == consent["artifact"]
    again = web.post(f"/exchange/requests/{filed['id']}/approve", headers=_bearer(scene.strong))
    assert _problem(again, 409)["detail"] == "the request is approved"
    tampered = consent["artifact"][:-4] + ("AAAA" if consent["artifact"][-4:] != "AAAA" else "BBBB")
    with pytest.raises(BadSignatureError):
        jws.deserialize_compact(
            tampered, KeySet.import_key_set(keys.json()), algorithms=["Ed25519"]
        )


def _consent_for(web: TestClient, scene: Scene, request_id: str) -> dict[str, Any]:
    approved = web.post(f"/exchange/requests/{request_id}/approve", headers=_bearer(scene.strong))
    assert approved.status_code == 201, approved.text
    return dict(approved.json())


def test_a_denied_request_gives_nothing_and_stays_denied(
    web: TestClient, scene: Scene, oidc_runtime: Runtime
) -> None:
    request_id = _file(web, scene).json()["id"]
    denied = web.post(f"/exchange/requests/{request_id}/deny", headers=_bearer(scene.weak))
    assert denied.status_code == 200, denied.text
    assert denied.json()["status"] == "denied"
    state = web.get(f"/exchange/requests/{request_id}", headers=_system(web, scene.college))
    assert (state.json()["status"], state.json()["consent"]) == ("denied", None)
    late = web.post(f"/exchange/requests/{request_id}/approve", headers=_bearer(scene.strong))
    assert _problem(late, 409)["detail"] == "the request is denied"
    assert _count(oidc_runtime, consents) == 0
    unknown = web.post(
        "/exchange/requests/abcdefabcdefabcdefabcdefabcdefab/deny", headers=_bearer(scene.weak)
    )
    _problem(unknown, 404)


def test_a_citizen_deciding_her_request_again_is_refused_audited_and_unchanged(
    web: TestClient, scene: Scene, oidc_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a legal-access request decided twice: approving or denying a request she approved
    is a 409 that says so, changes nothing (one consent, one decision in the log), and is an
    access refused under `rule:decided-once`, naming her by pseudonym through the e-service
    her token is of, never the request. An expired request is refused alike, unaudited:
    nobody decided it."""
    request_id = _file(web, scene).json()["id"]
    consent = _consent_for(web, scene, request_id)
    logged = len(_log(oidc_runtime))
    again = web.post(f"/exchange/requests/{request_id}/approve", headers=_bearer(scene.strong))
    assert _problem(again, 409)["detail"] == "the request is approved"
    reversed_ = web.post(f"/exchange/requests/{request_id}/deny", headers=_bearer(scene.weak))
    assert _problem(reversed_, 409)["detail"] == "the request is approved"
    denied = _log(oidc_runtime)[logged:]
    assert [e["action"] for e in denied] == ["access.denied", "access.denied"], denied
    for entry, action in zip(denied, ("approve", "deny"), strict=True):
        assert (entry["outcome"], entry["actor"], entry["subject"]) == (
            "failure", f"citizen:{scene.owner}", scene.owner,
        )  # fmt: skip
        assert entry["details"]["needed"] == DECIDED_ONCE
        assert entry["details"]["route"] == f"/exchange/requests/{{request_id}}/{action}"
        assert entry["details"]["via"] == "portal"
        assert request_id not in json.dumps(entry)
    assert _count(oidc_runtime, consents) == 1
    assert _actions(oidc_runtime).count("locker.exchange.approved") == 1
    assert _actions(oidc_runtime).count("locker.exchange.denied") == 0
    state = web.get(f"/exchange/requests/{request_id}", headers=_system(web, scene.college))
    assert (state.json()["status"], state.json()["consent_id"]) == ("approved", consent["id"])

    late_id = _file(web, scene).json()["id"]
    logged = len(_log(oidc_runtime))
    later = oidc_runtime.clock() + timedelta(days=8)  # past its 7-day window
    monkeypatch.setattr(oidc_runtime, "clock", lambda: later)
    with pytest.raises(RequestClosed) as closed, oidc_runtime.transaction() as session:
        exchange_service(oidc_runtime, session).deny(late_id, owner=scene.owner)
    assert str(closed.value) == "the request is expired"
    assert closed.value.facts == {"state": "expired"}
    assert page_rule(closed.value, deciding=True) is None, "an expired request: no denial"
    assert len(_log(oidc_runtime)) == logged


# -- fetching ----------------------------------------------------------------------------------


def test_the_manifest_is_the_minimum_the_purpose_names_and_spends_no_fetch(
    web: TestClient, scene: Scene
) -> None:
    consent = _consent(web, scene)
    listed = _manifest(web, scene, consent["id"])
    assert listed.status_code == 200, listed.text
    assert listed.json()["uses"] == 0
    [document] = listed.json()["documents"]  # not the revoked, the upload, the expired, matric
    assert document["id"] == scene.birth
    assert document["doctype"] == "birth"
    assert document["uri"] == "lgcd-birth-BC-2026-0001"
    assert (
        document["sha256"]
        == base64.urlsafe_b64encode(hashlib.sha256(PDF).digest()).rstrip(b"=").decode()
    )
    assert base64.b64decode(document["signature"]) == SEAL
    base = f"https://shanakht.test/exchange/consents/{consent['id']}/documents/{scene.birth}"
    assert document["content_url"] == base
    assert document["signature_url"] == base + "/signature"
    again = _manifest(web, scene, consent["id"])
    assert again.json()["uses"] == 0


def test_a_fetch_streams_the_document_with_its_digest_and_counts_one_use(
    web: TestClient, scene: Scene, oidc_runtime: Runtime
) -> None:
    consent = _consent(web, scene)
    fetched = _fetch(web, scene, consent["id"], scene.birth)
    assert fetched.status_code == 200, fetched.text
    assert fetched.content == PDF
    assert fetched.headers["content-type"] == "application/pdf"
    assert fetched.headers["content-length"] == str(len(PDF))
    digest = base64.b64encode(hashlib.sha256(PDF).digest()).decode()
    assert fetched.headers["repr-digest"] == f"sha-256=:{digest}:"
    path = f"/exchange/consents/{consent['id']}/documents/{scene.birth}/signature"
    assert fetched.headers["link"] == (
        f'<{path}>; rel="describedby"; type="application/pkcs7-signature"'
    )
    seal = web.get(path, headers=_system(web, scene.college))
    assert seal.status_code == 200
    assert seal.headers["content-type"] == "application/pkcs7-signature"
    assert seal.content == SEAL
    state = web.get(f"/exchange/consents/{consent['id']}", headers=_system(web, scene.college))
    assert (state.json()["status"], state.json()["uses"]) == ("active", 1)
    for other in (scene.revoked, scene.upload, scene.expired, scene.matric, scene.character):
        refused = _fetch(web, scene, consent["id"], other)
        assert _problem(refused, 404)["detail"] == "this consent releases no document with that id"
    state = web.get(f"/exchange/consents/{consent['id']}", headers=_system(web, scene.college))
    assert state.json()["uses"] == 1, "refused fetches spend nothing"


def test_a_fetch_says_when_the_department_must_delete_what_it_fetched(
    web: TestClient, scene: Scene, oidc_runtime: Runtime
) -> None:
    """ASVS 8.3.8: the consent's data life, counted from the fetch, as a date-time in a header
    of every fetch, and in the API's description; a refused fetch releases nothing to delete."""
    consent = _consent(web, scene, data_life_days=45)
    before = oidc_runtime.clock().replace(microsecond=0)
    fetched = _fetch(web, scene, consent["id"], scene.birth)
    after = oidc_runtime.clock()
    assert fetched.status_code == 200, fetched.text
    said = fetched.headers["shanakht-delete-by"]
    assert said.endswith("Z")
    assert before <= datetime.fromisoformat(said) - timedelta(days=45) <= after
    refused = _fetch(web, scene, consent["id"], scene.matric)
    assert refused.status_code == 404
    assert "shanakht-delete-by" not in refused.headers
    path = "/exchange/consents/{consent_id}/documents/{document_id}"
    described = web.get("/openapi.json").json()["paths"][path]["get"]["responses"]["200"]
    assert "Shanakht-Delete-By" in described["headers"]


def test_the_fetch_limit_holds(web: TestClient, scene: Scene, oidc_runtime: Runtime) -> None:
    consent = _consent(web, scene, fetch_limit=2)
    assert _fetch(web, scene, consent["id"], scene.birth).status_code == 200
    assert _fetch(web, scene, consent["id"], scene.birth).status_code == 200
    third = _fetch(web, scene, consent["id"], scene.birth)
    assert _problem(third, 403)["title"] == "The consent's fetch limit is reached"
    assert third.json()["detail"] == "all 2 fetches this consent allows have been made"
    state = web.get(f"/exchange/consents/{consent['id']}", headers=_system(web, scene.college))
    assert state.json()["uses"] == 2
    [refusal] = [e for e in _log(oidc_runtime) if e["action"] == "locker.exchange.refused"]
    assert refusal["outcome"] == "denied"
    assert refusal["details"]["refusal"] == third.json()["detail"]


def test_a_sensitive_document_goes_only_under_an_explicit_consent(
    web: TestClient, scene: Scene
) -> None:
    consent = _consent(web, scene, doctypes=["chr"], fetch_limit=1)
    [document] = _manifest(web, scene, consent["id"]).json()["documents"]
    assert document["id"] == scene.character
    assert _fetch(web, scene, consent["id"], scene.character).content == PDF
    _problem(_fetch(web, scene, consent["id"], scene.character), 403)


def test_pause_stops_fetches_resume_restores_them_revoke_ends_them(
    web: TestClient, scene: Scene, oidc_runtime: Runtime
) -> None:
    consent_id = _consent(web, scene)["id"]
    me = _bearer(scene.weak)
    paused = web.post(f"/exchange/consents/{consent_id}/pause", headers=me)
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused"
    refused = _fetch(web, scene, consent_id, scene.birth)
    assert _problem(refused, 403)["detail"] == "the citizen has paused this consent"
    _problem(_manifest(web, scene, consent_id), 403)
    _problem(web.post(f"/exchange/consents/{consent_id}/pause", headers=me), 409)
    assert web.post(f"/exchange/consents/{consent_id}/resume", headers=me).json()["status"] == (
        "active"
    )
    assert _fetch(web, scene, consent_id, scene.birth).content == PDF
    revoked = web.post(f"/exchange/consents/{consent_id}/revoke", headers=me)
    assert revoked.json()["status"] == "revoked"
    refused = _fetch(web, scene, consent_id, scene.birth)
    assert _problem(refused, 403)["detail"] == "the citizen has revoked this consent"
    late = web.post(f"/exchange/consents/{consent_id}/resume", headers=me)
    assert _problem(late, 409)["detail"] == "the consent is revoked; it cannot be resumed"
    mine = web.get("/exchange/consents", headers=me).json()["consents"]
    assert [(c["id"], c["status"], c["uses"]) for c in mine] == [(consent_id, "revoked", 1)]
    signed = json.loads(base64.urlsafe_b64decode(mine[0]["artifact"].split(".")[1] + "=="))
    assert "status" not in signed, "status is outside the signed terms"
    actions = _actions(oidc_runtime)
    for action in ("paused", "resumed", "revoked"):
        assert f"locker.exchange.{action}" in actions
    _problem(web.post(f"/exchange/consents/{consent_id}/explode", headers=me), 400)


def test_a_consent_is_usable_only_inside_its_window(
    web: TestClient, scene: Scene, oidc_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = oidc_runtime.clock()
    later = _consent(web, scene, valid_from=(now + timedelta(days=2)).isoformat(), valid_days=3)
    early = _fetch(web, scene, later["id"], scene.birth)
    assert _problem(early, 403)["detail"].startswith("the consent's window opens at ")
    current = _consent(web, scene)
    real = oidc_runtime.clock
    monkeypatch.setattr(oidc_runtime, "clock", lambda: real() + timedelta(days=8))
    state = web.get(f"/exchange/consents/{current['id']}", headers=_system(web, scene.college))
    assert state.json()["status"] == "expired"
    expired = _fetch(web, scene, current["id"], scene.birth)
    assert _problem(expired, 403)["detail"].startswith("the consent expired at ")
    _problem(_manifest(web, scene, current["id"]), 403)


def test_a_pending_request_past_its_window_expires_and_cannot_be_approved(
    web: TestClient, scene: Scene, oidc_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = oidc_runtime.clock()
    soon = (now + timedelta(seconds=30)).isoformat()
    request_id = _file(web, scene, valid_days=None, valid_until=soon).json()["id"]
    real = oidc_runtime.clock
    monkeypatch.setattr(oidc_runtime, "clock", lambda: real() + timedelta(minutes=1))
    state = web.get(f"/exchange/requests/{request_id}", headers=_system(web, scene.college))
    assert state.json()["status"] == "expired"
    mine = web.get("/exchange/requests?status=expired", headers=_bearer(scene.strong))
    assert [r["id"] for r in mine.json()["requests"]] == [request_id]
    late = web.post(f"/exchange/requests/{request_id}/approve", headers=_bearer(scene.strong))
    assert _problem(late, 409)["detail"] == "the request is expired"
    assert _count(oidc_runtime, consents) == 0


def test_another_departments_consent_and_request_are_not_theirs(
    web: TestClient, scene: Scene, oidc_runtime: Runtime
) -> None:
    filed = _file(web, scene).json()
    consent_id = _consent_for(web, scene, filed["id"])["id"]
    police = scene.police
    for path in (
        f"/exchange/consents/{consent_id}",
        f"/exchange/consents/{consent_id}/documents",
        f"/exchange/consents/{consent_id}/documents/{scene.birth}",
        f"/exchange/consents/{consent_id}/documents/{scene.birth}/signature",
    ):
        _problem(web.get(path, headers=_system(web, police)), 404)
    _problem(web.get(f"/exchange/requests/{filed['id']}", headers=_system(web, police)), 404)
    state = web.get(f"/exchange/consents/{consent_id}", headers=_system(web, scene.college))
    assert state.json()["uses"] == 0
    # The citizen cannot fetch as a department, nor a department act for the citizen.
    _problem(
        web.get(f"/exchange/consents/{consent_id}/documents", headers=_bearer(scene.weak)), 403
    )
    _problem(
        web.post(f"/exchange/consents/{consent_id}/revoke", headers=_system(web, scene.college)),
        403,
    )


def test_a_storage_outage_is_503_and_spends_nothing(
    web: TestClient, scene: Scene, oidc_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    consent_id = _consent(web, scene)["id"]
    before = _actions(oidc_runtime)

    def down(_key: str) -> Iterator[bytes]:
        raise StoreUnavailable("the object store is not answering")

    monkeypatch.setattr(oidc_runtime.store, "get", down)
    refused = _fetch(web, scene, consent_id, scene.birth)
    assert _problem(refused, 503)["title"] == "Document storage is not answering; try again later"
    monkeypatch.undo()
    state = web.get(f"/exchange/consents/{consent_id}", headers=_system(web, scene.college))
    assert state.json()["uses"] == 0
    assert "locker.exchange.fetched" not in _actions(oidc_runtime)[len(before) :]
    assert _fetch(web, scene, consent_id, scene.birth).content == PDF


def test_a_fetch_whose_ciphertext_fails_part_way_is_cut_off_not_completed(
    web: TestClient, scene: Scene, oidc_runtime: Runtime
) -> None:
    consent_id = _consent(web, scene)["id"]
    with oidc_runtime.sessions() as session:
        key = session.execute(
            select(versions.c.object_key).where(versions.c.document_id == scene.birth)
        ).scalar_one()
    path = oidc_runtime.settings.data_dir / "objects" / key
    data = bytearray(path.read_bytes())
    data[190_000] ^= 1  # in the last chunk: found before the first 1 MiB block is full
    path.write_bytes(bytes(data))
    headers = _system(web, scene.college)
    with served(oidc_runtime) as address:
        connection = http.client.HTTPConnection(address, timeout=10)
        connection.request(
            "GET", f"/exchange/consents/{consent_id}/documents/{scene.birth}", headers=headers
        )
        response = connection.getresponse()
        assert response.status == 200, "the headers went out before the damage"
        with pytest.raises(http.client.IncompleteRead) as cut:
            response.read()
        connection.close()
    received = bytes(cut.value.partial)
    assert len(received) < len(PDF)
    assert received == PDF[: len(received)], "only authenticated chunks were released"


# -- legal basis -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Officer:
    strong: str
    weak: str
    mobile: str
    pseudonym: str


def _legal_officer(
    web: TestClient, runtime: Runtime, scenario: str, department: str, client_id: str
) -> Officer:
    record = read_registry(runtime.identity.nadra_file)[SCENARIOS[scenario]]
    citizen_id = register_citizen(runtime, record)
    _grant(runtime, citizen_id, record.cnic, department, "locker.legal")
    desk = register_client(runtime, client_id, scopes=("openid", "locker", "roles"))
    weak = _access_token(web, desk, record.cnic, "openid locker")
    web.cookies.clear()
    strong = _stepped_up_token(web, runtime, desk, record.cnic, "openid locker")
    web.cookies.clear()
    owner = pseudonym(record.cnic, key=runtime.pseudonym_key)
    return Officer(strong, weak, record.mobile_numbers[0], owner)


@pytest.fixture
def officer(web: TestClient, oidc_runtime: Runtime, scene: Scene) -> Officer:
    """An officer of fia with locker.legal, who files."""
    return _legal_officer(web, oidc_runtime, "active_male", "fia", "fia-desk")


@pytest.fixture
def second(web: TestClient, oidc_runtime: Runtime, officer: Officer) -> Officer:
    """A second officer of fia with locker.legal, who decides."""
    return _legal_officer(web, oidc_runtime, "two_mobiles", "fia", "fia-review")


def _legal(web: TestClient, scene: Scene, access: str, **changes: Any) -> Any:
    body = {
        "cnic": scene.cnic,
        "doctypes": ["birth", "chr"],
        "legal_reference": "Order of the Sessions Court Lahore, Crl. Misc. 4471-B/2026",
        "reason": "Investigation of a forged admission record",
        **changes,
    }
    return web.post("/exchange/legal-access", json=body, headers=_bearer(access))


def _decide(web: TestClient, request_id: str, access: str, action: str, **body: Any) -> Any:
    return web.post(
        f"/exchange/legal-access/{request_id}/{action}",
        headers=_bearer(access),
        **({"json": body} if body else {}),
    )


def _granted(
    web: TestClient, scene: Scene, officer: Officer, second: Officer, **changes: Any
) -> dict[str, Any]:
    """Filed by the officer, approved by the second, opened by the officer: the grant."""
    filed = _legal(web, scene, officer.strong, **changes)
    assert filed.status_code == 201, filed.text
    approved = _decide(web, filed.json()["id"], second.strong, "approve")
    assert approved.status_code == 200, approved.text
    opened = _decide(web, filed.json()["id"], officer.strong, "open")
    assert opened.status_code == 201, opened.text
    return dict(opened.json())


def test_legal_access_is_only_for_a_holder_of_the_role_signed_in_with_a_second_factor(
    web: TestClient, scene: Scene, officer: Officer, oidc_runtime: Runtime
) -> None:
    before = _actions(oidc_runtime)
    assert _problem(_legal(web, scene, scene.strong), 403)["detail"] == (
        "you hold locker.legal in no department"
    )
    assert _problem(_legal(web, scene, officer.weak), 403)["title"] == (
        "Sign in with a second factor first"
    )
    _problem(_legal(web, scene, officer.strong, department="police"), 403)
    uploads = _legal(web, scene, officer.strong, doctypes=["other"])
    assert "never released" in _problem(uploads, 422)["detail"]
    in_reference = _legal(web, scene, officer.strong, legal_reference=f"FIR about {scene.cnic}")
    assert _problem(in_reference, 422)["detail"] == "a legal reference must not hold a CNIC"
    _problem(_legal(web, scene, officer.strong, disclosure_delay_days=91), 400)
    _problem(web.get("/exchange/legal-access/pending", headers=_bearer(scene.strong)), 403)
    # Nothing was done; each 403 is a failure entry naming who was refused what (item 12).
    added = _log(oidc_runtime)[len(before) :]
    assert [(e["action"], e["outcome"], e["details"]["needed"]) for e in added] == [
        ("access.denied", "failure", "role:locker.legal"),
        ("access.denied", "failure", "acr:urn:shanakht:loa:substantial"),
        ("access.denied", "failure", "role:locker.legal"),
        ("access.denied", "failure", "role:locker.legal"),
    ]
    assert [e["actor"] for e in added] == [f"citizen:{scene.owner}"] + [
        f"citizen:{officer.pseudonym}"
    ] * 2 + [f"citizen:{scene.owner}"]
    assert _count(oidc_runtime, legal_requests) == 0


def test_legal_access_waits_for_a_second_officer_then_is_recorded_and_the_citizen_told(
    web: TestClient, scene: Scene, officer: Officer, second: Officer, oidc_runtime: Runtime
) -> None:
    sent = len(oidc_runtime.identity.sms.messages())
    filed = _legal(web, scene, officer.strong)
    assert filed.status_code == 201, filed.text
    request = filed.json()
    assert request["status"] == "pending"
    assert request["filed_by"] == officer.pseudonym
    assert filed.headers["location"] == f"/exchange/legal-access/{request['id']}"
    assert len(oidc_runtime.identity.sms.messages()) == sent, "nobody is told on filing"
    assert web.get("/exchange/inbox", headers=_bearer(scene.weak)).json() == {"messages": []}
    pending = web.get("/exchange/legal-access/pending", headers=_bearer(second.strong)).json()
    assert [r["id"] for r in pending["requests"]] == [request["id"]]
    own = web.get("/exchange/legal-access/pending", headers=_bearer(officer.strong)).json()
    assert own == {"requests": []}, "the filer is never asked to decide their own"

    early = _decide(web, request["id"], officer.strong, "open")
    assert _problem(early, 409)["detail"] == "the request awaits a second officer's approval"
    own_approval = _decide(web, request["id"], officer.strong, "approve")
    assert "second officer" in _problem(own_approval, 403)["detail"]
    _problem(_decide(web, request["id"], second.weak, "approve"), 403)
    approved = _decide(web, request["id"], second.strong, "approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    assert approved.json()["decided_by"] == second.pseudonym
    _problem(_decide(web, request["id"], second.strong, "approve"), 409)
    not_theirs = _decide(web, request["id"], second.strong, "open")
    assert "only the officer who filed" in _problem(not_theirs, 403)["detail"]
    assert len(oidc_runtime.identity.sms.messages()) == sent

    opened = _decide(web, request["id"], officer.strong, "open")
    assert opened.status_code == 201, opened.text
    grant = opened.json()
    assert (grant["request_id"], grant["approved_by"]) == (request["id"], second.pseudonym)
    assert grant["disclose_after"] is None
    assert sorted(d["id"] for d in grant["documents"]) == sorted([scene.birth, scene.character])
    sms = oidc_runtime.identity.sms.last_to(scene.mobile)
    assert sms is not None
    assert "legal basis" in sms.text
    assert "Sessions Court" not in sms.text
    [message] = web.get("/exchange/inbox", headers=_bearer(scene.weak)).json()["messages"]
    assert message["reference"] == grant["grant_id"]
    assert message["message"].startswith("Officers of Department fia were given access")
    assert "Crl. Misc. 4471-B/2026" in message["message"]
    url = f"/exchange/legal-access/{grant['grant_id']}/documents/{scene.character}"
    downloaded = web.get(
        url, headers={**_bearer(officer.strong), grant["grant_header"]: grant["grant"]}
    )
    assert downloaded.status_code == 200, downloaded.text
    assert downloaded.content == PDF
    _problem(web.get(url, headers=_bearer(officer.strong)), 400)  # no grant
    forged = grant["grant"][:-3] + ("AAA" if not grant["grant"].endswith("AAA") else "BBB")
    _problem(web.get(url, headers={**_bearer(officer.strong), "Shanakht-Legal-Grant": forged}), 403)
    other = f"/exchange/legal-access/{grant['grant_id']}/documents/{scene.matric}"
    _problem(
        web.get(other, headers={**_bearer(officer.strong), "Shanakht-Legal-Grant": grant["grant"]}),
        404,
    )
    log = [e for e in _log(oidc_runtime) if e["action"].startswith("locker.legal.")]
    assert [e["action"] for e in log] == [
        "locker.legal.requested",
        "locker.legal.approved",
        "locker.legal.accessed",
        "locker.legal.fetched",
    ]
    requested, approval, *accessed = log
    assert (requested["actor"], requested["subject"]) == (officer.pseudonym, None)
    assert (approval["actor"], approval["subject"]) == (second.pseudonym, None)
    assert approval["details"]["filer"] == officer.pseudonym
    for entry in accessed:
        assert entry["details"]["basis"] == (
            "legal:Order of the Sessions Court Lahore, Crl. Misc. 4471-B/2026"
        )
        assert entry["details"]["organisation"] == "fia"
        assert entry["details"]["official"] == officer.pseudonym
        assert entry["details"]["approver"] == second.pseudonym
        assert entry["purpose"] == "Investigation of a forged admission record"
        assert entry["subject"] == scene.owner
        assert "disclose_after" not in entry["details"]
    assert accessed[0]["details"]["legal_reference"] == (
        "Order of the Sessions Court Lahore, Crl. Misc. 4471-B/2026"
    )


def test_an_officer_of_another_department_cannot_decide_a_request(
    web: TestClient, scene: Scene, officer: Officer, oidc_runtime: Runtime
) -> None:
    police = _legal_officer(web, oidc_runtime, "two_mobiles", "police", "police-desk")
    request_id = _legal(web, scene, officer.strong).json()["id"]
    assert web.get("/exchange/legal-access/pending", headers=_bearer(police.strong)).json() == {
        "requests": []
    }
    _problem(web.get(f"/exchange/legal-access/{request_id}", headers=_bearer(police.strong)), 404)
    _problem(_decide(web, request_id, police.strong, "approve"), 404)
    _problem(_decide(web, request_id, police.strong, "refuse", reason="Not enough"), 404)
    state = web.get(f"/exchange/legal-access/{request_id}", headers=_bearer(officer.strong))
    assert state.json()["status"] == "pending"
    assert not [e for e in _actions(oidc_runtime) if e == "locker.legal.approved"]


def test_a_refused_request_cannot_be_opened(
    web: TestClient, scene: Scene, officer: Officer, second: Officer, oidc_runtime: Runtime
) -> None:
    request_id = _legal(web, scene, officer.strong).json()["id"]
    _problem(_decide(web, request_id, second.strong, "refuse", reason=""), 400)
    refused = _decide(web, request_id, second.strong, "refuse", reason="Order not produced")
    assert refused.status_code == 200, refused.text
    assert (refused.json()["status"], refused.json()["refusal_reason"]) == (
        "refused",
        "Order not produced",
    )
    opened = _decide(web, request_id, officer.strong, "open")
    assert _problem(opened, 409)["detail"] == "a second officer refused the request"
    _problem(_decide(web, request_id, second.strong, "approve"), 409)
    assert web.get("/exchange/inbox", headers=_bearer(scene.weak)).json() == {"messages": []}
    (entry,) = [e for e in _log(oidc_runtime) if e["action"] == "locker.legal.refused"]
    assert (entry["actor"], entry["details"]["filer"]) == (second.pseudonym, officer.pseudonym)


def test_a_request_decided_again_through_the_api_is_refused_audited_and_unchanged(
    web: TestClient, scene: Scene, officer: Officer, second: Officer, oidc_runtime: Runtime
) -> None:
    """As on the officer's page: a decision on a request decided already is a 409, changes
    nothing, and is an access refused under `rule:decided-once`, naming the officer by
    pseudonym through their desk's e-service, never the request, the citizen or the order."""
    request_id = _legal(web, scene, officer.strong).json()["id"]
    approved = _decide(web, request_id, second.strong, "approve")
    assert approved.status_code == 200, approved.text
    with oidc_runtime.sessions() as session:
        stored = session.execute(select(legal_requests).where(legal_requests.c.id == request_id))
        before = stored.one()
    logged = len(_log(oidc_runtime))
    again = _decide(web, request_id, second.strong, "approve")
    assert "decided" in _problem(again, 409)["detail"], again.text
    reversed_ = _decide(web, request_id, second.strong, "refuse", reason="Changed my mind")
    _problem(reversed_, 409)
    denied = _log(oidc_runtime)[logged:]
    assert [e["action"] for e in denied] == ["access.denied", "access.denied"], denied
    decide = "/exchange/legal-access/{request_id}"
    for entry, action in zip(denied, ("approve", "refuse"), strict=True):
        assert (entry["outcome"], entry["actor"], entry["subject"]) == (
            "failure", f"citizen:{second.pseudonym}", second.pseudonym,
        )  # fmt: skip
        assert entry["details"]["needed"] == DECIDED_ONCE
        assert entry["details"]["route"] == f"{decide}/{action}"
        assert entry["details"]["via"] == "fia-review"
        text = json.dumps(entry)
        for secret in (request_id, scene.cnic, "Sessions Court", "Changed my mind"):
            assert secret not in text
    with oidc_runtime.sessions() as session:
        stored = session.execute(select(legal_requests).where(legal_requests.c.id == request_id))
        assert stored.one() == before, "the second decision changed nothing"
    state = web.get(f"/exchange/legal-access/{request_id}", headers=_bearer(officer.strong))
    assert (state.json()["status"], state.json()["refusal_reason"]) == ("approved", None)
    assert [e for e in _actions(oidc_runtime) if e == "locker.legal.refused"] == []


def test_an_approval_must_be_used_within_a_day_and_a_request_decided_within_a_week(
    web: TestClient, scene: Scene, officer: Officer, second: Officer, oidc_runtime: Runtime
) -> None:
    approved = _legal(web, scene, officer.strong).json()["id"]
    undecided = _legal(web, scene, officer.strong).json()["id"]
    _decide(web, approved, second.strong, "approve")
    # A day passes for the approval and a week for the other request (their times moved
    # back, and the rows re-sealed as the service would have written them, rather than the
    # clock on, which would end the officers' tokens too).
    with oidc_runtime.transaction() as session:
        for request_id, column, by in (
            (approved, legal_requests.c.decided_at, timedelta(hours=24)),
            (undecided, legal_requests.c.created_at, timedelta(days=7)),
        ):
            row = (
                session.execute(select(legal_requests).where(legal_requests.c.id == request_id))
                .one()
                ._mapping
            )
            moved = {column.name: row[column.name] - by}
            session.execute(
                update(legal_requests)
                .where(legal_requests.c.id == request_id)
                .values(oidc_runtime.row_seal.sealed(legal_requests, {**row, **moved}))
            )
    lapsed = _decide(web, approved, officer.strong, "open")
    assert "within 24 hours" in _problem(lapsed, 409)["detail"]
    expired = _decide(web, undecided, second.strong, "approve")
    assert "within 7 days" in _problem(expired, 409)["detail"]
    state = web.get(f"/exchange/legal-access/{undecided}", headers=_bearer(officer.strong))
    assert state.json()["status"] == "expired"
    assert web.get("/exchange/inbox", headers=_bearer(scene.weak)).json() == {"messages": []}


def test_a_disclosure_delay_holds_back_the_notice_and_marks_every_entry(
    web: TestClient, scene: Scene, officer: Officer, second: Officer, oidc_runtime: Runtime
) -> None:
    sent = len(oidc_runtime.identity.sms.messages())
    grant = _granted(web, scene, officer, second, disclosure_delay_days=30, doctypes=["birth"])
    when = datetime.fromisoformat(grant["disclose_after"])
    assert (
        timedelta(days=30) - timedelta(seconds=5)
        < when - oidc_runtime.clock()
        <= timedelta(days=30)
    )
    assert len(oidc_runtime.identity.sms.messages()) == sent, "no SMS to tip anyone off"
    assert web.get("/exchange/inbox", headers=_bearer(scene.weak)).json() == {"messages": []}
    url = f"/exchange/legal-access/{grant['grant_id']}/documents/{scene.birth}"
    headers = {**_bearer(officer.strong), "Shanakht-Legal-Grant": grant["grant"]}
    assert web.get(url, headers=headers).content == PDF
    accessed = [
        e
        for e in _log(oidc_runtime)
        if e["action"] in ("locker.legal.accessed", "locker.legal.fetched")
    ]
    assert len(accessed) == 2
    assert {e["details"]["disclose_after"] for e in accessed} == {grant["disclose_after"]}
    assert accessed[1]["details"]["grant"] == grant["grant_id"]
    with oidc_runtime.sessions() as session:
        later = Inbox(session, clock=lambda: when + timedelta(seconds=1)).visible(scene.owner)
    assert [m.reference for m in later] == [grant["grant_id"]]


def test_a_grant_is_the_officers_own(
    web: TestClient, scene: Scene, officer: Officer, second: Officer, oidc_runtime: Runtime
) -> None:
    grant = _granted(web, scene, officer, second)
    url = f"/exchange/legal-access/{grant['grant_id']}/documents/{scene.birth}"
    headers = {"Shanakht-Legal-Grant": grant["grant"]}
    assert _problem(web.get(url, headers={**headers, **_bearer(scene.strong)}), 403)["title"] == (
        "The grant does not allow this"
    )
    _problem(web.get(url, headers={**headers, **_bearer(officer.weak)}), 403)
    _problem(web.get(url, headers={**headers, **_bearer(second.strong)}), 403)
    other_grant = "/exchange/legal-access/abcdefabcdefabcdefabcdefabcdefab/documents/"
    _problem(
        web.get(other_grant + scene.birth, headers={**headers, **_bearer(officer.strong)}), 403
    )
    # Each refusal names its caller in the audit log, never the grant (threat model item 12).
    denied = [e for e in _log(oidc_runtime) if e["action"] == "access.denied"]
    assert [e["details"]["needed"] for e in denied] == [
        LEGAL_GRANT, SUBSTANTIAL, LEGAL_GRANT, LEGAL_GRANT
    ]  # fmt: skip
    assert {e["details"]["route"] for e in denied} == {
        "/exchange/legal-access/{grant_id}/documents/{document_id}"
    }
    for entry in denied:
        assert grant["grant"] not in json.dumps(entry)
        assert grant["grant_id"] not in json.dumps(entry)


# -- the record --------------------------------------------------------------------------------


def test_every_action_is_a_schedule_ii_entry_without_a_cnic(
    web: TestClient, scene: Scene, officer: Officer, second: Officer, oidc_runtime: Runtime
) -> None:
    consent_id = _consent(web, scene)["id"]
    _manifest(web, scene, consent_id)
    _fetch(web, scene, consent_id, scene.birth)
    web.get(
        f"/exchange/consents/{consent_id}/documents/{scene.birth}/signature",
        headers=_system(web, scene.college),
    )
    for action in ("pause", "resume", "revoke"):
        web.post(f"/exchange/consents/{consent_id}/{action}", headers=_bearer(scene.weak))
    _fetch(web, scene, consent_id, scene.birth)  # refused, and recorded
    denied = _file(web, scene).json()["id"]
    web.post(f"/exchange/requests/{denied}/deny", headers=_bearer(scene.weak))
    _granted(web, scene, officer, second)
    log = _log(oidc_runtime)
    exchange = [e for e in log if e["action"].startswith(("locker.exchange.", "locker.legal."))]
    assert {e["action"] for e in exchange} == {
        "locker.exchange.requested",
        "locker.exchange.approved",
        "locker.exchange.listed",
        "locker.exchange.fetched",
        "locker.exchange.signature_read",
        "locker.exchange.paused",
        "locker.exchange.resumed",
        "locker.exchange.revoked",
        "locker.exchange.refused",
        "locker.exchange.denied",
        "locker.legal.requested",
        "locker.legal.approved",
        "locker.legal.accessed",
    }
    for entry in exchange:
        details = entry["details"]
        assert details["system"] == "shanakht-locker"
        for field in ("organisation", "basis", "fields", "output"):
            assert details[field], (entry["action"], field)
        # A legal request's filing and decision name the citizen only in their details, so that
        # nothing the citizen reads shows an investigation before its first opening.
        decision = entry["action"] in ("locker.legal.requested", "locker.legal.approved")
        assert entry["subject"] == (None if decision else scene.owner)
        assert entry["time"]
        assert entry["actor"]
    text = json.dumps(log)
    for cnic in (scene.cnic, SCENARIOS["active_male"]):
        assert cnic not in text
        assert f"{cnic[:5]}-{cnic[5:12]}-{cnic[12]}" not in text
    fetched = next(e for e in exchange if e["action"] == "locker.exchange.fetched")
    assert fetched["details"]["basis"] == f"consent:{consent_id}"
    assert fetched["details"]["consent"] == consent_id  # what `audit integrity` counts
    assert fetched["details"]["output"] == "document"
    assert fetched["purpose"] == PURPOSE
    assert fetched["resource"] == "lgcd-birth-BC-2026-0001"
    assert fetched["actor"] == "client:gc-admissions"


def test_the_consent_key_is_public_and_stable(web: TestClient, oidc_runtime: Runtime) -> None:
    anyone = TestClient(web.app, base_url="https://shanakht.test")  # no cookies, no token
    first = anyone.get("/exchange/consent-keys")
    assert first.status_code == 200
    assert first.headers["cache-control"] == "public, max-age=3600"
    assert set(first.json()["keys"][0]) == {"kty", "crv", "x", "kid", "alg", "use"}
    assert anyone.get("/exchange/consent-keys").json() == first.json()
