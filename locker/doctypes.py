"""The kinds of document a locker holds: who issues each, and how it is classified.

Codes are short, DigiLocker style (a document's URI is `issuer-doctype-docid`), and the same
codes name document types in QR payloads (`tto`). The classification is the province's:
Secret is never released electronically, Sensitive only under an explicit consent or a legal
basis, never a standing one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

SELF = "self"  # the issuer of what a citizen uploads


class Classification(StrEnum):
    OPEN = "open"
    CONFIDENTIAL = "confidential"
    SENSITIVE = "sensitive"
    SECRET = "secret"  # noqa: S105 (a classification, not a password)


@dataclass(frozen=True, slots=True)
class DocumentType:
    code: str
    name: str
    department: str  # the department that issues it (a department id, as identity has them)
    classification: Classification


DOCUMENT_TYPES = {
    t.code: t
    for t in (
        DocumentType("dom", "Domicile certificate", "home", Classification.CONFIDENTIAL),
        DocumentType("chr", "Character certificate", "police", Classification.SENSITIVE),
        DocumentType("dl", "Driving licence", "transport", Classification.CONFIDENTIAL),
        DocumentType("matric", "Matriculation certificate", "bise", Classification.CONFIDENTIAL),
        DocumentType("birth", "Birth certificate", "lgcd", Classification.CONFIDENTIAL),
        DocumentType("tto", "Teacher transfer order", "sed", Classification.CONFIDENTIAL),
        DocumentType("other", "Other document", SELF, Classification.CONFIDENTIAL),
    )
}


def document_type(code: str) -> DocumentType:
    """The registered type `code` names; LookupError with the known codes otherwise."""
    try:
        return DOCUMENT_TYPES[code]
    except KeyError:
        known = ", ".join(sorted(DOCUMENT_TYPES))
        raise LookupError(f"no document type {code!r}; the types are {known}") from None
