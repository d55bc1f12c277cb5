"""The citizen's locker pages: `/documents` (what is in my locker, and an upload form),
`/documents/{id}` (its facts, preview, download, share links, delete) and, in
`locker_nominee_pages`, `/nominees`.

They do what the JSON routes under /locker do, with the session cookie instead of a bearer
token, through the same functions (`api.routes.locker_views`): a read is recorded in the
access log on the same footing, an upload is sniffed and size-checked by the locker itself.

An upload is a plain multipart form, so it works without scripts. It is read as it arrives
(`api.form_stream`): the title, type and CSRF token come first and are checked, then the file's
bytes go straight to the locker, encrypted and stored as they arrive, so no upload is ever
written to disk in plaintext, nor sits whole in memory. With
scripts on, /static/upload.js sends the same form by XMLHttpRequest to show its progress:
that page alone may run a script of this service and talk back to it (SCRIPTED_CSP).
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from api.deps import RuntimeDep, SessionDep
from api.form_stream import BrokenForm, FilePart, FormStream
from api.i18n import Text
from api.routes import locker_nominee_pages
from api.routes.locker import DownloadKind
from api.routes.locker_page_parts import departments, shown, size_text
from api.routes.locker_views import (
    document_response,
    document_view,
    open_readable,
    owner_accessor,
    share_document,
    share_view,
    sharing,
    upload_own,
)
from api.runtime import Runtime
from api.signed_in import SignedIn, SignedInDep, menu, signed_in
from api.web import SCRIPTED_CSP, check_csrf, render
from audit import holds_cnic
from locker.doctypes import DOCUMENT_TYPES, SELF
from locker.documents import (
    CONTENT_TYPES,
    DocumentRefused,
    DocumentTooLarge,
    UnknownDocument,
)
from locker.sharing import ShareRefused, ShareUnusable

router = APIRouter(tags=["locker pages"], include_in_schema=False)
router.include_router(locker_nominee_pages.router)

CsrfForm = Annotated[str, Form()]
# What a multipart form adds around the file (boundaries, part headers, the other fields): a
# body declared larger than the limit by more than this is refused before it is read.
FORM_OVERHEAD = 64 * 1024
TITLE_MAX = 200
HOURS_MAX = 720
USES_MAX = 1000

# What a browser may call a file the locker takes, and what its name may end in.
_ALIASES = {"text/xml": "application/xml", "image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg"}
_SUFFIXES = {
    ".pdf": "application/pdf",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".json": "application/json",
    ".xml": "application/xml",
}
ACCEPT = ",".join([*_SUFFIXES, *sorted(CONTENT_TYPES)])

# After a redirect, the page says what was done: only these words, never any text from the URL.
DONE = {
    "uploaded": Text("Your document is uploaded and stored encrypted."),
    "deleted": Text("The document is deleted."),
    "unshared": Text("The link is revoked: it no longer opens the document."),
}

NOT_ALLOWED = Text("Upload a PDF, PNG, JPEG, JSON or XML file.")
NOT_WHAT_IT_SAYS = Text(
    "This file's content is not a PDF, PNG, JPEG, JSON or XML document as its name says."
)
SOME_WRONG = Text("Some details need correcting: see below.")
EMPTY = Text("That file is empty. Choose the file again.")
BROKEN = Text("The file did not arrive whole. Choose it and send the form again.")


def not_found(request: Request, runtime: Runtime, session: Session, me: SignedIn) -> Response:
    """The one answer for a document that is not this citizen's, or is no more: 404."""
    return render(
        request, runtime, "message.html", status_code=404, menu=menu(runtime, session, me),
        heading=Text("No such document"),
        message=Text("There is no document at this address in a locker you may read."),
        link="/documents", link_text=Text("Your documents"),
    )  # fmt: skip


# -- the list and the upload form ---------------------------------------------------------------


def _documents_page(
    request: Request,
    runtime: Runtime,
    session: Session,
    me: SignedIn,
    status_code: int = 200,
    **context: Any,
) -> Response:
    names = departments(runtime, session)
    found = runtime.locker(session).list(me.account.pseudonym)
    context.setdefault("errors", {})
    context.setdefault("form", {"doctype": "other"})
    limit = runtime.settings.locker_max_bytes
    response = render(
        request, runtime, "locker_documents.html", status_code=status_code,
        menu=menu(runtime, session, me),
        documents=[shown(runtime, session, d, names) for d in found],
        types=sorted(DOCUMENT_TYPES.values(), key=lambda t: (t.department != SELF, t.name)),
        accept=ACCEPT, max_bytes=limit, max_text=size_text(limit),
        too_large=Text("That file is too large: a document may be at most %(size)s.",
                       size=size_text(limit)),
        **context,
    )  # fmt: skip
    # /static/upload.js sends the form back by XMLHttpRequest to show its progress.
    response.headers["Content-Security-Policy"] = SCRIPTED_CSP
    return response


