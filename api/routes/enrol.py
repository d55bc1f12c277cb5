"""Registration and password reset pages: card details, the SMS code, then a password.

NADRA being down gives "try again later" and leaves nothing half-made: no challenge, no
account, no text message.

The flow's ticket (the challenge id: once its code is proved, it sets the account's password
for 15 minutes) travels in a cookie, never in a URL, so no address the browser shows, keeps in
its history or sends as a referrer holds it: HttpOnly, SameSite=Strict, limited to the flow's
own paths (`/register`, `/reset`) and to the ticket's lifetime, and deleted when the password
is set. The expired-password step of a sign-in (api.routes.signin) hands its ticket over the
same way.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from api.backchannel import deliver_after, end_sessions
from api.deps import FormParams, RuntimeDep, SessionDep, settle
from api.i18n import Text
from api.runtime import Runtime
from api.web import check_csrf, client_address, render
from identity.enrolment import REGISTER, RESET
from identity.errors import (
    AccountExists,
    BreachCorpusUnavailable,
    CardNotValid,
    ChallengeFailed,
    IdentityError,
    InvalidCnic,
    InvalidMobile,
    RegistryUnavailable,
    TooManyAttempts,
    WeakPassword,
    WrongCode,
)
from identity.nadra import CardDetails
from identity.oidc.logout import LogoutNotice
from identity.sms import SmsUnavailable

router = APIRouter(tags=["registration pages"], include_in_schema=False)
FormText = Annotated[str, Form()]

FLOWS = {
    "register": {"purpose": REGISTER, "heading": Text("Create your Shanakht account")},
    "reset": {"purpose": RESET, "heading": Text("Reset your password")},
}
DATE_FIELDS = ("date_of_birth", "card_issue_date")
TICKET_COOKIE = "shanakht_ticket"


def _ticket_cookie(runtime: Runtime) -> str:
    # Not `__Host-` (web.cookie_name): that prefix demands Path=/, and this cookie is kept to
    # its flow's paths. `__Secure-` still makes browsers refuse it over plain http.
    return f"__Secure-{TICKET_COOKIE}" if runtime.settings.secure_cookies else TICKET_COOKIE


def set_ticket(response: Response, runtime: Runtime, flow: str, ticket: str) -> None:
    """Give the browser the flow's ticket for as long as it can be used (the code's time and
    then the time to choose a password), sent back only to the flow's own pages."""
    rules = runtime.identity.policy
    response.set_cookie(
        _ticket_cookie(runtime),
        ticket,
        max_age=int((rules.code_ttl + rules.verified_ttl).total_seconds()),
        path=f"/{flow}",
        secure=runtime.settings.secure_cookies,
        httponly=True,
        samesite="strict",
    )


def _ticket(request: Request, runtime: Runtime) -> str:
    return request.cookies.get(_ticket_cookie(runtime), "")


def _forget_ticket(response: Response, runtime: Runtime, flow: str) -> None:
    response.delete_cookie(
        _ticket_cookie(runtime),
        path=f"/{flow}",
        secure=runtime.settings.secure_cookies,
        httponly=True,
        samesite="strict",
    )


def _details_error(exc: IdentityError) -> tuple[int, dict[str, object]]:
    """Status, and the words for a refusal of card details (beside the field they concern,
    where there is one), saying what the citizen can do."""
    if isinstance(exc, RegistryUnavailable | SmsUnavailable):
        words = Text(
            "NADRA or the SMS service is not answering. Nothing was saved; try again later."
        )
        return 503, {"error": words}
    if isinstance(exc, TooManyAttempts):
        words = Text(
            "Too many attempts. Try again in %(seconds)s seconds.", seconds=exc.retry_after
        )
        return 429, {"error": words}
    if isinstance(exc, CardNotValid):
        words = Text("NADRA reports that this card is not valid. Renew it at a NADRA centre.")
        return 422, {"error": words}
    if isinstance(exc, InvalidCnic):
        words = Text("Type the 13 digits of your CNIC, as 12345-1234567-1.")
        return 400, {"errors": {"cnic": words}}
    if isinstance(exc, InvalidMobile):
        words = Text("Type a Pakistani mobile number, as 0300-1234567.")
        return 400, {"errors": {"mobile": words}}
    words = Text(
        "These details do not match your CNIC, or the mobile number is not registered to it."
    )
    return 422, {"error": words}


