"""Documents in a locker: issued once however often retried, versioned on update, revoked by
their issuer, read back only as stored, refused whole when too large or not what they claim,
shredded on delete, orphans swept, and every step an audit entry."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.runtime import Runtime
from audit.models import entries
from locker.access import Accessor
from locker.documents import (
    DocumentRefused,
    Locker,
    UnknownDocument,
)
from locker.errors import CiphertextInvalid
from locker.kek import LocalKeks
from locker.models import documents, versions
from locker.stores import LocalStore

OWNER = "p:" + "A" * 43
OTHER = "p:" + "B" * 43
PDF = b"%PDF-1.7\n" + os.urandom(200_000)
ISSUER = Accessor("client:lgcd-crms", "lgcd", "issuer")
CITIZEN = Accessor(OWNER, "citizen", "owner")
Parts = tuple[LocalStore, LocalKeks]


@pytest.fixture
def parts(runtime: Runtime, tmp_path: Path) -> Parts:
    return LocalStore(tmp_path / "objects"), LocalKeks(tmp_path / "keks", os.urandom(32))


def _locker(runtime: Runtime, session: Session, parts: Parts, max_bytes: int = 2**30) -> Locker:
    store, keks = parts
    return Locker(
        session, store=store, keks=keks, audit=runtime.audit_log(session), clock=runtime.clock,
        seal=runtime.row_seal, max_bytes=max_bytes,
    )  # fmt: skip


def _issue(
    locker: Locker, doc_id: str = "BC-2026-0001", owner: str = OWNER, content: bytes = PDF
) -> tuple[str, str]:
    issued = locker.issue(
        owner=owner, doctype="birth", issuer="lgcd", issuer_doc_id=doc_id,
        title="Birth certificate", content=[content[:1000], content[1000:]],
        content_type="application/pdf", who=ISSUER,
    )  # fmt: skip
    return issued.document.id, issued.outcome


def _objects(store: LocalStore) -> list[str]:
    return sorted(store.keys("documents/"))


def _actions(runtime: Runtime) -> bytes:
    with runtime.sessions() as session:
        return b"".join(session.execute(select(entries.c.entry)).scalars())


def test_an_issued_document_reads_back_as_issued_and_a_retry_makes_no_second(
    runtime: Runtime, parts: Parts
) -> None:
    with runtime.transaction() as session:
        first, outcome = _issue(_locker(runtime, session, parts))
    assert outcome == "created"
    with runtime.transaction() as session:
        locker = _locker(runtime, session, parts)
        assert _issue(locker) == (first, "unchanged")
        document, content = locker.open(first, owner=OWNER, who=CITIZEN)
        assert b"".join(content) == PDF
    assert document.uri == "lgcd-birth-BC-2026-0001"
    assert (document.size, document.version, document.classification) == (
        len(PDF), 1, "confidential",
    )  # fmt: skip
    store, _ = parts
    assert len(_objects(store)) == 1, "the retry's copy was removed"
    stored = b"".join(store.get(_objects(store)[0]))
    assert PDF[20:60] not in stored, "the store holds ciphertext only"
    actions = _actions(runtime)
    assert actions.count(b'"action":"locker.document.issued"') == 1
    assert b'"action":"locker.document.read"' in actions
    assert b'"system":"shanakht-locker"' in actions


def test_an_update_is_a_new_version_and_the_old_one_stays_recorded(
    runtime: Runtime, parts: Parts
) -> None:
    changed = PDF[:-10] + b"corrected!"
    with runtime.transaction() as session:
        document_id, _ = _issue(_locker(runtime, session, parts))
    with runtime.transaction() as session:
        assert _issue(_locker(runtime, session, parts), content=changed) == (
            document_id, "updated",
        )  # fmt: skip
    with runtime.transaction() as session:
        locker = _locker(runtime, session, parts)
        document, content = locker.open(document_id, owner=OWNER, who=CITIZEN)
        assert (document.version, b"".join(content)) == (2, changed)
        count = session.execute(
            select(func.count()).where(versions.c.document_id == document_id)
        ).scalar_one()
    assert count == 2
    assert b'"action":"locker.document.updated"' in _actions(runtime)


def test_a_revoked_document_stays_shown_as_revoked_and_takes_no_update(
    runtime: Runtime, parts: Parts
) -> None:
    with runtime.transaction() as session:
        _document_id, _ = _issue(_locker(runtime, session, parts))
    with runtime.transaction() as session:
        revoked = _locker(runtime, session, parts).revoke(
            issuer="lgcd", issuer_doc_id="BC-2026-0001", reason="issued in error", who=ISSUER
        )
    assert (revoked.state(runtime.clock()), revoked.revocation_reason) == (
        "revoked", "issued in error",
    )  # fmt: skip
    with runtime.transaction() as session:
        locker = _locker(runtime, session, parts)
        with pytest.raises(DocumentRefused, match="revoked"):
            _issue(locker, content=PDF + b"x")
        with pytest.raises(UnknownDocument):
            locker.revoke(issuer="lgcd", issuer_doc_id="nope", reason="r", who=ISSUER)
    store, _ = parts
    assert len(_objects(store)) == 1, "the refused update left nothing behind"


def test_expiry_is_a_state_and_a_reminder_comes_30_days_before(
    runtime: Runtime, parts: Parts
) -> None:
    now = runtime.clock()
    with runtime.transaction() as session:
        issued = _locker(runtime, session, parts).issue(
            owner=OWNER, doctype="dl", issuer="transport", issuer_doc_id="DL-1",
            title="Driving licence", content=[b'{"class": "LTV"}'],
            content_type="application/json", who=ISSUER, valid_until=now + timedelta(days=20),
        ).document  # fmt: skip
    assert issued.state(now) == "active"
    assert issued.expires_soon(now)
    assert not issued.expires_soon(now - timedelta(days=30))
    assert issued.state(now + timedelta(days=21)) == "expired"


def test_only_the_owner_reads_and_only_the_right_department_issues(
    runtime: Runtime, parts: Parts
) -> None:
    with runtime.transaction() as session:
        document_id, _ = _issue(_locker(runtime, session, parts))
    with runtime.transaction() as session:
        locker = _locker(runtime, session, parts)
        with pytest.raises(UnknownDocument):
            locker.open(document_id, owner=OTHER, who=CITIZEN)
        with pytest.raises(DocumentRefused, match="issued by lgcd"):
            locker.issue(owner=OWNER, doctype="birth", issuer="police", issuer_doc_id="x",
                         title="t", content=[b"{}"], content_type="application/json",
                         who=ISSUER)  # fmt: skip
        with pytest.raises(DocumentRefused, match="not one of"):
            locker.issue(owner=OWNER, doctype="birth", issuer="lgcd", issuer_doc_id="y",
                         title="t", content=[b"MZ"], content_type="application/x-msdownload",
                         who=ISSUER)  # fmt: skip
        with pytest.raises(DocumentRefused, match="another document"):
            _issue(locker, owner=OTHER)
        with pytest.raises(DocumentRefused, match="must not hold a CNIC"):
            _issue(locker, doc_id="35202-1234567-1")
        with pytest.raises(LookupError, match="no document type"):
            locker.issue(owner=OWNER, doctype="passport", issuer="lgcd", issuer_doc_id="z",
                         title="t", content=[b"{}"], content_type="application/json",
                         who=ISSUER)  # fmt: skip


@pytest.mark.parametrize(
    ("content", "content_type", "error"),
    [
        ([b"<html><script>alert(1)</script>"], "application/pdf", "not application/pdf"),
        ([b"%PDF-1.7\n", b"x" * 5000], "image/png", "not image/png"),
        ([], "application/pdf", "empty"),
        ([b"", b""], "application/json", "empty"),
        ([b"%PDF-1.7\n" + b"x" * 600, b"x" * 600], "application/pdf", "at most 1024 bytes"),
    ],
)
def test_content_is_refused_whole_when_it_is_not_what_it_claims_or_too_large(
    runtime: Runtime, parts: Parts, content: list[bytes], content_type: str, error: str
) -> None:
    with runtime.transaction() as session, pytest.raises(DocumentRefused, match=error):
        _locker(runtime, session, parts, max_bytes=1024).upload(
            owner=OWNER, doctype="other", title="mine", content=content,
            content_type=content_type, who=CITIZEN,
        )  # fmt: skip
    store, _ = parts
    assert _objects(store) == [], "nothing half-written"
    with runtime.sessions() as session:
        assert session.execute(select(func.count()).select_from(documents)).scalar_one() == 0


def test_json_and_xml_may_start_with_whitespace_or_a_byte_order_mark(
    runtime: Runtime, parts: Parts
) -> None:
    with runtime.transaction() as session:
        locker = _locker(runtime, session, parts)
        for content, kind in ((b'\xef\xbb\xbf\n {"a": 1}', "application/json"),
                              (b"  <?xml version='1.0'?><a/>", "application/xml")):  # fmt: skip
            locker.upload(owner=OWNER, doctype="other", title="mine", content=[content],
                          content_type=kind, who=CITIZEN)  # fmt: skip
        assert len(locker.list(OWNER)) == 2


def test_changed_ciphertext_is_never_served(runtime: Runtime, parts: Parts, tmp_path: Path) -> None:
    with runtime.transaction() as session:
        document_id, _ = _issue(_locker(runtime, session, parts))
    store, _ = parts
    path = tmp_path / "objects" / _objects(store)[0]
    data = bytearray(path.read_bytes())
    data[5000] ^= 1
    path.write_bytes(bytes(data))
    with runtime.transaction() as session:
        _, content = _locker(runtime, session, parts).open(document_id, owner=OWNER, who=CITIZEN)
        with pytest.raises(CiphertextInvalid):
            b"".join(content)


def test_uploads_are_deleted_by_shredding_and_issued_documents_are_not_deletable(
    runtime: Runtime, parts: Parts
) -> None:
    store, _ = parts
    with runtime.transaction() as session:
        locker = _locker(runtime, session, parts)
        issued_id, _ = _issue(locker)
        upload = locker.upload(
            owner=OWNER, doctype="matric", title="My matric", content=[PDF],
            content_type="application/pdf", who=CITIZEN,
        )  # fmt: skip
    assert upload.uploaded
    assert upload.signature is None
    assert upload.uri.startswith("self-matric-")
    with runtime.transaction() as session:
        locker = _locker(runtime, session, parts)
        with pytest.raises(DocumentRefused, match="cannot be deleted"):
            locker.delete(issued_id, owner=OWNER, who=CITIZEN)
        locker.delete(upload.id, owner=OWNER, who=CITIZEN)
    with runtime.transaction() as session:
        locker = _locker(runtime, session, parts)
        with pytest.raises(UnknownDocument):
            locker.open(upload.id, owner=OWNER, who=CITIZEN)
        assert [d.id for d in locker.list(OWNER)] == [issued_id]
        assert len(_objects(store)) == 2, "removed only by the sweep"
        assert locker.sweep() == 1
    assert len(_objects(store)) == 1


def test_an_object_whose_transaction_failed_is_swept_once_old_enough(
    runtime: Runtime, parts: Parts
) -> None:
    store, _ = parts

    def issue_then_fail() -> None:
        with runtime.transaction() as session:
            _issue(_locker(runtime, session, parts))
            raise RuntimeError("the commit never happens")

    with pytest.raises(RuntimeError):
        issue_then_fail()
    with runtime.transaction() as session:
        kept, _ = _issue(_locker(runtime, session, parts), doc_id="BC-2")
    assert len(_objects(store)) == 2
    with runtime.transaction() as session:
        assert _locker(runtime, session, parts).sweep_orphans() == 0, "too young to be sure"
        assert _locker(runtime, session, parts).sweep_orphans(grace=timedelta(0)) == 1
    with runtime.transaction() as session:
        _, content = _locker(runtime, session, parts).open(kept, owner=OWNER, who=CITIZEN)
        assert b"".join(content) == PDF


def test_an_issuer_seal_is_kept_with_its_version(runtime: Runtime, parts: Parts) -> None:
    sealed: list[bytes] = []

    def seal(sha256: bytes) -> bytes:
        sealed.append(sha256)
        return b"CMS over " + sha256

    with runtime.transaction() as session:
        issued = _locker(runtime, session, parts).issue(
            owner=OWNER, doctype="birth", issuer="lgcd", issuer_doc_id="BC-9", title="Birth",
            content=[PDF], content_type="application/pdf", who=ISSUER, seal=seal,
        ).document  # fmt: skip
    assert sealed == [issued.sha256]
    assert issued.signature == b"CMS over " + issued.sha256


def test_an_issue_that_loses_the_race_for_its_issuer_id_answers_the_winner(
    runtime: Runtime, parts: Parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another request records the same issuer's document id between this one's read and its
    insert: the insert does nothing, the transaction goes on, and the retry is judged against
    the document the other made (here the same content: unchanged, no second document)."""
    with runtime.transaction() as session:
        first, _ = _issue(_locker(runtime, session, parts))
    looked = Locker._by_issuer_id
    calls: list[bool] = []

    def unseen_at_first(self: Locker, issuer: str, doc_id: str, *, lock: bool = False) -> object:
        calls.append(lock)
        return None if len(calls) == 1 else looked(self, issuer, doc_id, lock=lock)

    monkeypatch.setattr(Locker, "_by_issuer_id", unseen_at_first)
    with runtime.transaction() as session:
        assert _issue(_locker(runtime, session, parts)) == (first, "unchanged")
    with runtime.sessions() as session:
        assert session.execute(select(func.count()).select_from(documents)).scalar_one() == 1
        assert session.execute(select(func.count()).select_from(versions)).scalar_one() == 1
