"""Entries: canonical bytes, validation on parse, and no raw CNIC ever."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit import AuditEntry, AuditEvent, EntryError, address_pseudonym, pseudonym
from audit.canonical import canonical_json

KEY = bytes(range(32))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical_json({"b": 1, "a": ["ü", None]}) == '{"a":["ü",null],"b":1}'.encode()


@pytest.mark.parametrize("value", [1.5, float("nan"), {1: "x"}, 2**60, b"bytes", {"a": {1.0}}])
def test_values_without_an_exact_json_form_are_refused(value: object) -> None:
    with pytest.raises(EntryError):
        canonical_json(value)


@given(details=st.dictionaries(st.text(max_size=8), json_values, max_size=5))
def test_entries_round_trip_through_their_bytes(details: dict) -> None:
    try:
        event = AuditEvent(actor="system", action="audit.test", details=details)
    except EntryError:
        return  # hypothesis found a string shaped like a CNIC, which is refused on purpose
    entry = AuditEntry(seq=3, time="2026-11-26T00:00:00.000000Z", event=event)
    assert AuditEntry.from_bytes(entry.to_bytes()) == entry


@pytest.mark.parametrize(
    "fields",
    [
        {"subject": "35202-1234567-1"},
        {"resource": "doc of 3520212345671"},
        {"details": {"cnic": "35202-1234567-1"}},
        {"details": {"nested": ["x", {"y": "4210112345671"}]}},
        {"actor": "citizen:3520212345671"},
    ],
)
def test_a_raw_cnic_anywhere_is_refused(fields: dict) -> None:
    base = {"actor": "system", "action": "identity.login"}
    with pytest.raises(EntryError, match="pseudonym"):
        AuditEvent(**{**base, **fields})


def test_a_pseudonym_is_accepted_where_the_cnic_was_not() -> None:
    event = AuditEvent(
        actor="system", action="identity.login", subject=pseudonym("35202-1234567-1", key=KEY)
    )
    assert event.subject.startswith("p:")


@pytest.mark.parametrize(
    "fields",
    [
        {"action": "Login"},
        {"action": "identity"},
        {"actor": ""},
        {"outcome": "maybe"},
        {"details": ["not", "an", "object"]},
        {"purpose": 5},
        {"action": None},
        {"actor": ["system"]},
    ],
)
def test_malformed_events_are_refused(fields: dict) -> None:
    with pytest.raises(EntryError):
        AuditEvent(**{"actor": "system", "action": "identity.login", **fields})


def test_stored_bytes_must_be_canonical_and_complete() -> None:
    entry = AuditEntry(3, "2026-11-26T00:00:00.000000Z", AuditEvent("system", "audit.test"))
    spaced = json.dumps(entry.to_json(), sort_keys=True).encode()
    with pytest.raises(EntryError, match="canonical"):
        AuditEntry.from_bytes(spaced)
    partial = entry.to_json()
    del partial["purpose"]
    with pytest.raises(EntryError, match="exactly the fields"):
        AuditEntry.from_bytes(canonical_json(partial))
    with pytest.raises(EntryError, match="not JSON"):
        AuditEntry.from_bytes(b"\xff")


def test_pseudonyms_are_keyed_and_ignore_dashes() -> None:
    a = pseudonym("35202-1234567-1", key=KEY)
    assert a == pseudonym("3520212345671", key=KEY)
    assert a != pseudonym("3520212345671", key=bytes(32))
    assert a != pseudonym("3520212345672", key=KEY)
    assert len(a) == 45
    for bad in ("3520212345", "35202-1234567-X", "٣٥٢٠٢١٢٣٤٥٦٧١"):
        with pytest.raises(EntryError):
            pseudonym(bad, key=KEY)
    with pytest.raises(ValueError, match="32 bytes"):
        pseudonym("3520212345671", key=b"short")


def test_an_address_pseudonym_is_keyed_one_per_address_and_never_a_cnics() -> None:
    a = address_pseudonym("203.0.113.7", key=KEY)
    assert a.startswith("a:")
    assert "203" not in a
    assert a == address_pseudonym(" 203.0.113.7", key=KEY)
    assert a == address_pseudonym("::ffff:203.0.113.7", key=KEY), "IPv4-mapped is the same"
    assert a != address_pseudonym("203.0.113.8", key=KEY)
    assert a != address_pseudonym("203.0.113.7", key=bytes(32))
    six = address_pseudonym("2001:db8:0:0::1", key=KEY)
    assert six == address_pseudonym("2001:DB8::1", key=KEY)
    # Under a derived key: never the name a CNIC-shaped input would get as a person.
    as_address = address_pseudonym("3520212345671", key=KEY)
    assert as_address[2:] not in pseudonym("3520212345671", key=KEY)
    with pytest.raises(ValueError, match="at least 32 bytes"):
        address_pseudonym("203.0.113.7", key=b"short")
