"""The audit log service: appends, checkpoints and proofs over the database.

An append locks the one-row head, reads the tip (size, chain, frontier) from it, and writes each
entry with the hashes of the complete subtrees it finishes. A proof then needs only the O(log n)
stored subtree hashes its shape names (see `merkle.inclusion_path`), fetched in one query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from audit import merkle
from audit.checkpoint import Checkpoint
from audit.entry import AuditEntry, AuditEvent, format_time
from audit.errors import AuditError, ProofRequestError
from audit.merkle import HASH_SIZE, Frontier, Range, Subtree
from audit.models import HEAD_ID, checkpoints, entries, head
from audit.note import NoteSigner
from audit.prepared import Prepared

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    note: str
    issued_at: datetime


@dataclass(frozen=True, slots=True)
class InclusionProof:
    index: int
    size: int
    leaf_hash: bytes
    root: bytes
    proof: list[bytes]


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    old_size: int
    new_size: int
    old_root: bytes
    new_root: bytes
    proof: list[bytes]


# Statements built once: an append runs three of them, and building them anew each time costs
# more than executing them on SQLite.
_LOCK_HEAD = Prepared(
    select(head.c.size, head.c.chain, head.c.frontier).where(head.c.id == HEAD_ID).with_for_update()
)
_READ_SIZE = select(head.c.size).where(head.c.id == HEAD_ID)
_READ_HEAD = select(head.c.size, head.c.frontier).where(head.c.id == HEAD_ID)
_INSERT_ENTRIES = Prepared(insert(entries))
_MOVE_HEAD = Prepared(update(head).where(head.c.id == HEAD_ID))


def subtree_location(subtree: Subtree) -> tuple[int, int]:
    """Where a complete subtree's hash is stored: (seq of its last leaf, slot in that row)."""
    level, index = subtree
    return ((index + 1) << level) - 1, level


