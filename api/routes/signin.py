"""The pages a citizen sees while signing in: login, second factor, consent, logout.

Each POST checks the CSRF token first, and only a POST changes anything: the second-factor
page sends its SMS when the citizen presses its button, never on a GET. Every refusal a
stranger can provoke renders the same words; throttling answers 429 with Retry-After. A
successful login gives the browser a device cookie (`identity.devices`), and a second factor
gives the session a new cookie token.
"""

from __future__ import annotations

from typing import Annotated, TypedDict
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from api import metrics
from api.backchannel import deliver_after, end_sessions
from api.deps import FormFields, RuntimeDep, SessionDep, required, settle
from api.i18n import Text, too_many_attempts
from api.routes.enrol import set_ticket
from api.routes.oidc import continue_authorization, untrusted, with_query
from api.runtime import Runtime
from api.web import (
    SESSION_COOKIE,
    check_csrf,
    client_address,
    cookie_name,
    local_path,
    render,
    set_cookie,
    signed_out,
)
from audit import AuditEvent
from identity.devices import DeviceCookies
from identity.errors import (
    ChallengeFailed,
    InvalidCredentials,
    ReusedCode,
    TooManyAttempts,
    WrongCode,
)
from identity.login import ACR_SUBSTANTIAL, CheckedAttempt, LoginResult
from identity.oidc.authorize import AuthorizationRequest
from identity.oidc.errors import AccessDenied, UntrustedRedirect
from identity.oidc.logout import LogoutNotice
from identity.oidc.provider import Provider
from identity.oidc.sessions import SsoSession
from identity.reconciled import CONSENT_GRANTED

router = APIRouter(tags=["sign-in pages"], include_in_schema=False)

SCOPE_TEXT = {
    "openid": Text("to know it is you (an identifier for this e-service only)"),
    "profile": Text("your name and your father's or husband's name"),
    "cnic": Text("your CNIC number"),
    "birthdate": Text("your date of birth"),
    "gender": Text("your gender"),
    "address": Text("your address"),
    "phone": Text("your verified mobile number"),
    "roles": Text("your roles as an officer of a department"),
    "signing": Text("to sign documents in your name, with your officer's certificate"),
    "locker": Text(
        "to open your document locker: read, upload and share your documents, and "
        "answer departments' requests for them"
    ),
}

FormText = Annotated[str, Form()]
DEVICE_COOKIE = "shanakht_device"
DEVICE_KEY = "identity-device-cookie"  # in the key store, sealed under the master key


def device_cookies(runtime: Runtime) -> DeviceCookies:
    """The signer and checker of device cookies, with its key from the key store."""
    return DeviceCookies(
        runtime.keys.secret(DEVICE_KEY),
        lifetime=runtime.identity.policy.device_cookie_lifetime,
        clock=runtime.clock,
    )


class _Browser(TypedDict):
    client: str
    devices: DeviceCookies
    device_cookie: str | None


def _browser(request: Request, runtime: Runtime) -> _Browser:
    """Where a password attempt comes from and the device cookie it holds: a known browser is
    counted and locked out on its own, so every password check is given both."""
    return _Browser(
        client=client_address(request),
        devices=device_cookies(runtime),
        device_cookie=request.cookies.get(cookie_name(runtime, DEVICE_COOKIE)),
    )


def password_login(request: Request, runtime: Runtime, cnic: str, password: str) -> LoginResult:
    """A password login from this browser, with the device cookie it holds (if any)."""
    return runtime.password_login().login(cnic, password, **_browser(request, runtime))


def check_password(request: Request, runtime: Runtime, cnic: str, password: str) -> CheckedAttempt:
    """`password_login` up to its outcome: the attempt counted and the password hashed, for
    the caller to record in the transaction it signs the citizen in with."""
    return runtime.password_login().check(cnic, password, **_browser(request, runtime))


def set_device_cookie(response: Response, runtime: Runtime, result: LoginResult) -> None:
    """Remember this browser for the account it just signed in to (HttpOnly, Secure on https,
    SameSite=Lax, for the policy's device cookie lifetime)."""
    if result.device_cookie is None:
        return
    lifetime = runtime.identity.policy.device_cookie_lifetime
    set_cookie(
        response,
        runtime,
        DEVICE_COOKIE,
        result.device_cookie,
        samesite="lax",
        max_age=int(lifetime.total_seconds()),
    )


