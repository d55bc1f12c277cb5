"""Domicile: an application that asks the applicant for nothing Shanakht already holds.

The applicant signs in with Shanakht; name, father's or husband's name, CNIC, date of birth
and address come verified in the ID token and userinfo. Instead of asking for a scan of the
birth certificate, the Home Department's system (client credentials, scope `locker.request`)
files a once-only request with Shanakht; the applicant approves it in Shanakht; the system
then fetches the certificate from the applicant's locker under that consent, and checks it
against the digest Shanakht lists for it.

Run on its own: `uvicorn --factory examples.domicile.app:from_env` with DOMICILE_CLIENT_ID,
_ISSUER, _BASE_URL, _KEY_FILE, _SYSTEM_CLIENT_ID and _SYSTEM_KEY_FILE set.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import threading
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from examples.relying_party import (
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

NAME = "Domicile"
SCOPE = "openid profile cnic birthdate address"
REQUEST_SCOPE = "locker.request"
BIRTH = "birth"


@dataclass
class Application:
    id: int
    applicant_sub: str
    name: str
    cnic: str
    district: str
    submitted: date
    request_id: str | None = None
    status: str = "waiting for your approval in Shanakht"
    certificate: bytes | None = None
    certificate_type: str = "application/pdf"
    certificate_note: str = ""


@dataclass
class Office:
    applications: dict[int, Application] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    lock: threading.Lock = field(default_factory=threading.Lock)


def _b64url_sha256(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def create_app(config: ServiceConfig) -> Starlette:
    shanakht = Shanakht(config)
    env = templates(Path(__file__).parent)
    office = Office()
    issuer = config.issuer

    def show(request: Request, status: int = 200, **context: Any) -> Response:
        user = request.session.get("user")
        mine = [a for a in office.applications.values() if user and a.applicant_sub == user["sub"]]
        return page(
            env,
            request,
            "domicile.html",
            status,
            service=NAME,
            colour="#1f4e9c",
            tagline="Domicile certificates, Home Department",
            details=request.session.get("details"),
            mine=mine,
            shanakht_url=issuer,
            **context,
        )

    async def home(request: Request) -> Response:
        return show(request)

    async def login(request: Request) -> Response:
        return await shanakht.sign_in(request, SCOPE)

    async def callback(request: Request) -> Response:
        try:
            result = await shanakht.finish(request)
        except OAuthError as exc:
            return show(request, 400, error=f"Sign-in failed: {exc.description or exc.error}")
        claims, token = result["claims"], result["token"]
        address = claims.get("address") or {}
        request.session["user"] = {"sub": claims["sub"], "name": claims.get("name", "")}
        request.session["details"] = {
            "name": claims.get("name"),
            "father_or_husband_name": claims.get("father_or_husband_name"),
            "cnic": claims.get("cnic"),
            "birthdate": claims.get("birthdate"),
            "address": address.get("formatted") if isinstance(address, dict) else None,
        }
        request.session["id_token"] = token.get("id_token")
        return redirect("/")

    async def logout(request: Request) -> Response:
        id_token = request.session.get("id_token")
        request.session.clear()
        return redirect(await shanakht.sign_out_url(id_token))

    async def apply(request: Request) -> Response:
        user, details = request.session.get("user"), request.session.get("details")
        if not user or not details or not details.get("cnic"):
            return show(request, 403, error="Sign in first.")
        try:
            form = await check_csrf(request)
        except PermissionError as exc:
            return show(request, 403, error=str(exc))
        district = form.get("district", "").strip()
        if not district:
            return show(request, 400, error="Please say which district you ask domicile of.")
        with office.lock:
            number = next(office.ids)
        application = Application(
            number, user["sub"], details["name"], details["cnic"], district, date.today()
        )
        # The once-only request: what we ask for, why, for how long we keep it, how many times
        # we may fetch it. The CNIC travels in the body, never in a URL.
        response = await shanakht_api(
            "POST",
            f"{issuer}/exchange/requests",
            await shanakht.system_token(REQUEST_SCOPE),
            json={
                "cnic": details["cnic"],
                "doctypes": [BIRTH],
                "purpose_code": "domicile",
                "purpose_text": f"Domicile certificate application D-{number:06d} "
                f"({district}): proof of date and place of birth",
                "data_life_days": 30,
                "valid_days": 7,
                "fetch_limit": 1,
            },
        )
        if response.status_code != 201:
            return show(request, 502, error=f"Shanakht refused the request: {response.text}")
        application.request_id = response.json()["id"]
        office.applications[number] = application
        return show(
            request,
            notice=f"Application D-{number:06d} filed. Approve our request for your birth "
            "certificate in Shanakht, then check again here.",
        )

    async def check(request: Request) -> Response:
        user = request.session.get("user")
        found = office.applications.get(int(request.path_params["number"]))
        if not user or found is None or found.applicant_sub != user["sub"]:
            return show(request, 404, error="No such application.")
        try:
            await check_csrf(request)
        except PermissionError as exc:
            return show(request, 403, error=str(exc))
        if found.certificate is not None:
            return show(request, notice="We already have your birth certificate.")
        token = await shanakht.system_token(REQUEST_SCOPE)
        state = await shanakht_api("GET", f"{issuer}/exchange/requests/{found.request_id}", token)
        body = state.json()
        if body.get("status") != "approved" or not body.get("consent_id"):
            found.status = f"request {body.get('status', 'unknown')} in Shanakht"
            return show(
                request, notice=f"Your request is {body.get('status')}: nothing to fetch yet."
            )
        consent = body["consent_id"]
        listed = await shanakht_api("GET", f"{issuer}/exchange/consents/{consent}/documents", token)
        births = [d for d in listed.json().get("documents", []) if d["doctype"] == BIRTH]
        if not births:
            found.status = "no birth certificate in your locker"
            return show(request, error="Your locker holds no issued birth certificate.")
        document = births[0]
        content = await shanakht_api("GET", document["content_url"], token)
        if content.status_code != 200 or _b64url_sha256(content.content) != document["sha256"]:
            return show(request, 502, error="The certificate did not arrive whole; try again.")
        found.certificate = content.content
        found.certificate_type = document["content_type"]
        found.certificate_note = (
            f"{document['title']}, issued by {document['issuer']} on "
            f"{document['issued_at'][:10]}, its SHA-256 as Shanakht lists it; fetched under "
            f"consent {consent}"
        )
        found.status = "birth certificate received from your Shanakht locker"
        return show(request, notice="Your birth certificate arrived from your Shanakht locker.")

    async def certificate(request: Request) -> Response:
        user = request.session.get("user")
        found = office.applications.get(int(request.path_params["number"]))
        if not user or found is None or found.applicant_sub != user["sub"] or not found.certificate:
            return show(request, 404, error="No such certificate.")
        return Response(
            found.certificate,
            media_type=found.certificate_type,
            headers={"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"},
        )

    app = Starlette(
        routes=[
            Route("/", home),
            Route("/login", login),
            Route("/callback", callback),
            Route("/logout", logout),
            Route("/applications", apply, methods=["POST"]),
            Route("/applications/{number:int}/check", check, methods=["POST"]),
            Route("/applications/{number:int}/birth-certificate", certificate),
        ],
        middleware=[Middleware(ServerSessions, cookie="domicile_session")],
    )
    app.state.office = office
    return app


def from_env() -> Starlette:
    return create_app(ServiceConfig.from_env("DOMICILE"))
