"""The once-only exchange without HTTP: terms checked before anything is written, every state
change a compare-and-set that two racers cannot both win, expiry read from the clock, the
classification rules applied at filing, approval and release. Legal-basis access, which the
kit's `legal` also wires, is tested in test_legal.py."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from api.administration import check_integrity
from api.runtime import Runtime, utc_now
from audit.models import entries
from locker.access import Accessor
from locker.consents import CONSENT_TYPE, GRANT_TYPE, ConsentSigner, SignatureInvalid
from locker.doctypes import DOCUMENT_TYPES, Classification, DocumentType
from locker.documents import Locker, UnknownDocument
from locker.exchange import (
    SMS_REQUEST,
    Consent,
    ConsentRefused,
    ConsentStateError,
    Exchange,
    FetchLimitReached,
    NeedsSecondFactor,
    RequestClosed,
    RequestRefused,
    UnknownCitizen,
    UnknownConsent,
    UnknownRequest,
)
from locker.inbox import MAX_MESSAGE, Inbox
from locker.legal import LegalAccess
from locker.models import consents, inbox, requests
from locker.release import ReleaseRefused, checked_doctypes, releasable
from tests.http.test_oidc_security import _both_past

OWNER = "p:" + "A" * 43
OFFICER = "p:" + "O" * 43
MOBILE = "+923001234567"
PDF = b"%PDF-1.7\n" + os.urandom(150_000)
ISSUER = Accessor("client:lgcd-crms", "lgcd", "issuer")


class GatewayDown(Exception):
    pass


@dataclass
class Phones:
    """The citizens the exchange can reach, and the SMS it sent them."""

    known: dict[str, str] = field(default_factory=lambda: {OWNER: MOBILE})
    sent: list[tuple[str, str]] = field(default_factory=list)
    down: bool = False

    def mobile(self, owner: str) -> str | None:
        return self.known.get(owner)

    def send(self, to: str, text: str) -> None:
        if self.down:
            raise GatewayDown("the SMS gateway is not answering")
        self.sent.append((to, text))


@dataclass
class Clock:
    now: datetime = field(default_factory=utc_now)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Kit:
    runtime: Runtime
    key: Ed25519PrivateKey
    phones: Phones
    clock: Clock

    @property
    def signer(self) -> ConsentSigner:
        return ConsentSigner(self.key)

    def exchange(self, session: Session) -> Exchange:
        return Exchange(
            session,
            locker=self.runtime.locker(session),
            audit=self.runtime.audit_log(session),
            signer=self.signer,
            seal=self.runtime.row_seal,
            citizens=self.phones,
            texts=self.phones,
            clock=self.clock,
        )

    def legal(self, session: Session) -> LegalAccess:
        return LegalAccess(
            session,
            locker=self.runtime.locker(session),
            audit=self.runtime.audit_log(session),
            signer=self.signer,
            citizens=self.phones,
            texts=self.phones,
            clock=self.clock,
            seal=self.runtime.row_seal,
        )

    def run(self, work: Callable[[Exchange], Any]) -> Any:
        with self.runtime.transaction() as session:
            return work(self.exchange(session))

    def count(self, table: Any) -> int:
        with self.runtime.sessions() as session:
            return int(session.execute(select(func.count()).select_from(table)).scalar_one())

    def actions(self) -> list[str]:
        with self.runtime.sessions() as session:
            return [
                json.loads(e)["action"] for e in session.execute(select(entries.c.entry)).scalars()
            ]


def _issue(kit: Kit, doctype: str = "birth", issuer: str = "lgcd", doc_id: str = "BC-1") -> str:
    with kit.runtime.transaction() as session:
        return (
            kit.runtime.locker(session)
            .issue(
                owner=OWNER,
                doctype=doctype,
                issuer=issuer,
                issuer_doc_id=doc_id,
                title="A record",
                content=[PDF],
                content_type="application/pdf",
                who=ISSUER,
            )
            .document.id
        )


def _file(kit: Kit, **changes: Any) -> str:
    terms: dict[str, Any] = {
        "requester": "gc-admissions",
        "requester_name": "Government College",
        "owner": OWNER,
        "doctypes": ["birth"],
        "purpose_code": "edu.admission",
        "purpose_text": "Admission: proof of date of birth",
        "data_life_days": 30,
        "valid_until": kit.clock.now + timedelta(days=7),
        "fetch_limit": 2,
        **changes,
    }
    return str(kit.run(lambda exchange: exchange.file_request(**terms).id))


def _approve(kit: Kit, request_id: str) -> Consent:
    consent: Consent = kit.run(
        lambda exchange: exchange.approve(request_id, owner=OWNER, substantial=True)
    )
    return consent


def _fetch(kit: Kit, consent_id: str, document_id: str) -> bytes:
    """One fetch, committed before the content is read, as the API does it."""
    with kit.runtime.transaction() as session:
        fetched = kit.exchange(session).fetch(consent_id, document_id, requester="gc-admissions")
    return b"".join(fetched.content)


# -- filing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "refusal", "message"),
    [
        ({"purpose_code": "edu admission"}, RequestRefused, "a purpose code is"),
        ({"purpose_code": "3520210000022"}, RequestRefused, "must not hold a CNIC"),
        ({"purpose_text": " "}, RequestRefused, "a purpose text is 1 to 500"),
        ({"purpose_text": "x" * 501}, RequestRefused, "a purpose text is 1 to 500"),
        ({"purpose_text": "for 35202-1000003-3"}, RequestRefused, "must not hold a CNIC"),
        ({"fetch_limit": 0}, RequestRefused, "the fetch limit is 1 to 100"),
        ({"fetch_limit": 101}, RequestRefused, "the fetch limit is 1 to 100"),
        ({"data_life_days": -1}, RequestRefused, "the data life is 0 to 3650"),
        ({"doctypes": []}, ReleaseRefused, "ask for 1 to 10 document types"),
        ({"doctypes": ["birth", "passport"]}, ReleaseRefused, "no document type 'passport'"),
        ({"doctypes": ["other"]}, ReleaseRefused, "never released"),
        ({"doctypes": ["chr"], "fetch_limit": 2}, ReleaseRefused, "explicit consent"),
        ({"owner": "p:" + "Z" * 43}, UnknownCitizen, "no citizen has an account"),
    ],
)
def test_terms_are_checked_before_anything_is_written(
    kit: Kit, changes: dict[str, Any], refusal: type[Exception], message: str
) -> None:
    with pytest.raises(refusal, match=message):
        _file(kit, **changes)
    assert kit.count(requests) == kit.count(inbox) == 0
    assert kit.phones.sent == []
    assert "locker.exchange.requested" not in kit.actions()


def test_a_window_must_end_after_it_starts_and_last_at_most_a_year(kit: Kit) -> None:
    now = kit.clock.now
    with pytest.raises(RequestRefused, match="must end after it starts"):
        _file(kit, valid_until=now - timedelta(seconds=1))
    with pytest.raises(RequestRefused, match="at most 365 days"):
        _file(kit, valid_until=now + timedelta(days=366))
    with pytest.raises(RequestRefused, match="UTC offset"):
        _file(kit, valid_until=(now + timedelta(days=1)).replace(tzinfo=None))
    request_id = _file(kit, valid_from=now - timedelta(days=3))
    [filed] = kit.run(lambda exchange: exchange.requests_of(OWNER))
    assert filed.id == request_id
    assert filed.valid_from == now.replace(microsecond=0), "a past start is now"


def test_a_request_tells_the_citizen_and_an_sms_failure_undoes_it(kit: Kit) -> None:
    request_id = _file(kit)
    assert kit.phones.sent == [(MOBILE, SMS_REQUEST)]
    with kit.runtime.sessions() as session:
        [message] = Inbox(session, clock=kit.clock).visible(OWNER)
    assert message.reference == request_id
    assert message.message.startswith("Government College asks for your Birth certificate.")
    kit.phones.down = True
    with pytest.raises(GatewayDown):
        _file(kit)
    assert kit.count(requests) == kit.count(inbox) == 1


# -- deciding ----------------------------------------------------------------------------------


def test_only_the_owner_decides_and_only_with_a_second_factor(kit: Kit) -> None:
    request_id = _file(kit)
    with pytest.raises(NeedsSecondFactor):
        kit.run(lambda exchange: exchange.approve(request_id, owner=OWNER, substantial=False))
    with pytest.raises(UnknownRequest):
        kit.run(lambda exchange: exchange.approve(request_id, owner=OFFICER, substantial=True))
    with pytest.raises(UnknownRequest):
        kit.run(lambda exchange: exchange.deny(request_id, owner=OFFICER))
    assert kit.count(consents) == 0


def test_an_unanswered_request_expires_with_its_window(kit: Kit) -> None:
    request_id = _file(kit, valid_until=kit.clock.now + timedelta(hours=1))
    kit.clock.now += timedelta(hours=1)
    [found] = kit.run(lambda exchange: exchange.requests_of(OWNER, state="expired"))
    assert found.id == request_id
    with pytest.raises(RequestClosed, match="the request is expired"):
        _approve(kit, request_id)
    with pytest.raises(RequestClosed, match="the request is expired"):
        kit.run(lambda exchange: exchange.deny(request_id, owner=OWNER))


def test_two_decisions_at_once_make_one(kit: Kit) -> None:
    """An approval and a denial from two tabs, both having read the request pending: one
    compare-and-set wins, the other is told it was decided meanwhile."""
    request_id = _file(kit)

    def decide(approve: bool) -> str:
        try:
            if approve:
                _approve(kit, request_id)
            else:
                kit.run(lambda exchange: exchange.deny(request_id, owner=OWNER))
        except RequestClosed as exc:
            return str(exc)
        return "approved" if approve else "denied"

    with _both_past(Exchange, "_owned_request"), ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(decide, [True, False]))
    assert "the request was decided meanwhile" in outcomes
    assert kit.count(consents) == (1 if "approved" in outcomes else 0)


def test_the_artifact_signs_the_terms_and_nothing_else(kit: Kit) -> None:
    consent = _approve(kit, _file(kit, doctypes=["birth", "dom"]))
    terms = kit.signer.open(consent.artifact, CONSENT_TYPE)
    assert terms["id"] == consent.id
    assert terms["doctypes"] == ["birth", "dom"]
    assert "status" not in terms
    assert "uses" not in terms
    with pytest.raises(SignatureInvalid, match="not the kind"):
        kit.signer.open(consent.artifact, GRANT_TYPE)  # an artifact is never a grant
    stranger = ConsentSigner(Ed25519PrivateKey.generate())
    with pytest.raises(SignatureInvalid, match="does not verify"):
        stranger.open(consent.artifact, CONSENT_TYPE)
    reloaded = ConsentSigner(kit.key)
    assert reloaded.kid == kit.signer.kid, "the key id is the key's thumbprint, not a counter"
    assert reloaded.open(consent.artifact, CONSENT_TYPE) == terms


# -- changing ----------------------------------------------------------------------------------


def test_consent_changes_follow_the_lifecycle(kit: Kit) -> None:
    consent = _approve(kit, _file(kit))

    def change(action: str, owner: str = OWNER) -> str:
        changed: Consent = kit.run(
            lambda exchange: exchange.change(consent.id, action, owner=owner)
        )
        return changed.status

    with pytest.raises(UnknownConsent):
        change("pause", OFFICER)
    with pytest.raises(ConsentStateError, match="the consent is active; it cannot be resumed"):
        change("resume")
    assert change("pause") == "paused"
    with pytest.raises(ConsentStateError, match="the consent is paused; it cannot be paused"):
        change("pause")
    assert change("resume") == "active"
    assert change("revoke") == "revoked"
    for action in ("pause", "resume", "revoke"):
        with pytest.raises(ConsentStateError):
            change(action)


def test_an_expired_consent_can_be_revoked_but_not_paused_or_used(kit: Kit) -> None:
    document = _issue(kit)
    consent = _approve(kit, _file(kit, valid_until=kit.clock.now + timedelta(days=1)))
    kit.clock.now += timedelta(days=1)
    [listed] = kit.run(lambda exchange: exchange.consents_of(OWNER))
    assert listed.state(kit.clock.now) == "expired"
    with pytest.raises(ConsentStateError, match="the consent is expired"):
        kit.run(lambda exchange: exchange.change(consent.id, "pause", owner=OWNER))
    with pytest.raises(ConsentRefused, match="the consent expired at"):
        _fetch(kit, consent.id, document)
    assert "locker.exchange.refused" in kit.actions(), "the refusal's entry stands"
    revoked = kit.run(lambda exchange: exchange.change(consent.id, "revoke", owner=OWNER))
    assert revoked.status == "revoked"


# -- fetching ----------------------------------------------------------------------------------


def test_two_fetches_at_once_at_the_limit_make_one(kit: Kit) -> None:
    """Both read the consent with one use left before either counts it: the count's
    compare-and-set lets exactly one through."""
    document = _issue(kit)
    consent = _approve(kit, _file(kit, fetch_limit=1))

    def fetch(_: int) -> str:
        try:
            return "fetched" if _fetch(kit, consent.id, document) == PDF else "damaged"
        except FetchLimitReached as exc:
            return str(exc)

    with _both_past(Exchange, "_covered"), ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(fetch, range(2)))
    assert outcomes == ["all 1 fetches this consent allows have been made", "fetched"]
    [after] = kit.run(lambda exchange: exchange.consents_of(OWNER))
    assert after.uses == 1
    assert kit.actions().count("locker.exchange.fetched") == 1


# -- sealed rows: what SQL alone can change, the exchange does not honour ----------------------


def _by_sql(kit: Kit, consent_id: str, **values: Any) -> None:
    """What a DBA can do: change a consent's row, without the service's keys."""
    with kit.runtime.transaction() as session:
        session.execute(update(consents).where(consents.c.id == consent_id).values(**values))


def _mac(kit: Kit, consent_id: str) -> bytes:
    with kit.runtime.sessions() as session:
        found: bytes = session.execute(
            select(consents.c.mac).where(consents.c.id == consent_id)
        ).scalar_one()
    return found


def test_a_revoked_consent_resumed_by_sql_fetches_nothing(
    kit: Kit, caplog: pytest.LogCaptureFixture
) -> None:
    document = _issue(kit)
    consent = _approve(kit, _file(kit))
    kit.run(lambda exchange: exchange.change(consent.id, "revoke", owner=OWNER))
    _by_sql(kit, consent.id, status="active")
    with pytest.raises(UnknownConsent):
        _fetch(kit, consent.id, document)
    with pytest.raises(UnknownConsent):
        kit.run(lambda exchange: exchange.manifest(consent.id, requester="gc-admissions"))
    with pytest.raises(UnknownConsent):
        kit.run(lambda exchange: exchange.change(consent.id, "pause", owner=OWNER))
    assert kit.run(lambda exchange: exchange.consents_of(OWNER)) == []
    assert "locker.exchange.fetched" not in kit.actions()
    warned = [r.getMessage() for r in caplog.records if r.name == "shanakht.integrity"]
    assert f"integrity: locker_consents row {consent.id} has a wrong MAC" in warned[0]
    assert not any(OWNER in line for line in warned), "the log names the row, not the citizen"


def test_a_use_count_set_back_by_sql_fetches_nothing(kit: Kit) -> None:
    document = _issue(kit)
    consent = _approve(kit, _file(kit, fetch_limit=1))
    assert _fetch(kit, consent.id, document) == PDF
    _by_sql(kit, consent.id, uses=0)
    with pytest.raises(UnknownConsent):
        _fetch(kit, consent.id, document)
    assert kit.actions().count("locker.exchange.fetched") == 1


def test_a_consent_whose_mac_is_nulled_or_borrowed_is_no_consent(kit: Kit) -> None:
    """NULL is not "not sealed yet", and one consent's MAC does not seal another."""
    document = _issue(kit)
    first = _approve(kit, _file(kit))
    second = _approve(kit, _file(kit))
    _by_sql(kit, first.id, mac=None)
    _by_sql(kit, second.id, mac=_mac(kit, first.id) or b"")
    for consent in (first, second):
        with pytest.raises(UnknownConsent):
            _fetch(kit, consent.id, document)


