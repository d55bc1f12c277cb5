"""The officer issues documents into citizens' lockers, and revokes them, in the department's
name: sealed by the department's seal exactly as a department system's documents are
(`api.routes.locker.issue_sealed`), and recorded as this officer's act for the department.

The upload arrives as a multipart form, read as it arrives (`api.form_stream`): sign-in and
the officer's role are checked before a byte of it is read, the fields before the file (its
last part) and the CSRF token among them before a byte of the file is taken; then the file goes
straight into the locker, encrypted and stored as it arrives, so it is never written to disk in
plaintext nor held whole in memory. Its type is the browser's (or, when the browser says
nothing useful, the file name's), and the locker checks that the content starts the way that
type does, that it is not empty and not over the limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy.orm import Session

from api.deps import RuntimeDep, SessionDep, settle
from api.form_stream import BrokenForm, FilePart, FormStream
from api.i18n import Text
from api.refusals import refusal
from api.routes.locker import department_seal, issue_sealed
from api.routes.officer_common import (
    CNIC_FORMAT,
    ISSUER,
    NO_ACCOUNT,
    Desk,
    as_officer,
    day,
    desk_for,
    end_of,
    page,
    see_other,
)
from api.runtime import Runtime
from api.signed_in import SignedIn, SignedInDep, signed_in
from api.web import SCRIPTED_CSP, check_csrf
from audit import holds_cnic, pseudonym
from identity.cnic import normalise_cnic
from identity.errors import InvalidCnic
from locker.doctypes import DOCUMENT_TYPES, DocumentType
from locker.documents import DocumentRefused, DocumentTooLarge, UnknownDocument

router = APIRouter(tags=["officer pages"], include_in_schema=False)
FormText = Annotated[str, Form()]

# What a file may be, by the type a browser gives it, or else by its name's ending.
CONTENT_TYPES = {
    "application/pdf": "application/pdf",
    "image/png": "image/png",
    "image/jpeg": "image/jpeg",
    "image/jpg": "image/jpeg",
    "application/json": "application/json",
    "application/xml": "application/xml",
    "text/xml": "application/xml",
}
ENDINGS = {
    ".pdf": "application/pdf",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".json": "application/json",
    ".xml": "application/xml",
}
ACCEPT = ",".join([*ENDINGS, "application/pdf", "image/png", "image/jpeg"])
_DOC_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,63}")
ISSUE_FIELDS = ("doctype", "cnic", "doc_id", "title", "valid_until", "file")
DOC_ID_FORMAT = Text(
    "Use 1 to 64 letters, digits, '.', '_', '/' and '-', starting with a letter or digit."
)


def _types(department: str) -> list[DocumentType]:
    return [t for t in DOCUMENT_TYPES.values() if t.department == department]


# Far more than the fields before the file hold (the numbers, a title of 200 characters):
# a body declared larger than the limit by more than this is refused before it is read.
FORM_OVERHEAD = 64 * 1024
ISSUE_FORM_FIELDS = 8  # csrf and the five fields, and room to spare
BROKEN = Text("The file did not arrive whole. Choose it and send the form again.")


def _content_type(upload: FilePart) -> str | None:
    """The locker's name for the file's type, or None if it is not one the locker keeps."""
    declared = upload.content_type
    if declared in CONTENT_TYPES:
        return CONTENT_TYPES[declared]
    if declared in ("", "application/octet-stream"):
        name = upload.filename.lower()
        return next((kind for end, kind in ENDINGS.items() if name.endswith(end)), None)
    return None


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:.0f} MiB" if size >= 1024 * 1024 else f"{size} bytes"


# -- issue -------------------------------------------------------------------------------------


def _issue_page(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedInDep,
    desk: Desk,
    status_code: int = 200,
    **context: object,
) -> Response:
    response = page(
        request,
        runtime,
        session,
        me,
        "officer_issue.html",
        status_code=status_code,
        desk=desk,
        types=_types(desk.department),
        accept=ACCEPT,
        limit=_mib(runtime.settings.locker_max_bytes),
        sealed=department_seal(runtime, session, desk.department) is not None,
        **context,
    )
    # The upload's progress bar (static/officer.js): this page alone runs a script, its own.
    response.headers["Content-Security-Policy"] = SCRIPTED_CSP
    return response


@router.get("/officer/{department}/issue", response_model=None)
def issue_form(
    department: str,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedInDep,
    issued: str = "",
) -> Response:
    desk = desk_for(runtime, session, me, department, ISSUER)
    notice = None
    if issued:
        found = runtime.locker(session).issued(desk.department, issued)
        if found is not None:
            notice = Text(
                "Issued: %(title)s (number %(number)s). It is in the citizen's locker now, "
                "sealed by %(department)s.",
                title=found.title,
                number=issued,
                department=desk.name,
            )
    return _issue_page(request, runtime, session, me, desk, form={}, errors={}, notice=notice)


def issuer_first(runtime: Runtime, request: Request, department: str) -> None:
    """Sign-in and the issuer's role are checked before a byte of the body is read
    (NotSignedIn: off to sign in; RoleMissing: the 403 page)."""
    with runtime.transaction() as session:
        desk_for(runtime, session, signed_in(request, runtime, session), department, ISSUER)


def _too_large(limit: int) -> Text:
    return Text("The file is too large: at most %(limit)s.", limit=_mib(limit))


@dataclass(frozen=True, slots=True)
class _Checked:
    """The issue form as checked: what is wrong, field by field, and what it names."""

    errors: dict[str, Text]
    kind: DocumentType | None
    owner: str | None
    ends: datetime | None
    content_type: str | None


def _checked(
    runtime: Runtime, session: Session, desk: Desk, form: dict[str, str], file: FilePart | None
) -> _Checked:
    """Every field but the file's content, which the locker judges as it streams in (its
    start, its size, that it is not empty)."""
    errors: dict[str, Text] = {}
    kind = {t.code: t for t in _types(desk.department)}.get(form["doctype"])
    if kind is None:
        errors["doctype"] = Text(
            "Choose one of the types %(department)s issues.", department=desk.name
        )
    owner = None
    try:
        owner = pseudonym(normalise_cnic(form["cnic"]), key=runtime.pseudonym_key)
        if not runtime.provider(session).accounts.exists(owner):
            errors["cnic"] = NO_ACCOUNT
    except InvalidCnic:
        errors["cnic"] = CNIC_FORMAT
    if not _DOC_ID.fullmatch(form["doc_id"]) or holds_cnic(form["doc_id"]):
        errors["doc_id"] = DOC_ID_FORMAT
    if not form["title"] or len(form["title"]) > 200 or holds_cnic(form["title"]):
        errors["title"] = Text("Give a title of 1 to 200 characters, without a CNIC in it.")
    ends: datetime | None = None
    if form["valid_until"].strip():
        last_day = day(form["valid_until"])
        if last_day is None or end_of(last_day) <= runtime.clock():
            errors["valid_until"] = Text("Give a date after today, or leave it empty.")
        else:
            ends = end_of(last_day)
    content_type = None
    if file is None or file.name != "file" or not file.filename:
        errors["file"] = Text("Choose the file to issue.")
    elif (content_type := _content_type(file)) is None:
        errors["file"] = Text("This file type is not accepted: send a PDF, PNG, JPEG, JSON or XML.")
    return _Checked(errors, kind, owner, ends, content_type)


def _issue(
    runtime: Runtime,
    request: Request,
    department: str,
    fields: dict[str, str],
    file: FilePart | None,
    stream: FormStream,
) -> Response:
    """Check the form, then issue the file as it arrives (`stream.content`): the locker
    encrypts it as it reads it, and records it only once the whole form has arrived."""
    with runtime.transaction() as session:
        me = signed_in(request, runtime, session)
        desk = desk_for(runtime, session, me, department, ISSUER)
        form = {name: fields.get(name, "") for name in ISSUE_FIELDS if name != "file"}
        form["doc_id"], form["title"] = form["doc_id"].strip(), form["title"].strip()
        checked = _checked(runtime, session, desk, form, file)
        errors = checked.errors
        seal = department_seal(runtime, session, desk.department)
        kind, owner, content_type = checked.kind, checked.owner, checked.content_type
        if errors or seal is None or kind is None or owner is None or content_type is None:
            error = _no_seal(desk) if seal is None else Text("Check the fields marked below.")
            return _issue_page(request, runtime, session, me, desk, 400 if errors else 409,
                               form=form, errors=errors, error=error)  # fmt: skip
        try:
            issue_sealed(
                runtime, session, kind, seal, owner=owner, doc_id=form["doc_id"],
                title=form["title"], valid_until=checked.ends, content=stream.content(),
                content_type=content_type, who=as_officer(me, desk.department),
            )  # fmt: skip
        except (DocumentRefused, BrokenForm) as exc:
            settle(session, exc)
            return _refused(request, runtime, session, me, desk, form, exc)
    return see_other(f"/officer/{desk.department}/issue?{urlencode({'issued': form['doc_id']})}")


def _refused(
    request: Request,
    runtime: Runtime,
    session: Session,
    me: SignedIn,
    desk: Desk,
    form: dict[str, str],
    exc: DocumentRefused | BrokenForm,
) -> Response:
    """The form again, saying why the locker refused the file (or why it never arrived
    whole), beside the field it is about."""
    status, errors = 400, {}
    if isinstance(exc, BrokenForm):
        errors["file"] = BROKEN
    elif isinstance(exc, DocumentTooLarge):
        errors["file"] = _too_large(runtime.settings.locker_max_bytes)
    elif exc.code == "document.empty":
        errors["file"] = Text("The file is empty.")
    else:
        said = refusal(exc)
        field = said.beside(ISSUE_FIELDS)
        errors = {field: said.words} if field else {}
        return _issue_page(
            request, runtime, session, me, desk, 422, form=form, errors=errors,
            error=Text("Check the fields marked below.") if field else said.words,
        )  # fmt: skip
    return _issue_page(request, runtime, session, me, desk, status, form=form, errors=errors,
                       error=Text("Check the fields marked below."))  # fmt: skip


def _refused_whole(runtime: Runtime, request: Request, department: str, problem: Text) -> Response:
    """The empty form with `problem` beside the file: a body declared too large, or one that
    does not parse as a form (nothing of it is kept)."""
    with runtime.transaction() as session:
        me = signed_in(request, runtime, session)
        desk = desk_for(runtime, session, me, department, ISSUER)
        return _issue_page(request, runtime, session, me, desk, 400, form={},
                           errors={"file": problem},
                           error=Text("Check the fields marked below."))  # fmt: skip


@router.post("/officer/{department}/issue", response_model=None)
async def issue(department: str, request: Request, runtime: RuntimeDep) -> Response:
    await run_in_threadpool(issuer_first, runtime, request, department)
    limit = runtime.settings.locker_max_bytes
    most = limit + FORM_OVERHEAD
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > most:
        return await run_in_threadpool(
            _refused_whole, runtime, request, department, _too_large(limit)
        )
    try:
        stream = FormStream(request, max_fields=ISSUE_FORM_FIELDS)
        fields, file = await stream.head()
    except BrokenForm:
        return await run_in_threadpool(_refused_whole, runtime, request, department, BROKEN)
    check_csrf(request, runtime, fields.get("csrf"))
    answer = await run_in_threadpool(_issue, runtime, request, department, fields, file, stream)
    if answer.status_code >= 400:  # what the browser still sends, read so it hears the page
        await stream.drain(most)
    return answer


def _no_seal(desk: Desk) -> Text:
    return Text(
        "%(department)s has no seal certificate yet, so nothing can be issued in its name. "
        "Ask the PKI administrator to issue one (shanakht pki issue department-seal "
        "--department %(id)s), then try again.",
        department=desk.name,
        id=desk.department,
    )


# -- revoke ------------------------------------------------------------------------------------


@router.get("/officer/{department}/revoke", response_model=None)
def revoke_form(
    department: str,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedInDep,
    revoked: str = "",
) -> Response:
    desk = desk_for(runtime, session, me, department, ISSUER)
    notice = None
    if revoked:
        found = runtime.locker(session).issued(desk.department, revoked)
        if found is not None and found.status == "revoked":
            notice = Text(
                "Revoked: %(title)s (number %(number)s). The citizen sees it as "
                "revoked, and it is released to no department again.",
                title=found.title,
                number=revoked,
            )
    return page(
        request,
        runtime,
        session,
        me,
        "officer_revoke.html",
        desk=desk,
        form={},
        errors={},
        notice=notice,
    )


@router.post("/officer/{department}/revoke", response_model=None)
def revoke(
    department: str,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedInDep,
    doc_id: FormText = "",
    reason: FormText = "",
    csrf: FormText = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    desk = desk_for(runtime, session, me, department, ISSUER)
    form = {"doc_id": doc_id.strip(), "reason": reason.strip()}
    errors: dict[str, Text] = {}
    locker = runtime.locker(session)
    found = locker.issued(desk.department, form["doc_id"]) if form["doc_id"] else None
    if found is None or found.status == "deleted":
        errors["doc_id"] = Text(
            "%(department)s issued no document with this number.", department=desk.name
        )
    elif found.status == "revoked":
        errors["doc_id"] = Text("This document was revoked already.")
    if not form["reason"] or len(form["reason"]) > 200 or holds_cnic(form["reason"]):
        errors["reason"] = Text("Give the reason in 1 to 200 characters, without a CNIC in it.")
    if not errors:
        try:
            locker.revoke(
                issuer=desk.department,
                issuer_doc_id=form["doc_id"],
                reason=form["reason"],
                who=as_officer(me, desk.department),
            )
        except (DocumentRefused, UnknownDocument) as exc:
            settle(session, exc)
            said = refusal(exc)
            errors[said.beside(form) or "doc_id"] = said.words
    if errors:
        return page(
            request,
            runtime,
            session,
            me,
            "officer_revoke.html",
            status_code=400,
            desk=desk,
            form=form,
            errors=errors,
            error=Text("Check the fields marked below."),
        )
    done = urlencode({"revoked": form["doc_id"]})
    return see_other(f"/officer/{desk.department}/revoke?{done}")
