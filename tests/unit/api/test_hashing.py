"""Password hashes are made on low-priority threads, and are the same hashes."""

from __future__ import annotations

import os
import threading

from api.hashing import LOWEST, NICE, BackgroundHasher
from identity.passwords import HashParameters, PasswordHasher

FAST = HashParameters(memory_kib=64, time_cost=1, parallelism=1)


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_hashes_verify_both_ways_and_are_made_at_low_priority() -> None:
    ours = _nice()
    hasher = BackgroundHasher(FAST)
    encoded = hasher.hash("Kinnow#Orchard2026")
    assert PasswordHasher(FAST).verify(encoded, "Kinnow#Orchard2026")
    assert hasher.verify(encoded, "Kinnow#Orchard2026")
    assert not hasher.verify(encoded, "Kinnow#Orchard2027")
    assert not hasher.verify(None, "Kinnow#Orchard2026")
    assert hasher._pool.submit(_nice).result() == min(LOWEST, ours + NICE)
    assert _nice() == ours, "the callers' threads keep their priority"
