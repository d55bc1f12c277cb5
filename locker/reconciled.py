"""The locker's sealed tables as `audit integrity` reconciles them with the log
(`audit.reconcile`).

A consent's status is what its approval and the citizen's last pause, resume or revocation
left it, and its use count is the number of fetches recorded under it: each fetch counts its
use and records its entry in one transaction, so the two never part honestly.

A document's status is what its issue or upload and its last revocation or deletion left it,
and its version the highest its entries recorded: every write records its entry in the write's
transaction. Rows are never removed by the service (a deleted upload is marked deleted), so a
row the log says stands and that is gone was removed by SQL: for a revoked transfer order, the
public verifier would call the order authentic (never delivered).
"""

from __future__ import annotations

from collections.abc import MutableMapping

from audit.reconcile import Entry, Kind, Row
from locker import documents as docs
from locker.exchange import ACTIVE, FETCHED, PAUSED, REVOKED
from locker.models import consents, documents

APPROVED = "locker.exchange.approved"
_STATUS = {
    APPROVED: ACTIVE,
    "locker.exchange.paused": PAUSED,
    "locker.exchange.resumed": ACTIVE,
    "locker.exchange.revoked": REVOKED,
}

# What the log says of a consent: its status (None if no approval was read) and its fetches.
Said = tuple[str | None, int]


def _consent_of(entry: Entry) -> str | None:
    """The consent an entry is about: its `consent` detail, or, in a fetch recorded before
    that detail, the basis the department fetched on."""
    details = entry["details"]
    named = details.get("consent")
    if named is None and str(details.get("basis", "")).startswith("consent:"):
        named = str(details["basis"]).removeprefix("consent:")
    return None if named is None else str(named)


def consents_kind() -> Kind[Said]:
    def fold(said: MutableMapping[str, Said], entry: Entry) -> None:
        consent = _consent_of(entry)
        if consent is None:
            return
        status, fetches = said.get(consent, (None, 0))
        if entry["action"] == FETCHED:
            said[consent] = (status, fetches + 1)
        else:
            said[consent] = (_STATUS[entry["action"]], fetches)

    def stored(row: Row) -> tuple[str, Said]:
        return str(row["id"]), (str(row["status"]), int(row["uses"]))

    def differ(logged: Said | None, stored: Said | None) -> str | None:
        if stored is None:
            return "the log recorded this consent, but its row is gone"
        if logged is None or logged[0] is None:
            return f"{stored[0]}, but the log never recorded this consent's approval"
        if logged[0] != stored[0]:
            return f"{stored[0]}, but the log last recorded it {logged[0]}"
        if logged[1] != stored[1]:
            return f"{stored[1]} uses, but the log recorded {logged[1]} fetches under it"
        return None

    return Kind(consents, frozenset({*_STATUS, FETCHED}), fold, stored, differ)


_DOCUMENT_STATUS = {
    "locker.document.issued": docs.ACTIVE,
    "locker.document.uploaded": docs.ACTIVE,
    "locker.document.updated": docs.ACTIVE,
    "locker.document.revoked": docs.REVOKED,
    "locker.document.deleted": docs.DELETED,
}

# What the log says of a document: its status and the highest version recorded (0: none).
DocumentSaid = tuple[str, int]


def documents_kind() -> Kind[DocumentSaid]:
    """Issued documents and citizens' uploads alike. Entries name the document's row by its
    `document` detail; those written before it (which named the document only by its URI, an
    issuer's number and no row) are passed over, so a document whose history began before the
    detail is compared from its first entry that names it, never raised as a false alarm."""

    def fold(said: MutableMapping[str, DocumentSaid], entry: Entry) -> None:
        details = entry["details"]
        document = details.get("document")
        if document is None:
            return
        _, version = said.get(str(document), (docs.ACTIVE, 0))
        said[str(document)] = (
            _DOCUMENT_STATUS[entry["action"]],
            max(version, int(details.get("version") or 0)),
        )

    def stored(row: Row) -> tuple[str, DocumentSaid]:
        return str(row["id"]), (str(row["status"]), int(row["version"]))

    def differ(logged: DocumentSaid | None, stored: DocumentSaid | None) -> str | None:
        if logged is None:
            return None  # written before its entries named it: the log cannot tell
        if stored is None:
            if logged[0] == docs.DELETED:
                return None
            return f"the log last recorded this document {logged[0]}, but its row is gone"
        if logged[0] != stored[0]:
            return f"{stored[0]}, but the log last recorded it {logged[0]}"
        if stored[1] < logged[1]:
            return f"at version {stored[1]}, but the log recorded version {logged[1]}"
        return None

    return Kind(documents, frozenset(_DOCUMENT_STATUS), fold, stored, differ)


KINDS = (consents_kind(), documents_kind())
