"""Documents in a locker: issued once however often retried, read back only as stored, shredded
on delete, and every step an audit entry."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.runtime import Runtime
from audit.models import entries
from locker.documents import DocumentRefused, Locker, UnknownDocument
from locker.errors import CiphertextInvalid
from locker.kek import LocalKeks
from locker.stores import LocalStore

OWNER = "p:" + "A" * 43
OTHER = "p:" + "B" * 43
PDF = b"%PDF-1.7\n" + os.urandom(200_000)


@pytest.fixture
def parts(runtime: Runtime, tmp_path: Path) -> tuple[LocalStore, LocalKeks]:
    return LocalStore(tmp_path / "objects"), LocalKeks(tmp_path / "keks", os.urandom(32))


def _locker(runtime: Runtime, session: Session, parts: tuple[LocalStore, LocalKeks]) -> Locker:
    store, keks = parts
    return Locker(
        session, store=store, keks=keks, audit=runtime.audit_log(session), clock=runtime.clock
    )


def _issue(locker: Locker, doc_id: str = "BC-2026-0001", owner: str = OWNER) -> str:
    return locker.issue(
        owner=owner, doctype="birth", issuer="lgcd", issuer_doc_id=doc_id,
        title="Birth certificate", content=[PDF[:1000], PDF[1000:]],
        content_type="application/pdf", actor="client:lgcd-crms",
    ).id  # fmt: skip


def test_an_issued_document_reads_back_as_issued_and_a_retry_makes_no_second(
    runtime: Runtime, parts: tuple[LocalStore, LocalKeks]
) -> None:
    with runtime.transaction() as session:
        first = _issue(_locker(runtime, session, parts))
    with runtime.transaction() as session:
        locker = _locker(runtime, session, parts)
        assert _issue(locker) == first
        document, content = locker.open(first, owner=OWNER, actor=OWNER)
        assert b"".join(content) == PDF
    assert document.uri == "lgcd-birth-BC-2026-0001"
    assert document.size == len(PDF)
    store, _ = parts
    stored = b"".join(store.get(f"documents/{first}/1"))
    assert PDF[20:60] not in stored, "the store holds ciphertext only"
    with runtime.sessions() as session:
        actions = b"".join(session.execute(select(entries.c.entry)).scalars())
    assert actions.count(b'"action":"locker.document.issued"') == 1
    assert b'"action":"locker.document.read"' in actions


def test_only_the_owner_reads_and_only_the_right_department_issues(
    runtime: Runtime, parts: tuple[LocalStore, LocalKeks]
) -> None:
    with runtime.transaction() as session:
        document_id = _issue(_locker(runtime, session, parts))
    with runtime.transaction() as session:
        locker = _locker(runtime, session, parts)
        with pytest.raises(UnknownDocument):
            locker.open(document_id, owner=OTHER, actor=OTHER)
        with pytest.raises(DocumentRefused, match="issued by lgcd"):
            locker.issue(owner=OWNER, doctype="birth", issuer="police", issuer_doc_id="x",
                         title="t", content=[b"{}"], content_type="application/json",
                         actor="client:police")  # fmt: skip
        with pytest.raises(DocumentRefused, match="not one of"):
            locker.issue(owner=OWNER, doctype="birth", issuer="lgcd", issuer_doc_id="y",
                         title="t", content=[b"MZ"], content_type="application/x-msdownload",
                         actor="client:lgcd")  # fmt: skip
        with pytest.raises(DocumentRefused, match="another document"):
            _issue(locker, owner=OTHER)


def test_changed_ciphertext_is_never_served(
    runtime: Runtime, parts: tuple[LocalStore, LocalKeks], tmp_path: Path
) -> None:
    with runtime.transaction() as session:
        document_id = _issue(_locker(runtime, session, parts))
    path = tmp_path / "objects" / "documents" / document_id / "1"
    data = bytearray(path.read_bytes())
    data[5000] ^= 1
    path.write_bytes(bytes(data))
    with runtime.transaction() as session:
        _, content = _locker(runtime, session, parts).open(document_id, owner=OWNER, actor=OWNER)
        with pytest.raises(CiphertextInvalid):
            b"".join(content)


def test_delete_shreds_the_key_at_once_and_the_sweep_removes_the_ciphertext(
    runtime: Runtime, parts: tuple[LocalStore, LocalKeks]
) -> None:
    store, _ = parts
    with runtime.transaction() as session:
        document_id = _issue(_locker(runtime, session, parts))
    with runtime.transaction() as session:
        _locker(runtime, session, parts).delete(document_id, owner=OWNER, actor=OWNER)
    with runtime.transaction() as session:
        locker = _locker(runtime, session, parts)
        with pytest.raises(UnknownDocument):
            locker.open(document_id, owner=OWNER, actor=OWNER)
        assert store.exists(f"documents/{document_id}/1"), "removed only by the sweep"
        assert locker.sweep() == 1
    assert not store.exists(f"documents/{document_id}/1")
