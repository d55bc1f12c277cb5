"""What the service asks NADRA, and what NADRA answers.

The registry sits behind this interface so that the rest of the system never knows whether it
talks to the real thing or to the simulation, and so that it is tested against a registry that
matches, mismatches and fails. The answers are deliberately coarse: which fields differ but
never what NADRA holds for them, and the verified record only when everything matched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Protocol, runtime_checkable


class Gender(StrEnum):
    MALE = "male"
    FEMALE = "female"
    TRANSGENDER = "transgender"


class CardStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    DECEASED = "deceased"


@dataclass(frozen=True, slots=True)
class Address:
    line: str
    city: str
    district: str
    province: str


@dataclass(frozen=True, slots=True)
class CitizenRecord:
    """What NADRA holds about one card holder."""

    cnic: str
    full_name: str
    father_or_husband_name: str
    date_of_birth: date
    gender: Gender
    address: Address
    card_issue_date: date
    card_expiry_date: date
    status: CardStatus
    mobile_numbers: tuple[str, ...]
    """E.164 numbers of the SIMs registered to this CNIC, as the telco SIM check sees them."""

    def card(self) -> CardDetails:
        """What its holder types from the card (the demo, benchmarks and tests act as them)."""
        return CardDetails(
            cnic=self.cnic,
            full_name=self.full_name,
            father_or_husband_name=self.father_or_husband_name,
            date_of_birth=self.date_of_birth,
            card_issue_date=self.card_issue_date,
        )


@dataclass(frozen=True, slots=True)
class CardDetails:
    """What the citizen types from their card at registration: proof of having the card."""

    cnic: str
    full_name: str
    father_or_husband_name: str
    date_of_birth: date
    card_issue_date: date


class Outcome(StrEnum):
    MATCH = "match"
    MISMATCH = "mismatch"
    NOT_FOUND = "not_found"
    CARD_NOT_VALID = "card_not_valid"


@dataclass(frozen=True, slots=True)
class Verification:
    """NADRA's answer. `mismatched_fields` names CardDetails fields (for MISMATCH),
    `card_status` says why a card is not valid (for CARD_NOT_VALID), and `record` carries the
    verified attributes only on MATCH."""

    outcome: Outcome
    mismatched_fields: tuple[str, ...] = ()
    card_status: CardStatus | None = None
    record: CitizenRecord | None = None


@runtime_checkable
class NadraRegistry(Protocol):
    def verify(self, details: CardDetails) -> Verification:
        """Check typed card details; raise RegistryUnavailable on an outage or timeout."""
        ...

    def mobile_registered(self, cnic: str, mobile: str) -> bool:
        """The telco SIM check: is this E.164 number registered to this CNIC? Raises
        RegistryUnavailable on an outage or timeout."""
        ...
