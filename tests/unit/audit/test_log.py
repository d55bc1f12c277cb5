"""The database-backed log: appends, proofs against the reference functions, checkpoints."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import select

from api.runtime import Runtime
from audit import AuditEntry, Checkpoint, ProofRequestError, merkle, verify_log
from audit.models import entries
from tests.unit.audit.helpers import append, checkpoint, event


def _leaves(runtime: Runtime) -> list[bytes]:
    with runtime.engine.connect() as connection:
        rows = connection.execute(select(entries.c.entry).order_by(entries.c.seq)).scalars()
        return [merkle.leaf_hash(data) for data in rows]


def test_appends_get_consecutive_seqs_and_canonical_entries(runtime: Runtime) -> None:
    with runtime.sessions() as session, session.begin():
        log = runtime.audit_log(session)
        first = log.append(event(0))
        rest = log.append_many([event(1), event(2)])
    assert [e.seq for e in (first, *rest)] == [0, 1, 2]
    with runtime.sessions() as session:
        stored = runtime.audit_log(session).entry(1)
    assert stored == rest[0]
    assert stored.to_bytes() == AuditEntry.from_bytes(stored.to_bytes()).to_bytes()
    assert b'"action":"locker.document.read"' in stored.to_bytes()


def test_an_append_rolled_back_leaves_no_trace(runtime: Runtime) -> None:
    append(runtime, 3)
    with runtime.sessions() as session:
        session.begin()
        runtime.audit_log(session).append(event(99))
        session.rollback()
    append(runtime, 1)
    with runtime.engine.connect() as connection:
        assert verify_log(connection, runtime.audit_verifier, runtime.audit_signer.name).size == 4


def test_every_stored_proof_equals_the_reference(runtime: Runtime) -> None:
    append(runtime, 37, batch=5)
    leaves = _leaves(runtime)
    with runtime.sessions() as session:
        log = runtime.audit_log(session)
        for size in range(1, 38):
            assert log.root(size) == merkle.root(leaves[:size])
            for index in range(size):
                proof = log.inclusion_proof(index, size)
                assert proof.proof == merkle.inclusion_proof(leaves[:size], index)
                assert proof.leaf_hash == leaves[index]
            for old in range(1, size + 1):
                got = log.consistency_proof(old, size)
                assert got.proof == merkle.consistency_proof(leaves[:size], old)
                merkle.verify_consistency(old, size, got.old_root, got.new_root, got.proof)


def test_checkpoints_are_signed_notes_of_the_current_root(runtime: Runtime) -> None:
    append(runtime, 10)
    with runtime.sessions() as session, session.begin():
        log = runtime.audit_log(session)
        signed = log.checkpoint()
        assert log.checkpoint_if_grown() == log.latest_checkpoint()
    opened = Checkpoint.open(signed.note, runtime.audit_verifier, "shanakht.test/audit")
    assert opened.size == 10
    assert opened.root == merkle.root(_leaves(runtime))
    assert signed.note.startswith(
        "shanakht.test/audit\n10\n" + base64.b64encode(opened.root).decode()
    )


@pytest.mark.parametrize(
    ("index", "size", "message"),
    [(0, 0, "at least 1"), (5, 5, "not in a tree"), (0, 11, "beyond the log"), (-1, 3, "not in")],
)
def test_impossible_inclusion_proofs_are_refused(
    runtime: Runtime, index: int, size: int, message: str
) -> None:
    append(runtime, 10)
    with runtime.sessions() as session, pytest.raises(ProofRequestError, match=message):
        runtime.audit_log(session).inclusion_proof(index, size)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [(0, 5, "at least 1"), (6, 5, "larger than"), (3, 11, "beyond the log")],
)
def test_impossible_consistency_proofs_are_refused(
    runtime: Runtime, old: int, new: int, message: str
) -> None:
    append(runtime, 10)
    with runtime.sessions() as session, pytest.raises(ProofRequestError, match=message):
        runtime.audit_log(session).consistency_proof(old, new)


def test_a_proof_reads_logarithmically_many_rows(runtime: Runtime) -> None:
    """The service answers from stored subtree hashes, never by re-reading every leaf."""
    append(runtime, 1000, batch=500)
    seen: list[int] = []

    from sqlalchemy import event as sa_event

    def count_rows(_conn, _cursor, statement, parameters, _context, _many) -> None:
        if "audit_entries" in statement:
            seen.append(len(parameters) if isinstance(parameters, list | tuple) else 1)

    sa_event.listen(runtime.engine, "before_cursor_execute", count_rows)
    try:
        with runtime.sessions() as session:
            proof = runtime.audit_log(session).inclusion_proof(357, 1000)
    finally:
        sa_event.remove(runtime.engine, "before_cursor_execute", count_rows)
    assert len(seen) == 1, "one query"
    assert seen[0] <= 2 * 10 + 2, f"{seen[0]} rows asked for a 1000-leaf tree"
    merkle.verify_inclusion(proof.leaf_hash, 357, 1000, proof.proof, proof.root)


def test_checkpoint_helper_records_history(runtime: Runtime) -> None:
    checkpoint(runtime)
    append(runtime, 2)
    checkpoint(runtime)
    with runtime.sessions() as session:
        log = runtime.audit_log(session)
        assert log.latest_checkpoint().checkpoint.size == 2
        assert log.checkpoint_count() == 2
