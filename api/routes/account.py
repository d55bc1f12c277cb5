"""The citizen's account page: where they are signed in, and which e-services they allowed."""

from __future__ import annotations

import base64
from typing import Annotated

import qrcode
from fastapi import APIRouter, BackgroundTasks, Form, Request, Response
from fastapi.responses import RedirectResponse
from qrcode.image.svg import SvgPathImage

from api.backchannel import deliver, end_sessions
from api.deps import RuntimeDep, SessionDep
from api.web import SESSION_COOKIE, check_csrf, cookie_name, render
from audit import AuditEvent
from identity.oidc.provider import Provider
from identity.oidc.sessions import SsoSession

router = APIRouter(tags=["account pages"], include_in_schema=False)
CsrfForm = Annotated[str, Form()]


@router.get("/account", response_model=None)
def account_page(request: Request, runtime: RuntimeDep, session: SessionDep) -> Response:
    provider = runtime.provider(session)
    sso = provider.sessions.current(request.cookies.get(cookie_name(runtime, SESSION_COOKIE)))
    account = provider.accounts.by_id(sso.citizen_id) if sso else None
    if sso is None or account is None:
        return RedirectResponse("/login", status_code=303)
    sessions = [
        {
            "sid": s.sid,
            "created_at": s.created_at,
            "user_agent": s.user_agent or "unknown device",
            "current": s.id == sso.id,
        }
        for s in provider.sessions.active_for(account.id)
    ]
    grants = []
    for grant in provider.grants.for_citizen(account.id):
        client = provider.clients.get(grant.client_id)
        grants.append(
            {
                "client_id": grant.client_id,
                "name": client.name if client else grant.client_id,
                "scopes": ", ".join(sorted(grant.scopes)) or "who you are",
            }
        )
    return render(
        request,
        runtime,
        "account.html",
        name=account.profile.full_name,
        sessions=sessions,
        grants=grants,
    )


def _signed_in(
    request: Request, runtime: RuntimeDep, session: SessionDep
) -> tuple[Provider, SsoSession | None]:
    provider = runtime.provider(session)
    return provider, provider.sessions.current(
        request.cookies.get(cookie_name(runtime, SESSION_COOKIE))
    )


@router.post("/account/sessions/end", response_model=None)
def end_session(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    sid: Annotated[str, Form()],
    csrf: CsrfForm = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    provider, sso = _signed_in(request, runtime, session)
    if sso is None:
        return RedirectResponse("/login", status_code=303)
    target = provider.sessions.by_sid(sid)
    notices = []
    if target is not None and target.citizen_id == sso.citizen_id:
        ended = provider.sessions.end(target.id, "logout")
        notices = end_sessions(runtime, provider, [ended] if ended else [], "logout")
    response = RedirectResponse("/account", status_code=303)
    response.background = BackgroundTasks()
    response.background.add_task(deliver, runtime, notices)
    return response


@router.post("/account/sessions/end-all", response_model=None)
def end_all(
    request: Request, runtime: RuntimeDep, session: SessionDep, csrf: CsrfForm = ""
) -> Response:
    check_csrf(request, runtime, csrf)
    provider, sso = _signed_in(request, runtime, session)
    if sso is None:
        return RedirectResponse("/login", status_code=303)
    ended = provider.sessions.end_all(sso.citizen_id, "signed_out_everywhere")
    notices = end_sessions(runtime, provider, ended, "signed_out_everywhere")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(cookie_name(runtime, SESSION_COOKIE), path="/")
    response.background = BackgroundTasks()
    response.background.add_task(deliver, runtime, notices)
    return response


@router.post("/account/grants/revoke", response_model=None)
def revoke_grant(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    client_id: Annotated[str, Form()],
    csrf: CsrfForm = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    provider, sso = _signed_in(request, runtime, session)
    if sso is None:
        return RedirectResponse("/login", status_code=303)
    account = provider.accounts.by_id(sso.citizen_id)
    if provider.grants.revoke(sso.citizen_id, client_id) and account is not None:
        runtime.audit_log(session).append(
            AuditEvent(
                actor=f"citizen:{account.pseudonym}",
                action="identity.consent.revoked",
                subject=account.pseudonym,
                resource=f"client:{client_id}",
            )
        )
    return RedirectResponse("/account", status_code=303)


def _qr_data_uri(text: str) -> str:
    """The QR code as an inline SVG: drawn here, so the page loads nothing from elsewhere."""
    image = qrcode.make(text, image_factory=SvgPathImage, box_size=10)
    return "data:image/svg+xml;base64," + base64.b64encode(image.to_string()).decode()


@router.get("/account/authenticator", response_model=None)
def authenticator_page(request: Request, runtime: RuntimeDep, session: SessionDep) -> Response:
    provider, sso = _signed_in(request, runtime, session)
    account = provider.accounts.by_id(sso.citizen_id) if sso else None
    if sso is None or account is None:
        return RedirectResponse("/login", status_code=303)
    secret, uri = runtime.second_factor(session).apps.begin(account.id, account.profile.full_name)
    return render(
        request, runtime, "authenticator.html", secret=secret, qr=_qr_data_uri(uri), codes=None
    )


@router.post("/account/authenticator", response_model=None)
def authenticator_confirm(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    code: Annotated[str, Form()],
    csrf: CsrfForm = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    provider, sso = _signed_in(request, runtime, session)
    account = provider.accounts.by_id(sso.citizen_id) if sso else None
    if sso is None or account is None:
        return RedirectResponse("/login", status_code=303)
    codes = runtime.second_factor(session).apps.confirm(account.id, code)
    if codes is None:
        session.rollback()
        return render(
            request,
            runtime,
            "message.html",
            status_code=400,
            heading="That code is not right",
            message="Set the app up again and enter the code it shows.",
            link="/account/authenticator",
            link_text="Try again",
        )
    runtime.audit_log(session).append(
        AuditEvent(
            actor=f"citizen:{account.pseudonym}",
            action="identity.second_factor.enabled",
            subject=account.pseudonym,
            details={"method": "app"},
        )
    )
    return render(request, runtime, "authenticator.html", codes=codes)


@router.post("/account/authenticator/disable", response_model=None)
def authenticator_disable(
    request: Request, runtime: RuntimeDep, session: SessionDep, csrf: CsrfForm = ""
) -> Response:
    check_csrf(request, runtime, csrf)
    provider, sso = _signed_in(request, runtime, session)
    account = provider.accounts.by_id(sso.citizen_id) if sso else None
    if sso is None or account is None:
        return RedirectResponse("/login", status_code=303)
    runtime.second_factor(session).apps.disable(account.id)
    runtime.audit_log(session).append(
        AuditEvent(
            actor=f"citizen:{account.pseudonym}",
            action="identity.second_factor.disabled",
            subject=account.pseudonym,
            details={"method": "app"},
        )
    )
    return RedirectResponse("/account", status_code=303)
