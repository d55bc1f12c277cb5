"""What may leave a locker for a department: the province's classification rules in one place.

Secret never leaves electronically. Sensitive leaves only under an explicit consent (one
fetch) or a legal basis, never a standing consent (more than one fetch). Only documents a
department issued leave, never a citizen's own uploads (nobody vouches for them), and only
those active now: a revoked or expired document is not the minimum a purpose needs, it is
wrong data. Both the document's recorded classification and its type's current one count,
the stricter winning, so re-classifying a type takes effect for documents already issued.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from locker.doctypes import SELF, Classification, document_type
from locker.documents import ACTIVE, Document
from locker.errors import LockerError

MAX_DOCTYPES = 10
_RANK = {
    Classification.OPEN: 0,
    Classification.CONFIDENTIAL: 1,
    Classification.SENSITIVE: 2,
    Classification.SECRET: 3,
}


class ReleaseRefused(LockerError):
    """Documents of a kind asked for can never be released on the footing offered."""

    field = "doctypes"


def checked_doctypes(codes: Iterable[str], *, standing: bool) -> tuple[str, ...]:
    """`codes`, deduplicated in order, if each names a type a department may ask for on this
    footing (`standing`: a consent for more than one fetch); ReleaseRefused otherwise."""
    wanted = tuple(dict.fromkeys(codes))
    if not 1 <= len(wanted) <= MAX_DOCTYPES:
        raise ReleaseRefused(
            f"ask for 1 to {MAX_DOCTYPES} document types", code="doctypes.count", most=MAX_DOCTYPES
        )
    for code in wanted:
        try:
            kind = document_type(code)
        except LookupError as exc:
            raise ReleaseRefused(str(exc), code="doctypes.unknown") from None
        if kind.department == SELF:
            raise ReleaseRefused(
                f"{kind.name}s are citizens' own uploads; they are never released",
                code="doctypes.upload", doctype=code,
            )  # fmt: skip
        if kind.classification == Classification.SECRET:
            raise ReleaseRefused(
                f"{kind.name}s are Secret: never released electronically",
                code="doctypes.secret", doctype=code,
            )  # fmt: skip
        if kind.classification == Classification.SENSITIVE and standing:
            raise ReleaseRefused(
                f"{kind.name}s are Sensitive: they need an explicit consent (a fetch limit "
                "of 1), never a standing one",
                code="doctypes.sensitive", doctype=code,
            )  # fmt: skip
    return wanted


def classification(document: Document) -> Classification:
    """The stricter of the document's recorded classification and its type's current one."""
    recorded = _parse(document.classification)
    try:
        current = document_type(document.doctype).classification
    except LookupError:
        current = Classification.SECRET  # a type no longer known: release nothing of it
    return max(recorded, current, key=_RANK.__getitem__)


def releasable(
    document: Document, doctypes: Iterable[str], *, now: datetime, standing: bool
) -> bool:
    """Whether `document` may go to a department entitled to `doctypes` on this footing."""
    level = classification(document)
    return (
        not document.uploaded
        and document.doctype in set(doctypes)
        and document.state(now) == ACTIVE
        and level != Classification.SECRET
        and not (level == Classification.SENSITIVE and standing)
    )


def _parse(value: str) -> Classification:
    try:
        return Classification(value)
    except ValueError:
        return Classification.SECRET  # unreadable: the safe reading