def _current(request: Request, runtime: Runtime, provider: Provider) -> SsoSession | None:
    return provider.sessions.current(request.cookies.get(cookie_name(runtime, SESSION_COOKIE)))


def _pending(provider: Provider, request_id: str) -> AuthorizationRequest | None:
    if not request_id:
        return None
    return provider.authorizer.load(request_id)


def _next(request_id: str, next_page: str = "") -> str:
    """Where a finished sign-in goes: back into the e-service's authorization request, else
    to the portal page that sent the citizen here (a path on this service), else the account."""
    if request_id:
        return f"/oauth/authorize/resume?{urlencode({'request': request_id})}"
    return local_path(next_page) if next_page else "/account"


# -- login -------------------------------------------------------------------------------------


@router.get("/login", response_model=None)
def login_page(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    request_id: Annotated[str, Query(alias="request")] = "",
    next_page: Annotated[str, Query(alias="next")] = "",
) -> Response:
    provider = runtime.provider(session)
    try:
        pending = _pending(provider, request_id)
    except UntrustedRedirect as exc:
        return untrusted(request, runtime, exc)
    client = provider.clients.get(pending.client_id) if pending else None
    return render(
        request,
        runtime,
        "login.html",
        request_id=request_id,
        next=local_path(next_page) if next_page else "",
        client_name=client.name if client else None,
    )


@router.post("/login", response_model=None)
def login(request: Request, runtime: RuntimeDep, form: FormFields) -> Response:
    """No request-wide transaction (no SessionDep): the attempt is counted in one short
    transaction, the password hashed with none open, and the outcome recorded in a second,
    which on success also starts the session, so a login commits twice, not three times.
    The form is read by `form_fields`, FastAPI's `Form()` parameters being dearer."""
    cnic, password = required(form, "cnic", "password")
    request_id, next_page = form.get("request", ""), form.get("next", "")
    check_csrf(request, runtime, form.get("csrf", ""))
    try:
        attempt = check_password(request, runtime, cnic, password)
        with runtime.transaction() as session:
            # A refusal's records commit with it (InvalidCredentials.keep_transaction).
            result = runtime.password_login().record(session, attempt)
            return _signed_in(request, runtime, session, result, request_id, next_page)
    except InvalidCredentials:
        metrics.login("failure")
        # A lockout ends no session: strangers' failures must not sign the holder out.
        return render(
            request,
            runtime,
            "login.html",
            status_code=401,
            request_id=request_id,
            cnic=cnic,
            next=local_path(next_page) if next_page else "",
            error=Text(
                "The CNIC or password is not right, or the account is locked for a while. "
                "Check both, or use 'Forgot password'."
            ),
        )
    except TooManyAttempts as exc:
        metrics.login("throttled")
        response = render(
            request,
            runtime,
            "login.html",
            status_code=429,
            request_id=request_id,
            cnic=cnic,
            next=local_path(next_page) if next_page else "",
            error=Text(
                "Too many attempts. Try again in %(seconds)s seconds.", seconds=exc.retry_after
            ),
        )
        response.headers["Retry-After"] = str(exc.retry_after)
        return response


