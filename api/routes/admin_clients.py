"""E-service clients: list, register and remove, as `shanakht clients add|list|remove` does.

The form is checked here field by field, so each problem is named beside its field in the
reader's language; the registry (`identity.oidc.clients`) still checks everything again and
has the last word. A client secret is drawn once, on the page that answers the registration,
and is kept nowhere but as its hash: it is not in a URL, a redirect, a log line or the audit
entry, and no later page can show it again.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from api.administration import default_scopes
from api.deps import RuntimeDep, SessionDep
from api.i18n import Text
from api.refusals import refusal
from api.routes.admin_common import AdminDep, CsrfForm, FormText, page, record
from api.runtime import Runtime
from api.signed_in import SignedIn
from api.web import check_csrf, render
from identity.oidc.clients import (
    CITIZEN_SCOPES,
    CLIENT_SECRET_BASIC,
    ESERVICE,
    PRIVATE_KEY_JWT,
    SERVICE,
    ClientConfigError,
    NewClient,
)
from identity.reconciled import REGISTRATION

router = APIRouter()

CLIENT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")  # as the registry requires
API_SCOPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
MAX_NAME = 120
MAX_JWKS = 20_000
KINDS = (ESERVICE, SERVICE)
METHODS = (PRIVATE_KEY_JWT, CLIENT_SECRET_BASIC)
ALGORITHMS = ("RS256", "ES256")
DEFAULT_ALG = ALGORITHMS[0]
FIELDS = (
    "client_id", "name", "kind", "auth_method", "jwks", "redirect_uris", "post_logout_uris",
    "scopes", "backchannel_logout_uri", "id_token_alg", "department",
)  # fmt: skip


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _uri_problem(uri: str) -> Text | None:
    """What is wrong with a redirect or logout URI, as the registry would see it."""
    parts = urlsplit(uri)
    local = parts.hostname in {"127.0.0.1", "localhost", "::1"}
    if parts.scheme != "https" and not (parts.scheme == "http" and local):
        return Text(
            "%(uri)s: use an https address (plain http only for 127.0.0.1 or localhost).",
            uri=uri,
        )
    if not parts.netloc or parts.fragment:
        return Text("%(uri)s: give the whole address, without a # part.", uri=uri)
    return None


def _check(form: dict[str, Any], departments: set[str]) -> dict[str, Text]:
    """Each field's problem, in words for the page (the registry checks all again)."""
    errors: dict[str, Text] = {}
    kind, method = form["kind"], form["auth_method"]
    if not CLIENT_ID.match(form["client_id"]):
        errors["client_id"] = Text(
            "A client id is 2 to 63 lower-case letters, digits and dashes, such as e-transfer."
        )
    if not form["name"]:
        errors["name"] = Text("Give the name citizens will see on the consent page.")
    elif len(form["name"]) > MAX_NAME:
        errors["name"] = Text("Keep the name under %(n)s characters.", n=MAX_NAME)
    if kind not in KINDS:
        errors["kind"] = Text("Choose an e-service or a department system.")
    if method not in METHODS:
        errors["auth_method"] = Text("Choose private_key_jwt or client_secret_basic.")
    if method == PRIVATE_KEY_JWT:
        problem = _jwks_problem(form["jwks"])
        if problem is not None:
            errors["jwks"] = problem
    for field, uris in (("redirect_uris", form["redirect_uris"]),
                        ("post_logout_uris", form["post_logout_uris"])):  # fmt: skip
        problems = [p for p in map(_uri_problem, uris) if p is not None]
        if problems:
            errors[field] = problems[0]
    if kind == ESERVICE and not form["redirect_uris"] and "redirect_uris" not in errors:
        errors["redirect_uris"] = Text("An e-service needs at least one redirect URI.")
    if kind == SERVICE and form["redirect_uris"]:
        errors["redirect_uris"] = Text(
            "A department system signs no one in: leave the redirect URIs empty."
        )
    scopes = form["scopes"] or list(default_scopes(kind))
    if kind == ESERVICE:
        unknown = sorted(set(scopes) - CITIZEN_SCOPES)
        if unknown:
            errors["scopes"] = Text(
                "Unknown scopes: %(scopes)s. An e-service may ask for: %(known)s.",
                scopes=" ".join(unknown), known=" ".join(sorted(CITIZEN_SCOPES)),
            )  # fmt: skip
        elif "openid" not in scopes:
            errors["scopes"] = Text("An e-service's scopes include openid.")
    else:
        unknown = sorted(s for s in scopes if not API_SCOPE.match(s))
        if unknown:
            errors["scopes"] = Text(
                "Unknown scopes: %(scopes)s. A department system's scopes look like locker.fetch.",
                scopes=" ".join(unknown),
            )
    if form["backchannel_logout_uri"]:
        problem = _uri_problem(form["backchannel_logout_uri"])
        if problem is not None:
            errors["backchannel_logout_uri"] = problem
    if form["id_token_alg"] not in ALGORITHMS:
        errors["id_token_alg"] = Text("Choose RS256 or ES256.")
    if form["department"]:
        if kind != SERVICE:
            errors["department"] = Text(
                "Only a department system belongs to a department; leave this empty."
            )
        elif form["department"] not in departments:
            errors["department"] = Text("Choose one of the departments in the list.")
    return errors


