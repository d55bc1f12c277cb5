"""Sealed locker rows (docs/threat-model.md section 7, item 9): a document's row, share links,
nominees and guardians, and legal-access requests. A row changed or written by SQL, or with its
MAC set NULL, grants nothing and is listed by the administrator's check (`bad_rows` over
`SEALED_TABLES`, what `shanakht audit integrity` runs); what the service writes verifies."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Table, insert, update

from api.migrate import SEALED_TABLES
from api.routes.locker_views import sharing
from audit.row_seal import BadRow, bad_rows
from locker.access import Accessor
from locker.documents import Document, DocumentRefused, UnknownDocument
from locker.legal import LegalRequestClosed, UnknownLegalRequest
from locker.models import documents, legal_requests, nominees, shares
from locker.sharing import ShareUnusable
from tests.unit.locker.test_exchange import ISSUER, OWNER, PDF, Kit, _issue
from tests.unit.locker.test_legal import FIA, SECOND, _approve, _download, _file, _open

OTHER = "p:" + "B" * 43  # another citizen
CITIZEN = Accessor(OWNER, "citizen", "owner")


def _by_sql(kit: Kit, statement: Any) -> None:
    """What a DBA can do, without the service's keys."""
    with kit.runtime.transaction() as session:
        session.execute(statement)


def _bad(kit: Kit) -> list[BadRow]:
    with kit.runtime.sessions() as session:
        return bad_rows(session, kit.runtime.row_seal, SEALED_TABLES)


def _listed(kit: Kit, table: Table) -> list[tuple[str, str]]:
    return [(bad.key, bad.problem) for bad in _bad(kit) if bad.table == table.name]


def _document(kit: Kit, document_id: str) -> Document:
    with kit.runtime.sessions() as session:
        found = kit.runtime.locker(session).find(document_id)
    assert found is not None
    return found


# -- legal-access requests ------------------------------------------------------------------------


def test_a_legal_request_approved_by_sql_opens_nothing(kit: Kit) -> None:
    _issue(kit)
    filed = _file(kit)
    _by_sql(
        kit,
        update(legal_requests)
        .where(legal_requests.c.id == filed.id)
        .values(status="approved", decider=SECOND, decided_at=kit.clock.now),
    )
    with pytest.raises(UnknownLegalRequest):
        _open(kit, filed.id)
    with pytest.raises(UnknownLegalRequest):
        _approve(kit, filed.id)
    with kit.runtime.transaction() as session:
        legal = kit.legal(session)
        assert legal.filed_by(officer=filed.filer, departments=FIA) == []
        assert legal.awaiting(officer=SECOND, departments=FIA) == []
    assert _listed(kit, legal_requests) == [(filed.id, "wrong")]


def test_a_legal_request_inserted_by_sql_or_with_its_mac_nulled_is_no_request(kit: Kit) -> None:
    _issue(kit)
    genuine = _file(kit)
    _by_sql(
        kit,
        insert(legal_requests).values(
            id="forgedbysql", department="fia", filer=genuine.filer, owner=OWNER,
            doctypes="birth", legal_reference="none", reason="none", disclosure_delay_days=0,
            created_at=kit.clock.now, status="approved", decider=SECOND,
            decided_at=kit.clock.now,
        ),
    )  # fmt: skip
    _by_sql(kit, update(legal_requests).where(legal_requests.c.id == genuine.id).values(mac=None))
    for request_id in ("forgedbysql", genuine.id):
        with pytest.raises(UnknownLegalRequest):
            _open(kit, request_id)
        with pytest.raises(UnknownLegalRequest):
            _approve(kit, request_id)
    assert sorted(_listed(kit, legal_requests)) == sorted(
        [("forgedbysql", "missing"), (genuine.id, "missing")]
    )


def test_a_request_changed_by_sql_after_the_check_is_not_blessed_by_its_decision(
    kit: Kit,
) -> None:
    """A request changed by SQL between the second officer's check and the decision (another
    citizen named) is decided as it was checked: the new seal covers the checked row, so the
    changed one still fails it and is never opened."""
    _issue(kit)
    filed = _file(kit)
    with kit.runtime.transaction() as session:
        legal = kit.legal(session)
        checked = legal._deciding(filed.id, SECOND, True, FIA)
        session.execute(
            update(legal_requests).where(legal_requests.c.id == filed.id).values(owner=OTHER)
        )
        legal._decide(checked, "approved", SECOND, None)
    with pytest.raises(UnknownLegalRequest):
        _open(kit, filed.id)
    assert _listed(kit, legal_requests) == [(filed.id, "wrong")]