@router.get("/documents", response_model=None)
def documents_page(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedInDep,
    done: str = "",
) -> Response:
    return _documents_page(request, runtime, session, me, notice=DONE.get(done))


def _signed_in_first(runtime: Runtime, request: Request) -> None:
    """Sign-in is checked before a byte of the upload is read (NotSignedIn: off to /login)."""
    with runtime.transaction() as session:
        signed_in(request, runtime, session)


def _content_type(upload: FilePart) -> str | None:
    """The locker's name for the file's type: what the browser said, else its name's ending."""
    said = _ALIASES.get(upload.content_type, upload.content_type)
    if said in CONTENT_TYPES:
        return said
    return _SUFFIXES.get(PurePath(upload.filename).suffix.lower())


def _checked_upload(
    fields: dict[str, str], upload: FilePart | None
) -> tuple[dict[str, Text], str | None]:
    """What is wrong with the form, field by field, and the file's type as the locker names it.
    The file's size is the locker's to judge, as it streams in (too large, or empty)."""
    errors: dict[str, Text] = {}
    title = fields["title"]
    if not title:
        errors["title"] = Text("Give the document a title.")
    elif len(title) > TITLE_MAX:
        errors["title"] = Text("Keep the title to 200 characters or fewer.")
    elif holds_cnic(title):
        errors["title"] = Text("Leave CNIC numbers out of the title.")
    if fields["doctype"] not in DOCUMENT_TYPES:
        errors["doctype"] = Text("Choose one of the listed types.")
    if upload is None or upload.name != "file" or not upload.filename:
        errors["file"] = Text("Choose a file to upload.")
        return errors, None
    content_type = _content_type(upload)
    if content_type is None:
        errors["file"] = NOT_ALLOWED
    return errors, content_type


def _too_large(runtime: Runtime) -> Text:
    return Text("That file is too large: a document may be at most %(size)s.",
                size=size_text(runtime.settings.locker_max_bytes))  # fmt: skip


def _upload(
    runtime: Runtime,
    request: Request,
    fields: dict[str, str],
    upload: FilePart | None,
    form: FormStream,
) -> Response:
    """Check the fields, then store the file as it arrives (`form.content`): the locker
    encrypts it as it reads it, and records it only once the whole form has arrived."""
    too_large = _too_large(runtime)
    with runtime.transaction() as session:
        me = signed_in(request, runtime, session)
        errors, content_type = _checked_upload(fields, upload)

        def again(status: int) -> Response:
            session.rollback()
            return _documents_page(request, runtime, session, me, status, errors=errors,
                                   form=fields, error=SOME_WRONG)  # fmt: skip

        if errors or content_type is None:
            return again(400)
        try:
            created = upload_own(
                runtime, session, me.account.pseudonym, doctype=fields["doctype"],
                title=fields["title"], content=form.content(), content_type=content_type,
            )  # fmt: skip
        except DocumentTooLarge:
            errors["file"] = too_large
            return again(413)
        except BrokenForm:
            errors["file"] = BROKEN
            return again(400)
        except DocumentRefused as exc:  # the title and type were checked: the content is wrong
            empty = exc.code == "document.empty"
            errors["file"] = EMPTY if empty else NOT_WHAT_IT_SAYS
            return again(400 if empty else 422)
    return RedirectResponse(f"/documents/{created.id}?done=uploaded", status_code=303)


def _refused_whole(runtime: Runtime, request: Request, status: int, problem: Text) -> Response:
    """The form again with `problem` beside the file: a body too large, or one that does not
    parse as a form."""
    with runtime.transaction() as session:
        me = signed_in(request, runtime, session)
        return _documents_page(request, runtime, session, me, status, error=SOME_WRONG,
                               errors={"file": problem})  # fmt: skip


@router.post("/documents", response_model=None)
async def upload(request: Request, runtime: RuntimeDep) -> Response:
    await run_in_threadpool(_signed_in_first, runtime, request)
    most = runtime.settings.locker_max_bytes + FORM_OVERHEAD
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > most:
        return await run_in_threadpool(_refused_whole, runtime, request, 413, _too_large(runtime))
    try:
        form = FormStream(request, max_fields=8)
        fields, chosen = await form.head()
    except BrokenForm:
        return await run_in_threadpool(_refused_whole, runtime, request, 400, BROKEN)
    check_csrf(request, runtime, fields.get("csrf"))
    shown = {name: fields.get(name, "").strip() for name in ("title", "doctype")}
    answer = await run_in_threadpool(_upload, runtime, request, shown, chosen, form)
    if answer.status_code >= 400:  # what the browser still sends, read so it hears the page
        await form.drain(most)
    return answer


# -- one document -------------------------------------------------------------------------------


