"""The administrator's pages under /admin: departments, officers and their roles, and (from the
admin_* modules included below) e-service clients, keys and audit checkpoints.

Every act goes through the same domain calls as `shanakht departments|roles ...` and is
audited under the administrator's pseudonym. A CNIC typed here travels only in a POST body and
is never put in a URL, a log line or an audit entry: the officer's page is addressed by the
account's internal id.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from api import denials
from api.administration import find_citizen, names_of
from api.deps import RuntimeDep, SessionDep, settle
from api.i18n import Text
from api.refusals import refusal
from api.routes import admin_audit, admin_clients, admin_keys, admin_proposals
from api.routes.admin_common import (
    ADMIN,
    READER,
    ROLE_TEXT,
    AdminDep,
    CsrfForm,
    FormText,
    actor,
    held_roles,
    page,
    record,
)
from api.signed_in import RoleMissing, SignedInDep
from api.web import check_csrf, render
from identity.errors import InvalidCnic
from identity.roles import ROLES, TWO_PERSON, RoleError

router = APIRouter(tags=["administration pages"], include_in_schema=False)
router.include_router(admin_clients.router)
router.include_router(admin_keys.router)
router.include_router(admin_audit.router)
router.include_router(admin_proposals.router)

MAX_NAME = 120


@router.get("/admin", response_model=None)
def overview(
    request: Request, runtime: RuntimeDep, session: SessionDep, me: SignedInDep
) -> Response:
    """The administration desk: the sections this reader may open, and how many grants wait
    for this administrator's approval."""
    held = held_roles(runtime, session, me)
    if not held & {ADMIN, READER}:
        raise RoleMissing(ADMIN, pseudonym=me.account.pseudonym)
    awaiting = 0
    if ADMIN in held:
        proposals = runtime.provider(session).role_proposals
        awaiting = len(proposals.awaiting(admin=me.account.pseudonym))
    return page(request, runtime, session, me, "admin.html", awaiting=awaiting)


# -- departments -----------------------------------------------------------------------------


def _departments_page(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: AdminDep,
    status_code: int = 200,
    **context: object,
) -> Response:
    listed = runtime.provider(session).roles.departments()
    return page(
        request, runtime, session, me, "admin_departments.html",
        status_code=status_code, departments=listed, **context,
    )  # fmt: skip


@router.get("/admin/departments", response_model=None)
def departments_page(
    request: Request, runtime: RuntimeDep, session: SessionDep, me: AdminDep, added: str = ""
) -> Response:
    known = {d for d, _ in runtime.provider(session).roles.departments()}
    notice = Text("Department %(id)s added.", id=added) if added in known else None
    return _departments_page(request, runtime, session, me, notice=notice, errors={}, form={})


