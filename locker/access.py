"""Who touched a citizen's documents, recorded as the province's Schedule II asks: the system,
the document and its fields, who (organisation and official), when, why, and the output.

Every locker action goes through `record`, so the citizen's "who accessed my data" view reads
one shape of audit entry whatever wrote it. The entry's subject is the citizen's pseudonym, its
resource the document URI; content never enters it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from audit import AuditEvent, AuditLog

SYSTEM = "shanakht-locker"


@dataclass(frozen=True, slots=True)
class Accessor:
    """Who acts, for whom, and on what footing.

    `actor` is a pseudonym (a citizen or an officer) or `client:<id>` (a department system);
    `organisation` is the department or e-service, or "citizen" for the owner themselves;
    `basis` is why it is allowed: "owner", "nominee", "issuer", "consent:<id>",
    "legal:<reference>" or "share:<id>".
    """

    actor: str
    organisation: str
    basis: str
    reason: str | None = None
    official: str | None = None  # the officer behind a department system, where known


def record(
    audit: AuditLog,
    action: str,
    who: Accessor,
    *,
    owner: str,
    resource: str | None,
    fields: str,
    output: str,
    outcome: str = "success",
    extra: Mapping[str, str | int | None] | None = None,
    **details: str | int | None,
) -> None:
    """Append one access entry. `fields` names what was touched ("content", "metadata",
    "terms"); `output` what left the service ("document", "none", "list", "link")."""
    audit.append(
        AuditEvent(
            actor=who.actor,
            action=action,
            outcome=outcome,
            subject=owner,
            resource=resource,
            purpose=who.reason,
            details={
                "system": SYSTEM,
                "organisation": who.organisation,
                "official": who.official,
                "basis": who.basis,
                "fields": fields,
                "output": output,
                **{
                    name: value
                    for name, value in {**(extra or {}), **details}.items()
                    if value is not None
                },
            },
        )
    )
