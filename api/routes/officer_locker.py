"""The officer issues documents into citizens' lockers, and revokes them, in the department's
name: sealed by the department's seal exactly as a department system's documents are
(`api.routes.locker.issue_sealed`), and recorded as this officer's act for the department.

The upload arrives as a multipart form; Starlette spools it to disk, and it is encrypted into
the store from there in 1 MiB blocks, so a large file never sits in memory. Its type is the
browser's (or, when the browser says nothing useful, the file name's), and the locker checks
that the content starts the way that type does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from api.deps import RuntimeDep, SessionDep, settle
from api.i18n import Text
from api.refusals import refusal
from api.routes.locker import department_seal, issue_sealed
from api.routes.locker_views import BLOCK
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
from api.signed_in import SignedInDep
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


def _content_type(upload: UploadFile) -> str | None:
    """The locker's name for the file's type, or None if it is not one the locker keeps."""
    declared = (upload.content_type or "").split(";")[0].strip().lower()
    if declared in CONTENT_TYPES:
        return CONTENT_TYPES[declared]
    if declared in ("", "application/octet-stream"):
        name = (upload.filename or "").lower()
        return next((kind for end, kind in ENDINGS.items() if name.endswith(end)), None)
    return None


def _blocks(upload: UploadFile) -> Iterator[bytes]:
    upload.file.seek(0)
    while block := upload.file.read(BLOCK):
        yield block


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


@router.post("/officer/{department}/issue", response_model=None)
def issue(
    department: str,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedInDep,
    doctype: FormText = "",
    cnic: FormText = "",
    doc_id: FormText = "",
    title: FormText = "",
    valid_until: FormText = "",
    file: Annotated[UploadFile | None, File()] = None,
    csrf: FormText = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    desk = desk_for(runtime, session, me, department, ISSUER)
    form = {
        "doctype": doctype,
        "cnic": cnic,
        "doc_id": doc_id.strip(),
        "title": title.strip(),
        "valid_until": valid_until,
    }
    errors: dict[str, Text] = {}
    kinds = {t.code: t for t in _types(desk.department)}
    kind = kinds.get(doctype)
    if kind is None:
        errors["doctype"] = Text(
            "Choose one of the types %(department)s issues.", department=desk.name
        )
    owner = None
    try:
        owner = pseudonym(normalise_cnic(cnic), key=runtime.pseudonym_key)
        if not runtime.provider(session).accounts.exists(owner):
            errors["cnic"] = NO_ACCOUNT
    except InvalidCnic:
        errors["cnic"] = CNIC_FORMAT
    if not _DOC_ID.fullmatch(form["doc_id"]) or holds_cnic(form["doc_id"]):
        errors["doc_id"] = DOC_ID_FORMAT
    if not form["title"] or len(form["title"]) > 200 or holds_cnic(form["title"]):
        errors["title"] = Text("Give a title of 1 to 200 characters, without a CNIC in it.")
    ends: datetime | None = None
    if valid_until.strip():
        last_day = day(valid_until)
        if last_day is None or end_of(last_day) <= runtime.clock():
            errors["valid_until"] = Text("Give a date after today, or leave it empty.")
        else:
            ends = end_of(last_day)
    content_type = None
    limit = runtime.settings.locker_max_bytes
    if file is None or not file.filename:
        errors["file"] = Text("Choose the file to issue.")
    elif (content_type := _content_type(file)) is None:
        errors["file"] = Text("This file type is not accepted: send a PDF, PNG, JPEG, JSON or XML.")
    elif file.size is not None and file.size > limit:
        errors["file"] = Text("The file is too large: at most %(limit)s.", limit=_mib(limit))
    elif file.size == 0:
        errors["file"] = Text("The file is empty.")
    seal = department_seal(runtime, session, desk.department)
    if errors or seal is None or kind is None or owner is None or content_type is None:
        error = _no_seal(desk) if seal is None else Text("Check the fields marked below.")
        return _issue_page(
            request,
            runtime,
            session,
            me,
            desk,
            400 if errors else 409,
            form=form,
            errors=errors,
            error=error,
        )
    assert file is not None  # noqa: S101 (checked above)
    try:
        issue_sealed(
            runtime,
            session,
            kind,
            seal,
            owner=owner,
            doc_id=form["doc_id"],
            title=form["title"],
            valid_until=ends,
            content=_blocks(file),
            content_type=content_type,
            who=as_officer(me, desk.department),
        )
    except DocumentTooLarge as exc:
        settle(session, exc)
        errors["file"] = Text("The file is too large: at most %(limit)s.", limit=_mib(limit))
    except DocumentRefused as exc:
        settle(session, exc)
        said = refusal(exc)
        field = said.beside(ISSUE_FIELDS)
        errors = {field: said.words} if field else {}
        return _issue_page(
            request, runtime, session, me, desk, 422, form=form, errors=errors,
            error=Text("Check the fields marked below.") if field else said.words,
        )  # fmt: skip
    if errors:
        return _issue_page(
            request,
            runtime,
            session,
            me,
            desk,
            422,
            form=form,
            errors=errors,
            error=Text("Check the fields marked below."),
        )
    return see_other(f"/officer/{desk.department}/issue?{urlencode({'issued': form['doc_id']})}")


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
