"""The citizen's account page: where they are signed in, which e-services they allowed, and
their authenticator app.

Every change of a credential here is told to the registered mobile by SMS
(`identity.notices`): a password change (sent by the reset it goes through), a new app key
drawn over an app in use, an app set up, an app removed.
"""

from __future__ import annotations

import base64
from typing import Annotated

import qrcode
from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse
from qrcode.image.svg import SvgPathImage

from api.backchannel import deliver_after, end_sessions
from api.deps import RuntimeDep, SessionDep, settle
from api.i18n import Text, too_many_attempts
from api.routes.signin import SCOPE_TEXT, password_login, set_device_cookie
from api.runtime import Runtime
from api.signed_in import SignedIn, SignedInDep, SubstantialDep, menu
from api.web import check_csrf, render, signed_out
from audit import AuditEvent
from identity.errors import (
    BreachCorpusUnavailable,
    InvalidCredentials,
    TooManyAttempts,
    WeakPassword,
)
from identity.notices import APP_ADDED, APP_REMOVED, APP_REPLACED
from identity.reconciled import CONSENT_REVOKED

router = APIRouter(tags=["account pages"], include_in_schema=False)
CsrfForm = Annotated[str, Form()]
CHANGED = Text("Your password is changed. Your other sign-ins have ended.")


def _audit(runtime: RuntimeDep, session: SessionDep, me: SignedIn, action: str, **kw: str) -> None:
    runtime.audit_log(session).append(
        AuditEvent(
            actor=f"citizen:{me.account.pseudonym}",
            action=action,
            subject=me.account.pseudonym,
            **kw,  # type: ignore[arg-type]
        )
    )


@router.get("/account", response_model=None)
def account_page(
    request: Request, runtime: RuntimeDep, session: SessionDep, me: SignedInDep, done: str = ""
) -> Response:
    provider = me.provider
    sessions = [
        {
            "sid": s.sid,
            "created_at": s.created_at,
            "user_agent": s.user_agent or "unknown device",
            "current": s.id == me.sso.id,
        }
        for s in provider.sessions.active_for(me.account.id)
    ]
    grants = []
    for grant in provider.grants.for_citizen(me.account.id):
        client = provider.clients.get(grant.client_id)
        grants.append(
            {
                "client_id": grant.client_id,
                "name": client.name if client else grant.client_id,
                "scopes": [SCOPE_TEXT[s] for s in sorted(grant.scopes) if s in SCOPE_TEXT],
            }
        )
    return render(
        request,
        runtime,
        "account.html",
        menu=menu(runtime, session, me),
        name=me.account.profile.full_name,
        sessions=sessions,
        grants=grants,
        authenticator=runtime.second_factor(session).apps.enabled(me.account.id),
        notice=CHANGED if done == "password" else None,
    )


