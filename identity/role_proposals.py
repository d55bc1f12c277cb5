"""Grants of the powerful roles under a two-person rule: one administrator proposes, a second
approves, and only then the role exists.

`locker.legal` opens citizens' documents without their consent and `identity.admin` grants
every role, so one administrator's session (stolen, or its holder's bad day) must not be
enough to give either. An administrator's grant of a `TWO_PERSON` role is kept as a proposal
(`pending`, everyone in it by pseudonym); another administrator, signed in with a second
factor, who is neither the proposer nor the grantee, approves it (the role is granted then)
or refuses it with a reason. A proposal nobody decides within 7 days expires and grants
nothing. The decision is the compare-and-set of `audit.two_person`, the one legal-basis access
uses, so two administrators racing cannot both win. Every step is audited naming both
administrators by pseudonym. Revoking stays immediate (`Roles.revoke`), and the operator's
`shanakht roles grant` still grants directly: it bootstraps the first administrators.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from audit import AuditEvent, AuditLog, two_person
from audit.ids import new_id
from audit.two_person import APPROVED, DECISION_WINDOW, EXPIRED, MAX_REASON, PENDING, REFUSED
from identity.models import citizens, departments, role_proposals
from identity.roles import ADMIN, TWO_PERSON, RoleError, Roles


class ProposalRefused(RoleError):
    """A proposal that may not be made or decided by this administrator, or not now."""


@dataclass(frozen=True, slots=True)
class RoleProposal:
    """A proposed grant, as proposed and as decided."""

    id: str
    grantee: str
    department: str
    role: str
    proposer: str
    created_at: datetime
    status: str  # pending, approved or refused, as recorded; see `state`
    decided_at: datetime | None
    decider: str | None
    refusal: str | None

    @property
    def decide_by(self) -> datetime:
        return self.created_at + DECISION_WINDOW

    def state(self, now: datetime) -> str:
        """pending, approved, refused or expired (pending and undecided for 7 days)."""
        return two_person.pending_state(self.status, self.created_at, now)


class RoleProposals:
    def __init__(
        self,
        session: Session,
        *,
        roles: Roles,
        audit: AuditLog,
        clock: Callable[[], datetime],
    ) -> None:
        self._db = session
        self._roles = roles
        self._audit = audit
        self._clock = clock

    def propose(self, grantee: str, department: str, role: str, *, proposer: str) -> RoleProposal:
        """The first administrator's grant of a `TWO_PERSON` role, kept pending. `grantee` and
        `proposer` are pseudonyms; the proposer cannot propose for themself."""
        if grantee == proposer:
            raise RoleError(
                "an administrator cannot grant themself a role: another administrator must",
                code="role.self_grant", field="role",
            )  # fmt: skip
        if role not in TWO_PERSON:
            raise RoleError(f"{role!r} is granted at once; only {sorted(TWO_PERSON)} are proposed")
        self._administrator(proposer)
        citizen_id = self._citizen_id(grantee)
        if citizen_id is None or not self._department_exists(department):
            raise RoleError("no such account or department", field="department")
        if any(g.department == department and g.role == role for g in self._roles.of(citizen_id)):
            raise RoleError("the role is held already", code="role.held", field="role")
        if self._pending(grantee, department, role):
            raise ProposalRefused(
                "this grant is proposed already and awaits a second administrator",
                code="role.proposed_already", field="role",
            )  # fmt: skip
        proposal_id = new_id()  # letters only: the log refuses a CNIC-shaped run of digits
        self._db.execute(
            insert(role_proposals).values(
                id=proposal_id, grantee=grantee, department_id=department, role=role,
                proposer=proposer, created_at=self._now(), status=PENDING,
            )
        )  # fmt: skip
        proposed = self.get(proposal_id)
        self._entry("identity.role.proposed", proposed, actor=proposer)
        return proposed

    def awaiting(self, *, admin: str) -> list[RoleProposal]:
        """The pending proposals `admin` may decide: not theirs, not for them, not expired;
        the nearest to expiring first."""
        now = self._clock()
        rows = self._db.execute(
            select(role_proposals)
            .where(
                role_proposals.c.status == PENDING,
                role_proposals.c.proposer != admin,
                role_proposals.c.grantee != admin,
                role_proposals.c.created_at > now - DECISION_WINDOW,
            )
            .order_by(role_proposals.c.created_at, role_proposals.c.id)
            .limit(200)
        )
        return [_proposal(row) for row in rows]

    def pending_for(self, grantee: str) -> list[RoleProposal]:
        """The undecided, unexpired proposals for one officer: what their page shows as waiting."""
        now = self._clock()
        rows = self._db.execute(
            select(role_proposals)
            .where(
                role_proposals.c.grantee == grantee,
                role_proposals.c.status == PENDING,
                role_proposals.c.created_at > now - DECISION_WINDOW,
            )
            .order_by(role_proposals.c.created_at, role_proposals.c.id)
        )
        return [_proposal(row) for row in rows]

    def get(self, proposal_id: str) -> RoleProposal:
        row = self._db.execute(
            select(role_proposals).where(role_proposals.c.id == proposal_id)
        ).first()
        if row is None:
            raise ProposalRefused("there is no such proposal", code="role.proposal_unknown")
        return _proposal(row)

    def approve(self, proposal_id: str, *, admin: str, substantial: bool) -> RoleProposal:
        """The second administrator's approval: the role is granted now, once."""
        found = self._deciding(proposal_id, admin, substantial)
        decided = self._decide(found, APPROVED, admin, None)
        citizen_id = self._citizen_id(found.grantee)
        if citizen_id is None:  # accounts are marked removed, never deleted
            raise ProposalRefused("the account is gone", code="role.proposal_unknown")
        self._roles.insert(citizen_id, found.department, found.role, by=f"citizen:{admin}")
        self._entry("identity.role.granted", decided, actor=admin)
        return decided

    def refuse(
        self, proposal_id: str, *, admin: str, substantial: bool, reason: str
    ) -> RoleProposal:
        """The second administrator's refusal, with why: the role is not granted."""
        found = self._deciding(proposal_id, admin, substantial)
        if not two_person.fit_reason(reason):
            raise ProposalRefused(
                f"a refusal's reason is 1 to {MAX_REASON} characters, without a CNIC",
                code="role.refusal_reason", field="refusal_reason", most=MAX_REASON,
            )  # fmt: skip
        decided = self._decide(found, REFUSED, admin, reason)
        self._entry("identity.role.refused", decided, actor=admin)
        return decided

    # -- the record ------------------------------------------------------------------------------

    def _deciding(self, proposal_id: str, admin: str, substantial: bool) -> RoleProposal:
        """The proposal `admin` is about to decide, if they may decide it now."""
        if not substantial:
            raise ProposalRefused(
                "deciding a role's grant needs a second factor", code="role.second_factor"
            )
        self._administrator(admin)
        found = self.get(proposal_id)
        if found.proposer == admin:
            raise ProposalRefused(
                "you proposed this grant: another administrator must decide it",
                code="role.own_proposal",
            )
        if found.grantee == admin:
            raise ProposalRefused(
                "this grant is for you: another administrator must decide it",
                code="role.proposed_for_you",
            )
        if found.state(self._clock()) == EXPIRED:
            raise ProposalRefused(
                "the proposal expired: nobody decided it within 7 days",
                code="role.proposal_expired",
            )
        if found.status != PENDING:
            raise ProposalRefused("the proposal was decided already", code="role.proposal_decided")
        return found

    def _decide(
        self, found: RoleProposal, status: str, admin: str, refusal: str | None
    ) -> RoleProposal:
        not_theirs = (role_proposals.c.proposer != admin) & (role_proposals.c.grantee != admin)
        if not two_person.decide(
            self._db, role_proposals, found.id, status=status, decider=admin,
            refusal=refusal, now=self._now(), not_theirs=not_theirs,
        ):  # fmt: skip
            raise ProposalRefused(
                "another administrator decided the proposal meanwhile, or it has expired",
                code="role.proposal_decided",
            )
        return self.get(found.id)

    def _entry(self, action: str, found: RoleProposal, *, actor: str) -> None:
        """Proposal, approval (the grant) or refusal: naming both administrators by pseudonym."""
        details: dict[str, Any] = {
            "role": found.role,
            "proposal": found.id,
            "proposer": found.proposer,
        }
        if found.decider is not None:
            details["approver" if found.status == APPROVED else "refuser"] = found.decider
        if found.refusal is not None:
            details["refusal"] = found.refusal
        self._audit.append(
            AuditEvent(
                actor=f"citizen:{actor}",
                action=action,
                subject=found.grantee,
                resource=f"department:{found.department}",
                details=details,
            )
        )

    def _administrator(self, who: str) -> None:
        """Proposing and deciding are an administrator's: `who` must hold the role now."""
        found = self._citizen_id(who)
        if found is None or not self._roles.has(found, ADMIN):
            raise ProposalRefused(
                f"only an {ADMIN} proposes or decides a grant", code="role.not_admin"
            )

    def _pending(self, grantee: str, department: str, role: str) -> bool:
        return any(p.department == department and p.role == role for p in self.pending_for(grantee))

    def _citizen_id(self, pseudonym: str) -> str | None:
        found = self._db.execute(
            select(citizens.c.id).where(citizens.c.pseudonym == pseudonym)
        ).scalar_one_or_none()
        return str(found) if found is not None else None

    def _department_exists(self, department: str) -> bool:
        found = self._db.execute(
            select(departments.c.id).where(departments.c.id == department)
        ).first()
        return found is not None

    def _now(self) -> datetime:
        """Whole seconds, as stored and compared (SQLite keeps what PostgreSQL would)."""
        return self._clock().replace(microsecond=0)


def _proposal(row: Any) -> RoleProposal:
    return RoleProposal(
        id=row.id,
        grantee=row.grantee,
        department=row.department_id,
        role=row.role,
        proposer=row.proposer,
        created_at=row.created_at,
        status=row.status,
        decided_at=row.decided_at,
        decider=row.decider,
        refusal=row.refusal,
    )
