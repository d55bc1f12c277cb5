"""e-Transfer: a teacher applies for a transfer, the department approves, an officer signs.

Everyone signs in with Shanakht. The teacher's name and CNIC come from the ID token (verified
by NADRA, so nobody types them). An approver is whoever this department lists by CNIC
(`ETRANSFER_APPROVERS`). An officer is whoever Shanakht says holds `signing.officer` in the
department (the `roles` claim), signed in with a second factor and having let e-Transfer sign
for them (the `signing` scope): e-Transfer then sends the order to Shanakht's
`POST /signing/orders/transfer` with the officer's own access token, and Shanakht signs it
with the officer's certificate, stamps the signed QR code, and puts the order in the teacher's
locker.

Run on its own: `uvicorn --factory examples.etransfer.app:from_env` with ETRANSFER_CLIENT_ID,
_ISSUER, _BASE_URL, _KEY_FILE, _APPROVERS (CNICs, comma-separated) set.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from examples.relying_party import (
    ACR_SUBSTANTIAL,
    OAuthError,
    ServerSessions,
    ServiceConfig,
    Shanakht,
    check_csrf,
    page,
    redirect,
    shanakht_api,
    templates,
)

NAME = "e-Transfer"
TEACHER_SCOPE = "openid profile cnic roles"
OFFICER_SCOPE = "openid profile roles signing"
SIGNING_ROLE = "signing.officer"


def digits(cnic: str) -> str:
    return re.sub(r"\D", "", cnic)


@dataclass
class Settings:
    service: ServiceConfig
    approvers: frozenset[str]  # CNICs, digits only
    department: str = "sed"
    authority: str = "CEO (DEA) Lahore"


@dataclass
class Application:
    id: int
    teacher_sub: str
    teacher_name: str
    teacher_cnic: str
    post: str
    from_school: str
    to_school: str
    reason: str
    submitted: date
    status: str = "submitted"  # then approved, then signed
    approved_by: str | None = None
    order_no: str | None = None
    signed_by: str | None = None
    pdf: bytes | None = None
    locker: str | None = None  # what Shanakht said of the delivery into the teacher's locker


@dataclass
class Desk:
    """e-Transfer's own records (in memory: a sample, not a system of record)."""

    applications: dict[int, Application] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    lock: threading.Lock = field(default_factory=threading.Lock)


