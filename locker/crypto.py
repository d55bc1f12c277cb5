"""Envelope encryption of locker documents: a fresh data key per document version, the content
sealed with AES-256-GCM in fixed-size chunks as it streams, the data key wrapped under a
versioned key-encryption key (KEK) so KEKs rotate by re-wrapping, never by re-encrypting.

Every primitive is `cryptography`'s AESGCM; this module only fixes nonces, associated data and
framing. All integers below are unsigned big-endian.

Content format, version 1
=========================

    stream  = header || chunk_0 || chunk_1 || ... || chunk_n
    header  = "SHKL" (4) || format version = 1 (1) || chunk size C (u32) || nonce prefix P (8)
    chunk_i = AES-256-GCM(data key, nonce_i, piece_i, aad_i): ciphertext || 16-byte tag

- The plaintext is cut into pieces of exactly C bytes; the last piece, and only the last, is
  shorter: 0 to C-1 bytes (so a plaintext whose length is a multiple of C, the empty one
  included, ends with an empty piece). Every chunk but the last is therefore C + 16 bytes and
  the last is 16 to C + 15 bytes: a reader tells the final chunk by its length alone, with no
  length field to trust, and a stream that ends on a full chunk has lost its end.
- nonce_i = P || u32(i). The data key is fresh per version, so the counter alone keeps nonces
  unique under a key; the random P keeps them unique even if a data key were ever reused by
  mistake. A stream has at most 2^32 chunks (256 TiB at 64 KiB).
- aad_i = header || u32(len D) || D || u64(version) || u32(len O) || O || u32(i) || u8(final_i),
  D and O being the UTF-8 document id and owner id, final_i = 1 for the last chunk, else 0.
  Every chunk authenticates the header (an altered chunk size or prefix fails at chunk 0), its
  index (reordering fails), the document, version and owner (splicing and a wrong owner fail)
  and whether it is the last (cutting the stream at a chunk boundary leaves a last chunk sealed
  as not-last; bytes appended after the final chunk change what is read as the last chunk, or
  turn it into a full chunk read as not-last, and either fails). Lengths prefix D and O so no
  two contexts encode alike.
- 1 <= C <= 16 MiB; a reader refuses any other size before buffering anything, so memory per
  stream is bounded before a single byte has authenticated.

Chunk size: 64 KiB, by measurement (bench/locker_crypto.py prints the sweep; one core of this
machine, encrypt / decrypt including SHA-256, MB/s): 16 KiB 1,308 / 1,232; 64 KiB 1,453 /
1,364; 256 KiB 1,472 / 1,399; 1 MiB 1,461 / 1,309. The rate climbs to 64 KiB, where the
per-chunk costs (a call, a nonce, a 16-byte tag: 0.02% of the object) have stopped counting,
and is flat beyond it, bounded by SHA-256 (~1.8 GB/s here; AES-GCM alone runs at ~8 GB/s). A
larger chunk would buy nothing and cost memory per stream (about three chunks), latency to the
first byte and the granularity of a range read. The size is in each header, so it can change
without a new format.

Decryption releases a chunk's plaintext only after that chunk has authenticated, and keeps one
chunk in hand: the last plaintext chunk comes out only once the final chunk has authenticated
and, when the caller gives the SHA-256 recorded for the document, the whole plaintext's hash
has matched. A reader that stops at an error has had an authentic prefix, never the whole
document; only a stream read to its end without an exception is the document.

Wrapped data key, version 1
===========================

    wrapped = head || nonce (12) || AES-256-GCM(KEK, nonce, data key, aad = head): 32 || tag 16
    head    = "SHKW" (4) || format version = 1 (1) || u8(len K) || K || binding (32)
    binding = SHA-256("shanakht locker data key v1" || 0x00 || u32(len D) || D || u64(version)
                      || u32(len O) || O)

K is the KEK's version id, which names the KEK to unwrap with. AES-GCM rather than AES key
wrap (RFC 3394/5649) because its associated data lets the blob be bound to its document,
version and owner and to the KEK version, so a wrapped key copied onto another row is refused
when it is unwrapped, before any content is read, with a clear error; and it is the primitive
used everywhere else here. The binding is stored as a digest, so a re-wrap needs no context and
the blob repeats no identifiers. Random 96-bit nonces allow 2^32 wraps per KEK version, far
beyond what one version sees before it rotates.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from locker.errors import CiphertextInvalid, DigestMismatch, WrappedKeyInvalid

KEY_BYTES = 32
TAG_BYTES = 16
NONCE_PREFIX_BYTES = 8
CHUNK_SIZE = 64 * 1024
MAX_CHUNK_SIZE = 16 * 1024 * 1024
MAX_CHUNKS = 2**32

MAGIC = b"SHKL"
FORMAT_VERSION = 1
_HEADER = struct.Struct(">4sBI8s")
HEADER_BYTES = _HEADER.size  # 17
_POSITION = struct.Struct(">IB")  # chunk index, final flag

WRAP_MAGIC = b"SHKW"
WRAP_FORMAT_VERSION = 1
_WRAP_NONCE_BYTES = 12
_BINDING_BYTES = 32
_BINDING_LABEL = b"shanakht locker data key v1\x00"

Buffer = bytes | bytearray | memoryview
"""What the streams take pieces of: views are consumed in place, never copied whole."""

KekLookup = Callable[[str], bytes]
"""Gives the KEK a version id names (a `KekProvider.get`); raises KeyUnavailable if none."""


@dataclass(frozen=True, slots=True)
class Context:
    """What a ciphertext and its wrapped key belong to: opening either under another context
    fails. `owner` is an opaque id (a pseudonym, not a CNIC)."""

    document_id: str
    version: int
    owner: str

    def __post_init__(self) -> None:
        if not self.document_id or not self.owner:
            raise ValueError("a context names a document and an owner")
        if isinstance(self.version, bool) or not 0 <= self.version < 2**64:
            raise ValueError("a document version is an integer from 0 to 2**64 - 1")

    def encode(self) -> bytes:
        """The unambiguous encoding that associated data and bindings are made of."""
        document, owner = self.document_id.encode(), self.owner.encode()
        return b"".join(
            (
                len(document).to_bytes(4, "big"),
                document,
                self.version.to_bytes(8, "big"),
                len(owner).to_bytes(4, "big"),
                owner,
            )
        )


def new_data_key() -> bytes:
    """A fresh 256-bit data key: one per document version, never reused."""
    return AESGCM.generate_key(bit_length=256)


def ciphertext_size(plaintext_size: int, chunk_size: int = CHUNK_SIZE) -> int:
    """The exact object size for a plaintext size, to check a store's byte count against."""
    return HEADER_BYTES + plaintext_size + (plaintext_size // chunk_size + 1) * TAG_BYTES


class CipherStream(Iterator[bytes]):
    """An iterator of output pieces that hashes the plaintext as it passes: `sha256` and
    `plaintext_size` are there once the last piece has been produced, so a caller can record
    the hash of what it stored, or check it, without a second pass."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._size = 0
        self._done = False
        self._pieces = self._run()

    def _run(self) -> Iterator[bytes]:
        raise NotImplementedError

    def __next__(self) -> bytes:
        try:
            return next(self._pieces)
        except StopIteration:
            raise
        except BaseException:
            self.close()  # a failed stream is never resumed: let its file or connection go now
            raise

    def close(self) -> None:
        """Release what the stream reads from (an object store's file or connection)."""
        close = getattr(getattr(self, "_chunks", None), "close", None)
        if close is not None:
            close()

    @property
    def sha256(self) -> bytes:
        self._require_done()
        return self._hash.digest()

    @property
    def plaintext_size(self) -> int:
        self._require_done()
        return self._size

    def _require_done(self) -> None:
        if not self._done:
            raise RuntimeError("the stream has not been read to its end")


def encrypt_stream(
    chunks: Iterable[Buffer],
    key: bytes,
    context: Context,
    *,
    chunk_size: int = CHUNK_SIZE,
) -> CipherStream:
    """Seal a plaintext given in pieces of any size; yields the header, then one chunk at a time.

    Memory stays at about one chunk whatever the input's size or its pieces' sizes.
    """
    return _Encryption(chunks, _aead(key), context, chunk_size)


def decrypt_stream(
    chunks: Iterable[Buffer],
    key: bytes,
    context: Context,
    *,
    expected_sha256: bytes | None = None,
) -> CipherStream:
    """Open a ciphertext given in pieces of any size; yields plaintext a chunk at a time, each
    only after it has authenticated. Raises CiphertextInvalid (DigestMismatch for a hash that
    differs from `expected_sha256`) at the first sign of tampering."""
    return _Decryption(chunks, _aead(key), context, expected_sha256)


class _Encryption(CipherStream):
    def __init__(
        self, chunks: Iterable[Buffer], aead: AESGCM, context: Context, chunk_size: int
    ) -> None:
        if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError(f"the chunk size is from 1 to {MAX_CHUNK_SIZE} bytes")
        self._chunks, self._aead, self._chunk_size = chunks, aead, chunk_size
        self._context = context
        super().__init__()

    def _run(self) -> Iterator[bytes]:
        prefix = os.urandom(NONCE_PREFIX_BYTES)
        header = _HEADER.pack(MAGIC, FORMAT_VERSION, self._chunk_size, prefix)
        yield header
        aad = header + self._context.encode()
        seal, update, position = self._aead.encrypt, self._hash.update, _POSITION.pack
        for index, (piece, final) in enumerate(_cut(self._chunks, self._chunk_size)):
            if index >= MAX_CHUNKS:
                raise ValueError("the plaintext is too large for one stream")
            update(piece)
            self._size += len(piece)
            self._done = final
            yield seal(prefix + index.to_bytes(4, "big"), piece, aad + position(index, final))


class _Decryption(CipherStream):
    def __init__(
        self,
        chunks: Iterable[Buffer],
        aead: AESGCM,
        context: Context,
        expected_sha256: bytes | None,
    ) -> None:
        if expected_sha256 is not None and len(expected_sha256) != hashlib.sha256().digest_size:
            raise ValueError("the expected SHA-256 is 32 bytes")
        self._chunks, self._aead, self._context = chunks, aead, context
        self._expected = expected_sha256
        super().__init__()

    def _run(self) -> Iterator[bytes]:
        pieces = iter(self._chunks)
        header, rest = _read_header(pieces)
        _, _, chunk_size, prefix = _HEADER.unpack(header)
        aad = header + self._context.encode()
        open_, update, position = self._aead.decrypt, self._hash.update, _POSITION.pack
        records = _cut(chain((rest,), pieces), chunk_size + TAG_BYTES)
        held = b""  # one chunk behind: the plaintext's last bytes wait for the final checks
        for index, (sealed, final) in enumerate(records):
            if final and len(sealed) < TAG_BYTES:
                where = "at a chunk boundary" if not sealed else "inside a chunk"
                raise CiphertextInvalid(f"truncated {where}: the final chunk is missing")
            if index >= MAX_CHUNKS:
                raise CiphertextInvalid("more chunks than a stream can have")
            try:
                nonce = prefix + index.to_bytes(4, "big")
                plain = open_(nonce, sealed, aad + position(index, final))
            except InvalidTag:
                raise CiphertextInvalid(
                    f"chunk {index} does not authenticate: altered, truncated, reordered, "
                    "from another document, version or owner, or the wrong key"
                ) from None
            update(plain)
            self._size += len(plain)
            if final:
                self._check_digest()
                self._done = True
                yield from (piece for piece in (held, plain) if piece)
            elif plain:
                if held:
                    yield held
                held = plain

    def _check_digest(self) -> None:
        if self._expected is not None and not hmac.compare_digest(
            self._hash.digest(), self._expected
        ):
            raise DigestMismatch("the plaintext's SHA-256 is not the one recorded")


def _aead(key: bytes) -> AESGCM:
    if len(key) != KEY_BYTES:
        raise ValueError("a data key is 32 bytes")
    return AESGCM(key)


def _read_header(pieces: Iterator[Buffer]) -> tuple[bytes, memoryview]:
    """The header, checked as far as it can be before authentication, and what followed it."""
    held, rest = bytearray(), memoryview(b"")
    for piece in pieces:
        view = memoryview(piece)
        need = HEADER_BYTES - len(held)
        held += view[:need]
        if len(held) == HEADER_BYTES:
            rest = view[need:]
            break
    else:
        raise CiphertextInvalid("truncated: shorter than a header")
    header = bytes(held)
    magic, version, chunk_size, _ = _HEADER.unpack(header)
    if magic != MAGIC:
        raise CiphertextInvalid("not a locker ciphertext")
    if version != FORMAT_VERSION:
        raise CiphertextInvalid(f"ciphertext format version {version} is not supported")
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise CiphertextInvalid(f"a chunk size of {chunk_size} bytes is out of bounds")
    return header, rest


def _cut(chunks: Iterable[Buffer], size: int) -> Iterator[tuple[Buffer, bool]]:
    """Re-cut pieces of any size into pieces of exactly `size` bytes, each marked not final,
    then the remainder (0 to size-1 bytes) marked final. Whole pieces inside a large input are
    views of it, not copies; each piece is used up before the next input is asked for."""
    held = bytearray()
    for chunk in chunks:
        view = memoryview(chunk)
        if held:
            take = size - len(held)
            held += view[:take]
            view = view[take:]
            if len(held) < size:
                continue
            yield held, False
            held = bytearray()
        while len(view) >= size:
            yield view[:size], False
            view = view[size:]
        held += view
    yield held, True


def _binding(context: Context) -> bytes:
    return hashlib.sha256(_BINDING_LABEL + context.encode()).digest()


def wrap(data_key: bytes, kek: tuple[str, bytes], context: Context) -> bytes:
    """Wrap a data key under a KEK, given as (version id, key) as `KekProvider.current()` gives
    it, bound to the document version the key encrypts."""
    if len(data_key) != KEY_BYTES:
        raise ValueError("a data key is 32 bytes")
    return _seal(data_key, kek, _binding(context))


def unwrap(wrapped: bytes, kek_of: KekLookup, context: Context) -> bytes:
    """The data key of a wrapped blob, looking its KEK up by the version id it carries."""
    version_id, binding, head, sealed = _parse(wrapped)
    if not hmac.compare_digest(binding, _binding(context)):
        raise WrappedKeyInvalid("the wrapped key belongs to another document, version or owner")
    return _open(version_id, kek_of(version_id), head, sealed)


def wrapped_under(wrapped: bytes) -> str:
    """The version id of the KEK a blob is wrapped under, read without unwrapping it."""
    return _parse(wrapped)[0]


def rewrap_under(wrapped: bytes, kek: tuple[str, bytes], kek_of: KekLookup) -> bytes | None:
    """The same data key and binding wrapped under `kek`, or None if it already is. The
    content is untouched and no context is needed: the binding travels in the blob."""
    version_id, binding, head, sealed = _parse(wrapped)
    if version_id == kek[0]:
        return None
    return _seal(_open(version_id, kek_of(version_id), head, sealed), kek, binding)


def _seal(data_key: bytes, kek: tuple[str, bytes], binding: bytes) -> bytes:
    version_id, kek_key = kek
    encoded = version_id.encode()
    if not 1 <= len(encoded) <= 255:
        raise ValueError("a KEK version id is 1 to 255 bytes of UTF-8")
    head = WRAP_MAGIC + bytes((WRAP_FORMAT_VERSION, len(encoded))) + encoded + binding
    nonce = os.urandom(_WRAP_NONCE_BYTES)
    return head + nonce + AESGCM(kek_key).encrypt(nonce, data_key, head)


def _parse(wrapped: bytes) -> tuple[str, bytes, bytes, bytes]:
    """(KEK version id, binding, head, nonce || sealed key) of a wrapped blob."""
    if len(wrapped) < 6 or wrapped[:4] != WRAP_MAGIC:
        raise WrappedKeyInvalid("not a wrapped locker data key")
    if wrapped[4] != WRAP_FORMAT_VERSION:
        raise WrappedKeyInvalid(f"wrapped key format version {wrapped[4]} is not supported")
    end = 6 + wrapped[5] + _BINDING_BYTES
    if len(wrapped) != end + _WRAP_NONCE_BYTES + KEY_BYTES + TAG_BYTES or wrapped[5] == 0:
        raise WrappedKeyInvalid("a wrapped data key of the wrong length")
    try:
        version_id = wrapped[6 : 6 + wrapped[5]].decode()
    except UnicodeDecodeError:
        raise WrappedKeyInvalid("the KEK version id is not UTF-8") from None
    return version_id, wrapped[end - _BINDING_BYTES : end], wrapped[:end], wrapped[end:]


def _open(version_id: str, kek_key: bytes, head: bytes, sealed: bytes) -> bytes:
    try:
        return AESGCM(kek_key).decrypt(sealed[:_WRAP_NONCE_BYTES], sealed[_WRAP_NONCE_BYTES:], head)
    except InvalidTag:
        raise WrappedKeyInvalid(
            f"the wrapped key does not open under KEK version {version_id}: altered, or "
            "that version's key is not the one it was wrapped with"
        ) from None
