"""Signed notes, checked byte for byte against the reference vector of Go's sumdb/note."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit import Checkpoint, NoteError, NoteKeyRing, NoteSigner, NoteVerifier

# From golang.org/x/mod/sumdb/note's tests: the PeterNeumann key, text and its signature.
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_SIG = (
    "\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def _go_signer() -> NoteSigner:
    seed = base64.b64decode(GO_SKEY.split("+", 4)[4])[1:]  # the key itself may hold "+"
    return NoteSigner("PeterNeumann", Ed25519PrivateKey.from_private_bytes(seed))


def test_we_sign_exactly_as_the_go_reference_does() -> None:
    signer = _go_signer()
    assert signer.verifier_key == GO_VKEY
    assert signer.sign(GO_TEXT) == GO_TEXT + "\n" + GO_SIG


def test_we_open_the_go_reference_note() -> None:
    verifier = NoteVerifier.parse(GO_VKEY)
    assert verifier.open(GO_TEXT + "\n" + GO_SIG) == GO_TEXT


def test_an_altered_text_fails() -> None:
    verifier = NoteVerifier.parse(GO_VKEY)
    with pytest.raises(NoteError, match="does not verify"):
        verifier.open(GO_TEXT.replace("cryptography", "cryptographY") + "\n" + GO_SIG)


def test_witness_signatures_beside_ours_are_ignored() -> None:
    witness = NoteSigner("witness.example", Ed25519PrivateKey.generate())
    cosigned = witness.sign(GO_TEXT) + GO_SIG
    assert NoteVerifier.parse(GO_VKEY).open(cosigned) == GO_TEXT
    with pytest.raises(NoteError, match="no signature by"):
        NoteVerifier.parse(GO_VKEY).open(witness.sign(GO_TEXT))


@pytest.mark.parametrize(
    "vkey",
    [
        GO_VKEY[:-1],
        GO_VKEY.replace("c74f20a3", "c74f20a4"),
        GO_VKEY.replace("c74f20a3", "C74F20A3"),
        GO_VKEY.replace("PeterNeumann", "PeterNeumanm"),
        GO_VKEY.replace("+ARpc", "+AhRpc"),
        "PeterNeumann+c74f20a3",
        "",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
)
def test_mangled_verifier_keys_are_refused(vkey: str) -> None:
    with pytest.raises(NoteError):
        NoteVerifier.parse(vkey)


@pytest.mark.parametrize(
    "note",
    [
        GO_TEXT,
        GO_TEXT + "\n",
        GO_TEXT + "\n" + GO_SIG.replace("\u2014", "-"),
        GO_TEXT + "\n" + GO_SIG.rstrip("\n"),
        GO_TEXT + "\n" + GO_SIG.replace("x08go", "x08g!"),
    ],
)
def test_malformed_notes_are_refused(note: str) -> None:
    with pytest.raises(NoteError):
        NoteVerifier.parse(GO_VKEY).open(note)


def test_checkpoint_bodies_round_trip_and_refuse_junk() -> None:
    checkpoint = Checkpoint("example.org/log", 42, bytes(range(32)))
    assert Checkpoint.parse_body(checkpoint.body()) == checkpoint
    for junk in (
        "example.org/log\n042\nAAAA\n",
        "example.org/log\n42\n" + base64.b64encode(bytes(31)).decode() + "\n",
        "example.org/log\n42\n",
        "\n42\n" + base64.b64encode(bytes(32)).decode() + "\n",
        "example.org/log\n-1\n" + base64.b64encode(bytes(32)).decode() + "\n",
    ):
        with pytest.raises(NoteError):
            Checkpoint.parse_body(junk)


def test_a_checkpoint_for_another_log_is_refused() -> None:
    signer = NoteSigner("example.org/log", Ed25519PrivateKey.generate())
    note = Checkpoint("example.org/log", 1, bytes(32)).sign(signer)
    verifier = NoteVerifier.parse(signer.verifier_key)
    assert Checkpoint.open(note, verifier, "example.org/log").size == 1
    with pytest.raises(NoteError, match=r"not 'other\.org/log'"):
        Checkpoint.open(note, verifier, "other.org/log")


def test_a_key_ring_opens_what_any_version_signed_and_names_it() -> None:
    """Versions of a rotated key share the log's name and differ by key hash: a note signed by
    any of them opens, by none does not, and an altered one says its signature is wrong."""
    versions = [NoteSigner("log.example/audit", Ed25519PrivateKey.generate()) for _ in range(3)]
    ring = NoteKeyRing.parse(signer.verifier_key for signer in reversed(versions))
    for signer in versions:
        note = signer.sign("log.example/audit\n7\nAAAA\n")
        assert ring.open(note) == "log.example/audit\n7\nAAAA\n"
        assert ring.signer_of(note).verifier_key == signer.verifier_key
        with pytest.raises(NoteError, match="does not verify"):
            ring.open(note.replace("\n7\n", "\n8\n"))
    stranger = NoteSigner("log.example/audit", Ed25519PrivateKey.generate())
    with pytest.raises(NoteError, match="carries no signature"):
        ring.open(stranger.sign("log.example/audit\n7\nAAAA\n"))
    with pytest.raises(NoteError, match="at least one"):
        NoteKeyRing.parse([])


def test_a_verifier_gives_back_the_key_it_was_parsed_from() -> None:
    assert NoteVerifier.parse(GO_VKEY).verifier_key == GO_VKEY