def _jwks_problem(text: str) -> Text | None:
    if not text:
        return Text("private_key_jwt needs the client's public keys (a JWKS, as JSON).")
    if len(text) > MAX_JWKS:
        return Text("That JWKS is too long.")
    try:
        value = json.loads(text)
    except ValueError:
        return Text('That is not JSON. Paste the JWKS, such as {"keys": [...]}.')
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list):
        return Text('A JWKS is a JSON object with a "keys" list.')
    return None


def _form(**fields: Any) -> dict[str, Any]:
    return {
        "client_id": fields["client_id"].strip(),
        "name": " ".join(fields["name"].split()),
        "kind": fields["kind"],
        "auth_method": fields["auth_method"],
        "jwks": fields["jwks"].strip(),
        "redirect_uris": _lines(fields["redirect_uris"]),
        "post_logout_uris": _lines(fields["post_logout_uris"]),
        "scopes": list(dict.fromkeys(fields["scopes"].split())),
        "backchannel_logout_uri": fields["backchannel_logout_uri"].strip(),
        "id_token_alg": fields["id_token_alg"],
        "department": fields["department"],
        "require_par": bool(fields["require_par"]),
        "require_dpop": bool(fields["require_dpop"]),
    }


def _new_page(
    request: Request,
    runtime: Runtime,
    session: Session,
    me: SignedIn,
    form: dict[str, Any],
    errors: dict[str, Text],
    status_code: int = 200,
) -> Response:
    shown = {
        **form,
        "redirect_uris": "\n".join(form["redirect_uris"]),
        "post_logout_uris": "\n".join(form["post_logout_uris"]),
        "scopes": " ".join(form["scopes"]),
    }
    return page(
        request, runtime, session, me, "admin_client_new.html", status_code=status_code,
        form=shown, errors=errors, departments=runtime.provider(session).roles.departments(),
        citizen_scopes=sorted(CITIZEN_SCOPES),
    )  # fmt: skip


@router.get("/admin/clients", response_model=None)
def clients_page(
    request: Request, runtime: RuntimeDep, session: SessionDep, me: AdminDep, removed: str = ""
) -> Response:
    clients = runtime.provider(session).clients.all()
    notice = Text("Client removed.") if removed else None
    return page(request, runtime, session, me, "admin_clients.html", clients=clients,
                notice=notice)  # fmt: skip


@router.get("/admin/clients/new", response_model=None)
def new_client_page(
    request: Request, runtime: RuntimeDep, session: SessionDep, me: AdminDep
) -> Response:
    blank = _form(
        client_id="", name="", kind=ESERVICE, auth_method=PRIVATE_KEY_JWT, jwks="",
        redirect_uris="", post_logout_uris="", scopes="openid profile",
        backchannel_logout_uri="", id_token_alg=DEFAULT_ALG, department="",
        require_par="", require_dpop="",
    )  # fmt: skip
    return _new_page(request, runtime, session, me, blank, {})