def _document_page(
    request: Request,
    runtime: Runtime,
    session: Session,
    me: SignedIn,
    document_id: str,
    status_code: int = 200,
    **context: Any,
) -> Response:
    try:
        found = runtime.locker(session).get(document_id, owner=me.account.pseudonym)
    except UnknownDocument:
        return not_found(request, runtime, session, me)
    now = runtime.clock()
    links = [
        share_view(s, now)
        for s in sharing(runtime, session).shares(me.account.pseudonym)
        if s.document_id == found.id
    ]
    context.setdefault("errors", {})
    context.setdefault("form", {"hours": "24", "max_uses": ""})
    return render(
        request, runtime, "locker_document.html", status_code=status_code,
        menu=menu(runtime, session, me),
        document=shown(runtime, session, found, departments(runtime, session)),
        links=links, hours_max=HOURS_MAX, uses_max=USES_MAX, **context,
    )  # fmt: skip


@router.get("/documents/{document_id}", response_model=None)
def document_page(
    document_id: str,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedInDep,
    done: str = "",
) -> Response:
    return _document_page(request, runtime, session, me, document_id, notice=DONE.get(done))


@router.get("/documents/{document_id}/content", response_model=None)
def document_content(
    document_id: str,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedInDep,
    disposition: DownloadKind = "inline",
) -> Response:
    """Preview or download, streamed through the service and recorded as read by the owner,
    as GET /locker/documents/{id}/content records it. The read's entry commits when this
    returns, before the first byte leaves (SessionDep's scope); the store is read as the
    body streams, with no database session held."""
    try:
        found, plaintext = open_readable(runtime, session, me.account.pseudonym, document_id)
    except UnknownDocument:
        return not_found(request, runtime, session, me)
    return document_response(found, plaintext, disposition)


def _whole_number(text: str, low: int, high: int) -> int | None:
    text = text.strip()
    if not text.isdigit() or not low <= int(text) <= high:
        return None
    return int(text)


@router.post("/documents/{document_id}/shares", response_model=None)
def make_share(
    document_id: str,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedInDep,
    hours: Annotated[str, Form()] = "",
    max_uses: Annotated[str, Form()] = "",
    csrf: CsrfForm = "",
) -> Response:
    """A new share link, shown on the page this answers with and never again (only its hash is
    kept), so this POST is not redirected: its URL must not travel in a Location header."""
    check_csrf(request, runtime, csrf)
    form = {"hours": hours, "max_uses": max_uses}
    errors: dict[str, Text] = {}
    life = _whole_number(hours, 1, HOURS_MAX)
    if life is None:
        errors["hours"] = Text("Give a whole number of hours from 1 to 720 (30 days).")
    uses = _whole_number(max_uses, 1, USES_MAX) if max_uses.strip() else None
    if max_uses.strip() and uses is None:
        errors["max_uses"] = Text("Leave this empty, or give a whole number from 1 to 1000.")
    if errors or life is None:
        return _document_page(request, runtime, session, me, document_id, 400, errors=errors,
                              form=form, error=SOME_WRONG)  # fmt: skip
    try:
        made = share_document(
            runtime, session, me.account.pseudonym, document_id, hours=life, max_uses=uses
        )
    except UnknownDocument:
        return not_found(request, runtime, session, me)
    except ShareRefused:
        session.rollback()
        return _document_page(request, runtime, session, me, document_id, 422, form=form,
                              error=Text("Only an active document can be shared."))  # fmt: skip
    return _document_page(request, runtime, session, me, document_id, made=made)


@router.post("/documents/{document_id}/shares/{share_id}/revoke", response_model=None)
def revoke_share(
    document_id: str,
    share_id: str,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedInDep,
    csrf: CsrfForm = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    owner = me.account.pseudonym
    try:
        sharing(runtime, session).revoke(share_id, owner=owner, who=owner_accessor(owner))
    except ShareUnusable:
        return not_found(request, runtime, session, me)
    return RedirectResponse(f"/documents/{document_id}?done=unshared", status_code=303)


@router.get("/documents/{document_id}/delete", response_model=None)
def confirm_delete(
    document_id: str,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedInDep,
) -> Response:
    try:
        found = runtime.locker(session).get(document_id, owner=me.account.pseudonym)
    except UnknownDocument:
        return not_found(request, runtime, session, me)
    return render(
        request, runtime, "locker_delete.html", status_code=200 if found.uploaded else 409,
        menu=menu(runtime, session, me), document=document_view(found, runtime.clock()),
    )  # fmt: skip


@router.post("/documents/{document_id}/delete", response_model=None)
def delete_document(
    document_id: str,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedInDep,
    csrf: CsrfForm = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    owner = me.account.pseudonym
    try:
        runtime.locker(session).delete(document_id, owner=owner, who=owner_accessor(owner))
    except UnknownDocument:
        return not_found(request, runtime, session, me)
    except DocumentRefused:  # issued: it belongs to the department's record
        session.rollback()
        return confirm_delete(document_id, request, runtime, session, me)
    return RedirectResponse("/documents?done=deleted", status_code=303)
