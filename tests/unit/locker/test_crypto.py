"""Envelope encryption: round trips at every size that matters, and every kind of tampering
the format claims to catch, each caught before a byte of the damaged chunk comes out."""

from __future__ import annotations

import hashlib
import itertools
import os
import struct
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from locker.crypto import (
    CHUNK_SIZE,
    HEADER_BYTES,
    MAX_CHUNK_SIZE,
    TAG_BYTES,
    Context,
    ciphertext_size,
    decrypt_stream,
    encrypt_stream,
    new_data_key,
    unwrap,
    wrap,
    wrapped_under,
)
from locker.errors import CiphertextInvalid, DigestMismatch, KeyUnavailable, WrappedKeyInvalid

KEY = new_data_key()
CONTEXT = Context("doc-7f3a", 2, "owner-p:Qm9i")
SMALL = 64  # a small chunk size, so a few hundred bytes make many chunks


def seal(data: bytes, *, key: bytes = KEY, context: Context = CONTEXT, size: int = SMALL) -> bytes:
    return b"".join(encrypt_stream([data], key, context, chunk_size=size))


def open_(sealed: bytes, *, key: bytes = KEY, context: Context = CONTEXT) -> bytes:
    return b"".join(decrypt_stream([sealed], key, context))


def chunk_at(index: int, size: int = SMALL) -> int:
    """Where chunk `index` starts in a stream of chunk size `size`."""
    return HEADER_BYTES + index * (size + TAG_BYTES)


def drain(pieces: Iterator[bytes], into: bytearray) -> None:
    """Read a stream to its end, or to its error, keeping what came out."""
    for piece in pieces:
        into += piece


def flip(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1 :]


@pytest.mark.parametrize(
    "size", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 5]
)
def test_round_trip_at_the_default_chunk_size(size: int) -> None:
    data = os.urandom(size)
    encryption = encrypt_stream(iter([data]), KEY, CONTEXT)
    sealed = b"".join(encryption)
    assert len(sealed) == ciphertext_size(size)
    assert encryption.sha256 == hashlib.sha256(data).digest()
    assert encryption.plaintext_size == size
    decryption = decrypt_stream([sealed], KEY, CONTEXT, expected_sha256=encryption.sha256)
    assert b"".join(decryption) == data
    assert decryption.sha256 == encryption.sha256
    assert decryption.plaintext_size == size


def cuts(data: bytes, points: list[int]) -> list[bytes]:
    """`data` cut at `points` (taken modulo its length): the pieces a caller might hand over."""
    marks = sorted({p % (len(data) + 1) for p in points} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(marks)]


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(max_size=1500),
    size=st.integers(min_value=1, max_value=300),
    plain_cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12),
    sealed_cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=12),
)
def test_round_trip_whatever_the_pieces(
    data: bytes, size: int, plain_cuts: list[int], sealed_cuts: list[int]
) -> None:
    encryption = encrypt_stream(cuts(data, plain_cuts), KEY, CONTEXT, chunk_size=size)
    sealed = b"".join(encryption)
    assert len(sealed) == ciphertext_size(len(data), size)
    decryption = decrypt_stream(cuts(sealed, sealed_cuts), KEY, CONTEXT)
    assert b"".join(decryption) == data
    assert decryption.sha256 == encryption.sha256 == hashlib.sha256(data).digest()


def test_one_byte_pieces() -> None:
    data = os.urandom(5 * SMALL + 3)
    sealed = b"".join(
        encrypt_stream((data[i : i + 1] for i in range(len(data))), KEY, CONTEXT, chunk_size=SMALL)
    )
    pieces = (sealed[i : i + 1] for i in range(len(sealed)))
    assert b"".join(decrypt_stream(pieces, KEY, CONTEXT)) == data


def test_each_stream_has_its_own_nonces() -> None:
    first, second = seal(b"same plaintext"), seal(b"same plaintext")
    assert first[:9] == second[:9]  # magic, version, chunk size
    assert first[9:HEADER_BYTES] != second[9:HEADER_BYTES]  # the nonce prefix
    assert first[HEADER_BYTES:] != second[HEADER_BYTES:]


DATA = os.urandom(4 * SMALL + 20)  # four full chunks and a short final one
SEALED = seal(DATA)
CHUNKS = 5


def test_the_layout() -> None:
    magic, version, size, _ = struct.unpack(">4sBI8s", SEALED[:HEADER_BYTES])
    assert (magic, version, size) == (b"SHKL", 1, SMALL)
    assert len(SEALED) == chunk_at(4) + 20 + TAG_BYTES


@pytest.mark.parametrize("position", range(HEADER_BYTES))
def test_a_flipped_header_bit(position: int) -> None:
    with pytest.raises(CiphertextInvalid):
        open_(flip(SEALED, position))


