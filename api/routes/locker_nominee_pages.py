"""Nominees and guardians, the citizen's pages: `/nominees` (name one by CNIC, remove them,
and the lockers I was named for) and `/nominees/{owner}/documents` (such a locker, read-only).

Naming someone needs them to have an account, and the page says so plainly when they have
none, exactly as PUT /locker/nominees does (the same function answers both): to a signed-in
citizen, and with nothing more (no name, no hint) than the JSON API gives. A nominee reads
through the sharing relation, checked on every request and recorded as a read on the footing
"nominee"; a locker they are not named for is simply not there (404).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from api.deps import RuntimeDep, SessionDep
from api.i18n import Text
from api.routes.locker import DownloadKind
from api.routes.locker_page_parts import departments, shown
from api.routes.locker_views import (
    document_response,
    nominate,
    open_readable,
    owner_accessor,
    people,
    readable_documents,
    sharing,
)
from api.runtime import Runtime
from api.signed_in import SignedIn, SignedInDep, menu
from api.web import check_csrf, render
from identity.errors import InvalidCnic
from locker.documents import UnknownDocument
from locker.sharing import RELATIONS, ShareRefused, ShareUnusable

router = APIRouter(tags=["locker pages"], include_in_schema=False)

RELATION_ORDER = sorted(RELATIONS, key=lambda r: r != "nominee")  # nominee first, the usual
DONE = {
    "named": Text("Done: they can now read your documents, but never change them."),
    "removed": Text("Removed: they can no longer read your documents."),
}


def _locker_missing(request: Request, runtime: Runtime, session: Session, me: SignedIn) -> Response:
    return render(
        request, runtime, "message.html", status_code=404, menu=menu(runtime, session, me),
        heading=Text("No such locker"),
        message=Text("You are not named as nominee or guardian for a locker at this address."),
        link="/nominees", link_text=Text("Nominees and guardians"),
    )  # fmt: skip


def _nominees_page(
    request: Request,
    runtime: Runtime,
    session: Session,
    me: SignedIn,
    status_code: int = 200,
    **context: Any,
) -> Response:
    context.setdefault("errors", {})
    context.setdefault("form", {"cnic": "", "relation": "nominee"})
    return render(
        request, runtime, "locker_nominees.html", status_code=status_code,
        menu=menu(runtime, session, me), relations=RELATION_ORDER,
        **people(runtime, session, me.account.pseudonym), **context,
    )  # fmt: skip


@router.get("/nominees", response_model=None)
def nominees_page(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedInDep,
    done: str = "",
) -> Response:
    return _nominees_page(request, runtime, session, me, notice=DONE.get(done))


@router.post("/nominees", response_model=None)
def name_nominee(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedInDep,
    cnic: Annotated[str, Form()] = "",
    relation: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    form = {"cnic": cnic.strip()[:32], "relation": relation}
    errors: dict[str, Text] = {}
    if relation not in RELATIONS:
        errors["relation"] = Text("Choose nominee or guardian.")
    named: dict[str, Any] | None = None
    if not errors:
        try:
            named = nominate(runtime, session, me.account.pseudonym, form["cnic"], relation)
            if named is None:
                errors["cnic"] = Text(
                    "That CNIC has no Shanakht account. Ask them to create one, then name "
                    "them here."
                )
        except InvalidCnic:
            errors["cnic"] = Text("Type the 13 digits of their CNIC, as 12345-1234567-1.")
        except ShareRefused:  # their own CNIC
            errors["cnic"] = Text("You cannot name yourself.")
    if errors:
        session.rollback()
        return _nominees_page(request, runtime, session, me, 422, errors=errors, form=form,
                              error=Text("Some details need correcting: see below."))  # fmt: skip
    return RedirectResponse("/nominees?done=named", status_code=303)


@router.post("/nominees/{nominee_id}/remove", response_model=None)
def remove_nominee(
    nominee_id: str,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedInDep,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    owner = me.account.pseudonym
    try:
        sharing(runtime, session).remove_nominee(owner, nominee_id, who=owner_accessor(owner))
    except ShareUnusable:
        return _nominees_page(request, runtime, session, me, 404,
                              error=Text("That person is not among your nominees."))  # fmt: skip
    return RedirectResponse("/nominees?done=removed", status_code=303)


@router.get("/nominees/{owner_id}/documents", response_model=None)
def their_documents(
    owner_id: str,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedInDep,
) -> Response:
    found = readable_documents(runtime, session, me.account.pseudonym, owner_id)
    if found is None:
        return _locker_missing(request, runtime, session, me)
    names = departments(runtime, session)
    owner = runtime.provider(session).accounts.by_pseudonym(owner_id)
    relation = sharing(runtime, session).relation(owner_id, me.account.pseudonym)
    return render(
        request, runtime, "locker_theirs.html", menu=menu(runtime, session, me),
        owner_id=owner_id, owner_name=owner.profile.full_name if owner else "",
        relation=relation, documents=[shown(runtime, session, d, names) for d in found],
    )  # fmt: skip


@router.get("/nominees/{owner_id}/documents/{document_id}/content", response_model=None)
def their_content(
    owner_id: str,
    document_id: str,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedInDep,
    disposition: DownloadKind = "inline",
) -> Response:
    """Read-only: preview or download, recorded as read by the nominee (as the JSON route)."""
    try:
        found, plaintext = open_readable(
            runtime, session, me.account.pseudonym, document_id, owner=owner_id
        )
    except UnknownDocument:
        return _locker_missing(request, runtime, session, me)
    return document_response(found, plaintext, disposition)