@router.post("/admin/clients/new", response_model=None)
def add_client(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: AdminDep,
    client_id: FormText = "",
    name: FormText = "",
    kind: FormText = ESERVICE,
    auth_method: FormText = PRIVATE_KEY_JWT,
    jwks: FormText = "",
    redirect_uris: FormText = "",
    post_logout_uris: FormText = "",
    scopes: FormText = "",
    backchannel_logout_uri: FormText = "",
    id_token_alg: FormText = DEFAULT_ALG,
    department: FormText = "",
    require_par: Annotated[str, Form()] = "",
    require_dpop: Annotated[str, Form()] = "",
    csrf: CsrfForm = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    form = _form(
        client_id=client_id, name=name, kind=kind, auth_method=auth_method, jwks=jwks,
        redirect_uris=redirect_uris, post_logout_uris=post_logout_uris, scopes=scopes,
        backchannel_logout_uri=backchannel_logout_uri, id_token_alg=id_token_alg,
        department=department, require_par=require_par, require_dpop=require_dpop,
    )  # fmt: skip
    provider = runtime.provider(session)
    known = {d for d, _ in provider.roles.departments()}
    errors = _check(form, known)
    if not errors:
        new = NewClient(
            id=form["client_id"],
            name=form["name"],
            kind=form["kind"],
            auth_method=form["auth_method"],
            redirect_uris=form["redirect_uris"],
            post_logout_redirect_uris=form["post_logout_uris"],
            scopes=form["scopes"] or default_scopes(form["kind"]),
            jwks=json.loads(form["jwks"]) if form["auth_method"] == PRIVATE_KEY_JWT else None,
            backchannel_logout_uri=form["backchannel_logout_uri"] or None,
            id_token_alg=form["id_token_alg"],
            require_par=form["require_par"],
            require_dpop=form["require_dpop"],
            department=form["department"] or None,
        )
        try:
            client, secret = provider.clients.add(new)
        except ClientConfigError as exc:  # the registry's last word, beside its field
            said = refusal(exc)
            errors[said.beside(FIELDS) or "client_id"] = said.words
    if errors:
        return _new_page(request, runtime, session, me, form, errors, status_code=422)
    record(
        runtime, session, me, "identity.client.registered", resource=f"client:{client.id}",
        details={"kind": client.kind, "auth_method": client.auth_method,
                 "scopes": sorted(client.scopes),
                 REGISTRATION: provider.clients.registration(client.id)},
    )  # fmt: skip
    # Drawn here once, never redirected to: the secret exists only in this response.
    return page(request, runtime, session, me, "admin_client_created.html",
                client=client, secret=secret)  # fmt: skip


@router.get("/admin/clients/{client_id}/remove", response_model=None)
def remove_client_page(
    request: Request, runtime: RuntimeDep, session: SessionDep, me: AdminDep, client_id: str
) -> Response:
    client = runtime.provider(session).clients.get(client_id)
    if client is None:
        return _no_client(request, runtime)
    return page(request, runtime, session, me, "admin_client_remove.html", client=client)


@router.post("/admin/clients/{client_id}/remove", response_model=None)
def remove_client(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: AdminDep,
    client_id: str,
    csrf: CsrfForm = "",
) -> Response:
    check_csrf(request, runtime, csrf)
    if not runtime.provider(session).clients.remove(client_id):
        return _no_client(request, runtime)
    record(runtime, session, me, "identity.client.removed", resource=f"client:{client_id}")
    return RedirectResponse("/admin/clients?removed=1", status_code=303)


def _no_client(request: Request, runtime: Runtime) -> Response:
    return render(
        request, runtime, "message.html", status_code=404,
        heading=Text("No such client"),
        message=Text("No e-service client is registered under that id; it may have been "
                     "removed already."),
        link="/admin/clients", link_text=Text("E-service clients"),
    )  # fmt: skip
