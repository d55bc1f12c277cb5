"""The NADRA registry: the interface the service talks to, and the simulation behind it."""

from identity.nadra.mock import MockNadra, MockOptions
from identity.nadra.protocol import (
    Address,
    CardDetails,
    CardStatus,
    CitizenRecord,
    Gender,
    NadraRegistry,
    Outcome,
    Verification,
)
from identity.nadra.synthetic import (
    REFERENCE_DATE,
    SCENARIOS,
    ensure_registry,
    generate_registry,
    read_registry,
    write_registry,
)

__all__ = [
    "REFERENCE_DATE",
    "SCENARIOS",
    "Address",
    "CardDetails",
    "CardStatus",
    "CitizenRecord",
    "Gender",
    "MockNadra",
    "MockOptions",
    "NadraRegistry",
    "Outcome",
    "Verification",
    "ensure_registry",
    "generate_registry",
    "read_registry",
    "write_registry",
]
