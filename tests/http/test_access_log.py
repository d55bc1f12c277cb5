"""A citizen's "who accessed my data" view: their locker entries only, filtered, exported as
CSV, entries withheld under a legal basis shown only once their time comes, and each entry's
proof checked the way an outsider would, with nothing but the log's verifier key."""

from __future__ import annotations

import base64
import csv
import io
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from api.runtime import Runtime
from audit import AuditEntry, AuditEvent, Checkpoint, NoteVerifier, ProofError, merkle, pseudonym
from audit.models import entries
from identity.nadra import SCENARIOS, read_registry
from locker import access_log
from locker.access import Accessor, record
from tests.http.oidc_kit import Browser, RelyingParty, register_citizen, register_client, token
from tests.unit.audit.helpers import tampering

PROBLEM = "application/problem+json"
PDF = b"%PDF-1.7\n" + b"birth certificate " * 100
ORIGIN = "shanakht.test/audit"


@dataclass
class Clock:
    """The runtime's clock, moved by hand."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Citizen:
    cnic: str
    pseudonym: str


@dataclass
class World:
    """Two citizens, an e-service that may ask for the locker scope, and the seqs written."""

    clock: Clock
    rp: RelyingParty
    amina: Citizen
    bilal: Citizen
    seqs: dict[str, int]


def _citizen(runtime: Runtime, scenario: str) -> Citizen:
    record_ = read_registry(runtime.identity.nadra_file)[SCENARIOS[scenario]]
    register_citizen(runtime, record_)
    return Citizen(record_.cnic, pseudonym(record_.cnic, key=runtime.pseudonym_key))


def _access(runtime: Runtime, name: str, owner: str, who: Accessor, **details: Any) -> int:
    """Write one locker access entry about `owner`; its seq."""
    with runtime.transaction() as session:
        log = runtime.audit_log(session)
        seq = log.size()
        fields = details.pop("fields", "content")
        output = details.pop("output", "document")
        record(log, name, who, owner=owner, resource=details.pop("resource", None),
               fields=fields, output=output, **details)  # fmt: skip
    return seq


POLICE = Accessor(
    "client:police-cms", "police", "consent:c-41", reason="character certificate check",
    official="Inspector Rana",
)  # fmt: skip


@pytest.fixture
def world(oidc_runtime: Runtime) -> World:
    clock = Clock(datetime.now(UTC).replace(microsecond=0))
    oidc_runtime.clock = clock
    amina = _citizen(oidc_runtime, "active_female")
    bilal = _citizen(oidc_runtime, "active_male")
    rp = register_client(oidc_runtime, "citizen-portal", scopes=("openid", "locker"))
    seqs: dict[str, int] = {}
    with oidc_runtime.transaction() as session:
        seqs["issued"] = oidc_runtime.audit_log(session).size()
        oidc_runtime.locker(session).issue(
            owner=amina.pseudonym, doctype="birth", issuer="lgcd", issuer_doc_id="BC-2026-7",
            title="Birth certificate", content=[PDF], content_type="application/pdf",
            who=Accessor("client:lgcd-crms", "lgcd", "issuer", reason="birth registration",
                         official="Registrar Naseem"),
        )  # fmt: skip
    uri = "lgcd-birth-BC-2026-7"
    seqs["fetched"] = _access(
        oidc_runtime, "locker.exchange.fetched", amina.pseudonym, POLICE, resource=uri,
        doctype="birth",
    )  # fmt: skip
    seqs["read"] = _access(
        oidc_runtime, "locker.document.read", amina.pseudonym,
        Accessor(amina.pseudonym, "citizen", "owner"), resource=uri, doctype="birth",
    )  # fmt: skip
    seqs["bilal"] = _access(
        oidc_runtime, "locker.exchange.fetched", bilal.pseudonym, POLICE, resource="x-y-z"
    )
    withheld = clock.now + timedelta(minutes=5)
    seqs["withheld"] = _access(
        oidc_runtime, "locker.exchange.fetched", amina.pseudonym,
        Accessor("client:fia-cms", "fia", "legal:FIA-Act-1974-s5", reason="investigation",
                 official="Deputy Director"),
        resource=uri, doctype="birth",
        disclose_after=withheld.isoformat().replace("+00:00", "Z"),
    )  # fmt: skip
    with oidc_runtime.transaction() as session:  # about Amina, but not the locker's
        noted = AuditEvent(actor="system:test", action="identity.noted", subject=amina.pseudonym)
        seqs["other"] = oidc_runtime.audit_log(session).append(noted).seq
    return World(clock, rp, amina, bilal, seqs)


def _token(web: TestClient, rp: RelyingParty, who: Citizen, scope: str = "openid locker") -> str:
    web.cookies.clear()  # a fresh browser: each citizen signs in for themself
    callback, verifier = Browser(web).sign_in(rp, who.cnic, scope=scope)
    return token(
        web, rp, grant_type="authorization_code", code=callback["code"],
        redirect_uri=rp.redirect_uri, code_verifier=verifier,
    ).json()["access_token"]  # fmt: skip


def _get(web: TestClient, path: str, access: str, **params: Any) -> Any:
    return web.get(path, params=params, headers={"Authorization": f"Bearer {access}"})


def _seqs(web: TestClient, access: str, **params: Any) -> list[int]:
    response = _get(web, "/locker/access-log", access, **params)
    assert response.status_code == 200, response.text
    return [item["seq"] for item in response.json()["items"]]


def test_a_citizen_sees_exactly_their_locker_entries(web: TestClient, world: World) -> None:
    s = world.seqs
    amina = _token(web, world.rp, world.amina)
    response = _get(web, "/locker/access-log", amina)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    # Newest first; not Bilal's, not the withheld one, not the identity entry, not sign-ins.
    assert [i["seq"] for i in body["items"]] == [s["read"], s["fetched"], s["issued"]]
    assert body["next_before"] is None
    fetched = body["items"][1]
    assert fetched == {
        "seq": s["fetched"], "time": fetched["time"], "action": "locker.exchange.fetched",
        "organisation": "police", "official": "Inspector Rana", "basis": "consent:c-41",
        "purpose": "character certificate check", "document": "lgcd-birth-BC-2026-7",
        "doctype": "birth", "fields": "content", "output": "document", "outcome": "success",
    }  # fmt: skip
    issued = body["items"][2]
    assert (issued["action"], issued["organisation"], issued["basis"]) == (
        "locker.document.issued", "lgcd", "issuer",
    )  # fmt: skip
    bilal = _token(web, world.rp, world.bilal)
    assert _seqs(web, bilal) == [s["bilal"]]


def test_filters_narrow_the_view(web: TestClient, world: World) -> None:
    s = world.seqs
    access = _token(web, world.rp, world.amina)
    today = world.clock.now.date()
    assert _seqs(web, access, organisation="police") == [s["fetched"]]
    assert _seqs(web, access, organisation="fia") == []  # withheld, so not even counted
    assert _seqs(web, access, action="locker.document") == [s["read"], s["issued"]]
    assert _seqs(web, access, action="locker.exchange.fetched") == [s["fetched"]]
    assert _seqs(web, access, basis="consent") == [s["fetched"]]
    assert _seqs(web, access, basis="owner") == [s["read"]]
    assert _seqs(web, access, basis="legal") == []
    assert _seqs(web, access, since=today, until=today) == [s["read"], s["fetched"], s["issued"]]
    assert _seqs(web, access, since=today + timedelta(days=1)) == []
    assert _seqs(web, access, until=today - timedelta(days=1)) == []
    assert _seqs(web, access, organisation="citizen", since=today) == [s["read"]]
    for bad in (
        {"basis": "whim"},
        {"since": today, "until": today - timedelta(days=1)},
        {"limit": 201},
        {"before": -1},
        {"format": "xml"},
    ):
        response = _get(web, "/locker/access-log", access, **bad)
        assert response.status_code == 400, bad
        assert response.headers["content-type"] == PROBLEM


def test_pages_walk_back_to_the_first_entry(web: TestClient, world: World) -> None:
    s = world.seqs
    access = _token(web, world.rp, world.amina)
    first = _get(web, "/locker/access-log", access, limit=2).json()
    assert [i["seq"] for i in first["items"]] == [s["read"], s["fetched"]]
    assert first["next_before"] == s["fetched"]
    rest = _get(web, "/locker/access-log", access, limit=2, before=first["next_before"]).json()
    assert [i["seq"] for i in rest["items"]] == [s["issued"]]
    assert rest["next_before"] is None


def test_a_page_reads_a_bounded_number_of_entries(oidc_runtime: Runtime, world: World) -> None:
    """Many entries the view does not show cost one request no more than its scan budget;
    the answer says where to go on, and walking on finds what lies beyond them."""
    owner = world.amina.pseudonym
    with oidc_runtime.transaction() as session:
        oidc_runtime.audit_log(session).append_many(
            AuditEvent(actor="system:test", action="identity.test.noted", subject=owner)
            for _ in range(120)
        )
    with oidc_runtime.transaction() as session:
        log = oidc_runtime.audit_log(session)
        now = oidc_runtime.clock()
        page = access_log.read(log, owner, now=now, limit=10, scan_budget=50)
        assert page.items == []
        assert page.next_before is not None
        found: list[int] = []
        while page.next_before is not None:
            page = access_log.read(
                log, owner, now=now, limit=10, before=page.next_before, scan_budget=50
            )
            found += [item.seq for item in page.items]
    s = world.seqs
    assert found == [s["read"], s["fetched"], s["issued"]]


def _rows(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="access-log.csv"'
    reader = csv.DictReader(io.StringIO(response.text))
    assert tuple(reader.fieldnames or ()) == access_log.COLUMNS
    return list(reader)


def test_the_csv_export_has_the_same_rows(web: TestClient, world: World) -> None:
    access = _token(web, world.rp, world.amina)
    items = _get(web, "/locker/access-log", access).json()["items"]
    rows = _rows(_get(web, "/locker/access-log", access, format="csv"))
    expected = [{k: "" if v is None else str(v) for k, v in item.items()} for item in items]
    assert rows == expected
    police = _rows(_get(web, "/locker/access-log", access, format="csv", organisation="police"))
    assert [int(r["seq"]) for r in police] == [world.seqs["fetched"]]


def test_a_capped_export_links_to_the_rest(
    web: TestClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = world.seqs
    monkeypatch.setattr(access_log, "EXPORT_CAP", 2)
    access = _token(web, world.rp, world.amina)
    response = _get(web, "/locker/access-log", access, format="csv", action="locker")
    assert [int(r["seq"]) for r in _rows(response)] == [s["read"], s["fetched"]]
    assert f"before={s['fetched']}" in response.headers["shanakht-export-truncated"]
    link = response.headers["link"]
    assert link.endswith('>; rel="next"')
    following = web.get(link[1 : link.index(">")], headers={"Authorization": f"Bearer {access}"})
    assert [int(r["seq"]) for r in _rows(following)] == [s["issued"]]
    assert "link" not in following.headers


def test_a_spreadsheet_formula_in_a_purpose_is_exported_as_text(
    web: TestClient, oidc_runtime: Runtime, world: World
) -> None:
    who = replace(POLICE, reason='=HYPERLINK("https://evil.example","click")')
    _access(oidc_runtime, "locker.exchange.fetched", world.amina.pseudonym, who)
    access = _token(web, world.rp, world.amina)
    rows = _rows(_get(web, "/locker/access-log", access, format="csv"))
    assert rows[0]["purpose"] == "'" + who.reason  # type: ignore[operator]
    assert _get(web, "/locker/access-log", access).json()["items"][0]["purpose"] == who.reason


def test_a_seq_past_what_a_column_holds_is_a_400_not_a_500(web: TestClient, world: World) -> None:
    """Found by the API fuzzer: a seq beyond 2**63 - 1 reached the database driver, which
    cannot send it (OverflowError), and the citizen got a 500."""
    access = _token(web, world.rp, world.amina)
    for path, params in ((f"/locker/access-log/{2**63}/proof", {}),
                         ("/locker/access-log", {"before": 10**30})):  # fmt: skip
        response = _get(web, path, access, **params)
        assert (response.status_code, response.headers["content-type"]) == (400, PROBLEM)
        assert response.json()["title"] == "The request is malformed"
    assert _get(web, f"/locker/access-log/{2**63 - 1}/proof", access).status_code == 404


def test_a_window_to_the_ends_of_the_calendar_is_every_entry(web: TestClient, world: World) -> None:
    """Found by the API fuzzer: since=0001-01-01 (less the clock skew) and until=9999-12-31
    (plus a day) left the calendar, an OverflowError and a 500, in the JSON and the CSV."""
    access = _token(web, world.rp, world.amina)
    everything = _seqs(web, access)
    assert everything
    assert _seqs(web, access, since="0001-01-01", until="9999-12-31") == everything
    assert _seqs(web, access, before=1, since="0001-01-01") == [s for s in everything if s < 1]
    exported = _get(web, "/locker/access-log", access, format="csv", since="0001-01-01",
                    until="9999-12-31")  # fmt: skip
    assert exported.status_code == 200, exported.text


def test_a_withheld_entry_appears_only_after_its_time(
    web: TestClient, oidc_runtime: Runtime, world: World
) -> None:
    s = world.seqs
    access = _token(web, world.rp, world.amina)
    proof_path = f"/locker/access-log/{s['withheld']}/proof"
    assert s["withheld"] not in _seqs(web, access)
    assert s["withheld"] not in _seqs(web, access, basis="legal", organisation="fia")
    csv_rows = _rows(_get(web, "/locker/access-log", access, format="csv"))
    assert str(s["withheld"]) not in [r["seq"] for r in csv_rows]
    assert _get(web, proof_path, access).status_code == 404

    world.clock.now += timedelta(minutes=6)  # the token (10 minutes) is still good
    assert _seqs(web, access)[0] == s["withheld"]
    (item,) = _get(web, "/locker/access-log", access, basis="legal").json()["items"]
    assert (item["organisation"], item["basis"]) == ("fia", "legal:FIA-Act-1974-s5")
    csv_rows = _rows(_get(web, "/locker/access-log", access, format="csv"))
    assert csv_rows[0]["seq"] == str(s["withheld"])
    assert _get(web, proof_path, access).status_code == 200


def _entry_bytes(bundle: dict[str, Any]) -> bytes:
    return base64.b64decode(bundle["entry_base64"])


def _outside_check(bundle: dict[str, Any], published_key: str) -> dict[str, Any]:
    """What an independent checker does with a bundle: trust only the verifier key it got
    from /audit/key, check the checkpoint's signature with it, hash the entry's bytes itself
    (never the bundle's leaf hash) and check the inclusion proof against the signed root."""
    assert bundle["verifier_key"] == published_key
    verifier = NoteVerifier.parse(published_key)
    verifier.open(bundle["checkpoint"])  # the signature, by NoteVerifier
    checkpoint = Checkpoint.open(bundle["checkpoint"], verifier, ORIGIN)
    assert checkpoint.size == bundle["size"]
    data = base64.b64decode(bundle["entry_base64"])
    assert data == bundle["entry"].encode()
    proof = [base64.b64decode(p) for p in bundle["proof"]]
    merkle.verify_inclusion(
        merkle.leaf_hash(data), bundle["index"], checkpoint.size, proof, checkpoint.root
    )
    entry: dict[str, Any] = json.loads(data)
    return entry


def test_each_entry_proves_its_inclusion_under_a_signed_checkpoint(
    web: TestClient, oidc_runtime: Runtime, world: World
) -> None:
    s = world.seqs
    access = _token(web, world.rp, world.amina)
    key = web.get("/audit/key").text.strip()
    with oidc_runtime.transaction() as session:
        assert oidc_runtime.audit_log(session).checkpoint_count() == 0
    for name in ("issued", "fetched", "read"):
        response = _get(web, f"/locker/access-log/{s[name]}/proof", access)
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        bundle = response.json()
        entry = _outside_check(bundle, key)
        assert (entry["seq"], bundle["index"]) == (s[name], s[name])
        assert entry["subject"] == world.amina.pseudonym
        assert base64.b64decode(bundle["leaf_hash"]) == merkle.leaf_hash(_entry_bytes(bundle))
    with oidc_runtime.transaction() as session:  # one checkpoint was signed, then reused
        assert oidc_runtime.audit_log(session).checkpoint_count() == 1


def _altered(data: bytes, purpose: str) -> bytes:
    """The entry with another purpose, still in canonical form."""
    entry = AuditEntry.from_bytes(data)
    return AuditEntry(entry.seq, entry.time, replace(entry.event, purpose=purpose)).to_bytes()


def test_an_altered_entry_fails_the_outside_check(
    web: TestClient, oidc_runtime: Runtime, world: World
) -> None:
    seq = world.seqs["fetched"]
    access = _token(web, world.rp, world.amina)
    key = web.get("/audit/key").text.strip()
    path = f"/locker/access-log/{seq}/proof"
    bundle = _get(web, path, access).json()
    _outside_check(bundle, key)
    # (1) Someone hands the citizen an altered entry with a genuine proof.
    forged = _altered(_entry_bytes(bundle), "routine check")
    changed = {
        **bundle,
        "entry": forged.decode(),
        "entry_base64": base64.b64encode(forged).decode(),
    }
    with pytest.raises(ProofError):
        _outside_check(changed, key)
    # (2) A database administrator rewrites the stored entry; the service serves it as stored.
    with tampering(oidc_runtime) as connection:
        original = connection.execute(entries.select().where(entries.c.seq == seq)).one()
        connection.execute(
            update(entries)
            .where(entries.c.seq == seq)
            .values(entry=_altered(original.entry, "routine check"))
        )
    served = _get(web, path, access).json()
    assert json.loads(served["entry"])["purpose"] == "routine check"
    with pytest.raises(ProofError):
        _outside_check(served, key)


def test_a_citizen_cannot_prove_what_is_not_in_their_log(web: TestClient, world: World) -> None:
    s = world.seqs
    access = _token(web, world.rp, world.amina)
    for seq in (s["bilal"], s["other"], 10**9):
        response = _get(web, f"/locker/access-log/{seq}/proof", access)
        assert response.status_code == 404, seq
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["title"] == "No such entry in your access log"


@pytest.mark.parametrize("path", ["/locker/access-log", "/locker/access-log/0/proof"])
def test_a_token_without_the_locker_scope_is_refused(
    web: TestClient, world: World, path: str
) -> None:
    access = _token(web, world.rp, world.amina, scope="openid")
    response = _get(web, path, access)
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM
    assert 'scope="locker"' in response.headers["www-authenticate"]


@pytest.mark.parametrize("path", ["/locker/access-log", "/locker/access-log/0/proof"])
def test_no_token_is_unauthorised(web: TestClient, world: World, path: str) -> None:
    response = web.get(path)
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"].startswith("Bearer")
    forged = web.get(path, headers={"Authorization": "Bearer not-a-token"})
    assert forged.status_code == 401