def _flow(name: str) -> dict[str, Any]:
    return FLOWS[name]


def _details_page(request: Request, runtime: Runtime, flow: str, **extra: object) -> Response:
    return render(
        request,
        runtime,
        "details.html",
        heading=_flow(flow)["heading"],
        action=f"/{flow}",
        **extra,  # type: ignore[arg-type]
    )


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _finish_refusal(exc: IdentityError) -> Text:
    if isinstance(exc, AccountExists):
        return Text("You already have an account. Sign in, or use 'Forgot password'.")
    return Text("This step has expired or was already done. Start again.")


def _start(
    request: Request,
    runtime: Runtime,
    session: SessionDep,
    flow: str,
    form: dict[str, str],
) -> Response:
    check_csrf(request, runtime, form["csrf"])
    enrolment = runtime.enrolment(session)
    typed = {k: v for k, v in form.items() if k != "csrf"}
    missing = {k: Text("Fill this in.") for k, v in typed.items() if not v.strip()}
    for name in DATE_FIELDS:
        if name not in missing and not _is_date(form[name]):
            missing[name] = Text("Give the date as on your card, for example 1990-01-31.")
    if missing:
        return _details_page(
            request, runtime, flow, status_code=400, errors=missing, form=typed,
            error=Text("Some details need correcting: see below."),
        )  # fmt: skip
    details = CardDetails(
        cnic=form["cnic"],
        full_name=form["full_name"],
        father_or_husband_name=form["father_or_husband_name"],
        date_of_birth=date.fromisoformat(form["date_of_birth"]),
        card_issue_date=date.fromisoformat(form["card_issue_date"]),
    )
    start = enrolment.start_registration if flow == "register" else enrolment.start_reset
    try:
        ticket = start(details, form["mobile"], client=client_address(request))
    except (IdentityError, SmsUnavailable) as exc:
        session.rollback()
        status, words = _details_error(exc)
        response = _details_page(request, runtime, flow, status_code=status, form=typed, **words)
        if isinstance(exc, TooManyAttempts):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    onward = RedirectResponse(f"/{flow}/code", status_code=303)
    set_ticket(onward, runtime, flow, ticket)
    return onward


def _code_page(request: Request, runtime: Runtime, flow: str, **extra: object) -> Response:
    return render(
        request,
        runtime,
        "code.html",
        ticket="",  # it is in the flow's cookie
        action=f"/{flow}/code",
        **extra,  # type: ignore[arg-type]
    )


def _start_again(
    request: Request,
    runtime: Runtime,
    flow: str,
    status_code: int,
    message: Text,
    link: str,
    link_text: Text,
) -> Response:
    """A page saying the flow must start again; the browser forgets the spent ticket."""
    page = render(
        request, runtime, "message.html", status_code=status_code,
        heading=Text("Start again"), message=message, link=link, link_text=link_text,
    )  # fmt: skip
    _forget_ticket(page, runtime, flow)
    return page


def _check_code(
    request: Request,
    runtime: Runtime,
    session: SessionDep,
    flow: str,
    code: str,
    csrf: str,
) -> Response:
    check_csrf(request, runtime, csrf)
    try:
        runtime.enrolment(session).verify_code(
            _ticket(request, runtime), _flow(flow)["purpose"], code
        )
    except WrongCode as exc:
        settle(session, exc)
        return _code_page(
            request, runtime, flow, status_code=400,
            error=Text("That code is not right. %(left)s tries left.", left=exc.attempts_left),
        )  # fmt: skip
    except ChallengeFailed as exc:
        settle(session, exc)
        return _start_again(
            request, runtime, flow, 410,
            Text("This code has expired or was used up. Start again to get a new one."),
            f"/{flow}", Text("Start again"),
        )  # fmt: skip
    return RedirectResponse(f"/{flow}/password", status_code=303)


