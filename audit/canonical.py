"""Canonical JSON: the one byte string an entry hashes to, whoever writes or re-reads it.

Sorted keys, UTF-8, no insignificant whitespace. Floats are refused rather than canonicalised:
their textual form differs between implementations, and nothing an audit entry records needs
them (times are strings, amounts are integers).
"""

from __future__ import annotations

import json
from typing import Any

from audit.errors import EntryError

JsonValue = None | bool | int | str | list["JsonValue"] | dict[str, "JsonValue"]

# Integers beyond this lose precision in JavaScript verifiers (IEEE double), so refuse them.
MAX_SAFE_INTEGER = 2**53 - 1


def _check(value: Any, path: str) -> None:
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise EntryError(f"{path}: integer {value} is too large to keep exact in JSON")
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check(item, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise EntryError(f"{path}: object keys must be strings, not {key!r}")
            _check(item, f"{path}.{key}")
        return
    raise EntryError(f"{path}: {type(value).__name__} has no canonical JSON form")


def check_json(value: Any) -> None:
    """Raise EntryError unless `value` has an exact canonical JSON form."""
    _check(value, "$")


def encode_checked(value: Any) -> bytes:
    """Encode a value `check_json` has already accepted, without walking it again."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def canonical_json(value: Any) -> bytes:
    """Encode `value` canonically, refusing anything without an exact JSON form."""
    check_json(value)
    return encode_checked(value)