def test_sealed_changes_and_fetches_keep_a_consent_whole(kit: Kit) -> None:
    """Every legitimate change writes a new seal: the consent stays usable through a pause,
    a resume and each fetch, and the count the seal covers is the one the service wrote."""
    document = _issue(kit)
    consent = _approve(kit, _file(kit, fetch_limit=3))
    sealed = _mac(kit, consent.id)
    assert _fetch(kit, consent.id, document) == PDF
    assert _mac(kit, consent.id) != sealed, "the fetch re-sealed the row with its new count"
    kit.run(lambda exchange: exchange.change(consent.id, "pause", owner=OWNER))
    kit.run(lambda exchange: exchange.change(consent.id, "resume", owner=OWNER))
    assert _fetch(kit, consent.id, document) == PDF
    [after] = kit.run(lambda exchange: exchange.consents_of(OWNER))
    assert (after.status, after.uses) == ("active", 2)


# -- reconciled with the log: an earlier sealed row put back ---------------------------------


def _listed(kit: Kit) -> list[str]:
    """What `shanakht audit integrity` lists of the consents: every row's seal holds here, so
    only the reconciliation with the log can see an earlier row put back."""
    found = check_integrity(kit.runtime)
    assert found.bad == []
    return [f"{m.table} {m.key}: {m.problem}" for m in found.mismatches]


