"""Legal-basis access without HTTP, under the two-person rule: a request is filed, a second
officer of the same department decides it, and only then, and only its filer, within a day,
opens it; the citizen is told at the first opening; every step names both officers."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from audit.models import entries
from locker.consents import GRANT_TYPE
from locker.documents import UnknownDocument
from locker.exchange import NeedsSecondFactor, RequestRefused, UnknownCitizen
from locker.inbox import Inbox
from locker.legal import (
    MAX_DELAY_DAYS,
    FourEyesRefused,
    GrantInvalid,
    LegalAccessRefused,
    LegalAccessRequest,
    LegalRequestClosed,
    UnknownLegalRequest,
)
from locker.models import inbox, legal_requests
from tests.unit.locker.test_exchange import (
    ISSUER,
    MOBILE,
    OFFICER,
    OWNER,
    PDF,
    Kit,
    _issue,
)

SECOND = "p:" + "S" * 43  # a second officer of fia
STRANGER = "p:" + "X" * 43  # an officer of the police
FIA = frozenset({"fia"})


def _file(kit: Kit, **changes: Any) -> LegalAccessRequest:
    terms: dict[str, Any] = {
        "officer": OFFICER,
        "substantial": True,
        "departments": FIA,
        "department": None,
        "owner": OWNER,
        "doctypes": ["birth"],
        "legal_reference": "Crl. Misc. 4471-B/2026",
        "reason": "Forgery investigation",
        **changes,
    }
    with kit.runtime.transaction() as session:
        return kit.legal(session).file(**terms)


def _approve(kit: Kit, request_id: str, **changes: Any) -> LegalAccessRequest:
    terms: dict[str, Any] = {"officer": SECOND, "substantial": True, "departments": FIA}
    with kit.runtime.transaction() as session:
        return kit.legal(session).approve(request_id, **{**terms, **changes})


def _refuse(kit: Kit, request_id: str, **changes: Any) -> LegalAccessRequest:
    terms: dict[str, Any] = {
        "officer": SECOND,
        "substantial": True,
        "departments": FIA,
        "reason": "The order names another person",
    }
    with kit.runtime.transaction() as session:
        return kit.legal(session).refuse(request_id, **{**terms, **changes})


def _open(kit: Kit, request_id: str, **changes: Any) -> Any:
    terms: dict[str, Any] = {"officer": OFFICER, "substantial": True, "departments": FIA}
    with kit.runtime.transaction() as session:
        return kit.legal(session).open(request_id, **{**terms, **changes})


def _approved(kit: Kit, **changes: Any) -> LegalAccessRequest:
    return _approve(kit, _file(kit, **changes).id)


def _download(kit: Kit, grant: Any, document: str, **changes: Any) -> bytes:
    terms: dict[str, Any] = {"officer": OFFICER, "substantial": True, "departments": FIA}
    with kit.runtime.transaction() as session:
        _found, content = kit.legal(session).download(
            grant.id, grant.token, document, **{**terms, **changes}
        )
    return b"".join(content)


def _status(kit: Kit, request_id: str) -> str:
    with kit.runtime.sessions() as session:
        return str(
            session.execute(
                select(legal_requests.c.status).where(legal_requests.c.id == request_id)
            ).scalar_one()
        )


def _legal_entries(kit: Kit) -> list[dict[str, Any]]:
    with kit.runtime.sessions() as session:
        found = [json.loads(e) for e in session.execute(select(entries.c.entry)).scalars()]
    return [e for e in found if e["action"].startswith("locker.legal.")]


# -- filing --------------------------------------------------------------------------------------


def test_filing_needs_the_role_a_second_factor_and_terms_the_locker_accepts(kit: Kit) -> None:
    with pytest.raises(LegalAccessRefused, match="no department"):
        _file(kit, departments=frozenset())
    with pytest.raises(LegalAccessRefused, match="several departments"):
        _file(kit, departments=frozenset({"fia", "police"}))
    with pytest.raises(LegalAccessRefused, match="that department"):
        _file(kit, department="police")
    with pytest.raises(NeedsSecondFactor):
        _file(kit, substantial=False)
    with pytest.raises(RequestRefused, match="a reason is 1 to 500"):
        _file(kit, reason="")
    with pytest.raises(UnknownCitizen):
        _file(kit, owner="p:" + "Z" * 43)
    with pytest.raises(RequestRefused, match="0 to 90 days") as delay:
        _file(kit, disclosure_delay_days=MAX_DELAY_DAYS + 1)
    assert (delay.value.code, delay.value.field) == ("legal.delay", "disclosure_delay_days")
    assert kit.count(legal_requests) == 0
    assert _legal_entries(kit) == []


def test_a_filed_request_is_pending_releases_nothing_and_tells_nobody(kit: Kit) -> None:
    _issue(kit)
    filed = _file(kit, disclosure_delay_days=MAX_DELAY_DAYS)
    assert filed.state(kit.clock.now) == "pending"
    assert (filed.filer, filed.owner, filed.department) == (OFFICER, OWNER, "fia")
    assert kit.count(inbox) == 0
    assert kit.phones.sent == []
    with kit.runtime.sessions() as session:
        row = session.execute(select(legal_requests)).one()
    assert row.owner == OWNER  # the citizen's pseudonym: the table holds no CNIC
    (entry,) = _legal_entries(kit)
    assert entry["action"] == "locker.legal.requested"
    assert entry["actor"] == OFFICER
    assert entry["subject"] is None, "nothing the citizen reads shows it before the opening"
    assert entry["details"]["request"] == filed.id
    assert entry["details"]["citizen"] == OWNER
    assert entry["details"]["organisation"] == "fia"


# -- the second officer ----------------------------------------------------------------------------


def test_the_filer_cannot_approve_or_refuse_their_own_request(kit: Kit) -> None:
    filed = _file(kit)
    with pytest.raises(FourEyesRefused, match="second officer") as own:
        _approve(kit, filed.id, officer=OFFICER)
    assert own.value.code == "legal.own_request"
    with pytest.raises(FourEyesRefused):
        _refuse(kit, filed.id, officer=OFFICER)
    assert _status(kit, filed.id) == "pending"
    with pytest.raises(LegalRequestClosed, match="awaits a second officer"):
        _open(kit, filed.id)
    assert [e["action"] for e in _legal_entries(kit)] == ["locker.legal.requested"]


def test_an_officer_of_another_department_cannot_decide_or_even_see_it(kit: Kit) -> None:
    filed = _file(kit)
    police = frozenset({"police"})
    with pytest.raises(UnknownLegalRequest):
        _approve(kit, filed.id, officer=STRANGER, departments=police)
    with pytest.raises(UnknownLegalRequest):
        _refuse(kit, filed.id, officer=STRANGER, departments=police)
    with pytest.raises(LegalAccessRefused, match="no department"):
        _approve(kit, filed.id, officer=STRANGER, departments=frozenset())
    with kit.runtime.sessions() as session:
        assert kit.legal(session).awaiting(officer=STRANGER, departments=police) == []
    assert _status(kit, filed.id) == "pending"


def test_a_decision_needs_a_second_factor(kit: Kit) -> None:
    filed = _file(kit)
    with pytest.raises(NeedsSecondFactor):
        _approve(kit, filed.id, substantial=False)
    assert _status(kit, filed.id) == "pending"


def test_awaiting_lists_other_officers_pending_requests_only(kit: Kit) -> None:
    mine = _file(kit, officer=SECOND)
    theirs = _file(kit)
    decided = _approved(kit)
    with kit.runtime.sessions() as session:
        legal = kit.legal(session)
        assert [r.id for r in legal.awaiting(officer=SECOND, departments=FIA)] == [theirs.id]
        assert [r.id for r in legal.awaiting(officer=OFFICER, departments=FIA)] == [mine.id]
        filed = legal.filed_by(officer=OFFICER, departments=FIA)
    assert {r.id for r in filed} == {theirs.id, decided.id}


def test_a_request_nobody_decides_expires_after_seven_days(kit: Kit) -> None:
    early, late = _file(kit), _file(kit)
    kit.clock.now += timedelta(days=7) - timedelta(seconds=1)
    assert _approve(kit, early.id).state(kit.clock.now) == "approved"
    kit.clock.now += timedelta(seconds=1)
    with pytest.raises(LegalRequestClosed, match="nobody decided it within 7 days") as closed:
        _approve(kit, late.id)
    assert closed.value.code == "legal.expired"
    with pytest.raises(LegalRequestClosed):
        _refuse(kit, late.id)
    with kit.runtime.sessions() as session:
        legal = kit.legal(session)
        assert legal.awaiting(officer=SECOND, departments=FIA) == []
        assert legal.get(late.id, departments=FIA).state(kit.clock.now) == "expired"


def test_a_refused_request_is_never_opened_nor_decided_again(kit: Kit) -> None:
    _issue(kit)
    filed = _file(kit)
    with pytest.raises(RequestRefused, match="refusal's reason") as empty:
        _refuse(kit, filed.id, reason=" ")
    assert empty.value.code == "legal.refusal_reason"
    refused = _refuse(kit, filed.id)
    assert refused.state(kit.clock.now) == "refused"
    assert refused.refusal == "The order names another person"
    with pytest.raises(LegalRequestClosed, match="refused") as closed:
        _open(kit, filed.id)
    assert closed.value.code == "legal.refused"
    with pytest.raises(LegalRequestClosed):
        _approve(kit, filed.id)
    assert kit.count(inbox) == 0
    assert kit.phones.sent == []


# -- opening -------------------------------------------------------------------------------------


def test_opening_before_approval_is_refused(kit: Kit) -> None:
    _issue(kit)
    filed = _file(kit)
    with pytest.raises(LegalRequestClosed, match="awaits a second officer") as closed:
        _open(kit, filed.id)
    assert closed.value.code == "legal.pending"
    assert kit.count(inbox) == 0
    assert kit.phones.sent == []
    assert [e["action"] for e in _legal_entries(kit)] == ["locker.legal.requested"]


def test_only_the_filer_opens_an_approved_request(kit: Kit) -> None:
    _issue(kit)
    approved = _approved(kit)
    with pytest.raises(FourEyesRefused, match="only the officer who filed") as approver:
        _open(kit, approved.id, officer=SECOND)
    assert approver.value.code == "legal.not_filer"
    with pytest.raises(UnknownLegalRequest):
        _open(kit, approved.id, officer=STRANGER, departments=frozenset({"police"}))
    with pytest.raises(NeedsSecondFactor):
        _open(kit, approved.id, substantial=False)
    assert kit.count(inbox) == 0
    grant = _open(kit, approved.id)
    assert len(grant.documents) == 1
    assert (grant.request_id, grant.approver) == (approved.id, SECOND)


def test_an_approval_lapses_after_24_hours(kit: Kit) -> None:
    _issue(kit)
    early, late = _approved(kit), _approved(kit)
    kit.clock.now += timedelta(hours=24) - timedelta(seconds=1)
    assert _open(kit, early.id).documents
    kit.clock.now += timedelta(seconds=1)
    with pytest.raises(LegalRequestClosed, match="24 hours") as lapsed:
        _open(kit, late.id)
    assert lapsed.value.code == "legal.lapsed"
    with pytest.raises(LegalRequestClosed):
        _open(kit, early.id)  # opened once; still no later than its day
    assert kit.count(inbox) == 1, "only the opening within the day told the citizen"


def test_the_grant_names_the_approver_and_the_citizen_is_told_at_the_first_opening(
    kit: Kit,
) -> None:
    _issue(kit)
    approved = _approved(kit)
    assert kit.phones.sent == []
    first = _open(kit, approved.id)
    claims = kit.signer.open(first.token, GRANT_TYPE, now=kit.clock.now)
    assert (claims["sub"], claims["approver"], claims["request"]) == (OFFICER, SECOND, approved.id)
    assert kit.phones.sent[-1][0] == MOBILE
    second = _open(kit, approved.id)
    assert second.id != first.id
    assert len(kit.phones.sent) == 1, "told once, at the first opening"
    assert kit.count(inbox) == 1


def test_audit_entries_name_both_officers(kit: Kit) -> None:
    document = _issue(kit)
    approved = _approved(kit)
    grant = _open(kit, approved.id)
    assert _download(kit, grant, document) == PDF
    refused = _refuse(kit, _file(kit).id)
    by_action = {e["action"]: e for e in _legal_entries(kit)}
    requested, approval = by_action["locker.legal.requested"], by_action["locker.legal.approved"]
    assert requested["actor"] == OFFICER
    assert (approval["actor"], approval["details"]["filer"]) == (SECOND, OFFICER)
    assert approval["details"]["approver"] == SECOND
    assert approval["details"]["request"] == approved.id
    refusal = by_action["locker.legal.refused"]
    assert (refusal["actor"], refusal["details"]["filer"]) == (SECOND, OFFICER)
    assert refusal["details"]["refuser"] == SECOND
    assert refusal["details"]["refusal"] == "The order names another person"
    assert refusal["details"]["request"] == refused.id
    for action in ("locker.legal.accessed", "locker.legal.fetched"):
        entry = by_action[action]
        assert entry["subject"] == OWNER
        assert entry["details"]["official"] == OFFICER
        assert entry["details"]["approver"] == SECOND
        assert entry["details"]["request"] == approved.id
        assert entry["details"]["organisation"] == "fia"


def test_a_grant_serves_only_its_officer_its_documents_and_its_quarter_hour(kit: Kit) -> None:
    document = _issue(kit)
    later = _issue(kit, doc_id="BC-2")
    grant = _open(kit, _approved(kit).id)
    assert {d.id for d in grant.documents} == {document, later}
    assert _download(kit, grant, document) == PDF
    with pytest.raises(GrantInvalid, match="someone else"):
        _download(kit, grant, document, officer=SECOND)
    with pytest.raises(GrantInvalid, match="no longer hold"):
        _download(kit, grant, document, departments=frozenset({"police"}))
    with pytest.raises(NeedsSecondFactor):
        _download(kit, grant, document, substantial=False)
    with kit.runtime.transaction() as session:
        kit.runtime.locker(session).revoke(
            issuer="lgcd", issuer_doc_id="BC-2", reason="error", who=ISSUER
        )
    with pytest.raises(UnknownDocument):
        _download(kit, grant, later)
    kit.clock.now += timedelta(minutes=15)
    with pytest.raises(GrantInvalid, match="expired"):
        _download(kit, grant, document)


def test_a_delayed_disclosure_runs_from_the_first_opening(kit: Kit) -> None:
    _issue(kit)
    approved = _approved(kit, disclosure_delay_days=10)
    kit.clock.now += timedelta(hours=2)
    grant = _open(kit, approved.id)
    assert grant.disclose_after == kit.clock.now.replace(microsecond=0) + timedelta(days=10)
    assert kit.phones.sent == []
    again = _open(kit, approved.id)
    assert again.disclose_after == grant.disclose_after
    with kit.runtime.sessions() as session:
        assert Inbox(session, clock=kit.clock).visible(OWNER) == []
        shown = Inbox(session, clock=lambda: grant.disclose_after).visible(OWNER)
    assert [m.reference for m in shown] == [grant.id]
    accessed = [e for e in _legal_entries(kit) if e["action"] == "locker.legal.accessed"]
    assert len(accessed) == 2
    assert {e["details"]["disclose_after"] for e in accessed} == {
        grant.disclose_after.isoformat().replace("+00:00", "Z")
    }
    immediate = _open(kit, _approved(kit).id)
    assert kit.phones.sent[-1][0] == MOBILE
    assert immediate.disclose_after is None
