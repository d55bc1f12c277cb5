"""RFC 6962 / RFC 9162 Merkle tree hashing, proofs and their verification.

Everything here is a pure function of hashes and sizes. The *shape* of a proof (which leaf
ranges its hashes cover) is kept apart from hashing, so the database-backed log can fetch just
the stored complete-subtree hashes a proof is made of, O(log n) reads, instead of recomputing
the tree from every leaf. The list-based functions (`root`, `inclusion_proof`,
`consistency_proof`) are the reference the store is tested against.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from audit.errors import ProofError

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

Range = tuple[int, int]
"""A half-open range of leaf indices [lo, hi)."""

Subtree = tuple[int, int]
"""A complete subtree (level, index): leaves [index * 2**level, (index + 1) * 2**level)."""


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data): the prefix keeps a leaf from ever passing for an interior node."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def chain_hash(previous: bytes, leaf: bytes) -> bytes:
    """SHA-256(previous chain || leaf hash): the running hash chain beside the tree.

    The tree proves membership and consistency to outsiders; the chain lets anyone holding
    two neighbouring rows see that nothing was slipped between them.
    """
    return hashlib.sha256(previous + leaf).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n >= 2), where RFC 9162 splits a tree."""
    return 1 << ((n - 1).bit_length() - 1)