class AuditLog:
    """The append-only log of one deployment, used inside the caller's transaction.

    Appends join the caller's transaction, so a recorded action and its audit entry commit
    together or not at all; the caller commits. An append holds the head's lock until that
    commit, which is what keeps sequence numbers gap-free, so callers append last, just before
    they commit, to keep other writers waiting as briefly as possible.
    """

    def __init__(self, session: Session, *, signer: NoteSigner, clock: Clock) -> None:
        self._session = session
        self._signer = signer
        self._clock = clock

    @property
    def origin(self) -> str:
        return self._signer.name

    # -- appending -------------------------------------------------------------------------

    def append(self, event: AuditEvent) -> AuditEntry:
        return self.append_many([event])[0]

    def append_many(self, events: Iterable[AuditEvent]) -> list[AuditEntry]:
        """Append events in order, with consecutive sequence numbers and one shared time."""
        events = list(events)
        if not events:
            return []
        # Locking the head row serialises appenders: on PostgreSQL a row lock, on SQLite the
        # write lock that the first write of a transaction takes (see api.database).
        connection = self._session.connection()
        size, chain, frontier_blob = _LOCK_HEAD.one(connection)
        frontier = Frontier.from_bytes(size, frontier_blob)
        time = format_time(self._clock())
        written: list[AuditEntry] = []
        rows: list[dict[str, object]] = []
        for offset, event in enumerate(events):
            entry = AuditEntry(seq=size + offset, time=time, event=event)
            data = entry.to_bytes()
            leaf = merkle.leaf_hash(data)
            chain = merkle.chain_hash(chain, leaf)
            completed = frontier.push(leaf)
            rows.append(
                {
                    "seq": entry.seq,
                    "entry": data,
                    "chain": chain,
                    "hashes": b"".join(completed),
                    "subject": event.subject,
                }
            )
            written.append(entry)
        # Two statements, not one (INSERT inside WITH): on PostgreSQL the head's trigger
        # (migration 0014) checks that the entries it moves to exist, and the UPDATE of such a
        # statement does not see the INSERT beside it.
        _INSERT_ENTRIES.execute(connection, rows)
        _MOVE_HEAD.execute(
            connection, {"size": frontier.size, "chain": chain, "frontier": frontier.to_bytes()}
        )
        return written

    # -- reading ---------------------------------------------------------------------------

    def size(self) -> int:
        size: int = self._session.execute(_READ_SIZE).scalar_one()
        return size

    def entry(self, seq: int) -> AuditEntry:
        data = self._session.execute(
            select(entries.c.entry).where(entries.c.seq == seq)
        ).scalar_one_or_none()
        if data is None:
            raise ProofRequestError(f"there is no entry {seq}")
        return AuditEntry.from_bytes(data)

    def page(
        self, *, subject: str | None = None, after: int = -1, limit: int = 100
    ) -> list[AuditEntry]:
        """Entries in order from `after` + 1, optionally only those about `subject`."""
        query = select(entries.c.entry).where(entries.c.seq > after)
        if subject is not None:
            query = query.where(entries.c.subject == subject)
        rows = self._session.execute(query.order_by(entries.c.seq).limit(limit)).scalars()
        return [AuditEntry.from_bytes(data) for data in rows]

    def page_back(
        self, *, subject: str | None = None, before: int | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """Entries before `before` (from the newest, if None), newest first, optionally only
        those about `subject`: for readers who want the latest first and walk back, passing
        the smallest seq they were given as the next `before`. The (subject, seq) index
        answers it as one range scan."""
        query = select(entries.c.entry)
        if before is not None:
            query = query.where(entries.c.seq < before)
        if subject is not None:
            query = query.where(entries.c.subject == subject)
        rows = self._session.execute(query.order_by(entries.c.seq.desc()).limit(limit)).scalars()
        return [AuditEntry.from_bytes(data) for data in rows]

    def _subtree_hashes(self, wanted: Sequence[Subtree]) -> dict[Subtree, bytes]:
        locations = {subtree: subtree_location(subtree) for subtree in wanted}
        seqs = sorted({seq for seq, _ in locations.values()})
        rows = self._session.execute(
            select(entries.c.seq, entries.c.hashes).where(entries.c.seq.in_(seqs))
        )
        stored: dict[int, bytes] = {row.seq: row.hashes for row in rows}
        found: dict[Subtree, bytes] = {}
        for subtree, (seq, slot) in locations.items():
            blob = stored.get(seq)
            value = blob[slot * HASH_SIZE : (slot + 1) * HASH_SIZE] if blob else b""
            if len(value) != HASH_SIZE:
                raise AuditError(f"stored hashes for entry {seq} are missing or damaged")
            found[subtree] = value
        return found

    def _range_hashes(self, ranges: Sequence[Range]) -> list[bytes]:
        """MTH of each range, from the stored complete subtrees it splits into: one query."""
        parts = [merkle.aligned_subtrees(lo, hi) for lo, hi in ranges]
        hashes = self._subtree_hashes([s for subtrees in parts for s in subtrees])
        return [merkle.fold_subtrees([hashes[s] for s in subtrees]) for subtrees in parts]

    def root(self, size: int) -> bytes:
        """Root of the tree of the first `size` entries."""
        if size == 0:
            return merkle.EMPTY_ROOT
        return self._range_hashes([(0, size)])[0]

    def _check_size(self, size: int, name: str) -> None:
        if size < 1:
            raise ProofRequestError(f"{name} must be at least 1")
        current = self.size()
        if size > current:
            raise ProofRequestError(f"{name} {size} is beyond the log's size {current}")

    def inclusion_proof(self, index: int, size: int) -> InclusionProof:
        self._check_size(size, "size")
        if not 0 <= index < size:
            raise ProofRequestError(f"index {index} is not in a tree of size {size}")
        path = merkle.inclusion_path(index, size)
        leaf, tree_root, *proof = self._range_hashes([(index, index + 1), (0, size), *path])
        return InclusionProof(index, size, leaf, tree_root, proof)

    def consistency_proof(self, old_size: int, new_size: int) -> ConsistencyProof:
        self._check_size(old_size, "from")
        self._check_size(new_size, "to")
        if old_size > new_size:
            raise ProofRequestError(f"from {old_size} is larger than to {new_size}")
        path = merkle.consistency_path(old_size, new_size)
        old_root, new_root, *proof = self._range_hashes([(0, old_size), (0, new_size), *path])
        return ConsistencyProof(old_size, new_size, old_root, new_root, proof)

    # -- checkpoints -----------------------------------------------------------------------

    def checkpoint(self) -> SignedCheckpoint:
        """Sign and record a checkpoint of the log as it stands."""
        size, frontier_blob = self._session.execute(_READ_HEAD).one()
        checkpoint = Checkpoint(self.origin, size, Frontier.from_bytes(size, frontier_blob).root())
        signed = SignedCheckpoint(checkpoint, checkpoint.sign(self._signer), self._clock())
        self._session.execute(
            insert(checkpoints).values(
                size=checkpoint.size,
                root=checkpoint.root,
                note=signed.note,
                issued_at=signed.issued_at,
            )
        )
        return signed

    def latest_checkpoint(self) -> SignedCheckpoint | None:
        row = self._session.execute(
            select(checkpoints.c.note, checkpoints.c.issued_at)
            .order_by(checkpoints.c.id.desc())
            .limit(1)
        ).one_or_none()
        if row is None:
            return None
        return SignedCheckpoint(
            Checkpoint.parse_body(_note_text(row.note)), row.note, row.issued_at
        )

    def checkpoint_if_grown(self) -> SignedCheckpoint:
        """The latest checkpoint, or a new one when the log has grown past it (or has none)."""
        latest = self.latest_checkpoint()
        if latest is not None and latest.checkpoint.size == self.size():
            return latest
        return self.checkpoint()

    def checkpoint_covering(self, seq: int) -> SignedCheckpoint:
        """The latest checkpoint if it covers entry `seq`, or a new one (which does, if the
        entry exists): what a proof of inclusion for that entry is checked against."""
        latest = self.latest_checkpoint()
        if latest is not None and latest.checkpoint.size > seq:
            return latest
        return self.checkpoint()

    def checkpoint_count(self) -> int:
        return self._session.execute(select(func.count()).select_from(checkpoints)).scalar_one()


def _note_text(note: str) -> str:
    return note[: note.rfind("\n\n") + 1]
