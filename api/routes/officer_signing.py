"""The signing officer's pages: sign a transfer order, and revoke a certificate of the
department. Both need signing.officer in the department and a second factor in this session.

Signing goes through the API's own function (`api.routes.signing.sign_and_deliver`): the same
PDF, QR, time-stamp, audit entry and delivery into the teacher's locker. The signed PDF is
offered on the answer page as a download drawn from the page itself (a data: link), since
the service keeps no copy of it other than the one in the teacher's locker.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError

from api.deps import RuntimeDep, SessionDep, settle
from api.i18n import Text
from api.refusals import refusal
from api.routes.officer_common import (
    CNIC_FORMAT,
    SIGNER,
    Desk,
    day,
    desk_for,
    field_problems,
    page,
    see_other,
)
from api.routes.signing import (
    OFFICER_CERTIFICATE,
    CannotSign,
    TransferOrderRequest,
    sign_and_deliver,
)
from api.signed_in import SignedIn, SignedInDep, SubstantialDep
from api.web import check_csrf
from identity.cnic import normalise_cnic
from identity.errors import InvalidCnic
from locker.doctypes import document_type
from signing.documents.transfer_order import DOCUMENT_TYPE
from signing.pki.authority import IssuedCertificate, PkiError, parse_serial, serial_hex, serial_text
from signing.pki.profiles import DEPARTMENT_SEAL, OFFICER_SIGNING, QR_SIGNER

router = APIRouter(tags=["officer pages"], include_in_schema=False)
FormText = Annotated[str, Form()]

ORDER_FIELDS = (
    "order_no",
    "order_date",
    "teacher_name",
    "teacher_cnic",
    "from_school",
    "to_school",
    "post",
    "authority",
    "valid_days",
)
PROBLEMS = {
    "order_no": Text("Give the order number (1 to 40 characters)."),
    "order_date": Text("Give the order's date."),
    "teacher_name": Text("Give the teacher's name (1 to 100 characters)."),
    "teacher_cnic": CNIC_FORMAT,
    "from_school": Text("Give the school the teacher leaves (1 to 150 characters)."),
    "to_school": Text("Give the school the teacher joins (1 to 150 characters)."),
    "post": Text("Give the post (1 to 80 characters)."),
    "authority": Text("Give the authority ordering the transfer (1 to 100 characters)."),
    "valid_days": Text("Give a whole number of days from 1 to 3650, or leave it empty."),
}
PROFILES = {
    DEPARTMENT_SEAL.name: Text("Department seal"),
    OFFICER_SIGNING.name: Text("Officer signing"),
    QR_SIGNER.name: Text("QR signer"),
}
# The RFC 5280 reasons an officer may give (certificateHold is not a revocation; the CA
# and attribute-authority compromises are not a department's to declare).
REASONS = {
    "key_compromise": Text("The key may be known to someone else (key compromise)"),
    "affiliation_changed": Text("The holder left the department or changed post"),
    "superseded": Text("A new certificate replaces it"),
    "cessation_of_operation": Text("It is no longer needed"),
    "privilege_withdrawn": Text("The holder may no longer sign"),
    "unspecified": Text("Another reason"),
}


# -- sign a transfer order ---------------------------------------------------------------------


def _sign_page(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedIn,
    desk: Desk,
    status_code: int = 200,
    **context: Any,
) -> Response:
    return page(
        request,
        runtime,
        session,
        me,
        "officer_sign.html",
        status_code=status_code,
        desk=desk,
        **context,
    )


@router.get("/officer/{department}/sign", response_model=None)
def sign_form(
    department: str,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SubstantialDep,
) -> Response:
    desk = desk_for(runtime, session, me, department, SIGNER)
    form = {"order_date": runtime.clock().date().isoformat()}
    return _sign_page(request, runtime, session, me, desk, form=form, errors={})


@router.post("/officer/{department}/sign", response_model=None)
def sign(
    department: str,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SubstantialDep,
    order_no: FormText = "",
    order_date: FormText = "",
    teacher_name: FormText = "",
    teacher_cnic: FormText = "",
    from_school: FormText = "",
    to_school: FormText = "",
    post: FormText = "",
    authority: FormText = "",
    valid_days: FormText = "",
    csrf: FormText = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    desk = desk_for(runtime, session, me, department, SIGNER)
    form = {
        "order_no": order_no.strip(),
        "order_date": order_date,
        "teacher_name": teacher_name.strip(),
        "teacher_cnic": teacher_cnic.strip(),
        "from_school": from_school.strip(),
        "to_school": to_school.strip(),
        "post": post.strip(),
        "authority": authority.strip(),
        "valid_days": valid_days.strip(),
    }
    errors: dict[str, Text] = {}
    try:
        normalise_cnic(form["teacher_cnic"])
    except InvalidCnic:
        errors["teacher_cnic"] = CNIC_FORMAT
    if day(form["order_date"]) is None:
        errors["order_date"] = PROBLEMS["order_date"]
    order = None
    try:
        given = {k: v for k, v in form.items() if v or k != "valid_days"}
        order = TransferOrderRequest.model_validate({"department": desk.department, **given})
    except ValidationError as exc:
        errors = {**field_problems(exc, PROBLEMS, "order_no"), **errors}
    if errors or order is None:
        return _sign_page(
            request,
            runtime,
            session,
            me,
            desk,
            400,
            form=form,
            errors=errors,
            error=Text("Check the fields marked below."),
        )
    try:
        signed = sign_and_deliver(runtime, session, order, me.account.pseudonym)
    except CannotSign as exc:
        settle(session, exc)
        return _sign_page(
            request,
            runtime,
            session,
            me,
            desk,
            409,
            form=form,
            errors={},
            error=_cannot_sign(desk, exc.missing),
        )
    except ValueError as exc:  # a field the order itself refused (signing.errors.OrderInvalid)
        settle(session, exc)
        said = refusal(exc)
        field = said.beside(ORDER_FIELDS)
        return _sign_page(
            request,
            runtime,
            session,
            me,
            desk,
            422,
            form=form,
            errors={field: said.words} if field else {},
            error=Text("Check the fields marked below.")
            if field
            else Text("The order is not valid: %(why)s", why=said.words),
        )
    delivered = signed.delivered.startswith("delivered")
    if delivered:
        outcome = Text("It is in the teacher's Shanakht locker now.")
    elif desk.department != _transfer_department():
        outcome = Text(
            "It was not put in the teacher's locker: transfer orders are delivered "
            "to lockers by their own department only. Give the teacher the PDF."
        )
    else:
        outcome = Text(
            "It was not put in the teacher's locker: the teacher has no Shanakht "
            "account yet. Give them the PDF; they can upload it once registered."
        )
    return _sign_page(
        request,
        runtime,
        session,
        me,
        desk,
        201,
        form=form,
        errors={},
        signed=True,
        delivered=delivered,
        outcome=outcome,
        filename=signed.filename,
        pdf="data:application/pdf;base64," + base64.b64encode(signed.pdf).decode(),
        notice=Text("Transfer order %(number)s is signed.", number=order.order_no),
    )


def _transfer_department() -> str:
    return document_type(DOCUMENT_TYPE).department


def _cannot_sign(desk: Desk, missing: str) -> Text:
    if missing == OFFICER_CERTIFICATE:
        return Text(
            "You have no signing certificate in %(department)s yet. Ask the PKI administrator "
            "to issue you one (shanakht pki issue officer-signing --department %(id)s), then "
            "sign again.",
            department=desk.name,
            id=desk.department,
        )
    return Text(
        "%(department)s has no QR signer certificate yet, so the order's QR code cannot be "
        "signed. Ask the PKI administrator to issue one (shanakht pki issue qr-signer "
        "--department %(id)s).",
        department=desk.name,
        id=desk.department,
    )


# -- the department's certificates -------------------------------------------------------------


def _certificate_view(
    runtime: RuntimeDep, session: SessionDep, c: IssuedCertificate
) -> dict[str, Any]:
    now = runtime.clock()
    holder = ""
    if c.holder:
        account = runtime.provider(session).accounts.by_pseudonym(c.holder)
        holder = account.profile.full_name if account is not None else ""
    expired = c.certificate.not_valid_after_utc <= now
    state = "revoked" if c.revoked_at else ("expired" if expired else "good")
    return {
        "serial": serial_text(c.serial),
        "key": serial_hex(c.serial),
        "profile": PROFILES.get(c.profile, c.profile),
        "kind": c.profile,
        "subject": c.certificate.subject.rfc4514_string(),
        "holder": holder,
        "not_after": c.certificate.not_valid_after_utc,
        "state": state,
        "reason": c.reason,
    }


@router.get("/officer/{department}/certificates", response_model=None)
def certificates(
    department: str,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedInDep,
    revoked: str = "",
) -> Response:
    desk = desk_for(runtime, session, me, department, SIGNER)
    authority = runtime.authority(session)
    found = [c for c in authority.listed(department=desk.department) if c.profile in PROFILES]
    rows = [_certificate_view(runtime, session, c) for c in reversed(found)]
    notice = None
    if revoked and any(r["key"] == revoked and r["state"] == "revoked" for r in rows):
        notice = Text("The certificate is revoked, and the revocation list is published.")
    return page(
        request,
        runtime,
        session,
        me,
        "officer_certificates.html",
        desk=desk,
        rows=rows,
        notice=notice,
    )


def _certificate(
    runtime: RuntimeDep, session: SessionDep, desk: Desk, serial: str
) -> IssuedCertificate | None:
    """The department's certificate with this serial; None for another's, or none."""
    try:
        found = runtime.authority(session).get(parse_serial(serial))
    except PkiError:
        return None
    if found is None or found.department != desk.department or found.profile not in PROFILES:
        return None
    return found


def _confirm_page(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedIn,
    desk: Desk,
    serial: str,
    status_code: int = 200,
    **context: Any,
) -> Response:
    found = _certificate(runtime, session, desk, serial)
    if found is None:
        return page(
            request,
            runtime,
            session,
            me,
            "message.html",
            status_code=404,
            heading=Text("No such certificate"),
            message=Text("Your department holds no certificate with that serial."),
            link=f"/officer/{desk.department}/certificates",
            link_text=Text("Back to the certificates"),
        )
    return page(
        request,
        runtime,
        session,
        me,
        "officer_certificate.html",
        status_code=status_code,
        desk=desk,
        cert=_certificate_view(runtime, session, found),
        reasons=REASONS,
        **context,
    )


@router.get("/officer/{department}/certificates/{serial}", response_model=None)
def certificate_page(
    department: str,
    serial: str,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SubstantialDep,
) -> Response:
    desk = desk_for(runtime, session, me, department, SIGNER)
    return _confirm_page(request, runtime, session, me, desk, serial, reason="", errors={})


@router.post("/officer/{department}/certificates/{serial}", response_model=None)
def revoke_certificate(
    department: str,
    serial: str,
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SubstantialDep,
    reason: FormText = "",
    csrf: FormText = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    desk = desk_for(runtime, session, me, department, SIGNER)
    found = _certificate(runtime, session, desk, serial)
    if found is None:
        return _confirm_page(request, runtime, session, me, desk, serial)
    if reason not in REASONS:
        return _confirm_page(
            request,
            runtime,
            session,
            me,
            desk,
            serial,
            400,
            reason=reason,
            errors={"reason": Text("Choose why it is revoked.")},
            error=Text("Check the fields marked below."),
        )
    try:
        runtime.authority(session).revoke(found.serial, reason, actor=me.account.pseudonym)
    except PkiError as exc:
        settle(session, exc)
        said = refusal(exc)
        field = said.beside(("reason",))
        return _confirm_page(
            request,
            runtime,
            session,
            me,
            desk,
            serial,
            409,
            reason=reason,
            errors={field: said.words} if field else {},
            error=Text("It cannot be revoked: %(why)s", why=said.words),
        )
    done = urlencode({"revoked": serial_hex(found.serial)})
    return see_other(f"/officer/{desk.department}/certificates?{done}")
