"""The citizen's "who saw my data" page: every access to their locker, newest first.

The page's counterpart of `api.routes.access_log`: it reads the same items through the same
domain view (`locker.access_log`), so an entry under a disclosure delay appears only once its
delay has ended, and its CSV export and proofs are the JSON routes' own (`export_csv`,
`proof_bundle`). The filters are a GET form, so a filtered view is a link the citizen can keep;
input that cannot be a filter (a date that is not one, a window that ends before it starts) is
said beside its field with status 400, never taken for "no filter".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from api.deps import FormParams, RuntimeDep, SessionDep
from api.i18n import Text
from api.local_time import moment
from api.routes.access_log import PRIVATE, export_csv, proof_bundle
from api.routes.exchange import client_name
from api.runtime import Runtime
from api.signed_in import SignedInDep, menu
from api.web import render
from locker import access_log
from locker.access_log import AccessFilter, AccessItem, AccessLogError
from locker.doctypes import document_type

router = APIRouter(tags=["access pages"], include_in_schema=False)

PAGE_SIZE = 50
BASES = ("owner", "nominee", "issuer", "consent", "legal", "share")
# The kinds of action a citizen can narrow the view to: prefixes of the entries' actions.
ACTIONS = (
    "locker.document",
    "locker.exchange",
    "locker.exchange.fetched",
    "locker.legal",
    "locker.share",
    "locker.nominee",
)
FILTERS = ("organisation", "action", "since", "until", "basis")
MAX_ORGANISATION = 100


@dataclass
class Asked:
    """The filters as typed (to show them again) and as understood, with what is wrong."""

    values: dict[str, str]
    filters: AccessFilter | None = None
    before: int | None = None
    errors: dict[str, Text] = field(default_factory=dict)


def _day(values: dict[str, str], name: str, errors: dict[str, Text]) -> date | None:
    typed = values[name]
    if not typed:
        return None
    try:
        return date.fromisoformat(typed)
    except ValueError:
        errors[name] = Text("Enter a date as year-month-day, for example 2026-03-31.")
        return None


def _asked(params: dict[str, str]) -> Asked:
    values = {name: params.get(name, "").strip() for name in FILTERS}
    errors: dict[str, Text] = {}
    since, until = _day(values, "since", errors), _day(values, "until", errors)
    if since is not None and until is not None and since > until:
        errors["until"] = Text("The end date is before the start date.")
    if values["basis"] and values["basis"] not in BASES:
        errors["basis"] = Text("Choose one of the listed kinds of basis.")
    if values["action"] and values["action"] not in ACTIONS:
        errors["action"] = Text("Choose one of the listed kinds of action.")
    if len(values["organisation"]) > MAX_ORGANISATION:
        errors["organisation"] = Text("Choose one of the listed organisations.")
    before = params.get("before", "")
    asked = Asked(values, before=int(before) if before.isdigit() else None, errors=errors)
    if not errors:
        try:
            asked.filters = AccessFilter(
                organisation=values["organisation"] or None, action=values["action"] or None,
                since=since, until=until, basis=values["basis"] or None,
            )  # fmt: skip
        except AccessLogError:  # the checks above come first; this is the domain's own word
            errors["until"] = Text("The end date is before the start date.")
    return asked


def _query(values: dict[str, str], **more: str) -> str:
    return urlencode({k: v for k, v in {**values, **more}.items() if v})


def _organisation(runtime: Runtime, session: Session, departments: dict[str, str], org: str) -> str:
    if org in departments:
        return departments[org]
    return client_name(runtime.provider(session), org)


def _document(item: AccessItem) -> str:
    if item.doctype:
        try:
            return document_type(item.doctype).name
        except LookupError:
            return item.doctype
    return ""


def _row(item: AccessItem, names: dict[str, str]) -> dict[str, Any]:
    kind, _sep, detail = (item.basis or "").partition(":")
    return {
        "seq": item.seq,
        "time": moment(item.time, seconds=True),
        "action": item.action,
        "organisation": item.organisation,
        "organisation_name": names.get(item.organisation or "", item.organisation),
        "official": item.official,
        "basis_kind": kind,
        "basis_detail": detail,
        "purpose": item.purpose,
        "document": _document(item),
        "resource": item.document,
        "outcome": item.outcome,
    }


def _page(
    request: Request,
    runtime: Runtime,
    session: Session,
    owner: str,
    asked: Asked,
    menu_items: Any,
) -> Response:
    departments = dict(runtime.provider(session).roles.departments())
    items: list[AccessItem] = []
    next_before = None
    if asked.filters is not None:
        page = access_log.read(
            runtime.audit_log(session), owner, now=runtime.clock(), filters=asked.filters,
            before=asked.before, limit=PAGE_SIZE,
        )  # fmt: skip
        items, next_before = page.items, page.next_before
    seen = {i.organisation for i in items if i.organisation and i.organisation != "citizen"}
    chosen = asked.values["organisation"]
    organisations = sorted(seen | set(departments) | ({chosen} if chosen else set()))
    names = {o: _organisation(runtime, session, departments, o) for o in organisations}
    return render(
        request,
        runtime,
        "access.html",
        status_code=400 if asked.errors else 200,
        menu=menu_items,
        values=asked.values,
        errors=asked.errors,
        error=Text("Some filters cannot be used; see below.") if asked.errors else None,
        rows=[_row(i, names) for i in items],
        organisations=sorted(((o, names[o]) for o in organisations), key=lambda p: p[1]),
        actions=ACTIONS,
        bases=BASES,
        filtered=any(asked.values.values()),
        older=f"/access?{_query(asked.values, before=str(next_before))}" if next_before else None,
        newest=f"/access?{_query(asked.values)}" if asked.before is not None else None,
        export=f"/access/export.csv?{_query(asked.values)}".rstrip("?"),
    )


@router.get("/access", response_model=None)
def access_page(
    request: Request, runtime: RuntimeDep, session: SessionDep, me: SignedInDep, params: FormParams
) -> Response:
    asked = _asked(params)
    return _page(request, runtime, session, me.account.pseudonym, asked, menu(runtime, session, me))


@router.get("/access/export.csv", response_model=None)
def export(
    request: Request, runtime: RuntimeDep, session: SessionDep, me: SignedInDep, params: FormParams
) -> Response:
    """The CSV export of the JSON API, with the page's filters."""
    asked = _asked(params)
    if asked.filters is None:
        owner, items = me.account.pseudonym, menu(runtime, session, me)
        return _page(request, runtime, session, owner, asked, items)
    return export_csv(request, runtime, session, me.account.pseudonym, asked.filters, asked.before)


@router.get("/access/{seq}/proof.json", response_model=None)
def proof(
    seq: Annotated[int, Path(ge=0)],
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    me: SignedInDep,
) -> Response:
    """Entry `seq` with its inclusion proof, as the JSON API's bundle, to save and check."""
    bundle = proof_bundle(runtime, session, me.account.pseudonym, seq)
    if bundle is None:
        return render(
            request,
            runtime,
            "message.html",
            status_code=404,
            heading=Text("No such entry"),
            message=Text("That entry is not in the record of who saw your data."),
            link="/access",
            link_text=Text("Back to who saw my data"),
        )
    return JSONResponse(
        bundle.model_dump(),
        headers={
            **PRIVATE,
            "Content-Disposition": f'attachment; filename="access-proof-{seq}.json"',
        },
    )
