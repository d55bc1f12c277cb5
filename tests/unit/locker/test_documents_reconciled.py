"""Locker documents reconciled with the log (`locker.reconciled.documents_kind`, what `shanakht
audit integrity` runs; docs/threat-model.md section 7, item 9). A row's seal proves the service
wrote it, not that it is the newest it wrote, and a row deleted leaves nothing to check: the
log's `locker.document.*` entries say what each document should be now."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, select, update

from api.administration import check_integrity
from locker.access import Accessor
from locker.documents import Locker
from locker.models import documents, versions
from tests.unit.locker.test_exchange import ISSUER, OWNER, PDF, Kit, _issue

CITIZEN = Accessor(OWNER, "citizen", "owner")


def _listed(kit: Kit) -> list[str]:
    """What `shanakht audit integrity` lists of the documents: every row's seal holds here, so
    only the reconciliation with the log can see a row put back or removed."""
    found = check_integrity(kit.runtime)
    assert found.bad == []
    listed = [f"{m.table} {m.key}: {m.problem}" for m in found.mismatches]
    for personal in (OWNER, "BC-1", "A record"):  # no pseudonym, issuer's number or title
        assert not [line for line in listed if personal in line]
    return listed


def _update(kit: Kit, doc_id: str = "BC-1") -> None:
    with kit.runtime.transaction() as session:
        issued = kit.runtime.locker(session).issue(
            owner=OWNER, doctype="birth", issuer="lgcd", issuer_doc_id=doc_id,
            title="A record, corrected", content=[PDF + b"\n"],
            content_type="application/pdf", who=ISSUER,
        )  # fmt: skip
    assert issued.outcome == "updated"


def _revoke(kit: Kit, doc_id: str = "BC-1") -> None:
    with kit.runtime.transaction() as session:
        kit.runtime.locker(session).revoke(
            issuer="lgcd", issuer_doc_id=doc_id, reason="Issued in error", who=ISSUER
        )


def _upload(kit: Kit) -> str:
    with kit.runtime.transaction() as session:
        return kit.runtime.locker(session).upload(
            owner=OWNER, doctype="birth", title="My copy", content=[PDF],
            content_type="application/pdf", who=CITIZEN,
        ).id  # fmt: skip


def _delete_upload(kit: Kit, document_id: str) -> None:
    with kit.runtime.transaction() as session:
        kit.runtime.locker(session).delete(document_id, owner=OWNER, who=CITIZEN)


def _kept(kit: Kit, document_id: str) -> dict[str, Any]:
    """A DBA's copy of a document's row, MAC and all."""
    with kit.runtime.sessions() as session:
        row = session.execute(select(documents).where(documents.c.id == document_id)).one()
    return dict(row._mapping)


def _put_back(kit: Kit, kept: dict[str, Any]) -> None:
    """What a DBA can do without the service's keys: put an earlier sealed row back."""
    with kit.runtime.transaction() as session:
        session.execute(update(documents).where(documents.c.id == kept["id"]).values(**kept))


def _remove(kit: Kit, document_id: str) -> None:
    """A DBA deleting a document's record outright, its version rows first."""
    with kit.runtime.transaction() as session:
        session.execute(delete(versions).where(versions.c.document_id == document_id))
        session.execute(delete(documents).where(documents.c.id == document_id))


def test_an_honest_document_history_reconciles(kit: Kit) -> None:
    _issue(kit)
    _update(kit)
    _revoke(kit)
    _issue(kit, doc_id="BC-2")
    _update(kit, doc_id="BC-2")
    _delete_upload(kit, _upload(kit))
    _upload(kit)
    assert _listed(kit) == []


def test_a_revoked_documents_row_deleted_outright_is_listed(kit: Kit) -> None:
    """The case that matters most: with a revoked transfer order's record gone, the public
    verifier reads the order as never delivered (authentic) between runs of the check."""
    document_id = _issue(kit)
    _revoke(kit)
    _remove(kit, document_id)
    with kit.runtime.sessions() as session:
        assert kit.runtime.locker(session).recorded("lgcd", "BC-1") is None
    assert _listed(kit) == [
        f"locker_documents {document_id}: the log last recorded this document revoked, "
        "but its row is gone"
    ]


