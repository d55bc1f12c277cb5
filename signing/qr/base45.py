"""Base45 (RFC 9285), table-driven: the QR text's encoding, on the signing and verifying paths.

The PyPI `base45` package builds its output a character at a time and took more than half of
a QR signature's time; this does the same arithmetic through tables and `struct`, about ten
times faster, and the tests hold it to that package's output as an independent oracle.
"""

from __future__ import annotations

import struct

ALPHABET = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_INVALID = 0xFF
# Each 16-bit value as its three characters (c, d, e with value = c + 45 d + 2025 e): 65,536
# small bytes objects, about 3 MB, for an encoder that is one lookup a pair.
_TRIPLES = [
    bytes((ALPHABET[v % 45], ALPHABET[v // 45 % 45], ALPHABET[v // 2025])) for v in range(65536)
]
# Character -> its value, or _INVALID, for bytes.translate.
_VALUES = bytes(ALPHABET.index(c) if c in ALPHABET else _INVALID for c in range(256))


def encode(data: bytes) -> str:
    pairs = len(data) // 2
    values = struct.unpack(f">{pairs}H", data[: 2 * pairs])
    text = b"".join(map(_TRIPLES.__getitem__, values))
    if len(data) % 2:
        last = data[-1]
        text += bytes((ALPHABET[last % 45], ALPHABET[last // 45]))
    return text.decode("ascii")


def decode(text: str) -> bytes:
    """The bytes of a base45 text; ValueError for any character, length or group that RFC
    9285 does not allow (no whitespace is forgiven)."""
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError("a character outside the base45 alphabet") from None
    digits = raw.translate(_VALUES)
    if _INVALID in digits:
        raise ValueError("a character outside the base45 alphabet")
    full, rest = divmod(len(digits), 3)
    if rest == 1:
        raise ValueError("a base45 text cannot be 1 more than a multiple of 3 long")
    end = 3 * full
    values = [
        c + 45 * d + 2025 * e
        for c, d, e in zip(digits[0:end:3], digits[1:end:3], digits[2:end:3], strict=True)
    ]
    if values and max(values) > 0xFFFF:
        raise ValueError("a base45 group over 65535")
    out = struct.pack(f">{full}H", *values)
    if rest == 2:
        last = digits[-2] + 45 * digits[-1]
        if last > 0xFF:
            raise ValueError("a base45 final pair over 255")
        out += bytes((last,))
    return out