def _set_password(
    request: Request,
    runtime: Runtime,
    session: SessionDep,
    flow: str,
    password: str,
    csrf: str,
    next_page: str,
) -> Response:
    check_csrf(request, runtime, csrf)
    enrolment = runtime.enrolment(session)
    finish = enrolment.complete_registration if flow == "register" else enrolment.complete_reset
    try:
        citizen_id = finish(_ticket(request, runtime), password)
    except (WeakPassword, BreachCorpusUnavailable) as exc:
        settle(session, exc)
        weak = isinstance(exc, WeakPassword)
        return render(
            request,
            runtime,
            "password.html",
            status_code=422 if weak else 503,
            action=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            failures=exc.failures if isinstance(exc, WeakPassword) else [str(exc)],
        )
    except (ChallengeFailed, AccountExists) as exc:
        settle(session, exc)
        return _start_again(
            request, runtime, flow, 409, _finish_refusal(exc), "/login", Text("Sign in")
        )
    notices: list[LogoutNotice] = []
    if flow == "reset":
        # Whoever knew the old password is signed out everywhere, with their tokens.
        provider = runtime.provider(session)
        ended = provider.sessions.end_all(citizen_id, "password_reset")
        notices = end_sessions(runtime, provider, ended, "password_reset")
    if next_page.startswith("/oauth/authorize/resume") or next_page == "/account":
        # An expired password changed during a sign-in: the citizen signs in again with it.
        again = RedirectResponse(f"/login?{next_page.partition('?')[2]}", status_code=303)
        _forget_ticket(again, runtime, flow)
        return deliver_after(again, runtime, notices)
    done = render(
        request,
        runtime,
        "message.html",
        heading=Text("Done"),
        message=Text("Your password is set. You can now sign in."),
        link="/login",
        link_text=Text("Sign in"),
    )
    _forget_ticket(done, runtime, flow)
    return deliver_after(done, runtime, notices)


for _flow_name in FLOWS:

    def _routes(flow: str) -> None:
        @router.get(f"/{flow}", response_model=None)
        def details_page(request: Request, runtime: RuntimeDep) -> Response:
            return _details_page(request, runtime, flow)

        @router.post(f"/{flow}", response_model=None)
        def details(
            request: Request, runtime: RuntimeDep, session: SessionDep, form: FormParams
        ) -> Response:
            fields = (
                "csrf",
                "cnic",
                "full_name",
                "father_or_husband_name",
                "date_of_birth",
                "card_issue_date",
                "mobile",
            )
            values = {k: str(form.get(k, "")) for k in fields}
            return _start(request, runtime, session, flow, values)

        @router.get(f"/{flow}/code", response_model=None)
        def code_page(request: Request, runtime: RuntimeDep) -> Response:
            return _code_page(request, runtime, flow)

        @router.post(f"/{flow}/code", response_model=None)
        def code(
            request: Request,
            runtime: RuntimeDep,
            session: SessionDep,
            code: FormText,
            csrf: Annotated[str, Form()] = "",
        ) -> Response:
            return _check_code(request, runtime, session, flow, code, csrf)

        @router.get(f"/{flow}/password", response_model=None)
        def password_page(request: Request, runtime: RuntimeDep) -> Response:
            return render(request, runtime, "password.html", action=f"/{flow}/password")

        @router.post(f"/{flow}/password", response_model=None)
        def password(
            request: Request,
            runtime: RuntimeDep,
            session: SessionDep,
            password: FormText,
            csrf: Annotated[str, Form()] = "",
            next_page: Annotated[str, Query(alias="next")] = "",
        ) -> Response:
            return _set_password(request, runtime, session, flow, password, csrf, next_page)

    _routes(_flow_name)