def _signed_in(
    request: Request,
    runtime: Runtime,
    session: Session,
    result: LoginResult,
    request_id: str,
    next_page: str,
) -> Response:
    """A login's success, in the transaction that recorded it: the page to change an expired
    password, or a new session (replacing this browser's old one) and the way onwards."""
    metrics.login("success")
    if result.password_expired:
        ticket = runtime.enrolment(session).expired_password_ticket(
            result.citizen_id, result.pseudonym
        )
        expired = render(
            request,
            runtime,
            "password.html",
            action=f"/reset/password?{urlencode({'next': _next(request_id, next_page)})}",
            heading=Text("Your password has expired: choose a new one"),
        )
        set_ticket(expired, runtime, "reset", ticket)  # as the reset flow carries it
        set_device_cookie(expired, runtime, result)
        return expired
    provider = runtime.provider(session)
    previous = _current(request, runtime, provider)
    notices: list[LogoutNotice] = []
    if previous is not None:
        # A new login in this browser replaces the old session (no session fixation).
        ended = provider.sessions.end(previous.id, "replaced")
        notices = end_sessions(runtime, provider, [ended] if ended else [], "replaced")
    token, _sso = provider.sessions.create(
        result.citizen_id,
        acr=result.acr,
        amr=["pwd"],
        client_address=client_address(request),
        user_agent=request.headers.get("user-agent", ""),
    )
    onward = RedirectResponse(_next(request_id, next_page), status_code=303)
    set_cookie(onward, runtime, SESSION_COOKIE, token, samesite="lax")
    set_device_cookie(onward, runtime, result)
    return deliver_after(onward, runtime, notices)


# -- second factor (step-up) ---------------------------------------------------------------


def _code_refusal(exc: Exception) -> Text:
    if isinstance(exc, ReusedCode):
        return Text("That code was used already. Wait for your app to show a new one.")
    if isinstance(exc, WrongCode):
        return Text("That code is not right.")
    if isinstance(exc, TooManyAttempts):
        return too_many_attempts(exc.retry_after)
    return Text("This code has expired or was used up. Start again to get a new one.")


def _second_factor_action(
    request_id: str, method: str, next_page: str = "", path: str = "/login/second-factor"
) -> str:
    query = {"request": request_id, "method": method}
    if next_page:
        query["next"] = next_page
    return f"{path}?{urlencode(query)}"


def _send_action(request_id: str, next_page: str) -> str:
    return _second_factor_action(request_id, "sms", next_page, "/login/second-factor/send")


@router.get("/login/second-factor", response_model=None)
def second_factor_page(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    request_id: Annotated[str, Query(alias="request")] = "",
    method: str = "",
    next_page: Annotated[str, Query(alias="next")] = "",
) -> Response:
    """An authenticator-app code when the citizen has one (SMS on request), else an SMS code.

    Showing the page sends nothing: a link anyone can make a signed-in browser open must not
    cost a text or bring fresh guesses. The code sent earlier in this sign-in is asked for if
    it is still good; otherwise a button sends one (a POST with the form's CSRF token)."""
    provider = runtime.provider(session)
    sso = _current(request, runtime, provider)
    account = provider.accounts.by_id(sso.citizen_id) if sso else None
    if sso is None or account is None:
        return RedirectResponse(f"/login?{urlencode({'request': request_id})}", 303)
    factor = runtime.second_factor(session)
    if method != "sms" and factor.apps.enabled(account.id):
        return render(
            request,
            runtime,
            "code.html",
            ticket="",
            action=_second_factor_action(request_id, "app", next_page),
            app=True,
            sms_link=_second_factor_action(request_id, "sms", next_page),
        )
    ticket = factor.pending_sms(account, sid=sso.sid)
    return render(
        request,
        runtime,
        "code.html",
        ticket=ticket or "",
        action=_second_factor_action(request_id, "sms", next_page),
        send_action=_send_action(request_id, next_page),
        send=ticket is None,
    )


@router.post("/login/second-factor/send", response_model=None)
def second_factor_send(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    csrf: Annotated[str, Form()] = "",
    request_id: Annotated[str, Query(alias="request")] = "",
    next_page: Annotated[str, Query(alias="next")] = "",
) -> Response:
    """Send a sign-in code by SMS (throttled per account), then show the page that asks for it."""
    check_csrf(request, runtime, csrf)
    provider = runtime.provider(session)
    sso = _current(request, runtime, provider)
    account = provider.accounts.by_id(sso.citizen_id) if sso else None
    if sso is None or account is None:
        return RedirectResponse(f"/login?{urlencode({'request': request_id})}", 303)
    try:
        runtime.second_factor(session).start_sms(account, sid=sso.sid)
    except TooManyAttempts as exc:
        settle(session, exc)
        refused = render(
            request,
            runtime,
            "message.html",
            status_code=429,
            heading=Text("Too many codes"),
            message=too_many_attempts(exc.retry_after),
        )
        refused.headers["Retry-After"] = str(exc.retry_after)
        return refused
    return RedirectResponse(_second_factor_action(request_id, "sms", next_page), 303)