@pytest.mark.parametrize("chunk", range(CHUNKS))
@pytest.mark.parametrize("offset", [0, 17, -TAG_BYTES - 1, -TAG_BYTES, -1])  # content, tag
def test_a_flipped_chunk_bit(chunk: int, offset: int) -> None:
    end = chunk_at(chunk + 1) if chunk < CHUNKS - 1 else len(SEALED)
    position = chunk_at(chunk) + offset if offset >= 0 else end + offset
    with pytest.raises(CiphertextInvalid, match=f"chunk {chunk} does not authenticate"):
        open_(flip(SEALED, position))


def test_nothing_of_a_bad_chunk_comes_out() -> None:
    """Chunks 0 and 1 authenticate and come out; chunk 2 is damaged: not a byte of it does
    (and chunk 1 is released only once chunk 2 has been tried: one chunk is kept in hand)."""
    released = bytearray()
    with pytest.raises(CiphertextInvalid, match="chunk 2"):
        drain(decrypt_stream([flip(SEALED, chunk_at(2) + 5)], KEY, CONTEXT), released)
    assert bytes(released) == DATA[:SMALL]


@pytest.mark.parametrize("chunks_kept", range(CHUNKS))
def test_truncated_at_a_chunk_boundary(chunks_kept: int) -> None:
    with pytest.raises(CiphertextInvalid, match="final chunk is missing"):
        open_(SEALED[: chunk_at(chunks_kept)])


@pytest.mark.parametrize("cut", [1, 10, HEADER_BYTES - 1])
def test_truncated_inside_the_header(cut: int) -> None:
    with pytest.raises(CiphertextInvalid, match="shorter than a header"):
        open_(SEALED[:cut])


@pytest.mark.parametrize(
    "end", [chunk_at(1) + 3, chunk_at(2) + 40, chunk_at(3) - 1, len(SEALED) - 1, chunk_at(4) + 5]
)
def test_truncated_inside_a_chunk(end: int) -> None:
    with pytest.raises(CiphertextInvalid):
        open_(SEALED[:end])


def test_the_final_chunk_dropped() -> None:
    with pytest.raises(CiphertextInvalid, match="final chunk is missing"):
        open_(SEALED[: chunk_at(4)])


def test_an_empty_final_chunk_dropped() -> None:
    """A plaintext of whole chunks ends with a chunk of a tag alone; it cannot be left off."""
    sealed = seal(DATA[: 2 * SMALL])
    assert len(sealed) == chunk_at(2) + TAG_BYTES
    with pytest.raises(CiphertextInvalid, match="final chunk is missing"):
        open_(sealed[: chunk_at(2)])


@pytest.mark.parametrize(
    "extra",
    [b"\x00", os.urandom(TAG_BYTES), os.urandom(SMALL + 100)],
    ids=["one-byte", "a-tag", "a-chunk"],  # random bytes make ids no two collections share
)
def test_data_after_the_final_chunk(extra: bytes) -> None:
    with pytest.raises(CiphertextInvalid):
        open_(SEALED + extra)


def test_a_whole_extra_chunk_after_the_final_one() -> None:
    sealed = seal(DATA[: 2 * SMALL + 10])
    with pytest.raises(CiphertextInvalid):
        open_(sealed + sealed[chunk_at(1) : chunk_at(2)])


def swap(sealed: bytes, a: int, b: int) -> bytes:
    chunks = [sealed[chunk_at(i) : chunk_at(i + 1)] for i in range(CHUNKS - 1)]
    chunks.append(sealed[chunk_at(CHUNKS - 1) :])
    chunks[a], chunks[b] = chunks[b], chunks[a]
    return sealed[:HEADER_BYTES] + b"".join(chunks)


@pytest.mark.parametrize(("a", "b"), [(0, 1), (1, 3), (0, 3)])
def test_chunks_swapped(a: int, b: int) -> None:
    with pytest.raises(CiphertextInvalid, match=f"chunk {a} does not authenticate"):
        open_(swap(SEALED, a, b))


def splice(into: bytes, source: bytes, chunk: int) -> bytes:
    return (
        into[: chunk_at(chunk)]
        + source[chunk_at(chunk) : chunk_at(chunk + 1)]
        + into[chunk_at(chunk + 1) :]
    )


@pytest.mark.parametrize(
    "other",
    [
        Context("doc-other", 2, CONTEXT.owner),
        Context(CONTEXT.document_id, 3, CONTEXT.owner),
        CONTEXT,  # the same document, encrypted again: another stream altogether
    ],
)
def test_a_chunk_spliced_from_another_stream(other: Context) -> None:
    """Even under the same data key (which the locker never does), a chunk taken from another
    document, another version or another stream does not fit."""
    source = seal(DATA, context=other)
    with pytest.raises(CiphertextInvalid, match="chunk 1 does not authenticate"):
        open_(splice(SEALED, source, 1))


