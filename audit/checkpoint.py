"""Checkpoints: a log's size and root, signed as a C2SP tlog-checkpoint note."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from audit.errors import NoteError
from audit.merkle import HASH_SIZE
from audit.note import NoteSigner, OpensNotes, b64decode_strict

MAX_SIZE = 2**64 - 1  # C2SP tlog-checkpoint: the tree size is a uint64
MAX_SIZE_DIGITS = len(str(MAX_SIZE))  # checked first: int() of 4,301 digits raises ValueError


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def body(self) -> str:
        """`origin\\nsize\\nbase64(root)\\n`: the text the log's key signs."""
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    def sign(self, signer: NoteSigner) -> str:
        return signer.sign(self.body())

    @classmethod
    def parse_body(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise NoteError("a checkpoint is origin, size and root, a line each")
        origin, size_text, root_text = lines[0], lines[1], lines[2]
        if not origin:
            raise NoteError("a checkpoint names its origin")
        if (
            not size_text.isascii()
            or not size_text.isdigit()
            or (size_text.startswith("0") and size_text != "0")
            or len(size_text) > MAX_SIZE_DIGITS
            or int(size_text) > MAX_SIZE
        ):
            raise NoteError("a checkpoint's size is a decimal uint64 without leading zeros")
        root = b64decode_strict(root_text)
        if len(root) != HASH_SIZE:
            raise NoteError(f"a checkpoint's root is a {HASH_SIZE}-byte hash")
        return cls(origin, int(size_text), root)

    @classmethod
    def open(cls, note: str, verifier: OpensNotes, origin: str) -> Checkpoint:
        """Verify `note` under `verifier` and parse it, requiring the expected origin."""
        checkpoint = cls.parse_body(verifier.open(note))
        if checkpoint.origin != origin:
            raise NoteError(f"the checkpoint is for {checkpoint.origin!r}, not {origin!r}")
        return checkpoint