def test_an_active_documents_row_deleted_outright_is_listed(kit: Kit) -> None:
    document_id = _issue(kit)
    _remove(kit, document_id)
    assert _listed(kit) == [
        f"locker_documents {document_id}: the log last recorded this document active, "
        "but its row is gone"
    ]


def test_a_document_put_back_from_before_its_revocation_is_listed(kit: Kit) -> None:
    document_id = _issue(kit)
    kept = _kept(kit, document_id)
    _revoke(kit)
    _put_back(kit, kept)
    with kit.runtime.sessions() as session:
        found = kit.runtime.locker(session).issued("lgcd", "BC-1")
    assert found is not None, "its seal holds: the service honours it"
    assert found.status == "active"
    assert _listed(kit) == [
        f"locker_documents {document_id}: active, but the log last recorded it revoked"
    ]


def test_a_document_put_back_at_an_earlier_version_is_listed(kit: Kit) -> None:
    document_id = _issue(kit)
    kept = _kept(kit, document_id)
    _update(kit)
    _put_back(kit, kept)
    assert _listed(kit) == [
        f"locker_documents {document_id}: at version 1, but the log recorded version 2"
    ]


def test_a_deleted_upload_put_back_is_listed(kit: Kit) -> None:
    upload = _upload(kit)
    kept = _kept(kit, upload)
    _delete_upload(kit, upload)
    _put_back(kit, kept)
    assert _listed(kit) == [
        f"locker_documents {upload}: active, but the log last recorded it deleted"
    ]


def test_a_deleted_uploads_row_removed_is_not_listed(kit: Kit) -> None:
    upload = _upload(kit)
    _delete_upload(kit, upload)
    _remove(kit, upload)
    assert _listed(kit) == []


def test_entries_from_before_they_named_the_document_raise_no_false_alarm(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entries written before the `document` detail name a document only by its URI: the log
    cannot tell which row, so those documents are passed over, not listed as gone or changed."""
    note = Locker._note

    def as_before(self: Locker, action: str, who: Accessor, found: Any, **kwargs: Any) -> None:
        kwargs.pop("document", None)
        note(self, action, who, found, **kwargs)

    monkeypatch.setattr(Locker, "_note", as_before)
    removed = _issue(kit)
    put_back = _issue(kit, doc_id="BC-2")
    later = _issue(kit, doc_id="BC-3")
    kept = _kept(kit, put_back)
    _revoke(kit, doc_id="BC-2")
    _remove(kit, removed)
    _put_back(kit, kept)
    assert _listed(kit) == []
    monkeypatch.undo()  # entries from now on name it: from its revocation on, it is compared
    _revoke(kit, doc_id="BC-3")
    _remove(kit, later)
    assert _listed(kit) == [
        f"locker_documents {later}: the log last recorded this document revoked, "
        "but its row is gone"
    ]


def test_a_document_moved_to_another_issuers_number_is_listed_as_gone(kit: Kit) -> None:
    """Moved by SQL, its row fails its seal (listed as such) and is read as absent, as the
    service reads it: the number the log recorded has no document, which the verifier would
    read as never delivered."""
    document_id = _issue(kit)
    _revoke(kit)
    with kit.runtime.transaction() as session:
        session.execute(
            update(documents).where(documents.c.id == document_id).values(issuer_doc_id="BC-9")
        )
    found = check_integrity(kit.runtime)
    assert [(bad.table, bad.key, bad.problem) for bad in found.bad] == [
        ("locker_documents", document_id, "wrong")
    ]
    assert [f"{m.table} {m.key}: {m.problem}" for m in found.mismatches] == [
        f"locker_documents {document_id}: the log last recorded this document revoked, "
        "but its row is gone"
    ]