@router.post("/login/second-factor", response_model=None)
def second_factor(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    code: FormText,
    ticket: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    request_id: Annotated[str, Query(alias="request")] = "",
    method: str = "sms",
    next_page: Annotated[str, Query(alias="next")] = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    provider = runtime.provider(session)
    sso = _current(request, runtime, provider)
    account = provider.accounts.by_id(sso.citizen_id) if sso else None
    if sso is None or account is None:
        return RedirectResponse(f"/login?{urlencode({'request': request_id})}", 303)
    factor = runtime.second_factor(session)
    address = client_address(request)
    try:
        if method == "app":
            amr = factor.finish_app(account, code, client=address)
        else:
            amr = factor.finish_sms(ticket, code, account=account, client=address, sid=sso.sid)
    except (WrongCode, ChallengeFailed, TooManyAttempts) as exc:
        if isinstance(exc, WrongCode):  # recorded in the log, with the attempt it counts
            metrics.auth_failure("second_factor", recorded=True)
        settle(session, exc)
        if isinstance(exc, ChallengeFailed):  # after the rollback, so its entry stands
            recorded = factor.refused_ticket(exc, account=account, client=address)
            metrics.auth_failure("second_factor", recorded=recorded)
        words = _code_refusal(exc)
        retry = exc.retry_after if isinstance(exc, TooManyAttempts) else None
        refused = render(
            request,
            runtime,
            "code.html",
            status_code=400 if retry is None else 429,
            ticket=ticket,
            action=_second_factor_action(request_id, method, next_page),
            app=method == "app",
            sms_link=_second_factor_action(request_id, "sms", next_page),
            send_action=_send_action(request_id, next_page),
            error=words,
        )
        if retry is not None:  # answered as every throttle is
            refused.headers["Retry-After"] = str(retry)
        return refused
    # The session's assurance rises: it gets a new cookie token, and the old cookie (which
    # may have been planted or seen before the second factor) opens nothing any more.
    token = provider.sessions.step_up(sso.id, acr=ACR_SUBSTANTIAL, amr=amr)
    if token is None:  # the session ended meanwhile (a logout in another tab): sign in again
        return RedirectResponse(f"/login?{urlencode({'request': request_id})}", 303)
    onward = RedirectResponse(_next(request_id, next_page), status_code=303)
    set_cookie(onward, runtime, SESSION_COOKIE, token, samesite="lax")
    return onward


# -- consent -----------------------------------------------------------------------------------


@router.get("/consent", response_model=None)
def consent_page(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    request_id: Annotated[str, Query(alias="request")] = "",
) -> Response:
    provider = runtime.provider(session)
    try:
        pending = provider.authorizer.load(request_id)
    except UntrustedRedirect as exc:
        return untrusted(request, runtime, exc)
    client = provider.clients.get(pending.client_id)
    return render(
        request,
        runtime,
        "consent.html",
        request_id=request_id,
        client_name=client.name if client else pending.client_id,
        scopes=[SCOPE_TEXT[s] for s in pending.scopes if s in SCOPE_TEXT],
    )


@router.post("/consent", response_model=None)
def consent(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    decision: FormText,
    csrf: Annotated[str, Form()] = "",
    request_id: Annotated[str, Form(alias="request")] = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    provider = runtime.provider(session)
    try:
        pending = provider.authorizer.load(request_id)
    except UntrustedRedirect as exc:
        return untrusted(request, runtime, exc)
    sso = _current(request, runtime, provider)
    if sso is None:
        return RedirectResponse(f"/login?{urlencode({'request': request_id})}", 303)
    account = provider.accounts.by_id(sso.citizen_id)
    subject = account.pseudonym if account else None
    audit = runtime.audit_log(session)
    if decision != "allow":
        provider.authorizer.forget(request_id)
        audit.append(
            AuditEvent(
                actor=f"citizen:{subject}",
                action="identity.consent.denied",
                subject=subject,
                resource=f"client:{pending.client_id}",
            )
        )
        error = AccessDenied("the citizen did not allow it")
        target = with_query(
            pending.redirect_uri,
            {
                "error": error.error,
                "error_description": error.description,
                "state": pending.state,
                "iss": runtime.settings.resolved_issuer,
            },
        )
        return RedirectResponse(target, status_code=303)
    scopes = [s for s in pending.scopes if s != "openid"]
    provider.grants.grant(sso.citizen_id, pending.client_id, scopes)
    audit.append(
        AuditEvent(
            actor=f"citizen:{subject}",
            action=CONSENT_GRANTED,
            subject=subject,
            resource=f"client:{pending.client_id}",
            details={"scopes": " ".join(scopes)},
        )
    )
    return continue_authorization(request, runtime, provider, request_id, pending)


# -- logout ------------------------------------------------------------------------------------


def _logout_target(
    provider: Provider,
    client_id: str | None,
    post_logout_redirect_uri: str | None,
    state: str | None,
) -> str | None:
    """Only a post-logout URI registered for the named client is followed (no open redirect)."""
    if not post_logout_redirect_uri or not client_id:
        return None
    client = provider.clients.get(client_id)
    if client is None or post_logout_redirect_uri not in client.post_logout_redirect_uris:
        return None
    return with_query(post_logout_redirect_uri, {"state": state})


@router.get("/logout", response_model=None)
def logout_page(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    id_token_hint: str | None = None,
    post_logout_redirect_uri: str | None = None,
    state: str | None = None,
    client_id: str | None = None,
) -> Response:
    """RP-initiated logout: with an ID token of this very session, sign out at once; otherwise
    ask, since a link alone must not be able to sign anyone out."""
    provider = runtime.provider(session)
    sso = _current(request, runtime, provider)
    hinted = provider.tokens.session_of_id_token(id_token_hint) if id_token_hint else None
    if hinted is not None and client_id and client_id != hinted[0]:
        # RP-Initiated Logout 1.0, 2: the ID token must have been issued to the client named;
        # another client's is no hint (the citizen is asked, and sent to no one's URI).
        hinted = None
    if hinted is not None:
        client_id = client_id or hinted[0]
    if sso is not None and hinted is not None and hinted[1] == sso.sid:
        return _sign_out(
            request, runtime, provider, sso, client_id, post_logout_redirect_uri, state
        )
    if sso is None:
        target = _logout_target(provider, client_id, post_logout_redirect_uri, state)
        if target:
            return RedirectResponse(target, status_code=303)
        return render(
            request,
            runtime,
            "message.html",
            heading=Text("Signed out"),
            message=Text("You are not signed in to Shanakht."),
        )
    return render(
        request,
        runtime,
        "logout.html",
        post_logout_redirect_uri=post_logout_redirect_uri,
        state=state,
        client_id=client_id,
    )


@router.post("/logout", response_model=None)
def logout(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    csrf: Annotated[str, Form()] = "",
    post_logout_redirect_uri: Annotated[str, Form()] = "",
    state: Annotated[str, Form()] = "",
    client_id: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    provider = runtime.provider(session)
    sso = _current(request, runtime, provider)
    return _sign_out(
        request,
        runtime,
        provider,
        sso,
        client_id or None,
        post_logout_redirect_uri or None,
        state or None,
    )


def _sign_out(
    request: Request,
    runtime: Runtime,
    provider: Provider,
    sso: SsoSession | None,
    client_id: str | None,
    post_logout_redirect_uri: str | None,
    state: str | None,
) -> Response:
    notices: list[LogoutNotice] = []
    if sso is not None:
        ended = provider.sessions.end(sso.id, "logout")
        notices = end_sessions(runtime, provider, [ended] if ended else [], "logout")
    target = _logout_target(provider, client_id, post_logout_redirect_uri, state)
    response: Response
    if target:
        response = RedirectResponse(target, status_code=303)
    else:
        response = render(
            request,
            runtime,
            "message.html",
            heading=Text("Signed out"),
            message=Text(
                "You are signed out of Shanakht and of every e-service you used in this session."
            ),
        )
    return deliver_after(signed_out(response, runtime), runtime, notices)