def test_a_decision_writes_only_the_row_whose_seal_it_checked(kit: Kit) -> None:
    """The compare-and-set on the old MAC: a decision made on a row read before another sealed
    write (here the row as filed, decided meanwhile by a refusal) changes nothing."""
    _issue(kit)
    filed = _file(kit)
    with kit.runtime.sessions() as session:
        stale = kit.legal(session)._deciding(filed.id, SECOND, True, FIA)
    with kit.runtime.transaction() as session:
        row = kit.legal(session)._deciding(filed.id, SECOND, True, FIA)
        resealed = kit.runtime.row_seal.mac(legal_requests, {**row, "reason": "Changed"})
        session.execute(  # a sealed change that leaves it pending: only the MAC tells
            update(legal_requests)
            .where(legal_requests.c.id == filed.id)
            .values(reason="Changed", mac=resealed)
        )
    with kit.runtime.transaction() as session, pytest.raises(LegalRequestClosed):
        kit.legal(session)._decide(stale, "approved", SECOND, None)
    with kit.runtime.sessions() as session:
        found = kit.legal(session).get(filed.id, departments=FIA)
    assert (found.status, found.reason) == ("pending", "Changed")


def test_sealed_decisions_and_openings_keep_a_legal_request_whole(kit: Kit) -> None:
    document_id = _issue(kit)
    approved = _approve(kit, _file(kit, disclosure_delay_days=3).id)
    grant = _open(kit, approved.id)
    assert _download(kit, grant, document_id) == PDF
    _open(kit, approved.id)  # a second opening: the row as the first opening sealed it
    refused = _file(kit)
    with kit.runtime.transaction() as session:
        kit.legal(session).refuse(
            refused.id, officer=SECOND, substantial=True, departments=FIA, reason="No"
        )
    assert _bad(kit) == []


# -- nominees and guardians -----------------------------------------------------------------------


def test_a_guardian_named_by_sql_reads_nothing(kit: Kit) -> None:
    with kit.runtime.transaction() as session:
        sharing(kit.runtime, session).nominate(OWNER, OTHER, "nominee", who=CITIZEN)
    with kit.runtime.sessions() as session:
        assert sharing(kit.runtime, session).relation(OWNER, OTHER) == "nominee"
    forger = "p:" + "F" * 43
    _by_sql(
        kit,
        insert(nominees).values(
            owner=OWNER, nominee=forger, relation="guardian", created_at=kit.clock.now
        ),
    )
    _by_sql(kit, update(nominees).where(nominees.c.nominee == OTHER).values(relation="guardian"))
    with kit.runtime.sessions() as session:
        shared = sharing(kit.runtime, session)
        assert shared.relation(OWNER, forger) is None
        assert shared.relation(OWNER, OTHER) is None
        assert shared.nominees(OWNER) == []
        assert shared.nominated_by(forger) == []
    assert sorted(_listed(kit, nominees)) == sorted(
        [(f"{OWNER}/{forger}", "missing"), (f"{OWNER}/{OTHER}", "wrong")]
    )
    with kit.runtime.transaction() as session:  # the owner names them again: sealed anew
        sharing(kit.runtime, session).nominate(OWNER, OTHER, "guardian", who=CITIZEN)
        assert sharing(kit.runtime, session).relation(OWNER, OTHER) == "guardian"
    _by_sql(kit, update(nominees).values(mac=None))
    with kit.runtime.sessions() as session:
        assert sharing(kit.runtime, session).relation(OWNER, OTHER) is None


# -- share links ----------------------------------------------------------------------------------


def _share(kit: Kit, document_id: str, max_uses: int | None = None) -> tuple[str, str]:
    with kit.runtime.transaction() as session:
        link, token = sharing(kit.runtime, session).share(
            _document(kit, document_id), who=CITIZEN, life=timedelta(minutes=5),
            max_uses=max_uses,
        )  # fmt: skip
    return link.id, token


def _redeem(kit: Kit, token: str) -> str:
    with kit.runtime.transaction() as session:
        return sharing(kit.runtime, session).redeem(token).document_id


def test_a_share_link_lengthened_unrevoked_or_moved_by_sql_serves_nothing(kit: Kit) -> None:
    document_id = _issue(kit)
    other_id = _issue(kit, doc_id="BC-2")
    lengthened, a = _share(kit, document_id)
    unrevoked, b = _share(kit, document_id)
    moved, c = _share(kit, document_id)
    nulled, d = _share(kit, document_id)
    with kit.runtime.transaction() as session:
        sharing(kit.runtime, session).revoke(unrevoked, owner=OWNER, who=CITIZEN)
    later = kit.clock.now + timedelta(days=29)
    _by_sql(kit, update(shares).where(shares.c.id == lengthened).values(expires_at=later))
    _by_sql(kit, update(shares).where(shares.c.id == unrevoked).values(revoked_at=None))
    _by_sql(kit, update(shares).where(shares.c.id == moved).values(document_id=other_id))
    _by_sql(kit, update(shares).where(shares.c.id == nulled).values(mac=None))
    kit.clock.now += timedelta(minutes=1)
    for token in (a, b, c, d):
        with pytest.raises(ShareUnusable):
            _redeem(kit, token)
    with kit.runtime.sessions() as session:
        assert sharing(kit.runtime, session).shares(OWNER) == []
    assert sorted(_listed(kit, shares)) == sorted(
        [(lengthened, "wrong"), (unrevoked, "wrong"), (moved, "wrong"), (nulled, "missing")]
    )


