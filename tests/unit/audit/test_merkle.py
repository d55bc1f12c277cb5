"""The Merkle functions against the public RFC 6962 vectors and against each other."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymerkle import InmemoryTree

from audit import merkle
from audit.errors import ProofError

# A copy of ../shared/vectors/rfc6962 (transparency-dev test data, Apache 2.0; see its README).
VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "rfc6962"

# The eight leaves of the RFC 6962 test suites and the roots of their first n (n = 0..8).
LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243",
          "5051525354555657", "606162636465666768696a6b6c6d6e6f")]  # fmt: skip
ROOTS = [bytes.fromhex(h) for h in (
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]  # fmt: skip
LEAF_HASHES = [merkle.leaf_hash(leaf) for leaf in LEAVES]


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def _vectors(kind: str) -> list[tuple[str, dict]]:
    files = sorted((VECTORS / kind).rglob("*.json"))
    assert len(files) > 40, f"expected the shared {kind} vectors under {VECTORS}"
    return [(str(f.relative_to(VECTORS)), json.loads(f.read_text())) for f in files]


@pytest.mark.parametrize(("name", "probe"), _vectors("inclusion"), ids=lambda v: str(v)[:60])
def test_inclusion_vectors(name: str, probe: dict) -> None:
    args = (
        _b64(probe["leafHash"]),
        probe["leafIdx"],
        probe["treeSize"],
        [_b64(p) for p in probe["proof"] or []],
        _b64(probe["root"]),
    )
    if probe["wantErr"]:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(*args)
    else:
        merkle.verify_inclusion(*args)


@pytest.mark.parametrize(("name", "probe"), _vectors("consistency"), ids=lambda v: str(v)[:60])
def test_consistency_vectors(name: str, probe: dict) -> None:
    args = (
        probe["size1"],
        probe["size2"],
        _b64(probe["root1"]),
        _b64(probe["root2"]),
        [_b64(p) for p in probe["proof"] or []],
    )
    if probe["wantErr"]:
        with pytest.raises(ProofError):
            merkle.verify_consistency(*args)
    else:
        merkle.verify_consistency(*args)


@pytest.mark.parametrize("n", range(len(ROOTS)))
def test_roots_of_the_reference_leaves(n: int) -> None:
    assert merkle.root(LEAF_HASHES[:n]) == ROOTS[n]


def test_inclusion_proofs_match_the_vectors_we_were_given() -> None:
    """Our proof for leaf 0 of 8 is byte for byte the one in the public happy-path vector."""
    probe = json.loads((VECTORS / "inclusion" / "1" / "happy-path.json").read_text())
    leaves = LEAF_HASHES[: probe["treeSize"]]
    assert merkle.inclusion_proof(leaves, probe["leafIdx"]) == [_b64(p) for p in probe["proof"]]


def test_consistency_proofs_match_every_happy_path_vector() -> None:
    for name, probe in _vectors("consistency"):
        if probe["wantErr"] or probe["size1"] == 0 or probe["size2"] > len(LEAVES):
            continue
        if merkle.root(LEAF_HASHES[: probe["size2"]]) != _b64(probe["root2"]):
            continue  # a probe over other leaves
        got = merkle.consistency_proof(LEAF_HASHES[: probe["size2"]], probe["size1"])
        assert got == [_b64(p) for p in probe["proof"] or []], name


def _tree(n: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_every_inclusion_proof_verifies(case: tuple[int, int]) -> None:
    n, index = case
    leaves = _tree(n)
    proof = merkle.inclusion_proof(leaves, index)
    merkle.verify_inclusion(leaves[index], index, n, proof, merkle.root(leaves))
    wrong_root = bytes([merkle.root(leaves)[0] ^ 1]) + merkle.root(leaves)[1:]
    with pytest.raises(ProofError):
        merkle.verify_inclusion(leaves[index], index, n, proof, wrong_root)
    if n > 1:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(leaves[index], (index + 1) % n, n, proof, merkle.root(leaves))


@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))))
def test_every_consistency_proof_verifies(case: tuple[int, int]) -> None:
    old, new = case
    leaves = _tree(new)
    proof = merkle.consistency_proof(leaves, old)
    old_root, new_root = merkle.root(leaves[:old]), merkle.root(leaves)
    merkle.verify_consistency(old, new, old_root, new_root, proof)
    if old < new:
        with pytest.raises(ProofError):
            merkle.verify_consistency(old, new, new_root, old_root, proof)


def test_the_frontier_completes_subtrees_where_their_last_leaf_lands() -> None:
    leaves = _tree(8)
    frontier = merkle.Frontier()
    completed = [frontier.push(leaf) for leaf in leaves]
    assert [len(c) for c in completed] == [1, 2, 1, 3, 1, 2, 1, 4]
    assert completed[7][3] == merkle.root(leaves)
    assert completed[5][1] == merkle.root(leaves[4:6])
    again = merkle.Frontier.from_bytes(frontier.size, frontier.to_bytes())
    assert again.root() == frontier.root() == merkle.root(leaves)


def test_only_tree_shaped_ranges_split_into_subtrees() -> None:
    assert merkle.aligned_subtrees(0, 7) == [(2, 0), (1, 2), (0, 6)]
    assert merkle.aligned_subtrees(8, 11) == [(1, 4), (0, 10)]
    with pytest.raises(ValueError, match="not one a Merkle tree"):
        merkle.aligned_subtrees(3, 7)


def test_proof_hashes_of_the_wrong_length_are_refused() -> None:
    leaves = _tree(4)
    proof = merkle.inclusion_proof(leaves, 1)
    with pytest.raises(ProofError, match="32-byte"):
        merkle.verify_inclusion(leaves[1], 1, 4, [*proof[:-1], proof[-1][:31]], merkle.root(leaves))


@given(st.lists(st.binary(max_size=40), min_size=1, max_size=200))
def test_roots_agree_with_an_independent_implementation(data: list[bytes]) -> None:
    """pymerkle builds the same RFC 9162 tree by its own code; our roots must equal its."""
    peer = InmemoryTree(algorithm="sha256")
    for item in data:
        peer.append_entry(item)
    assert merkle.root([merkle.leaf_hash(item) for item in data]) == peer.get_root()