class Frontier:
    """The right edge of a tree: the roots of its maximal complete subtrees, left to right.

    It is all that is needed to append a leaf or compute the root, so the log keeps it in one
    row and never reads old leaves to grow. Its hashes correspond to the set bits of `size`,
    highest first.
    """

    __slots__ = ("hashes", "size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0 or len(hashes) != size.bit_count():
            raise ValueError(f"a frontier of size {size} holds {size.bit_count()} hashes")
        self.size = size
        self.hashes = list(hashes)

    def push(self, leaf: bytes) -> list[bytes]:
        """Append one leaf hash; return the hashes this leaf completes, lowest level first.

        The first item is the leaf itself (level 0); the k-th is the new subtree of 2**k leaves
        that ends at this leaf.
        """
        completed = [leaf]
        node = leaf
        size = self.size
        while size & 1:
            node = node_hash(self.hashes.pop(), node)
            completed.append(node)
            size >>= 1
        self.hashes.append(node)
        self.size += 1
        return completed

    def root(self) -> bytes:
        return fold_subtrees(self.hashes) if self.hashes else EMPTY_ROOT

    def to_bytes(self) -> bytes:
        return b"".join(self.hashes)

    @classmethod
    def from_bytes(cls, size: int, blob: bytes) -> Frontier:
        hashes = [blob[i : i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)]
        return cls(size, hashes)


def fold_subtrees(hashes: Sequence[bytes]) -> bytes:
    """Hash of a range from its maximal complete subtrees, left to right (RFC 9162 MTH).

    For a range that starts on a boundary of a power of two at least its own length (every
    range a tree or a proof is made of), MTH nests to the right, so it folds from the right.
    """
    node = hashes[-1]
    for left in reversed(hashes[:-1]):
        node = node_hash(left, node)
    return node


def aligned_subtrees(lo: int, hi: int) -> list[Subtree]:
    """Split the leaf range [lo, hi) into its maximal complete subtrees, left to right."""
    if not 0 <= lo < hi:
        raise ValueError(f"empty or negative range [{lo}, {hi})")
    parts: list[Subtree] = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        if lo & ((1 << level) - 1):
            raise ValueError(f"range [{lo}, {hi}) is not one a Merkle tree is built from")
        parts.append((level, lo >> level))
        lo += 1 << level
    return parts


def inclusion_path(index: int, size: int) -> list[Range]:
    """RFC 9162 2.1.3.1 PATH(m, D[n]) as leaf ranges, the leaf's sibling first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    lo, hi = 0, size
    siblings: list[Range] = []
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            siblings.append((lo + k, hi))
            hi = lo + k
        else:
            siblings.append((lo, lo + k))
            lo += k
    siblings.reverse()
    return siblings


def consistency_path(old_size: int, new_size: int) -> list[Range]:
    """RFC 9162 2.1.4.1 PROOF(m, D[n]) = SUBPROOF(m, D[n], true) as leaf ranges."""
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from {old_size} to {new_size}")
    lo, hi, m, whole_old_tree = 0, new_size, old_size, True
    ranges: list[Range] = []
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
            m -= k
            whole_old_tree = False
    if not whole_old_tree:
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


def _range_hash(leaf_hashes: Sequence[bytes], lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) straight from leaves: the O(n) reference, used by the list functions."""
    frontier = Frontier()
    for leaf in leaf_hashes[lo:hi]:
        frontier.push(leaf)
    return frontier.root()


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of the whole list; SHA-256 of nothing for the empty tree."""
    return _range_hash(leaf_hashes, 0, len(leaf_hashes))


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    return [_range_hash(leaf_hashes, lo, hi) for lo, hi in inclusion_path(index, len(leaf_hashes))]


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    return [
        _range_hash(leaf_hashes, lo, hi) for lo, hi in consistency_path(old_size, len(leaf_hashes))
    ]


def _check_hashes(name: str, hashes: Iterable[bytes]) -> None:
    for h in hashes:
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise ProofError(f"{name} holds a value that is not a {HASH_SIZE}-byte hash")


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 2.1.3.2: raise ProofError unless `proof` puts `leaf` at `index` under `root`."""
    _check_hashes("the proof", proof)
    _check_hashes("the leaf and root", (leaf, root))
    # (1) The index must be inside the tree.
    if not 0 <= index < size:
        raise ProofError(f"index {index} is outside a tree of size {size}")
    # (2) fn and sn walk up the tree; (3) r is the running hash.
    fn, sn, r = index, size - 1, leaf
    # (4) Fold in each proof hash on the side the index's bits say.
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    # (5) The walk must end at the root, and the result must be the expected root.
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the tree is deep")
    if r != root:
        raise ProofError("inclusion proof does not lead to the expected root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 2.1.4.2: raise ProofError unless the tree of `new_size` extends that of `old_size`.

    As in the transparency-dev verifier, a proof from size 0 is refused (it proves nothing), and
    for equal sizes the proof must be empty and the roots equal.
    """
    _check_hashes("the proof", proof)
    # Bytes, of any length (the transparency-dev vectors accept equal sizes with short roots):
    # anything else is refused here rather than failing as a TypeError in node_hash.
    if not isinstance(old_root, bytes) or not isinstance(new_root, bytes):
        raise ProofError("the roots must be bytes")
    if old_size < 1:
        raise ProofError("a consistency proof from an empty tree proves nothing")
    if old_size > new_size:
        raise ProofError(f"old size {old_size} is larger than new size {new_size}")
    if old_size == new_size:
        if proof:
            raise ProofError("trees of equal size take an empty consistency proof")
        if old_root != new_root:
            raise ProofError("trees of equal size have different roots")
        return
    # (1) A proof between different sizes is never empty.
    if not proof:
        raise ProofError("consistency proof is empty")
    path = list(proof)
    # (2) When the old tree is complete, its root is the first node of the path.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    # (3) fn and sn walk up the old and new trees from their last leaves.
    fn, sn = old_size - 1, new_size - 1
    # (4) Skip the levels where the old tree's last leaf is a right child.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # (5) fr rebuilds the old root, sr the new one.
    fr = sr = path[0]
    # (6) Fold in the rest of the path.
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is longer than the trees are deep")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # (7) Both roots must come out as expected, with the walk at the top.
    if sn != 0:
        raise ProofError("consistency proof is shorter than the trees are deep")
    if fr != old_root:
        raise ProofError("consistency proof does not lead to the old root")
    if sr != new_root:
        raise ProofError("consistency proof does not lead to the new root")