@router.post("/admin/departments", response_model=None)
def add_department(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: AdminDep,
    department_id: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    csrf: CsrfForm = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    department_id, name = department_id.strip(), " ".join(name.split())
    roles = runtime.provider(session).roles
    errors: dict[str, Text] = {}
    if not name:
        errors["name"] = Text("Give the department's full name.")
    elif len(name) > MAX_NAME:
        errors["name"] = Text("Keep the name under %(n)s characters.", n=MAX_NAME)
    if any(existing == department_id for existing, _ in roles.departments()):
        errors["department_id"] = Text("There is a department %(id)s already.", id=department_id)
    if not errors:
        try:
            roles.add_department(department_id, name)
        except RoleError:
            errors["department_id"] = Text(
                "A department id is 2 to 32 lower-case letters, digits and dashes, starting "
                "with a letter, such as sed or health-dept."
            )
    if errors:
        form = {"department_id": department_id, "name": name}
        return _departments_page(
            request, runtime, session, me, status_code=422, errors=errors, form=form
        )
    record(
        runtime, session, me, "identity.department.added",
        resource=f"department:{department_id}", details={"name": name},
    )  # fmt: skip
    return RedirectResponse(f"/admin/departments?added={department_id}", status_code=303)


# -- officers and roles ----------------------------------------------------------------------


@router.get("/admin/officers", response_model=None)
def officers_page(
    request: Request, runtime: RuntimeDep, session: SessionDep, me: AdminDep
) -> Response:
    return page(request, runtime, session, me, "admin_officers.html", errors={}, cnic="")


@router.post("/admin/officers", response_model=None)
def find_officer(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: AdminDep,
    cnic: Annotated[str, Form()] = "",
    csrf: CsrfForm = "",
) -> Response:
    """Find an account by CNIC (a POST, so the CNIC stays out of URLs and access logs)."""
    check_csrf(request, runtime, csrf)
    problem = None
    try:
        found = find_citizen(runtime, session, cnic.strip())
    except InvalidCnic:
        problem = Text("A CNIC is 13 digits, written 35202-1234567-1 or 3520212345671.")
    else:
        if found is None:
            problem = Text(
                "No Shanakht account holds this CNIC. Roles are given to accounts: ask the "
                "person to register first, then find them again."
            )
    if problem is not None:
        return page(
            request, runtime, session, me, "admin_officers.html",
            status_code=422, errors={"cnic": problem}, cnic=cnic,
        )  # fmt: skip
    assert found is not None  # noqa: S101 (problem is set whenever nothing was found)
    return RedirectResponse(f"/admin/officers/{found[0]}", status_code=303)


def _officer_page(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: AdminDep,
    citizen_id: str,
    status_code: int = 200,
    **context: object,
) -> Response:
    provider = runtime.provider(session)
    account = provider.accounts.by_id(citizen_id)
    if account is None:
        return render(
            request, runtime, "message.html", status_code=404,
            heading=Text("No such account"),
            message=Text("There is no account at this address. Find the officer by CNIC."),
            link="/admin/officers", link_text=Text("Find an officer"),
        )  # fmt: skip
    context.setdefault("errors", {})
    context.setdefault("form", {})
    proposed = provider.role_proposals.pending_for(account.pseudonym)
    proposers = names_of(runtime, session, [p.proposer for p in proposed])
    return page(
        request, runtime, session, me, "admin_officer.html", status_code=status_code,
        citizen_id=citizen_id, name=account.profile.full_name,
        grants=provider.roles.of(citizen_id), departments=provider.roles.departments(),
        roles=sorted(ROLES), role_text=ROLE_TEXT, yourself=citizen_id == me.account.id,
        proposed=[(p, proposers.get(p.proposer, "")) for p in proposed],
        two_person=TWO_PERSON, my_pseudonym=me.account.pseudonym, **context,
    )  # fmt: skip


@router.get("/admin/officers/{citizen_id}", response_model=None)
def officer_page(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: AdminDep,
    citizen_id: str,
    done: str = "",
) -> Response:
    notice = {
        "granted": Text("Role granted."),
        "proposed": Text(
            "Grant proposed. Another administrator must approve it within 7 days; until then "
            "the officer does not hold the role."
        ),
        "revoked": Text("Role taken away."),
    }.get(done)
    return _officer_page(request, runtime, session, me, citizen_id, notice=notice)


@router.post("/admin/officers/{citizen_id}/grant", response_model=None)
def grant_role(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: AdminDep,
    citizen_id: str,
    department: FormText = "",
    role: FormText = "",
    csrf: CsrfForm = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    provider = runtime.provider(session)
    account = provider.accounts.by_id(citizen_id)
    if account is None:
        return _officer_page(request, runtime, session, me, citizen_id)  # its 404
    errors: dict[str, Text] = {}
    if department not in {d for d, _ in provider.roles.departments()}:
        errors["department"] = Text("Choose one of the departments in the list.")
    if role not in ROLES:
        errors["role"] = Text("There is no such role. Choose one of the roles in the list.")
    two_person = role in TWO_PERSON
    if not errors:
        try:
            if two_person:  # a second administrator approves it (admin_proposals)
                provider.role_proposals.propose(
                    account.pseudonym, department, role, proposer=me.account.pseudonym
                )
            else:
                provider.roles.grant(
                    citizen_id, account.pseudonym, department, role,
                    by=actor(me), granter=me.account.id,
                )  # fmt: skip
        except RoleError as exc:
            settle(session, exc)
            denials.refused_on_page(request, runtime, me.account.pseudonym, exc)
            errors["role"] = refusal(exc).words
    if errors:
        return _officer_page(
            request, runtime, session, me, citizen_id, status_code=422,
            errors=errors, form={"department": department, "role": role},
        )  # fmt: skip
    done = "proposed" if two_person else "granted"
    return RedirectResponse(f"/admin/officers/{citizen_id}?done={done}", status_code=303)


@router.post("/admin/officers/{citizen_id}/revoke", response_model=None)
def revoke_role(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: AdminDep,
    citizen_id: str,
    department: FormText = "",
    role: FormText = "",
    csrf: CsrfForm = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    provider = runtime.provider(session)
    account = provider.accounts.by_id(citizen_id)
    if account is None:
        return _officer_page(request, runtime, session, me, citizen_id)  # its 404
    if citizen_id == me.account.id and role == ADMIN:
        # Taking one's own administration away could leave the service with no administrator:
        # another administrator must do it.
        return _officer_page(
            request, runtime, session, me, citizen_id, status_code=409,
            error=Text("You cannot take away your own administrator role; ask another "
                       "administrator."),
        )  # fmt: skip
    removed = provider.roles.revoke(citizen_id, account.pseudonym, department, role, by=actor(me))
    if not removed:
        return _officer_page(
            request, runtime, session, me, citizen_id, status_code=409,
            error=Text("That role was not held; nothing was changed."),
        )  # fmt: skip
    return RedirectResponse(f"/admin/officers/{citizen_id}?done=revoked", status_code=303)
