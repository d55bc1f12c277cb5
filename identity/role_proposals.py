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

A proposal's row is sealed (`audit.row_seal`) like the role it leads to, and re-sealed when it
is decided, only if its old seal still stands (a compare-and-set on the old MAC). A row whose
seal does not verify is no proposal: it is not shown, not decided, and `shanakht audit
integrity` lists it. Without this, whoever can write the database could insert a pending
proposal naming a real administrator as its proposer, or change the role or officer of a
genuine one, and a second administrator's approval would write a correctly sealed role. The
approver's form also says what it showed (officer, department, role), and an approval of
anything else is refused; and a proposal is approved only while its proposer still holds
`identity.admin` in a sealed role, so an administrator who lost the role loses their
proposals with it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, insert, select
from sqlalchemy.orm import Session

from audit import AuditEvent, AuditLog, two_person
from audit.ids import new_id
from audit.row_seal import MAC_COLUMN, RowSeal
from audit.two_person import APPROVED, DECISION_WINDOW, EXPIRED, MAX_REASON, PENDING, REFUSED
from identity.models import citizens, role_proposals
from identity.roles import ADMIN, TWO_PERSON, RoleError, Roles, is_department


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
        seal: RowSeal,
    ) -> None:
        self._db = session
        self._roles = roles
        self._audit = audit
        self._clock = clock
        self._seal = seal

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
        row = {
            "id": proposal_id, "grantee": grantee, "department_id": department, "role": role,
            "proposer": proposer, "created_at": self._now(), "status": PENDING,
            "decided_at": None, "decider": None, "refusal": None,
        }  # fmt: skip
        self._db.execute(insert(role_proposals).values(self._seal.sealed(role_proposals, row)))
        proposed = self.get(proposal_id)
        self._entry("identity.role.proposed", proposed, actor=proposer)
        return proposed

    def awaiting(self, *, admin: str) -> list[RoleProposal]:
        """The pending proposals `admin` may decide: not theirs, not for them, not expired;
        the nearest to expiring first."""
        now = self._clock()
        return self._sealed(
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

    def pending_for(self, grantee: str) -> list[RoleProposal]:
        """The undecided, unexpired proposals for one officer: what their page shows as waiting."""
        now = self._clock()
        return self._sealed(
            select(role_proposals)
            .where(
                role_proposals.c.grantee == grantee,
                role_proposals.c.status == PENDING,
                role_proposals.c.created_at > now - DECISION_WINDOW,
            )
            .order_by(role_proposals.c.created_at, role_proposals.c.id)
        )

    def get(self, proposal_id: str) -> RoleProposal:
        """The proposal, if its row is sealed; one that is not is no proposal."""
        return _proposal(self._row(proposal_id))

    def approve(
        self,
        proposal_id: str,
        *,
        admin: str,
        substantial: bool,
        grantee: str,
        department: str,
        role: str,
    ) -> RoleProposal:
        """The second administrator's approval: the role is granted now, once. `grantee`,
        `department` and `role` are what the approver was shown: the grant is made only if
        the proposal still says that, and only while its proposer is still an administrator."""
        row = self._deciding(proposal_id, admin, substantial)
        found = _proposal(row)
        if (found.grantee, found.department, found.role) != (grantee, department, role):
            raise ProposalRefused(
                "the proposal is not the one the approval was shown: nothing was granted",
                code="role.proposal_changed",
            )
        if not self._holds_admin(found.proposer):
            raise ProposalRefused(
                f"the proposer no longer holds {ADMIN}: the proposal cannot be approved",
                code="role.proposer_not_admin",
            )
        decided = self._decide(row, APPROVED, admin, None)
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
        row = self._deciding(proposal_id, admin, substantial)
        if not two_person.fit_reason(reason):
            raise ProposalRefused(
                f"a refusal's reason is 1 to {MAX_REASON} characters, without a CNIC",
                code="role.refusal_reason", field="refusal_reason", most=MAX_REASON,
            )  # fmt: skip
        decided = self._decide(row, REFUSED, admin, reason)
        self._entry("identity.role.refused", decided, actor=admin)
        return decided

    # -- the record ------------------------------------------------------------------------------

    def _sealed(self, query: Select[Any]) -> list[RoleProposal]:
        """The proposals `query` finds whose rows are sealed; the others are logged, not shown."""
        rows = self._db.execute(query)
        return [_proposal(r._mapping) for r in rows if self._seal.check(role_proposals, r._mapping)]

    def _row(self, proposal_id: str) -> Mapping[Any, Any]:
        """The proposal's row, every column, if its seal verifies (see the module's docstring)."""
        found = self._db.execute(
            select(role_proposals).where(role_proposals.c.id == proposal_id)
        ).first()
        if found is None or not self._seal.check(role_proposals, found._mapping):
            raise ProposalRefused("there is no such proposal", code="role.proposal_unknown")
        return found._mapping

    def _deciding(self, proposal_id: str, admin: str, substantial: bool) -> Mapping[Any, Any]:
        """The row of the proposal `admin` is about to decide, if they may decide it now."""
        if not substantial:
            raise ProposalRefused(
                "deciding a role's grant needs a second factor", code="role.second_factor"
            )
        self._administrator(admin)
        row = self._row(proposal_id)
        found = _proposal(row)
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
        return row

    def _decide(
        self, row: Mapping[Any, Any], status: str, admin: str, refusal: str | None
    ) -> RoleProposal:
        """Record the decision on `row` (as read and checked) with a new seal, only if the row
        still holds the seal it was read with: what was checked is what is decided."""
        now = self._now()
        decision = {"status": status, "decided_at": now, "decider": admin, "refusal": refusal}
        resealed = self._seal.mac(role_proposals, {**row, **decision})
        not_theirs = (role_proposals.c.proposer != admin) & (role_proposals.c.grantee != admin)
        if not two_person.decide(
            self._db, role_proposals, row["id"], status=status, decider=admin,
            refusal=refusal, now=now, not_theirs=not_theirs,
            unchanged=role_proposals.c.mac == row[MAC_COLUMN], also={MAC_COLUMN: resealed},
        ):  # fmt: skip
            raise ProposalRefused(
                "another administrator decided the proposal meanwhile, or it has expired",
                code="role.proposal_decided",
            )
        return self.get(row["id"])

    def _entry(self, action: str, found: RoleProposal, *, actor: str) -> None:
        """Proposal, approval (the grant) or refusal: naming both administrators by pseudonym."""
        details: dict[str, Any] = {
            "role": found.role,
            "proposal": found.id,
            "proposer": found.proposer,
        }
        details.update(two_person.decision_details(found.status, found.decider, found.refusal))
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
        if not self._holds_admin(who):
            raise ProposalRefused(
                f"only an {ADMIN} proposes or decides a grant", code="role.not_admin"
            )

    def _holds_admin(self, who: str) -> bool:
        """Whether the account of pseudonym `who` holds `identity.admin` in a sealed role."""
        found = self._citizen_id(who)
        return found is not None and self._roles.has(found, ADMIN)

    def _pending(self, grantee: str, department: str, role: str) -> bool:
        return any(p.department == department and p.role == role for p in self.pending_for(grantee))

    def _citizen_id(self, pseudonym: str) -> str | None:
        """The id of the account of `pseudonym`, if its row holds its seal: a pseudonym moved
        to another row by SQL must not steer an approval to that row's citizen."""
        found = self._db.execute(
            select(citizens).where(citizens.c.pseudonym == pseudonym)
        ).one_or_none()
        if found is None or not self._seal.check(citizens, found._mapping):
            return None
        return str(found.id)

    def _department_exists(self, department: str) -> bool:
        return is_department(self._db, self._seal, department)

    def _now(self) -> datetime:
        """Whole seconds, as stored and compared (SQLite keeps what PostgreSQL would)."""
        return self._clock().replace(microsecond=0)


def _proposal(row: Mapping[Any, Any]) -> RoleProposal:
    return RoleProposal(
        id=row["id"],
        grantee=row["grantee"],
        department=row["department_id"],
        role=row["role"],
        proposer=row["proposer"],
        created_at=row["created_at"],
        status=row["status"],
        decided_at=row["decided_at"],
        decider=row["decider"],
        refusal=row["refusal"],
    )