def _kept(kit: Kit, consent_id: str) -> dict[str, Any]:
    """A DBA's copy of a consent's row, MAC and all."""
    with kit.runtime.sessions() as session:
        row = session.execute(select(consents).where(consents.c.id == consent_id)).one()
    return dict(row._mapping)


def test_an_honest_consent_history_reconciles(kit: Kit) -> None:
    document = _issue(kit)
    consent = _approve(kit, _file(kit, fetch_limit=3))
    _approve(kit, _file(kit))  # another, never used
    assert _fetch(kit, consent.id, document) == PDF
    for action in ("pause", "resume"):
        kit.run(lambda exchange, action=action: exchange.change(consent.id, action, owner=OWNER))
    assert _fetch(kit, consent.id, document) == PDF
    kit.run(lambda exchange: exchange.change(consent.id, "pause", owner=OWNER))
    with pytest.raises(ConsentRefused):  # a refused fetch is recorded, and uses nothing
        _fetch(kit, consent.id, document)
    kit.run(lambda exchange: exchange.change(consent.id, "revoke", owner=OWNER))
    assert _listed(kit) == []


def test_a_consent_put_back_from_before_its_revocation_is_listed(kit: Kit) -> None:
    document = _issue(kit)
    consent = _approve(kit, _file(kit))
    kept = _kept(kit, consent.id)
    kit.run(lambda exchange: exchange.change(consent.id, "revoke", owner=OWNER))
    assert _listed(kit) == []
    _by_sql(kit, consent.id, **kept)
    assert _fetch(kit, consent.id, document) == PDF, "its seal holds: the service honours it"
    assert _listed(kit) == [
        f"locker_consents {consent.id}: active, but the log last recorded it revoked"
    ]


