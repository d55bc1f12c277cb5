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

A share link is as its creation and revocation left it, and its use count the number of uses
recorded under it (each use counts on the row and records its entry in one transaction). A
nominee or guardian is as the owner last named them, or removed (the one row the service
deletes). A legal-access request is pending from its filing, then approved or refused, and
opened from its first opening. Their entries have always named the row (the link's id; the
owner and nominee by pseudonym; the request's id), so a live row no entry names is listed: the
service never wrote it as it stands. A use recorded before the `share` detail names its link in
its basis, and is counted by it, as a fetch before the `consent` detail is.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from audit import two_person
from audit.reconcile import Entry, Kind, Row
from locker import documents as docs
from locker.exchange import ACTIVE, FETCHED, PAUSED, REVOKED
from locker.models import consents, documents, legal_requests, nominees, shares

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


SHARE_CREATED = "locker.share.created"
SHARE_REVOKED = "locker.share.revoked"
SHARE_USED = "locker.share.used"
SHARE_SWEPT = "locker.share.swept"  # `locker.housekeeping.sweep_shares`: links past retention

# What the log says of a share link: its status (None if no creation was read) and its uses.
ShareSaid = tuple[str | None, int]


def _share_of(entry: Entry) -> str | None:
    """The link an entry is about: its `share` detail, or, in a use recorded before that
    detail, the basis the link was read on."""
    details = entry["details"]
    named = details.get("share")
    if named is None and str(details.get("basis", "")).startswith("share:"):
        named = str(details["basis"]).removeprefix("share:")
    return None if named is None else str(named)


# What the log says of a link used or revoked after its revocation: the service refuses both
# (each a compare-and-set on the row it checked), so an earlier row was put back in between,
# whatever the row says now.
_REVIVED = "revived"
# What the log says of a link the retention sweep deleted: its row is meant to be gone.
_SWEPT = "swept"


def shares_kind() -> Kind[ShareSaid]:
    """A link is active from its creation and revoked from its revocation (expiry is read from
        the time, never written); its uses are those recorded. Listed: a link put back unrevoked or
        with fewer uses (a used-up link made usable again), one the log shows used or revoked after
        its revocation (put back, used, and perhaps revoked again to hide it), a link gone, a link
        never recorded. A link the retention sweep recorded deleting is meant to be gone; its row
    back is listed."""

    def fold(said: MutableMapping[str, ShareSaid], entry: Entry) -> None:
        if entry["action"] == SHARE_SWEPT:
            for swept in entry["details"].get("shares", ()):
                said[str(swept)] = (_SWEPT, said.get(str(swept), (None, 0))[1])
            return
        share = _share_of(entry)
        if share is None:
            return
        status, uses = said.get(share, (None, 0))
        if entry["action"] == SHARE_CREATED:
            status = ACTIVE
        elif status in (REVOKED, _REVIVED, _SWEPT):
            status = _REVIVED
        elif entry["action"] == SHARE_REVOKED:
            status = REVOKED
        said[share] = (status, uses + 1 if entry["action"] == SHARE_USED else uses)

    def stored(row: Row) -> tuple[str, ShareSaid]:
        status = ACTIVE if row["revoked_at"] is None else REVOKED
        return str(row["id"]), (status, int(row["uses"]))

    def differ(logged: ShareSaid | None, stored: ShareSaid | None) -> str | None:
        if logged is not None and logged[0] == _SWEPT:
            return None if stored is None else f"{stored[0]}, but the log recorded it swept"
        if stored is None:
            return "the log recorded this share link, but its row is gone"
        if logged is None or logged[0] is None:
            return f"{stored[0]}, but the log never recorded this share link"
        if logged[0] == _REVIVED:
            return f"{stored[0]}, but the log recorded it used or revoked after its revocation"
        if logged[0] != stored[0]:
            return f"{stored[0]}, but the log last recorded it {logged[0]}"
        if logged[1] != stored[1]:
            return f"its use count is {stored[1]}, but the log recorded {logged[1]}"
        return None

    actions = frozenset({SHARE_CREATED, SHARE_REVOKED, SHARE_USED, SHARE_SWEPT})
    return Kind(shares, actions, fold, stored, differ)


NOMINEE_NAMED = "locker.nominee.named"
NOMINEE_REMOVED = "locker.nominee.removed"
_REMOVED = "removed"


def nominees_kind() -> Kind[str]:
    """A nomination is the relation (nominee or guardian) the owner last named, or removed;
    keyed as its row is, owner and nominee by pseudonym. Listed: a removed nominee put back, a
    relation other than the last named (a nominee made guardian), a nomination gone or never
    recorded."""

    def fold(said: MutableMapping[str, str], entry: Entry) -> None:
        key = f"{entry['subject']}/{entry['details'].get('nominee')}"
        if entry["action"] == NOMINEE_REMOVED:
            said[key] = _REMOVED
        else:
            said[key] = str(entry["details"].get("relation"))

    def stored(row: Row) -> tuple[str, str]:
        return f"{row['owner']}/{row['nominee']}", str(row["relation"])

    def differ(logged: str | None, stored: str | None) -> str | None:
        if stored == logged or (stored is None and logged == _REMOVED):
            return None
        if stored is None:
            return f"the log last named this {logged}, but its row is gone"
        if logged is None:
            return f"{stored}, but the log never named this {stored}"
        if logged == _REMOVED:
            return f"{stored}, but the log last recorded it removed"
        return f"{stored}, but the log last named this {logged}"

    return Kind(nominees, frozenset({NOMINEE_NAMED, NOMINEE_REMOVED}), fold, stored, differ)


LEGAL_ACCESSED = "locker.legal.accessed"
OPENED = "opened"
_REDECIDED = "decided twice"
_LEGAL_STATUS = {
    "locker.legal.requested": two_person.PENDING,
    "locker.legal.approved": two_person.APPROVED,
    "locker.legal.refused": two_person.REFUSED,
    LEGAL_ACCESSED: OPENED,
}


def legal_requests_kind() -> Kind[str]:
    """A request is pending from its filing, approved or refused by its decision, and opened
    from its first opening (every opening's entry names the request; expiry is read from the
    time, never written). Listed: a refused request put back approved or pending, an opened
    one put back unopened (its next opening would tell the citizen again, with a later
    disclosure delay), one the log shows decided twice (a decision is a compare-and-set on a
    pending row, so the decided row was put back pending in between, whatever it says now), a
    request gone or never recorded."""

    def fold(said: MutableMapping[str, str], entry: Entry) -> None:
        request = entry["details"].get("request")
        if request is None:
            return
        status = _LEGAL_STATUS[entry["action"]]
        earlier = said.get(str(request))
        decided = (two_person.APPROVED, two_person.REFUSED)
        if earlier == _REDECIDED or (status in decided and earlier in (*decided, OPENED)):
            status = _REDECIDED
        said[str(request)] = status

    def stored(row: Row) -> tuple[str, str]:
        status = str(row["status"])
        opened = status == two_person.APPROVED and row["opened_at"] is not None
        return str(row["id"]), OPENED if opened else status

    def differ(logged: str | None, stored: str | None) -> str | None:
        if stored == logged:
            return None
        if stored is None:
            return f"the log last recorded this request {logged}, but its row is gone"
        if logged is None:
            return f"{stored}, but the log never recorded this request"
        if logged == _REDECIDED:
            return f"{stored}, but the log recorded a second decision on it"
        return f"{stored}, but the log last recorded it {logged}"

    return Kind(legal_requests, frozenset(_LEGAL_STATUS), fold, stored, differ)


KINDS = (consents_kind(), documents_kind(), shares_kind(), nominees_kind(), legal_requests_kind())
