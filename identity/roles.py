"""Departments and the roles their officers hold.

A department's row is sealed (migration 0028): its name is what citizens read on a department's
request for their documents, on a consent, on a signed order, so a row renamed or added by SQL
would speak for a department under another's name. One whose seal fails is no department: it
is shown by its id alone, and nothing can be granted, registered or proposed in it.

Officers are citizens: an administrator grants a citizen a role within a department, and the
role reaches e-services and APIs as the `roles` claim. Every grant and revocation is audited.
Every grant row is sealed (`audit.row_seal`) when it is written, and one whose seal does not
verify is no role at all: an INSERT by whoever has SQL but not the service's keys gives nothing.
The powerful roles (`TWO_PERSON`) an administrator does not grant alone: they propose it and a
second administrator approves (`identity.role_proposals`). Taking any role away is immediate.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from audit import AuditEvent, AuditLog
from audit.prepared import Prepared
from audit.row_seal import RowSeal
from identity.errors import IdentityError
from identity.models import departments, roles

ROLES = frozenset(
    {"locker.issuer", "locker.legal", "signing.officer", "audit.reader", "identity.admin"}
)
ADMIN = "identity.admin"
# Roles whose grant by an administrator waits for a second administrator's approval: the one
# that opens citizens' documents without consent, and the one that grants every role.
TWO_PERSON = frozenset({"locker.legal", ADMIN})
_DEPARTMENT_ID = re.compile(r"^[a-z][a-z0-9-]{1,31}$")


def honoured_departments(db: Session, seal: RowSeal) -> list[Any]:
    """The departments' rows that hold their seal, by id."""
    rows = db.execute(select(departments).order_by(departments.c.id))
    return [row for row in rows if seal.check(departments, row._mapping)]


def is_department(db: Session, seal: RowSeal, department_id: str) -> bool:
    """Whether `department_id` names a department whose row holds its seal: what a role, a
    department system or a role proposal may name."""
    row = db.execute(select(departments).where(departments.c.id == department_id)).first()
    return seal.honoured(departments, row) is not None


class RoleError(IdentityError):
    """A role grant that cannot be made: unknown role, department or citizen."""


@dataclass(frozen=True, slots=True)
class RoleGrant:
    department: str
    role: str


# The roles a citizen holds: read for every officer's request and every `roles` claim.
_ROLES_OF = Prepared(
    select(roles)
    .where(roles.c.citizen_id == bindparam("citizen_id"))
    .order_by(roles.c.department_id, roles.c.role)
)


class Roles:
    def __init__(
        self,
        session: Session,
        *,
        audit: AuditLog,
        clock: Callable[[], datetime],
        seal: RowSeal,
    ) -> None:
        self._db = session
        self._audit = audit
        self._clock = clock
        self._seal = seal

    def add_department(self, department_id: str, name: str) -> None:
        if not _DEPARTMENT_ID.match(department_id):
            raise RoleError("a department id is 2-32 lower-case letters, digits and dashes")
        row = {"id": department_id, "name": name, "created_at": self._clock()}
        try:
            with self._db.begin_nested():
                self._db.execute(insert(departments).values(self._seal.sealed(departments, row)))
        except IntegrityError:
            raise RoleError(f"department {department_id!r} exists already") from None

    def departments(self) -> list[tuple[str, str]]:
        """(id, name) of every department whose row holds its seal."""
        return [(r.id, r.name) for r in honoured_departments(self._db, self._seal)]

    def of(self, citizen_id: str) -> list[RoleGrant]:
        """The roles `citizen_id` holds: only grants whose seal verifies (the claim, every
        route's check and the administrator's pages all read them here)."""
        rows = _ROLES_OF.all(self._db.connection(), {"citizen_id": citizen_id})
        return [
            RoleGrant(r.department_id, r.role) for r in rows if self._seal.check(roles, r._mapping)
        ]

    def claim(self, citizen_id: str) -> list[dict[str, str]]:
        """The `roles` claim: [{"department": ..., "role": ...}, ...]."""
        return [{"department": g.department, "role": g.role} for g in self.of(citizen_id)]

    def has(self, citizen_id: str, role: str) -> bool:
        return any(g.role == role for g in self.of(citizen_id))

    def grant(
        self,
        citizen_id: str,
        pseudonym: str,
        department: str,
        role: str,
        *,
        by: str,
        granter: str | None = None,
    ) -> None:
        """Give a citizen a role. `granter` is the administrator's own account id (None for
        the operator at the command line, who bootstraps the first administrator).

        No administrator grants a role to themself: one stolen administrator session must not
        be enough to open locker documents on a legal basis or to sign as an officer, and every
        role held by an administrator is then one another administrator chose to give. Nor
        does an administrator grant a `TWO_PERSON` role alone: they propose it instead.
        """
        if granter is not None and granter == citizen_id:
            raise RoleError(
                "an administrator cannot grant themself a role: another administrator must",
                code="role.self_grant",
                field="role",
            )
        if role not in ROLES:
            raise RoleError(f"unknown role {role!r}; roles are {', '.join(sorted(ROLES))}")
        if granter is not None and role in TWO_PERSON:
            raise RoleError(
                f"{role} is granted by two administrators: propose it for another's approval",
                code="role.two_person",
                field="role",
                role=role,
            )
        self.insert(citizen_id, department, role, by=by)
        self._record("identity.role.granted", pseudonym, department, role, by)

    def insert(self, citizen_id: str, department: str, role: str, *, by: str) -> None:
        """The role's row, unaudited: for `grant`, and for an approved proposal, which records
        its own entry naming both administrators. Only in a department whose row holds its
        seal."""
        if not is_department(self._db, self._seal, department):
            raise RoleError(f"no such department {department!r}: add it first")
        try:
            with self._db.begin_nested():
                row = {
                    "citizen_id": citizen_id,
                    "department_id": department,
                    "role": role,
                    "granted_at": self._clock(),
                    "granted_by": by,
                }
                self._db.execute(insert(roles).values(self._seal.sealed(roles, row)))
        except IntegrityError:
            raise RoleError(
                "no such department, or the role is held already", code="role.held", field="role"
            ) from None

    def revoke(
        self, citizen_id: str, pseudonym: str, department: str, role: str, *, by: str
    ) -> bool:
        result = self._db.execute(
            delete(roles).where(
                roles.c.citizen_id == citizen_id,
                roles.c.department_id == department,
                roles.c.role == role,
            )
        )
        removed = bool(getattr(result, "rowcount", 0))
        if removed:
            self._record("identity.role.revoked", pseudonym, department, role, by)
        return removed

    def _record(self, action: str, subject: str, department: str, role: str, by: str) -> None:
        self._audit.append(
            AuditEvent(
                actor=by,
                action=action,
                subject=subject,
                resource=f"department:{department}",
                details={"role": role},
            )
        )