def test_the_same_stream_read_as_another_document_or_owner() -> None:
    for wrong in [
        Context(CONTEXT.document_id, CONTEXT.version, "owner-someone-else"),
        Context("doc-other", CONTEXT.version, CONTEXT.owner),
        Context(CONTEXT.document_id, CONTEXT.version + 1, CONTEXT.owner),
    ]:
        with pytest.raises(CiphertextInvalid, match="chunk 0 does not authenticate"):
            open_(SEALED, context=wrong)


def test_contexts_do_not_run_together() -> None:
    """Length prefixes: ("ab", "c") and ("a", "bc") are different contexts."""
    sealed = seal(b"x", context=Context("ab", 1, "c"))
    with pytest.raises(CiphertextInvalid):
        open_(sealed, context=Context("a", 1, "bc"))


def test_the_wrong_key() -> None:
    with pytest.raises(CiphertextInvalid, match="chunk 0 does not authenticate"):
        open_(SEALED, key=new_data_key())


def test_not_a_locker_ciphertext() -> None:
    with pytest.raises(CiphertextInvalid, match="not a locker ciphertext"):
        open_(b"%PDF-1.7 " + bytes(100))


@pytest.mark.parametrize(("version", "size"), [(2, SMALL), (1, 0), (1, MAX_CHUNK_SIZE + 1)])
def test_header_fields_out_of_range(version: int, size: int) -> None:
    header = struct.pack(">4sBI8s", b"SHKL", version, size, bytes(8))
    with pytest.raises(CiphertextInvalid, match=r"not supported|out of bounds"):
        open_(header + SEALED[HEADER_BYTES:])


def test_a_digest_mismatch_holds_back_the_end() -> None:
    released = bytearray()
    wrong = hashlib.sha256(b"another document").digest()
    with pytest.raises(DigestMismatch):
        drain(decrypt_stream([SEALED], KEY, CONTEXT, expected_sha256=wrong), released)
    assert len(released) < len(DATA)
    assert DATA.startswith(released)


def test_the_digest_is_known_only_at_the_end() -> None:
    encryption = encrypt_stream([DATA], KEY, CONTEXT, chunk_size=SMALL)
    next(encryption)
    with pytest.raises(RuntimeError, match="read to its end"):
        _ = encryption.sha256


@pytest.mark.parametrize(
    ("document", "version", "owner"),
    [("", 1, "o"), ("d", 1, ""), ("d", -1, "o"), ("d", 2**64, "o"), ("d", True, "o")],
)
def test_bad_contexts(document: str, version: int, owner: str) -> None:
    with pytest.raises(ValueError, match=r"context|version"):
        Context(document, version, owner)


def test_bad_keys_and_sizes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        encrypt_stream([b""], bytes(16), CONTEXT)
    with pytest.raises(ValueError, match="chunk size"):
        encrypt_stream([b""], KEY, CONTEXT, chunk_size=0)
    with pytest.raises(ValueError, match="32 bytes"):
        decrypt_stream([b""], KEY, CONTEXT, expected_sha256=b"short")


KEK = ("test:1", os.urandom(32))


def kek_of(version_id: str) -> bytes:
    if version_id != KEK[0]:
        raise KeyUnavailable(version_id)
    return KEK[1]


def test_wrap_round_trip() -> None:
    data_key = new_data_key()
    wrapped = wrap(data_key, KEK, CONTEXT)
    assert wrapped_under(wrapped) == "test:1"
    assert data_key not in wrapped
    assert unwrap(wrapped, kek_of, CONTEXT) == data_key
    assert wrap(data_key, KEK, CONTEXT) != wrapped  # a fresh nonce each time


@pytest.mark.parametrize(
    "other",
    [
        Context("doc-other", CONTEXT.version, CONTEXT.owner),
        Context(CONTEXT.document_id, CONTEXT.version + 1, CONTEXT.owner),
        Context(CONTEXT.document_id, CONTEXT.version, "owner-someone-else"),
    ],
)
def test_a_wrapped_key_is_bound_to_its_document(other: Context) -> None:
    wrapped = wrap(new_data_key(), KEK, CONTEXT)
    with pytest.raises(WrappedKeyInvalid, match="another document"):
        unwrap(wrapped, kek_of, other)


def test_every_byte_of_a_wrapped_key_counts() -> None:
    wrapped = wrap(new_data_key(), KEK, CONTEXT)
    for position in range(len(wrapped)):
        with pytest.raises((WrappedKeyInvalid, KeyUnavailable)):
            unwrap(flip(wrapped, position), kek_of, CONTEXT)
    for cut in (0, 5, len(wrapped) - 1):
        with pytest.raises(WrappedKeyInvalid):
            unwrap(wrapped[:cut], kek_of, CONTEXT)


def test_a_wrapped_key_under_the_wrong_kek() -> None:
    wrapped = wrap(new_data_key(), KEK, CONTEXT)
    with pytest.raises(WrappedKeyInvalid, match="does not open"):
        unwrap(wrapped, lambda _: os.urandom(32), CONTEXT)
