"""A NADRA that can be told to be slow, down or flaky.

The real registry is a remote service that times out and has outages; registration has to
behave well when it does. This simulation answers from a synthetic registry and, on request,
takes its time, times out, is down, or fails a share of calls at random (seeded, so a failing
run can be replayed). It never logs personal data: only outcomes and field names.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import fields
from datetime import date
from pathlib import Path
from typing import Required, TypedDict, Unpack

from identity.cnic import normalise_cnic
from identity.errors import InvalidCnic, InvalidMobile, RegistryUnavailable
from identity.nadra.protocol import (
    CardDetails,
    CardStatus,
    CitizenRecord,
    Outcome,
    Verification,
)
from identity.nadra.synthetic import read_registry
from identity.phone import normalise_mobile

_log = logging.getLogger(__name__)

_COMPARED = tuple(f.name for f in fields(CardDetails) if f.name != "cnic")
_NAMES = frozenset({"full_name", "father_or_husband_name"})


class MockOptions(TypedDict, total=False):
    today: Required[Callable[[], date]]
    latency: float
    timeout: float
    outage: bool
    failure_rate: float
    seed: int | None
    sleep: Callable[[float], None]


def _name_key(name: str) -> str:
    """Case and spacing are how a name was typed, not which name it is; spelling is."""
    return " ".join(name.split()).casefold()


def _differs(field: str, typed: object, held: object) -> bool:
    if field in _NAMES and isinstance(typed, str) and isinstance(held, str):
        return _name_key(typed) != _name_key(held)
    return typed != held


def judge(record: CitizenRecord | None, details: CardDetails, today: date) -> Verification:
    """NADRA's rules: the card must exist, then be valid today, then match what was typed.

    Validity comes before the comparison so that a dead or cancelled card says nothing about
    whether the typed details were right.
    """
    if record is None:
        return Verification(Outcome.NOT_FOUND)
    if record.status is not CardStatus.ACTIVE:
        return Verification(Outcome.CARD_NOT_VALID, card_status=record.status)
    if record.card_expiry_date < today:
        return Verification(Outcome.CARD_NOT_VALID, card_status=CardStatus.EXPIRED)
    differing = tuple(
        name for name in _COMPARED if _differs(name, getattr(details, name), getattr(record, name))
    )
    if differing:
        return Verification(Outcome.MISMATCH, mismatched_fields=differing)
    return Verification(Outcome.MATCH, record=record)


def _require_cnic(cnic: str) -> None:
    """The adapter's callers normalise first; a raw CNIC here is a bug, not a citizen's typo."""
    if normalise_cnic(cnic) != cnic:
        raise InvalidCnic("a CNIC reaches the registry as 13 digits, normalised")


class MockNadra:
    """NadraRegistry over an in-memory registry, with latency, timeouts and failures on demand.

    `outage` may be flipped while the registry is in use, to take it down and bring it back.
    """

    def __init__(
        self,
        records: Mapping[str, CitizenRecord],
        *,
        today: Callable[[], date],
        latency: float = 0.0,
        timeout: float = 2.0,
        outage: bool = False,
        failure_rate: float = 0.0,
        seed: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not (math.isfinite(latency) and latency >= 0):
            raise ValueError("latency is a finite number of seconds, zero or more")
        if not (math.isfinite(timeout) and timeout > 0):
            raise ValueError("timeout is a finite number of seconds, more than zero")
        if not 0 <= failure_rate <= 1:
            raise ValueError("failure_rate is a share of calls, from 0 to 1")
        self._records = records
        self._today = today
        self._latency = latency
        self._timeout = timeout
        self.outage = outage
        self._failure_rate = failure_rate
        self._sleep = sleep
        self._random = random.Random(seed)  # noqa: S311  simulated faults, not secrets
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: Path, **options: Unpack[MockOptions]) -> MockNadra:
        return cls(read_registry(path), **options)

    def verify(self, details: CardDetails) -> Verification:
        _require_cnic(details.cnic)
        self._call()
        verification = judge(self._records.get(details.cnic), details, self._today())
        _log.debug(
            "nadra verify: %s %s",
            verification.outcome.value,
            ",".join(verification.mismatched_fields),
        )
        return verification

    def mobile_registered(self, cnic: str, mobile: str) -> bool:
        _require_cnic(cnic)
        if normalise_mobile(mobile) != mobile:
            raise InvalidMobile("a mobile number reaches the registry in E.164 form")
        self._call()
        record = self._records.get(cnic)
        registered = record is not None and mobile in record.mobile_numbers
        _log.debug("nadra sim check: %s", "registered" if registered else "not registered")
        return registered

    def _call(self) -> None:
        """What a round trip to NADRA costs, and how it goes wrong."""
        if self.outage:
            raise RegistryUnavailable("NADRA is not answering")
        if self._latency > self._timeout:
            self._sleep(self._timeout)
            raise RegistryUnavailable("NADRA did not answer in time")
        if self._latency:
            self._sleep(self._latency)
        if self._failure_rate and self._fails():
            raise RegistryUnavailable("NADRA failed to answer")

    def _fails(self) -> bool:
        with self._lock:
            return self._random.random() < self._failure_rate
