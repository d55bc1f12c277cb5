"""Fixtures for the identity services: a synthetic NADRA, an SMS outbox, a clock to move."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from api.runtime import Runtime
from identity.enrolment import Enrolment
from identity.login import PasswordLogin
from identity.nadra import CitizenRecord, MockNadra, read_registry, write_registry
from identity.passwords import HashParameters, PasswordHasher
from identity.policy import IdentityPolicy
from identity.sealing import Sealer
from identity.sms import OutboxSmsGateway

# Cheap argon2 for tests; the production parameters are tested on their own.
FAST_HASH = HashParameters(time_cost=1, memory_kib=64, parallelism=1)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CitizenRecord]:
    path = tmp_path_factory.mktemp("nadra") / "registry.jsonl"
    write_registry(path)
    return read_registry(path)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def nadra(registry: dict[str, CitizenRecord], clock: Clock) -> MockNadra:
    return MockNadra(registry, today=lambda: clock().date(), sleep=lambda _s: None)


@pytest.fixture
def sms(tmp_path: Path, clock: Clock) -> OutboxSmsGateway:
    return OutboxSmsGateway(tmp_path / "outbox.jsonl", clock=clock)


@dataclass
class IdentityKit:
    """Everything a test needs to drive enrolment and login in one transaction at a time."""

    runtime: Runtime
    nadra: MockNadra
    sms: OutboxSmsGateway
    clock: Clock
    policy: IdentityPolicy
    hasher: PasswordHasher
    sealer: Sealer

    def _common(self, session: Session) -> dict[str, object]:
        return {
            "sms": self.sms,
            "hasher": self.hasher,
            "sealer": self.sealer,
            "row_seal": self.runtime.row_seal,
            "pseudonym_key": self.runtime.pseudonym_key,
            "audit": self.runtime.audit_log(session),
            "policy": self.policy,
            "clock": self.clock,
        }

    def enrolment(self, session: Session) -> Enrolment:
        return Enrolment(session, nadra=self.nadra, code_key=b"c" * 32, **self._common(session))  # type: ignore[arg-type]

    def login(self) -> PasswordLogin:
        return PasswordLogin(
            self.runtime.transaction,
            sms=self.sms,
            hasher=self.hasher,
            sealer=self.sealer,
            row_seal=self.runtime.row_seal,
            pseudonym_key=self.runtime.pseudonym_key,
            audit_for=self.runtime.audit_log,
            policy=self.policy,
            clock=self.clock,
        )


@pytest.fixture
def kit(runtime: Runtime, nadra: MockNadra, sms: OutboxSmsGateway, clock: Clock) -> IdentityKit:
    runtime.clock = clock
    return IdentityKit(
        runtime=runtime,
        nadra=nadra,
        sms=sms,
        clock=clock,
        policy=IdentityPolicy(),
        hasher=PasswordHasher(FAST_HASH),
        sealer=Sealer.of(bytes(range(32))),
    )


def card_of(record: CitizenRecord) -> dict[str, object]:
    return {
        "cnic": record.cnic,
        "full_name": record.full_name,
        "father_or_husband_name": record.father_or_husband_name,
        "date_of_birth": record.date_of_birth,
        "card_issue_date": record.card_issue_date,
    }


__all__ = ["Clock", "IdentityKit", "card_of", "date"]
