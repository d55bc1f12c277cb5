"""Registration and password reset pages: card details, the SMS code, then a password.

NADRA being down gives "try again later" and leaves nothing half-made: no challenge, no
account, no text message.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from api.deps import FormParams, RuntimeDep, SessionDep, settle
from api.runtime import Runtime
from api.web import check_csrf, client_address, render
from identity.enrolment import REGISTER, RESET
from identity.errors import (
    AccountExists,
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
from identity.sms import SmsUnavailable

router = APIRouter(tags=["registration pages"], include_in_schema=False)
FormText = Annotated[str, Form()]

FLOWS = {
    "register": {"purpose": REGISTER, "heading": "Create your Shanakht account"},
    "reset": {"purpose": RESET, "heading": "Reset your password"},
}


def _details_error(exc: IdentityError) -> tuple[int, str]:
    """Status and words for a refusal of card details, saying what the citizen can do."""
    if isinstance(exc, RegistryUnavailable | SmsUnavailable):
        return 503, "NADRA or the SMS service is not answering. Nothing was saved; try again later."
    if isinstance(exc, TooManyAttempts):
        return 429, f"Too many attempts. Try again in {exc.retry_after} seconds."
    if isinstance(exc, CardNotValid):
        return 422, "NADRA reports that this card is not valid. Renew it at a NADRA centre."
    if isinstance(exc, InvalidCnic | InvalidMobile):
        return 400, str(exc).capitalize() + "."
    return (
        422,
        "These details do not match your CNIC, or the mobile number is not registered to it.",
    )


def _flow(name: str) -> dict[str, str]:
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


def _start(
    request: Request,
    runtime: Runtime,
    session: SessionDep,
    flow: str,
    form: dict[str, str],
) -> Response:
    check_csrf(request, runtime, form["csrf"])
    enrolment = runtime.enrolment(session)
    try:
        details = CardDetails(
            cnic=form["cnic"],
            full_name=form["full_name"],
            father_or_husband_name=form["father_or_husband_name"],
            date_of_birth=date.fromisoformat(form["date_of_birth"]),
            card_issue_date=date.fromisoformat(form["card_issue_date"]),
        )
    except ValueError:
        return _details_page(request, runtime, flow, status_code=400, error="Dates are YYYY-MM-DD.")
    start = enrolment.start_registration if flow == "register" else enrolment.start_reset
    try:
        ticket = start(details, form["mobile"], client=client_address(request))
    except (IdentityError, SmsUnavailable) as exc:
        session.rollback()
        status, message = _details_error(exc)
        response = _details_page(request, runtime, flow, status_code=status, error=message)
        if isinstance(exc, TooManyAttempts):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    return RedirectResponse(f"/{flow}/code?ticket={ticket}", status_code=303)


def _code_page(
    request: Request, runtime: Runtime, flow: str, ticket: str, **extra: object
) -> Response:
    return render(
        request,
        runtime,
        "code.html",
        ticket=ticket,
        action=f"/{flow}/code",
        **extra,  # type: ignore[arg-type]
    )


def _check_code(
    request: Request,
    runtime: Runtime,
    session: SessionDep,
    flow: str,
    ticket: str,
    code: str,
    csrf: str,
) -> Response:
    check_csrf(request, runtime, csrf)
    try:
        runtime.enrolment(session).verify_code(ticket, _flow(flow)["purpose"], code)
    except WrongCode as exc:
        settle(session, exc)
        return _code_page(
            request, runtime, flow, ticket, status_code=400, error=str(exc).capitalize() + "."
        )
    except ChallengeFailed as exc:
        settle(session, exc)
        return render(
            request,
            runtime,
            "message.html",
            status_code=410,
            heading="Start again",
            message=str(exc).capitalize() + ".",
            link=f"/{flow}",
            link_text="Start again",
        )
    return RedirectResponse(f"/{flow}/password?ticket={ticket}", status_code=303)


def _set_password(
    request: Request,
    runtime: Runtime,
    session: SessionDep,
    flow: str,
    ticket: str,
    password: str,
    csrf: str,
    next_page: str,
) -> Response:
    check_csrf(request, runtime, csrf)
    enrolment = runtime.enrolment(session)
    finish = enrolment.complete_registration if flow == "register" else enrolment.complete_reset
    try:
        finish(ticket, password)
    except WeakPassword as exc:
        settle(session, exc)
        return render(
            request,
            runtime,
            "password.html",
            status_code=422,
            ticket=ticket,
            action=f"/{flow}/password",
            failures=exc.failures,
        )
    except (ChallengeFailed, AccountExists) as exc:
        settle(session, exc)
        return render(
            request,
            runtime,
            "message.html",
            status_code=409,
            heading="Start again",
            message=str(exc).capitalize() + ".",
            link="/login",
            link_text="Sign in",
        )
    if next_page.startswith("/oauth/authorize/resume") or next_page == "/account":
        # An expired password changed during a sign-in: the citizen signs in again with it.
        return RedirectResponse(f"/login?{next_page.partition('?')[2]}", status_code=303)
    return render(
        request,
        runtime,
        "message.html",
        heading="Done",
        message="Your password is set. You can now sign in.",
        link="/login",
        link_text="Sign in",
    )


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
        def code_page(request: Request, runtime: RuntimeDep, ticket: str = "") -> Response:
            return _code_page(request, runtime, flow, ticket)

        @router.post(f"/{flow}/code", response_model=None)
        def code(
            request: Request,
            runtime: RuntimeDep,
            session: SessionDep,
            ticket: FormText,
            code: FormText,
            csrf: Annotated[str, Form()] = "",
        ) -> Response:
            return _check_code(request, runtime, session, flow, ticket, code, csrf)

        @router.get(f"/{flow}/password", response_model=None)
        def password_page(request: Request, runtime: RuntimeDep, ticket: str = "") -> Response:
            return render(
                request, runtime, "password.html", ticket=ticket, action=f"/{flow}/password"
            )

        @router.post(f"/{flow}/password", response_model=None)
        def password(
            request: Request,
            runtime: RuntimeDep,
            session: SessionDep,
            ticket: FormText,
            password: FormText,
            csrf: Annotated[str, Form()] = "",
            next_page: Annotated[str, Query(alias="next")] = "",
        ) -> Response:
            return _set_password(request, runtime, session, flow, ticket, password, csrf, next_page)

    _routes(_flow_name)
