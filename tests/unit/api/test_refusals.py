"""Every refusal code the domain raises has words for a page, in English and Urdu, and a code
without them is said in general words, never in the domain's English."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from api import i18n
from api.refusals import GENERAL, SAID, refusal
from locker.errors import LockerError
from locker.exchange import ConsentRefused, FetchLimitReached
from locker.release import ReleaseRefused, checked_doctypes
from signing.errors import OrderInvalid

ROOT = Path(__file__).resolve().parents[3]
RAISED = re.compile(r'\bcode\s*=\s*"([a-z_]+\.[a-z_]+)"')
# Codes built where they are raised: f"legal.{field}", f"document.{field}", f"document.{status}".
BUILT = {"legal.legal_reference", "legal.reason", "document.title", "document.reason",
         "document.revoked", "document.deleted"}  # fmt: skip


def _raised() -> set[str]:
    found = set(BUILT)
    for package in ("locker", "signing", "identity", "audit"):
        for path in (ROOT / package).rglob("*.py"):
            found.update(RAISED.findall(path.read_text(encoding="utf-8")))
    return found


def test_every_code_the_domain_raises_has_words_in_english_and_urdu() -> None:
    raised = _raised()
    assert len(raised) > 40
    assert sorted(raised - SAID.keys()) == []
    urdu = i18n.catalogue("ur")
    assert sorted(c for c, said in SAID.items() if said.message not in urdu) == []


def test_a_refusal_is_said_from_its_facts_in_the_readers_language() -> None:
    at = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    said = refusal(ConsentRefused("the consent expired at ...", code="consent.expired", at=at))
    assert str(said.words) == "The consent expired at 2026-05-01 15:00 PKT."
    urdu = i18n.localise("ur", said.words)
    assert urdu == i18n.translate("ur", "The consent expired at %(at)s.", at="2026-05-01 15:00 PKT")
    assert isinstance(urdu, str)
    assert urdu.startswith("رضامندی کی میعاد 2026-05-01 15:00 PKT پر ختم ہو گئی")
    assert said.field is None
    limit = refusal(FetchLimitReached("all 3 fetches ...", limit=3))  # the class's own code
    assert str(limit.words) == "All 3 fetches this consent allows have been made."


def test_a_document_type_is_named_in_the_readers_language() -> None:
    with pytest.raises(ReleaseRefused) as caught:
        checked_doctypes(["chr"], standing=True)
    assert str(caught.value).startswith("Character certificates are Sensitive")  # the API's words
    said = refusal(caught.value)
    assert said.field == "doctypes"
    assert said.beside({"doctypes"}) == "doctypes"
    assert said.beside({"cnic"}) is None
    urdu = i18n.localise("ur", said.words)
    assert isinstance(urdu, str)
    assert urdu.startswith(i18n.translate("ur", "Character certificate") + ":")
    assert "Character" not in urdu


def test_a_code_without_words_is_said_in_general_words_never_in_english() -> None:
    for unknown in (
        LockerError("something the page has no words for", code="nothing.known", field="title"),
        ValueError("a plain error"),
        OrderInvalid("order_no must be text, not int", field="order_no"),
    ):
        said = refusal(unknown)
        assert said.words == GENERAL
        assert not said.known
        urdu = i18n.localise("ur", said.words)
        assert isinstance(urdu, str)
        assert str(unknown) not in urdu
        assert not re.search(r"[A-Za-z]", urdu)
    assert refusal(LockerError("x", code="nothing.known", field="title")).field == "title"


def test_a_code_whose_facts_are_missing_falls_back_rather_than_failing() -> None:
    said = refusal(ConsentRefused("expired", code="consent.expired"))  # no `at`
    assert said.words == GENERAL
