"""The document-type registry the issue names, each with its issuer and classification."""

from __future__ import annotations

import pytest

from locker.doctypes import DOCUMENT_TYPES, Classification, document_type


def test_the_registry_holds_the_types_the_province_starts_with() -> None:
    names = {t.name for t in DOCUMENT_TYPES.values()}
    assert names - {"Other document"} == {
        "Domicile certificate",
        "Character certificate",
        "Driving licence",
        "Matriculation certificate",
        "Birth certificate",
        "Teacher transfer order",
    }
    assert document_type("tto").department == "sed"
    assert document_type("other").department == "self", "only citizens' own uploads"
    assert all(isinstance(t.classification, Classification) for t in DOCUMENT_TYPES.values())


def test_an_unknown_type_names_the_known_ones() -> None:
    with pytest.raises(LookupError, match="birth, chr, dl, dom, matric, other, tto"):
        document_type("passport")
