"""The citizen's requests page: what departments asked for, and the consents given.

The pages' counterpart of the citizen's part of `api.routes.exchange`: the same domain calls
through the same shared functions (`requests_of`, `approve_for`, ...), so a request reads the
same and is audited the same whether it is decided with a token or on this page. What a
request shows is exactly what its consent will say: who asks, the purpose, the document types,
how long the data may be kept, the window and the number of fetches.

Approving releases documents, so it needs a second factor: the approval page is behind
`SubstantialDep`, which sends a password-only session through the SMS (or app) code and back.
Denying and revoking cannot be undone, so each has a page that asks first. Every change is a
POST with the CSRF token, answered by a redirect back to the list (303) with what was done.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from api import denials
from api.deps import RuntimeDep, SessionDep, settle
from api.i18n import Text, translate
from api.local_time import moment
from api.refusals import refusal
from api.routes.exchange import (
    Id,
    approve_for,
    change_for,
    consents_of,
    deny_for,
    inbox_of,
    requests_of,
)
from api.runtime import Runtime
from api.signed_in import SignedIn, SignedInDep, SubstantialDep, menu
from api.web import check_csrf, language, render
from locker.doctypes import document_type
from locker.exchange import ExchangeError, RequestClosed, UnknownConsent, UnknownRequest
from locker.inbox import LEGAL_ACCESS, REQUEST, Inbox
from locker.release import ReleaseRefused

router = APIRouter(tags=["consent pages"], include_in_schema=False)
CsrfForm = Annotated[str, Form()]

# What was just done, said on the list the browser is sent back to (only these words).
DONE = {
    "approved": Text("You approved the request. The consent below is active."),
    "denied": Text("You denied the request. The department cannot fetch anything for it."),
    "paused": Text("The consent is paused. Fetches stop at once, until you resume it."),
    "resumed": Text("The consent is active again."),
    "revoked": Text("The consent is revoked. Fetches stop at once, for good."),
    "read": Text("The message is marked as read."),
}


# -- drawing -----------------------------------------------------------------------------------


# What the inbox says, by kind, from the message's facts (locker.inbox): the stored sentence is
# the record, in English; these say it in the reader's language.
SAID = {
    REQUEST: Text("%(requester)s asks for your %(documents)s. Open the request to see why, and "
                  "to approve or deny it."),
    LEGAL_ACCESS: Text("Officers of %(department)s were given access to your %(documents)s "
                       "without your consent, on a legal basis: %(reference)s."),
}  # fmt: skip


def _readable(message: dict[str, Any], lang: str) -> dict[str, Any]:
    """An inbox message for the page: its time in PKT, its words in `lang` where its facts
    allow (messages from before facts were kept read as they were written)."""
    said, facts = SAID.get(message["kind"]), dict(message.get("params") or {})
    words = message["message"]
    if said is not None and facts:
        codes = facts.pop("doctypes", [])
        documents = ", ".join(translate(lang, _type_name(code)) for code in codes)
        words = translate(lang, said.message, documents=documents, **facts)
    return {**message, "message": words, "at": moment(message["at"])}


def _type_name(code: str) -> str:
    try:
        return document_type(code).name
    except LookupError:
        return code


def _shown(terms: dict[str, Any]) -> dict[str, Any]:
    """A request's or consent's terms (as the JSON API gives them), with readable times."""
    shown = dict(terms)
    for key in ("valid_from", "valid_until", "created_at", "decided_at", "status_changed_at"):
        if key in shown:
            shown[key] = moment(shown[key])
    return shown


def _claims(artifact: str) -> str:
    """The signed terms inside a consent artifact (a compact JWS), pretty-printed to read. The
    signature is checked by whoever relies on it, with the key at /exchange/consent-keys."""
    try:
        payload = artifact.split(".")[1]
        decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return ""
    return json.dumps(decoded, indent=2, ensure_ascii=False, sort_keys=True)


def _not_found(request: Request, runtime: Runtime, heading: Text) -> Response:
    return render(
        request,
        runtime,
        "message.html",
        status_code=404,
        heading=heading,
        message=Text("There is nothing with that address among your requests and consents."),
        link="/requests",
        link_text=Text("Back to your requests"),
    )


def _refused(
    request: Request,
    runtime: Runtime,
    session: Session,
    exc: Exception,
    *,
    decider: str | None = None,
) -> Response:
    """A domain refusal as a page: 404 for what is not the citizen's, 409 for a change the
    request or consent no longer allows (decided meanwhile, expired, already revoked).

    `decider`: the citizen (by pseudonym) deciding a request. A request they decided already
    is said as such (approved, denied, or meanwhile on another page), never decided a second
    time, and the attempt is audited as the legal-access pages audit theirs (`rule:decided-
    once`, in a transaction of its own once this one is rolled back); an expired one is not
    (nobody decided it).
    """
    settle(session, exc)
    if isinstance(exc, UnknownRequest):
        return _not_found(request, runtime, Text("No such request"))
    if isinstance(exc, UnknownConsent):
        return _not_found(request, runtime, Text("No such consent"))
    if decider is not None:
        denials.refused_on_page(request, runtime, decider, exc, deciding=True)
    said = refusal(exc) if isinstance(exc, RequestClosed) else None
    changed = Text(
        "The request or consent has changed since the page was shown (it may have been "
        "decided, expired or revoked). Look at it again."
    )
    return render(
        request,
        runtime,
        "message.html",
        status_code=409,
        heading=Text("That cannot be done now"),
        message=said.words if said is not None and said.known else changed,
        link="/requests",
        link_text=Text("Back to your requests"),
    )


def _pending(runtime: Runtime, session: Session, me: SignedIn, request_id: str) -> Any:
    found = [
        r for r in requests_of(runtime, session, me.account.pseudonym) if r["id"] == request_id
    ]
    return found[0] if found and found[0]["status"] == "pending" else None


def _consent(runtime: Runtime, session: Session, me: SignedIn, consent_id: str) -> Any:
    found = [
        c for c in consents_of(runtime, session, me.account.pseudonym) if c["id"] == consent_id
    ]
    return found[0] if found else None


def _back(done: str, anchor: str = "") -> Response:
    return RedirectResponse(f"/requests?done={done}{anchor}", status_code=303)


# -- the list ----------------------------------------------------------------------------------


@router.get("/requests", response_model=None)
def requests_page(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedInDep,
    done: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    owner, lang = me.account.pseudonym, language(request, runtime)
    asked = [_shown(r) for r in requests_of(runtime, session, owner)]
    return render(
        request,
        runtime,
        "requests.html",
        menu=menu(runtime, session, me),
        messages=[_readable(m, lang) for m in inbox_of(runtime, session, owner)],
        pending=[r for r in asked if r["status"] == "pending"],
        earlier=[r for r in asked if r["status"] != "pending"],
        consents=[_shown(c) for c in consents_of(runtime, session, owner)],
        substantial=me.substantial,
        notice=DONE.get(done),
    )


@router.post("/requests/messages/{message_id}/read", response_model=None)
def read_message(
    message_id: int,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedInDep,
    csrf: CsrfForm = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    if not Inbox(session, clock=runtime.clock).mark_read(me.account.pseudonym, message_id):
        return _not_found(request, runtime, Text("No such message"))
    return _back("read", "#messages")


# -- consents (before /requests/{request_id}/..., so "consents" is never taken for an id) -------


@router.get("/requests/consents/{consent_id}", response_model=None)
def consent_page(
    consent_id: Id, request: Request, runtime: RuntimeDep, session: SessionDep, me: SignedInDep
) -> Response:
    found = _consent(runtime, session, me, consent_id)
    if found is None:
        return _not_found(request, runtime, Text("No such consent"))
    return render(
        request,
        runtime,
        "requests_consent.html",
        menu=menu(runtime, session, me),
        consent=_shown(found),
        claims=_claims(found["artifact"]),
    )


@router.get("/requests/consents/{consent_id}/artifact", response_model=None)
def consent_artifact(
    consent_id: Id, request: Request, runtime: RuntimeDep, session: SessionDep, me: SignedInDep
) -> Response:
    """The signed consent itself (a compact JWS), to keep or to hand to anyone who checks it."""
    found = _consent(runtime, session, me, consent_id)
    if found is None:
        return _not_found(request, runtime, Text("No such consent"))
    return Response(
        found["artifact"],
        media_type="application/jose",
        headers={
            "Content-Disposition": f'attachment; filename="consent-{consent_id}.jws"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/requests/consents/{consent_id}/revoke", response_model=None)
def revoke_page(
    consent_id: Id, request: Request, runtime: RuntimeDep, session: SessionDep, me: SignedInDep
) -> Response:
    found = _consent(runtime, session, me, consent_id)
    if found is None:
        return _not_found(request, runtime, Text("No such consent"))
    return render(
        request,
        runtime,
        "requests_confirm.html",
        menu=menu(runtime, session, me),
        kind="revoke",
        t=_shown(found),
        action=f"/requests/consents/{consent_id}/revoke",
    )


@router.post("/requests/consents/{consent_id}/{action}", response_model=None)
def change_consent(
    consent_id: Id,
    action: Literal["pause", "resume", "revoke"],
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedInDep,
    csrf: CsrfForm = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    try:
        change_for(runtime, session, consent_id, action, owner=me.account.pseudonym)
    except ExchangeError as exc:
        return _refused(request, runtime, session, exc)
    done = {"pause": "paused", "resume": "resumed", "revoke": "revoked"}[action]
    return _back(done, f"#consent-{consent_id}")


# -- deciding a request ------------------------------------------------------------------------


def _confirm(
    request: Request,
    runtime: Runtime,
    session: Session,
    me: SignedIn,
    request_id: str,
    kind: str,
) -> Response:
    """The page that shows a pending request's terms once more before `kind` (approve, deny)."""
    found = _pending(runtime, session, me, request_id)
    if found is None:
        return _not_found(request, runtime, Text("No such request"))
    return render(
        request,
        runtime,
        "requests_confirm.html",
        menu=menu(runtime, session, me),
        kind=kind,
        t=_shown(found),
        action=f"/requests/{request_id}/{kind}",
    )


