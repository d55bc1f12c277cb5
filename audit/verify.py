"""Re-check a stored log end to end: every entry, the chain, the tree and every checkpoint.

One streaming pass with O(log n) state, so memory stays flat however long the log is. It
trusts nothing stored except the checkpoints' signatures, and it stops at the first damage it
finds, naming the sequence number where it is.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, select

from audit import merkle
from audit.checkpoint import Checkpoint
from audit.errors import NoteError, TamperError
from audit.merkle import Frontier
from audit.models import GENESIS_CHAIN, HEAD_ID, checkpoints, entries, head
from audit.note import OpensNotes

# Rows per fetch: larger batches cost memory (PostgreSQL peaked at 118 MiB with 20,000, 85 MiB
# with 5,000) and gain no speed.
BATCH = 5_000


@dataclass(frozen=True, slots=True)
class VerifyReport:
    size: int
    root: bytes
    checkpoints: int


def _load_checkpoints(
    connection: Connection, verifier: OpensNotes, origin: str
) -> tuple[dict[int, set[bytes]], int]:
    """Every stored checkpoint, each one's signature checked: roots by tree size, and a count."""
    roots: dict[int, set[bytes]] = defaultdict(set)
    count = 0
    rows = connection.execute(
        select(
            checkpoints.c.id, checkpoints.c.size, checkpoints.c.root, checkpoints.c.note
        ).order_by(checkpoints.c.id)
    )
    for row in rows:
        try:
            signed = Checkpoint.open(row.note, verifier, origin)
        except NoteError as exc:
            raise TamperError(
                f"checkpoint {row.id}: {exc}", code="audit.checkpoint_note", id=row.id
            ) from exc
        if (signed.size, signed.root) != (row.size, row.root):
            raise TamperError(
                f"checkpoint {row.id}: its columns differ from its signed note",
                code="audit.checkpoint_columns",
                id=row.id,
            )
        roots[signed.size].add(signed.root)
        count += 1
    return roots, count


def verify_log(
    connection: Connection,
    verifier: OpensNotes,
    origin: str,
    *,
    each: Callable[[bytes], None] | None = None,
) -> VerifyReport:
    """Raise TamperError at the first inconsistency; return what was checked otherwise.
    `each` is given every entry's bytes once its chain and hashes are checked, in order: what
    else reads the whole log (`audit.reconcile`) reads it in this pass, not in another."""
    # (1) The checkpoints: signed by the log's key, their columns matching their notes.
    roots, count = _load_checkpoints(connection, verifier, origin)
    frontier = Frontier()
    chain = GENESIS_CHAIN
    # (2) Every entry in order: no gap, its own seq inside, its chain and stored subtree hashes
    # recomputed, and the root compared wherever a checkpoint was signed.
    if 0 in roots and roots[0] != {merkle.EMPTY_ROOT}:
        raise TamperError(
            "the checkpoint of the empty log has a wrong root", seq=0, code="audit.empty_root"
        )
    result = connection.execution_options(yield_per=BATCH).execute(
        select(entries.c.seq, entries.c.entry, entries.c.chain, entries.c.hashes).order_by(
            entries.c.seq
        )
    )
    try:
        for seq, data, stored_chain, stored_hashes in result:
            expected = frontier.size
            if seq != expected:
                raise TamperError(
                    f"entry {expected} is missing", seq=expected, code="audit.missing"
                )
            try:
                claimed = json.loads(data).get("seq")
            except (ValueError, AttributeError):
                raise TamperError(
                    f"entry {seq} is not a JSON object", seq=seq, code="audit.not_json"
                ) from None
            if claimed != seq:
                raise TamperError(
                    f"entry {seq} holds the entry for seq {claimed}",
                    seq=seq,
                    code="audit.wrong_seq",
                    claimed=str(claimed)[:20],
                )
            leaf = merkle.leaf_hash(data)
            chain = merkle.chain_hash(chain, leaf)
            if chain != stored_chain:
                raise TamperError(
                    f"entry {seq}: the hash chain breaks here", seq=seq, code="audit.chain"
                )
            if b"".join(frontier.push(leaf)) != stored_hashes:
                raise TamperError(
                    f"entry {seq}: its stored subtree hashes are wrong",
                    seq=seq,
                    code="audit.subtree",
                )
            signed = roots.get(frontier.size)
            if signed is not None and signed != {frontier.root()}:
                raise TamperError(
                    f"the checkpoint at size {frontier.size} does not match the entries before it:"
                    " an entry was altered and the hashes after it rewritten",
                    seq=_last_good_checkpoint(roots, frontier.size),
                    code="audit.checkpoint_mismatch",
                    size=frontier.size,
                )
            if each is not None:
                each(data)
    finally:
        result.close()  # a server-side cursor must not outlive an early exit
    size = frontier.size
    # (3) Nothing cut off the end: every checkpoint and the head are within what is stored.
    largest = max(roots, default=0)
    if largest > size:
        raise TamperError(
            f"the log ends at {size} entries but a checkpoint covers {largest}: truncated",
            seq=size,
            code="audit.truncated",
            size=size,
            largest=largest,
        )
    head_size, head_chain, head_frontier = connection.execute(
        select(head.c.size, head.c.chain, head.c.frontier).where(head.c.id == HEAD_ID)
    ).one()
    if head_size != size:
        raise TamperError(
            f"the log holds {size} entries but its head says {head_size}",
            seq=size,
            code="audit.head_size",
            size=size,
            head=head_size,
        )
    if head_chain != chain or head_frontier != frontier.to_bytes():
        raise TamperError(
            "the log's head does not match its entries",
            seq=max(size - 1, 0),
            code="audit.head",
        )
    return VerifyReport(size=size, root=frontier.root(), checkpoints=count)


def _last_good_checkpoint(roots: dict[int, set[bytes]], bad_size: int) -> int:
    """The first seq that may be bad: the size of the largest checkpoint before `bad_size`."""
    return max((size for size in roots if size < bad_size), default=0)