def create_app(settings: Settings) -> Starlette:
    shanakht = Shanakht(settings.service)
    env = templates(Path(__file__).parent)
    desk = Desk()
    issuer = settings.service.issuer

    def show(request: Request, status: int = 200, **context: Any) -> Response:
        user = request.session.get("user")
        visible = list(desk.applications.values())
        mine = [a for a in visible if user and a.teacher_sub == user["sub"]]
        return page(
            env,
            request,
            "etransfer.html",
            status,
            service=NAME,
            colour="#00663a",
            tagline="Teacher transfers, School Education Department",
            mine=mine,
            pending=[a for a in visible if a.status == "submitted"],
            approved=[a for a in visible if a.status == "approved"],
            signed=[a for a in visible if a.status == "signed"],
            **context,
        )

    async def home(request: Request) -> Response:
        return show(request)

    async def login(request: Request) -> Response:
        if request.query_params.get("as") == "officer":
            request.session["signing_in_as"] = "officer"
            return await shanakht.sign_in(request, OFFICER_SCOPE, acr=ACR_SUBSTANTIAL)
        request.session["signing_in_as"] = "staff"
        return await shanakht.sign_in(request, TEACHER_SCOPE)

    async def callback(request: Request) -> Response:
        try:
            result = await shanakht.finish(request)
        except OAuthError as exc:
            return show(request, 400, error=f"Sign-in failed: {exc.description or exc.error}")
        claims, token = result["claims"], result["token"]
        roles = {(r.get("department"), r.get("role")) for r in claims.get("roles") or []}
        officer = (
            request.session.pop("signing_in_as", None) == "officer"
            and (settings.department, SIGNING_ROLE) in roles
            and "signing" in str(token.get("scope", "")).split()
            and claims.get("acr") == ACR_SUBSTANTIAL
        )
        cnic = digits(str(claims.get("cnic", "")))
        request.session["user"] = {
            "sub": claims["sub"],
            "name": claims.get("name", "a civil servant"),
            "cnic": claims.get("cnic"),
            "approver": bool(cnic) and cnic in settings.approvers,
            "officer": officer,
        }
        request.session["id_token"] = token.get("id_token")
        if officer:  # kept on the server, used only to sign what this officer chooses to
            request.session["officer_token"] = token["access_token"]
        return redirect("/")

    async def logout(request: Request) -> Response:
        id_token = request.session.get("id_token")
        request.session.clear()
        return redirect(await shanakht.sign_out_url(id_token))

    async def apply(request: Request) -> Response:
        user = request.session.get("user")
        if not user or not user.get("cnic"):
            return show(request, 403, error="Sign in as a teacher first.")
        try:
            form = await check_csrf(request)
        except PermissionError as exc:
            return show(request, 403, error=str(exc))
        wanted = {
            k: form.get(k, "").strip() for k in ("post", "from_school", "to_school", "reason")
        }
        missing = [k.replace("_", " ") for k, v in wanted.items() if not v]
        if missing:
            return show(request, 400, error="Please fill in: " + ", ".join(missing) + ".")
        with desk.lock:
            number = next(desk.ids)
            desk.applications[number] = Application(
                number, user["sub"], user["name"], user["cnic"], post=wanted["post"],
                from_school=wanted["from_school"], to_school=wanted["to_school"],
                reason=wanted["reason"], submitted=date.today(),
            )  # fmt: skip
        return show(request, notice=f"Application {number} submitted.")

    def _found(request: Request, status: str) -> Application | None:
        found = desk.applications.get(int(request.path_params["number"]))
        return found if found is not None and found.status == status else None

    async def approve(request: Request) -> Response:
        user = request.session.get("user")
        if not user or not user.get("approver"):
            return show(request, 403, error="Only the department's approvers can approve.")
        try:
            await check_csrf(request)
        except PermissionError as exc:
            return show(request, 403, error=str(exc))
        found = _found(request, "submitted")
        if found is None:
            return show(request, 404, error="No such application awaits approval.")
        found.status, found.approved_by = "approved", user["name"]
        return show(request, notice=f"Application {found.id} approved; it awaits signature.")

    async def sign(request: Request) -> Response:
        user = request.session.get("user")
        token = request.session.get("officer_token")
        if not user or not user.get("officer") or not token:
            return show(request, 403, error="Sign in as a signing officer first.")
        try:
            await check_csrf(request)
        except PermissionError as exc:
            return show(request, 403, error=str(exc))
        found = _found(request, "approved")
        if found is None:
            return show(request, 404, error="No such application awaits signature.")
        today = datetime.now(UTC).date()
        order_no = f"SED/TR/{today.year}/{found.id:06d}"
        response = await shanakht_api(
            "POST",
            f"{issuer}/signing/orders/transfer",
            token,
            json={
                "department": settings.department,
                "order_no": order_no,
                "order_date": today.isoformat(),
                "teacher_name": found.teacher_name,
                "teacher_cnic": found.teacher_cnic,
                "from_school": found.from_school,
                "to_school": found.to_school,
                "post": found.post,
                "authority": settings.authority,
            },
        )
        if response.status_code != 201:
            detail = response.json().get("detail") if response.content else ""
            return show(request, 502, error=f"Shanakht did not sign it: {detail}")
        found.status, found.order_no, found.signed_by = "signed", order_no, user["name"]
        found.pdf = response.content
        found.locker = response.headers.get("shanakht-locker", "")
        where = (
            "it is in the teacher's Shanakht locker"
            if found.locker.startswith("delivered")
            else f"not in the teacher's locker ({found.locker})"
        )
        return show(request, notice=f"Order {order_no} signed; {where}.")

    async def order_pdf(request: Request) -> Response:
        user = request.session.get("user")
        found = desk.applications.get(int(request.path_params["number"]))
        if not user or found is None or found.pdf is None:
            return show(request, 404, error="No such order.")
        if user["sub"] != found.teacher_sub and not (user["approver"] or user["officer"]):
            return show(request, 403, error="That order is not yours.")
        name = (found.order_no or "order").replace("/", "-")
        return Response(
            found.pdf,
            media_type="application/pdf",
            headers={
                "Content-Disposition": f'attachment; filename="{name}.pdf"',
                "X-Content-Type-Options": "nosniff",
            },
        )

    app = Starlette(
        routes=[
            Route("/", home),
            Route("/login", login),
            Route("/callback", callback),
            Route("/logout", logout),
            Route("/applications", apply, methods=["POST"]),
            Route("/applications/{number:int}/approve", approve, methods=["POST"]),
            Route("/applications/{number:int}/sign", sign, methods=["POST"]),
            Route("/applications/{number:int}/order.pdf", order_pdf),
        ],
        middleware=[Middleware(ServerSessions, cookie="etransfer_session")],
    )
    app.state.desk = desk
    return app


def from_env() -> Starlette:
    approvers = os.environ.get("ETRANSFER_APPROVERS", "")
    return create_app(
        Settings(
            ServiceConfig.from_env("ETRANSFER"),
            approvers=frozenset(digits(c) for c in approvers.split(",") if c.strip()),
            department=os.environ.get("ETRANSFER_DEPARTMENT", "sed"),
            authority=os.environ.get("ETRANSFER_AUTHORITY", "CEO (DEA) Lahore"),
        )
    )