@router.get("/requests/{request_id}/approve", response_model=None)
def approve_page(
    request_id: Id,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SubstantialDep,
) -> Response:
    return _confirm(request, runtime, session, me, request_id, "approve")


@router.post("/requests/{request_id}/approve", response_model=None)
def approve(
    request_id: Id,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SubstantialDep,
    csrf: CsrfForm = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    try:
        consent = approve_for(
            runtime, session, request_id, owner=me.account.pseudonym, substantial=me.substantial
        )
    except (ExchangeError, ReleaseRefused) as exc:
        return _refused(request, runtime, session, exc, decider=me.account.pseudonym)
    return _back("approved", f"#consent-{consent['id']}")


@router.get("/requests/{request_id}/deny", response_model=None)
def deny_page(
    request_id: Id, request: Request, runtime: RuntimeDep, session: SessionDep, me: SignedInDep
) -> Response:
    return _confirm(request, runtime, session, me, request_id, "deny")


@router.post("/requests/{request_id}/deny", response_model=None)
def deny(
    request_id: Id,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedInDep,
    csrf: CsrfForm = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    try:
        deny_for(runtime, session, request_id, owner=me.account.pseudonym)
    except ExchangeError as exc:
        return _refused(request, runtime, session, exc, decider=me.account.pseudonym)
    return _back("denied")
