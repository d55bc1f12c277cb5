"""C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 keys.

The format transparency logs and their witnesses exchange checkpoints in, so an outside party
can check Shanakht's checkpoints with off-the-shelf tools (Go's golang.org/x/mod/sumdb/note, the
transparency-dev witnesses) rather than code of ours.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from audit.errors import NoteError, SignatureBroken

ALG_ED25519 = 0x01
SIGNATURE_PREFIX = "\u2014 "  # an em dash and a space begin every signature line
MAX_SIGNATURES = 100


def _check_name(name: str) -> None:
    if not name or "+" in name or any(c.isspace() for c in name):
        raise NoteError("a key name is non-empty and holds no spaces and no '+'")
    _check_utf8(name, "a key name")


def _check_utf8(text: str, what: str) -> None:
    """Refuse text that cannot be UTF-8 (a lone surrogate, as JSON can carry): it is signed and
    hashed as UTF-8, and encoding it would raise a UnicodeEncodeError instead of a NoteError."""
    try:
        text.encode()
    except UnicodeEncodeError:
        raise NoteError(f"{what} is not UTF-8 text") from None


def _key_hash(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:4]


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def b64decode_strict(text: str) -> bytes:
    """Standard base64 that refuses stray characters instead of skipping them."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NoteError("not valid base64") from exc


class NoteSigner:
    """Signs note texts under one named Ed25519 key."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        _check_name(name)
        self.name = name
        self._key = private_key
        self.public_key = _raw_public(private_key.public_key())
        self.key_hash = _key_hash(name, self.public_key)

    @property
    def verifier_key(self) -> str:
        """`<name>+<hex key hash>+<base64(0x01 || public key)>`, what a verifier is given."""
        material = base64.b64encode(bytes([ALG_ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_hash.hex()}+{material}"

    def sign(self, text: str) -> str:
        if not text.endswith("\n"):
            raise NoteError("a note's text ends with a newline")
        signature = self._key.sign(text.encode())
        blob = base64.b64encode(self.key_hash + signature).decode()
        return f"{text}\n{SIGNATURE_PREFIX}{self.name} {blob}\n"


@dataclass(frozen=True)
class NoteVerifier:
    """Checks notes against one named Ed25519 public key."""

    name: str
    key_hash: bytes
    public_key: Ed25519PublicKey

    @property
    def verifier_key(self) -> str:
        """The verifier key this was parsed from: `<name>+<hex key hash>+<base64 key>`."""
        material = base64.b64encode(bytes([ALG_ED25519]) + _raw_public(self.public_key)).decode()
        return f"{self.name}+{self.key_hash.hex()}+{material}"

    @classmethod
    def parse(cls, vkey: str) -> NoteVerifier:
        parts = vkey.split("+", 2)
        if len(parts) != 3:
            raise NoteError("a verifier key is <name>+<hash>+<key>")
        name, hash_hex, material = parts
        _check_name(name)
        if len(hash_hex) != 8 or hash_hex.lower() != hash_hex:
            raise NoteError("a verifier key hash is 8 lower-case hex digits")
        try:
            key_hash = bytes.fromhex(hash_hex)
        except ValueError as exc:
            raise NoteError("a verifier key hash is 8 lower-case hex digits") from exc
        raw = b64decode_strict(material)
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("only Ed25519 verifier keys (algorithm 0x01) are accepted")
        if _key_hash(name, raw[1:]) != key_hash:
            raise NoteError("the verifier key's hash does not match its name and key")
        return cls(name, key_hash, Ed25519PublicKey.from_public_bytes(raw[1:]))

    def open(self, note: str) -> str:
        """Return the note's text if this key signed it; raise NoteError otherwise."""
        _check_utf8(note, "a signed note")
        # (1) The text is everything up to and including the newline before the blank line.
        split = note.rfind("\n\n")
        if split < 0 or not note.endswith("\n"):
            raise NoteError("a signed note is text, a blank line and signature lines")
        text, signature_block = note[: split + 1], note[split + 2 :]
        lines = signature_block[:-1].split("\n")
        if len(lines) > MAX_SIGNATURES:
            raise NoteError("too many signatures on the note")
        verified = False
        for line in lines:
            # (2) Every signature line must be well formed, ours or not.
            if not line.startswith(SIGNATURE_PREFIX):
                raise NoteError("malformed signature line")
            name, _, blob_text = line[len(SIGNATURE_PREFIX) :].rpartition(" ")
            blob = b64decode_strict(blob_text)
            if not name or len(blob) < 5:
                raise NoteError("malformed signature line")
            # (3) Only a line with our name and key hash counts; others belong to witnesses.
            if name != self.name or blob[:4] != self.key_hash:
                continue
            # (4) The signature covers the text's exact bytes. The lines after it are read
            # too: a malformed line anywhere refuses the note, as (2) says.
            try:
                self.public_key.verify(blob[4:], text.encode())
            except InvalidSignature as exc:
                raise SignatureBroken("the note's signature does not verify") from exc
            verified = True
        if verified:
            return text
        raise NoteError(f"the note carries no signature by {self.name}")


class OpensNotes(Protocol):
    """What checks a signed note: one key (NoteVerifier) or every version of one (NoteKeyRing)."""

    def open(self, note: str) -> str: ...


@dataclass(frozen=True)
class NoteKeyRing:
    """Checks notes against every version of a log's key, newest first.

    A rotated checkpoint key gets a new version under the same name (the log's origin) and so a
    new key hash, which each signature line carries: a checkpoint signed by any version, before
    or after a rotation, opens; a note whose text was altered opens under none."""

    verifiers: tuple[NoteVerifier, ...]

    @classmethod
    def parse(cls, vkeys: Iterable[str]) -> NoteKeyRing:
        verifiers = tuple(NoteVerifier.parse(vkey) for vkey in vkeys)
        if not verifiers:
            raise NoteError("a key ring holds at least one verifier key")
        return cls(verifiers)

    def open(self, note: str) -> str:
        """Return the note's text if one of the keys signed it; raise NoteError otherwise
        (saying the signature does not verify when a key's line is there but wrong)."""
        return self.signer_of(note).open(note)

    def signer_of(self, note: str) -> NoteVerifier:
        """The version whose signature on `note` verifies; NoteError if none does."""
        failures: list[NoteError] = []
        for verifier in self.verifiers:
            try:
                verifier.open(note)
            except NoteError as exc:
                failures.append(exc)
                continue
            return verifier
        raise next((f for f in failures if isinstance(f, SignatureBroken)), failures[0])