def test_a_use_count_put_back_below_the_fetches_recorded_is_listed(kit: Kit) -> None:
    document = _issue(kit)
    consent = _approve(kit, _file(kit, fetch_limit=2))
    assert _fetch(kit, consent.id, document) == PDF
    kept = _kept(kit, consent.id)
    assert _fetch(kit, consent.id, document) == PDF
    _by_sql(kit, consent.id, **kept)
    assert _listed(kit) == [
        f"locker_consents {consent.id}: 1 uses, but the log recorded 2 fetches under it"
    ]


def test_fetches_recorded_before_they_named_their_consent_still_count(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fetch entry from before the `consent` detail names the consent only in its basis:
    it is counted from there, so neither a false alarm nor a fetch missed."""
    document = _issue(kit)
    consent = _approve(kit, _file(kit, fetch_limit=2))
    content = Locker.content

    def as_before(self: Locker, found: Any, *, who: Accessor, action: str, **_: Any) -> Any:
        return content(self, found, who=who, action=action)

    monkeypatch.setattr(Locker, "content", as_before)
    kept = _kept(kit, consent.id)
    assert _fetch(kit, consent.id, document) == PDF
    with kit.runtime.sessions() as session:
        last = json.loads(session.execute(select(entries.c.entry).order_by(
            entries.c.seq.desc())).scalars().first())  # fmt: skip
    assert last["action"] == "locker.exchange.fetched"
    assert "consent" not in last["details"], "the entry is as one written before the detail"
    assert _listed(kit) == []
    _by_sql(kit, consent.id, **kept)
    assert _listed(kit) == [
        f"locker_consents {consent.id}: 0 uses, but the log recorded 1 fetches under it"
    ]


def test_a_fetch_says_when_the_department_must_delete_it(kit: Kit) -> None:
    """The consent's data life counts from each fetch: a later fetch under the same consent
    is to be kept until later, and a data life of 0 days means delete it the moment it is
    used."""
    mine = _issue(kit)
    consent = _approve(kit, _file(kit, data_life_days=10))
    kit.clock.now = kit.clock.now.replace(microsecond=654_321)
    with kit.runtime.transaction() as session:
        first = kit.exchange(session).fetch(consent.id, mine, requester="gc-admissions")
    assert b"".join(first.content) == PDF
    assert first.delete_by == kit.clock.now.replace(microsecond=0) + timedelta(days=10)
    kit.clock.now += timedelta(days=2)
    with kit.runtime.transaction() as session:
        second = kit.exchange(session).fetch(consent.id, mine, requester="gc-admissions")
    b"".join(second.content)
    assert second.delete_by - first.delete_by == timedelta(days=2)
    at_once = _approve(kit, _file(kit, data_life_days=0))
    with kit.runtime.transaction() as session:
        fetched = kit.exchange(session).fetch(at_once.id, mine, requester="gc-admissions")
    b"".join(fetched.content)
    assert fetched.delete_by == kit.clock.now.replace(microsecond=0)


def test_a_fetch_only_reaches_the_consents_documents(kit: Kit) -> None:
    mine = _issue(kit)
    matric = _issue(kit, "matric", "bise", "MT-1")
    consent = _approve(kit, _file(kit))
    with pytest.raises(UnknownConsent):
        kit.run(lambda exchange: exchange.fetch(consent.id, mine, requester="police-records"))
    with pytest.raises(UnknownDocument):
        _fetch(kit, consent.id, matric)
    with pytest.raises(UnknownDocument):
        _fetch(kit, consent.id, "nosuchdocument")
    assert _fetch(kit, consent.id, mine) == PDF


def test_a_type_classified_up_stops_its_release_at_once(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = _issue(kit)
    standing = _approve(kit, _file(kit, fetch_limit=5))
    pending = _file(kit, fetch_limit=5)
    birth = DOCUMENT_TYPES["birth"]
    monkeypatch.setitem(
        DOCUMENT_TYPES,
        "birth",
        DocumentType("birth", birth.name, birth.department, Classification.SENSITIVE),
    )
    _consent, listed = kit.run(
        lambda exchange: exchange.manifest(standing.id, requester="gc-admissions")
    )
    assert listed == [], "a standing consent never carries a Sensitive document"
    with pytest.raises(UnknownDocument):
        _fetch(kit, standing.id, document)
    with pytest.raises(ReleaseRefused, match="explicit consent"):
        _approve(kit, pending)
    monkeypatch.setitem(
        DOCUMENT_TYPES,
        "birth",
        DocumentType("birth", birth.name, birth.department, Classification.SECRET),
    )
    with pytest.raises(ReleaseRefused, match="Secret"):
        _file(kit, fetch_limit=1)


def test_release_rules(kit: Kit) -> None:
    now = kit.clock.now
    with kit.runtime.transaction() as session:
        locker = kit.runtime.locker(session)
        issued = locker.get(_issue(kit), owner=OWNER)
        upload = locker.upload(
            owner=OWNER,
            doctype="birth",
            title="scan",
            content=[PDF],
            content_type="application/pdf",
            who=ISSUER,
        )
    assert releasable(issued, ["birth"], now=now, standing=True)
    assert not releasable(issued, ["dom"], now=now, standing=True)
    assert not releasable(upload, ["birth"], now=now, standing=False)
    assert checked_doctypes(["birth", "dom", "birth"], standing=True) == ("birth", "dom")
    with pytest.raises(ReleaseRefused, match="1 to 10"):
        checked_doctypes(["birth"] * 1 + [f"t{i}" for i in range(10)], standing=False)


# -- the inbox ---------------------------------------------------------------------------------


def test_the_inbox_cuts_long_messages_and_shows_the_newest_first(kit: Kit) -> None:
    with kit.runtime.transaction() as session:
        box = Inbox(session, clock=kit.clock)
        box.post(OWNER, "note", "first")
        box.post(OWNER, "note", "x" * 600)
        box.post(OWNER, "note", "later", visible_from=kit.clock.now + timedelta(days=1))
        box.post("p:" + "B" * 43, "note", "someone else's")
    with kit.runtime.sessions() as session:
        shown = Inbox(session, clock=kit.clock).visible(OWNER)
    assert [len(m.message) for m in shown] == [MAX_MESSAGE, len("first")]
    assert shown[0].message.endswith("…")
