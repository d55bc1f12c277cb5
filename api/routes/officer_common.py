"""What every page of the officer's desk needs: which roles the officer holds in which
department, a 403 page for the rest, and the page drawn with the officer's menu.

An officer is a citizen with roles in departments (`identity.roles`). Each page is for one
department, named in its path, and checks the role there, not anywhere: an officer of one
department never acts in another's name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from api.i18n import Text
from api.local_time import PKT
from api.runtime import Runtime
from api.signed_in import RoleMissing, SignedIn, menu
from api.web import local_path, render
from locker.access import Accessor

ISSUER, LEGAL, SIGNER = "locker.issuer", "locker.legal", "signing.officer"
OFFICER_ROLES = (ISSUER, LEGAL, SIGNER)
# Filing a once-only request asks; it takes nothing without the citizen's consent. Either
# locker role of the department may ask: the issuer (who knows what the department issues
# and needs) and the legal officer (who may already open documents on a legal basis).
REQUESTERS = (ISSUER, LEGAL)
# A department's requests are its own, filed in its name (see `api.routes.exchange`).
DEPARTMENT_REQUESTER = "department:"
_DEPARTMENT = re.compile(r"^[a-z][a-z0-9-]{1,31}$")


@dataclass(frozen=True, slots=True)
class Desk:
    """One department as this officer sees it."""

    department: str
    name: str
    roles: frozenset[str]

    @property
    def requester(self) -> str:
        return DEPARTMENT_REQUESTER + self.department


def roles_by_department(runtime: Runtime, session: Session, me: SignedIn) -> dict[str, set[str]]:
    held: dict[str, set[str]] = {}
    for grant in runtime.provider(session).roles.of(me.account.id):
        if grant.role in OFFICER_ROLES:
            held.setdefault(grant.department, set()).add(grant.role)
    return held


def department_names(runtime: Runtime, session: Session) -> dict[str, str]:
    return dict(runtime.provider(session).roles.departments())


def desk_for(
    runtime: Runtime, session: Session, me: SignedIn, department: str, *any_of: str
) -> Desk:
    """The department, if `me` holds one of `any_of` there; the 403 page otherwise (an unknown
    department is one nobody holds a role in, so it says the same)."""
    held = roles_by_department(runtime, session, me).get(department, set())
    if not _DEPARTMENT.match(department) or not held & set(any_of):
        raise RoleMissing(" / ".join(any_of), pseudonym=me.account.pseudonym)
    name = department_names(runtime, session).get(department, department)
    return Desk(department, name, frozenset(held))


def as_officer(me: SignedIn, department: str) -> Accessor:
    """The officer acting for the department, as locker records name them."""
    officer = me.account.pseudonym
    return Accessor(officer, department, "issuer", official=officer)


def page(
    request: Request,
    runtime: Runtime,
    session: Session,
    me: SignedIn,
    template: str,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    return render(
        request,
        runtime,
        template,
        status_code=status_code,
        menu=menu(runtime, session, me),
        **context,
    )


def see_other(path: str) -> RedirectResponse:
    return RedirectResponse(local_path(path), status_code=303)


def day(text: str) -> date | None:
    """A date as an <input type=date> sends it, or None if it is not one."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None


def end_of(day_: date) -> datetime:
    """The last second of `day_` in Pakistan: a validity that ends on a day includes all of
    that day as the officer and the citizen count it (pages show PKT, api.local_time)."""
    return datetime.combine(day_, time(23, 59, 59), tzinfo=PKT)


def start_of(day_: date) -> datetime:
    return datetime.combine(day_, time(0, 0), tzinfo=PKT)


CNIC_FORMAT = Text("Enter the CNIC as 13 digits, for example 35202-1234567-1.")
NO_ACCOUNT = Text(
    "No Shanakht account has this CNIC. The citizen must register first; check the number."
)


def field_problems(
    exc: ValidationError, problems: Mapping[str, Text], fallback: str
) -> dict[str, Text]:
    """What pydantic refused, as the words beside each field (`fallback`'s when the error names
    no field): the forms validate through the JSON API's own models."""
    found: dict[str, Text] = {}
    for problem in exc.errors():
        field = str(problem["loc"][0]) if problem["loc"] else fallback
        found.setdefault(field, problems.get(field, problems[fallback]))
    return found