def test_a_share_links_uses_are_counted_on_its_sealed_row(kit: Kit) -> None:
    document_id = _issue(kit)
    link, token = _share(kit, document_id, max_uses=2)
    assert _redeem(kit, token) == document_id
    assert _redeem(kit, token) == document_id
    with pytest.raises(ShareUnusable):
        _redeem(kit, token)
    _by_sql(kit, update(shares).where(shares.c.id == link).values(uses=0))  # set back by SQL
    with pytest.raises(ShareUnusable):
        _redeem(kit, token)
    assert _listed(kit, shares) == [(link, "wrong")]


# -- documents ------------------------------------------------------------------------------------


def _revoke(kit: Kit, doc_id: str = "BC-1") -> Document:
    with kit.runtime.transaction() as session:
        return kit.runtime.locker(session).revoke(
            issuer="lgcd", issuer_doc_id=doc_id, reason="Issued in error", who=ISSUER
        )


def test_a_document_unrevoked_by_sql_is_no_document_and_not_valid_to_the_verifier(
    kit: Kit,
) -> None:
    document_id = _issue(kit)
    _revoke(kit)
    _by_sql(
        kit,
        update(documents)
        .where(documents.c.id == document_id)
        .values(status="active", revoked_at=None, revocation_reason=None),
    )
    with kit.runtime.sessions() as session:
        locker = kit.runtime.locker(session)
        assert locker.find(document_id) is None
        assert locker.list(OWNER) == []
        assert locker.issued("lgcd", "BC-1") is None
        recorded = locker.recorded("lgcd", "BC-1")
        assert recorded is not None
        assert not recorded.sealed, "the verifier refuses it"
        with pytest.raises(UnknownDocument):
            locker.open(document_id, owner=OWNER, who=CITIZEN)
    with pytest.raises(DocumentRefused) as refused:
        _revoke(kit)
    assert refused.value.code == "document.unsealed"
    assert _listed(kit, documents) == [(document_id, "wrong")]


def test_a_document_moved_to_another_locker_by_sql_is_nobodys(kit: Kit) -> None:
    document_id = _issue(kit)
    nulled_id = _issue(kit, doc_id="BC-2")
    _by_sql(kit, update(documents).where(documents.c.id == document_id).values(owner=OTHER))
    _by_sql(kit, update(documents).where(documents.c.id == nulled_id).values(mac=None))
    with kit.runtime.sessions() as session:
        locker = kit.runtime.locker(session)
        assert locker.list(OTHER) == []
        assert locker.list(OWNER) == []
        for found, owner in ((document_id, OTHER), (nulled_id, OWNER)):
            with pytest.raises(UnknownDocument):
                locker.get(found, owner=owner)
    with pytest.raises(DocumentRefused) as refused:  # the issuer cannot build on it either
        _issue(kit)
    assert refused.value.code == "document.unsealed"
    assert sorted(_listed(kit, documents)) == sorted(
        [(document_id, "wrong"), (nulled_id, "missing")]
    )


def test_issuing_updating_revoking_and_deleting_keep_documents_sealed(kit: Kit) -> None:
    document_id = _issue(kit)
    with kit.runtime.transaction() as session:
        updated = kit.runtime.locker(session).issue(
            owner=OWNER, doctype="birth", issuer="lgcd", issuer_doc_id="BC-1",
            title="A record, corrected", content=[PDF + b"\n"],
            content_type="application/pdf", who=ISSUER,
        )  # fmt: skip
    assert (updated.outcome, updated.document.version) == ("updated", 2)
    assert _document(kit, document_id).title == "A record, corrected"
    assert _revoke(kit).status == "revoked"
    with kit.runtime.transaction() as session:
        locker = kit.runtime.locker(session)
        upload = locker.upload(
            owner=OWNER, doctype="birth", title="My copy", content=[PDF],
            content_type="application/pdf", who=CITIZEN,
        )  # fmt: skip
        locker.delete(upload.id, owner=OWNER, who=CITIZEN)
    with kit.runtime.sessions() as session:
        assert [d.id for d in kit.runtime.locker(session).list(OWNER)] == [document_id]
    assert _bad(kit) == []