@router.post("/account/sessions/end", response_model=None)
def end_session(
    request: Request,
    runtime: RuntimeDep,
    me: SignedInDep,
    sid: Annotated[str, Form()],
    csrf: CsrfForm = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    target = me.provider.sessions.by_sid(sid)
    notices = []
    if target is not None and target.citizen_id == me.account.id:
        ended = me.provider.sessions.end(target.id, "logout")
        notices = end_sessions(runtime, me.provider, [ended] if ended else [], "logout")
    return deliver_after(RedirectResponse("/account", status_code=303), runtime, notices)


@router.post("/account/sessions/end-all", response_model=None)
def end_all(
    request: Request, runtime: RuntimeDep, me: SignedInDep, csrf: CsrfForm = ""
) -> Response:
    check_csrf(request, runtime, csrf)
    ended = me.provider.sessions.end_all(me.account.id, "signed_out_everywhere")
    notices = end_sessions(runtime, me.provider, ended, "signed_out_everywhere")
    response = signed_out(RedirectResponse("/login", status_code=303), runtime)
    return deliver_after(response, runtime, notices)


@router.post("/account/grants/revoke", response_model=None)
def revoke_grant(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedInDep,
    client_id: Annotated[str, Form()],
    csrf: CsrfForm = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    if me.provider.grants.revoke(me.account.id, client_id):
        _audit(runtime, session, me, CONSENT_REVOKED, resource=f"client:{client_id}")
    return RedirectResponse("/account", status_code=303)


@router.get("/account/password", response_model=None)
def password_page(request: Request, runtime: RuntimeDep, me: SignedInDep) -> Response:
    return render(request, runtime, "account_password.html", errors={})


@router.post("/account/password", response_model=None)
def change_password(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedInDep,
    current: Annotated[str, Form()],
    password: Annotated[str, Form()],
    confirm: Annotated[str, Form()],
    csrf: CsrfForm = "",
) -> Response:
    """The current password first, checked as a login is (throttled, counted towards the
    lockout), so a borrowed, signed-in browser cannot change it; then the new one, held to
    the policy. Every other session ends: whoever had the old password is signed out."""
    check_csrf(request, runtime, csrf)
    if password != confirm:
        return _password_refused(
            request, runtime, {"confirm": Text("The two new passwords differ.")}
        )
    try:
        checked = password_login(request, runtime, me.account.profile.cnic, current)
    except InvalidCredentials as exc:
        if exc.locked_citizen is not None:
            # Too many wrong guesses from this signed-in browser: it is locked out (its device
            # cookie, or the account for unknown browsers), and its session ends. The
            # citizen's other sessions were not the ones guessing, and stay.
            gone = me.provider.sessions.end(me.sso.id, "locked")
            response = signed_out(RedirectResponse("/login", status_code=303), runtime)
            return deliver_after(
                response,
                runtime,
                end_sessions(runtime, me.provider, [gone] if gone else [], "locked"),
            )
        wrong = Text("That is not your current password.")
        return _password_refused(request, runtime, {"current": wrong})
    except TooManyAttempts as exc:
        return _password_refused(request, runtime, {"current": too_many_attempts(exc.retry_after)})
    enrolment = runtime.enrolment(session)
    ticket = enrolment.expired_password_ticket(me.account.id, me.account.pseudonym)
    try:
        enrolment.complete_reset(ticket, password)
    except WeakPassword as exc:
        settle(session, exc)
        return _password_refused(request, runtime, {}, exc.failures)
    except BreachCorpusUnavailable as exc:
        settle(session, exc)
        return _password_refused(request, runtime, {}, [str(exc)], status_code=503)
    ended = me.provider.sessions.end_all(me.account.id, "password_changed", keep=me.sso.id)
    notices = end_sessions(runtime, me.provider, ended, "password_changed")
    done = RedirectResponse("/account?done=password", status_code=303)
    set_device_cookie(done, runtime, checked)
    return deliver_after(done, runtime, notices)


def _password_refused(
    request: Request,
    runtime: Runtime,
    errors: dict[str, Text],
    failures: list[str] | None = None,
    status_code: int = 422,
) -> Response:
    return render(
        request, runtime, "account_password.html", status_code=status_code, errors=errors,
        failures=failures or [],
    )  # fmt: skip


def _qr_data_uri(text: str) -> str:
    """The QR code as an inline SVG: drawn here, so the page loads nothing from elsewhere."""
    image = qrcode.make(text, image_factory=SvgPathImage, box_size=10)
    return "data:image/svg+xml;base64," + base64.b64encode(image.to_string()).decode()


@router.get("/account/authenticator", response_model=None)
def authenticator_page(
    request: Request, runtime: RuntimeDep, session: SessionDep, me: SubstantialDep
) -> Response:
    """What setting up an app means, and a button that does it. Adding, replacing or removing
    the second factor needs the second factor of this session (an SMS code to the number
    NADRA holds, or the current app): with a password alone, whoever had stolen it could put
    their own app in and sign in as `substantial` from then on."""
    enabled = runtime.second_factor(session).apps.enabled(me.account.id)
    return render(request, runtime, "authenticator.html", start=True, enabled=enabled)


@router.post("/account/authenticator/begin", response_model=None)
def authenticator_begin(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SubstantialDep,
    csrf: CsrfForm = "",
) -> Response:
    """A new key: a POST with the form's token, so that no link elsewhere can replace the app."""
    check_csrf(request, runtime, csrf)
    factor = runtime.second_factor(session)
    replacing = factor.apps.enabled(me.account.id)
    secret, uri = factor.apps.begin(me.account.id, me.account.profile.full_name)
    if replacing:  # the app in use stops working now, whether or not the new one is set up
        _audit(runtime, session, me, "identity.second_factor.replaced")
        factor.notices.send(me.account.mobile, me.account.pseudonym, APP_REPLACED)
    return render(
        request, runtime, "authenticator.html", secret=secret, qr=_qr_data_uri(uri), codes=None
    )


@router.post("/account/authenticator", response_model=None)
def authenticator_confirm(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SubstantialDep,
    code: Annotated[str, Form()],
    csrf: CsrfForm = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    factor = runtime.second_factor(session)
    codes = factor.apps.confirm(me.account.id, code)
    if codes is None:
        session.rollback()
        return render(
            request,
            runtime,
            "message.html",
            status_code=400,
            heading=Text("That code is not right"),
            message=Text("Set the app up again and enter the code it shows."),
            link="/account/authenticator",
            link_text=Text("Try again"),
        )
    _audit(runtime, session, me, "identity.second_factor.enabled")
    factor.notices.send(me.account.mobile, me.account.pseudonym, APP_ADDED)
    return render(request, runtime, "authenticator.html", codes=codes)


@router.post("/account/authenticator/disable", response_model=None)
def authenticator_disable(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SubstantialDep,
    csrf: CsrfForm = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    factor = runtime.second_factor(session)
    had_one = factor.apps.enabled(me.account.id)
    factor.apps.disable(me.account.id)
    _audit(runtime, session, me, "identity.second_factor.disabled")
    if had_one:
        factor.notices.send(me.account.mobile, me.account.pseudonym, APP_REMOVED)
    return RedirectResponse("/account", status_code=303)
