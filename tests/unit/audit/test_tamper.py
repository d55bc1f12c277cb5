"""Each kind of tampering is caught by `verify_log`, naming where it is; the triggers refuse
changes outright."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError

from api.runtime import Runtime
from audit import TamperError, merkle, verify_log
from audit.models import checkpoints, entries, head
from tests.unit.audit.helpers import append, checkpoint, tampering


def _verify(runtime: Runtime) -> int:
    with runtime.engine.connect() as connection:
        return verify_log(connection, runtime.audit_verifier, runtime.audit_signer.name).size


def _bad_seq(runtime: Runtime) -> int | None:
    with pytest.raises(TamperError) as caught:
        _verify(runtime)
    return caught.value.seq


@pytest.fixture
def log20(runtime: Runtime) -> Runtime:
    """A log of 20 entries with checkpoints at 8 and 20."""
    append(runtime, 8)
    checkpoint(runtime)
    append(runtime, 12)
    checkpoint(runtime)
    assert _verify(runtime) == 20
    return runtime


def _entry(connection, seq: int) -> dict:
    return json.loads(
        connection.execute(select(entries.c.entry).where(entries.c.seq == seq)).scalar_one()
    )


def test_a_modified_entry_is_named(log20: Runtime) -> None:
    with tampering(log20) as connection:
        doc = _entry(connection, 11)
        doc["purpose"] = "something else"
        data = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
        connection.execute(update(entries).where(entries.c.seq == 11).values(entry=data))
    assert _bad_seq(log20) == 11


def test_a_modified_entry_with_every_hash_rewritten_fails_at_the_checkpoint(log20: Runtime) -> None:
    """The attacker recomputes chain, subtree hashes and head: only the signature stops them."""
    with tampering(log20) as connection:
        rows = connection.execute(select(entries).order_by(entries.c.seq)).all()
        frontier, chain = merkle.Frontier(), bytes(32)
        for row in rows:
            data = row.entry
            if row.seq == 11:
                doc = json.loads(data)
                doc["outcome"] = "denied"
                data = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
            leaf = merkle.leaf_hash(data)
            chain = merkle.chain_hash(chain, leaf)
            hashes = b"".join(frontier.push(leaf))
            connection.execute(
                update(entries)
                .where(entries.c.seq == row.seq)
                .values(entry=data, chain=chain, hashes=hashes)
            )
        connection.execute(update(head).values(chain=chain, frontier=frontier.to_bytes()))
    with pytest.raises(TamperError, match="checkpoint at size 20") as caught:
        _verify(log20)
    assert caught.value.seq == 8, "the damage lies after the last checkpoint that still holds"


def test_a_deleted_entry_is_named(log20: Runtime) -> None:
    with tampering(log20) as connection:
        connection.execute(delete(entries).where(entries.c.seq == 5))
    assert _bad_seq(log20) == 5


def test_reordered_entries_are_named(log20: Runtime) -> None:
    with tampering(log20) as connection:
        a, b = (connection.execute(select(entries).where(entries.c.seq == s)).one() for s in (3, 4))
        for row, other in ((a, b), (b, a)):
            connection.execute(
                update(entries)
                .where(entries.c.seq == row.seq)
                .values(entry=other.entry, chain=other.chain, hashes=other.hashes)
            )
    assert _bad_seq(log20) == 3


def test_a_truncated_tail_is_caught_by_the_checkpoint(log20: Runtime) -> None:
    with tampering(log20) as connection:
        connection.execute(delete(entries).where(entries.c.seq >= 15))
        # Even with the head rewound to match, the signed checkpoint at 20 remembers.
        connection.execute(update(head).values(size=15))
    with pytest.raises(TamperError, match="truncated") as caught:
        _verify(log20)
    assert caught.value.seq == 15


def test_a_truncated_tail_after_the_last_checkpoint_is_caught_by_the_head(log20: Runtime) -> None:
    append(log20, 5)
    with tampering(log20) as connection:
        connection.execute(delete(entries).where(entries.c.seq >= 23))
    with pytest.raises(TamperError, match="head says 25") as caught:
        _verify(log20)
    assert caught.value.seq == 23


def test_a_forged_checkpoint_is_refused(log20: Runtime) -> None:
    with tampering(log20) as connection:
        note = connection.execute(select(checkpoints.c.note).limit(1)).scalar_one()
        forged = note.replace("\n8\n", "\n9\n", 1)
        connection.execute(
            update(checkpoints).values(note=forged, size=9).where(checkpoints.c.size == 8)
        )
    with pytest.raises(TamperError, match="signature does not verify"):
        _verify(log20)


def test_stored_subtree_hashes_are_checked(log20: Runtime) -> None:
    with tampering(log20) as connection:
        connection.execute(update(entries).where(entries.c.seq == 7).values(hashes=bytes(128)))
    assert _bad_seq(log20) == 7


def test_the_database_refuses_updates_and_deletes(runtime: Runtime) -> None:
    append(runtime, 3)
    checkpoint(runtime)
    statements = [
        update(entries).where(entries.c.seq == 1).values(entry=b"{}"),
        delete(entries).where(entries.c.seq == 2),
        update(checkpoints).values(size=99),
        delete(checkpoints),
    ]
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"), runtime.engine.begin() as connection:
            connection.execute(statement)
    if runtime.engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"), runtime.engine.begin() as connection:
            connection.execute(text("TRUNCATE audit_entries"))
    assert _verify(runtime) == 3
