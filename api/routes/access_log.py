"""The citizen's "who accessed my data" endpoints: their locker entries, and a proof of each.

A citizen's token with the `locker` scope reads only entries about its own holder; nothing here
takes a pseudonym from the request. The list and its CSV export answer the same items; the
proof answers the bundle `shanakht audit prove` prints (plus the entry's exact bytes in
base64), so one outside checker serves both: it needs nothing from us but the verifier key,
which it can compare with the one `/audit/key` publishes.
"""

from __future__ import annotations

import base64
import csv
import io
from datetime import date
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from api.bearer import citizen
from api.deps import BIGINT_MAX, RuntimeDep, SessionDep
from api.problems import problem, problem_responses
from api.runtime import Runtime
from locker import access_log
from locker.access_log import COLUMNS, AccessFilter, AccessItem, AccessLogError

# A citizen's token is required (401 without it, 403 without the locker scope).
router = APIRouter(
    prefix="/locker/access-log", tags=["locker"], responses=problem_responses(401, 403)
)

SCOPE = "locker"
PRIVATE = {"Cache-Control": "no-store"}  # personal data: no cache keeps it
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
# A cell a spreadsheet would run as a formula (OWASP "CSV injection"): purposes and names are
# written by other people, so the export quotes them as text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class AccessItemBody(BaseModel):
    seq: int
    time: str
    action: str
    organisation: str | None
    official: str | None
    basis: str | None
    purpose: str | None
    document: str | None
    doctype: str | None
    fields: str | None
    output: str | None
    outcome: str


class AccessLogPage(BaseModel):
    items: list[AccessItemBody]
    next_before: int | None


class ProofBundle(BaseModel):
    """`shanakht audit prove`'s bundle: check the checkpoint's signature with `verifier_key`,
    then the inclusion of SHA-256(0x00 || entry) at `index` under the checkpoint's root."""

    seq: int
    entry: str
    entry_base64: str
    index: int
    size: int
    leaf_hash: str
    proof: list[str]
    checkpoint: str
    verifier_key: str


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def _body(item: AccessItem) -> AccessItemBody:
    return AccessItemBody(**dict(zip(COLUMNS, item.row(), strict=True)))


def _cell(value: str | int | None) -> str | int:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _csv(items: list[AccessItem]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows([_cell(v) for v in item.row()] for item in items)
    return out.getvalue()


def _export(request: Request, items: list[AccessItem], next_before: int | None) -> Response:
    """The items as a CSV attachment. A capped export says so in its headers, with a link
    (RFC 8288) to the rest: same filters, `before` the last row."""
    headers = {
        **PRIVATE,
        "Content-Disposition": 'attachment; filename="access-log.csv"',
    }
    if next_before is not None:
        query = {k: v for k, v in request.query_params.items() if k != "before"}
        query["before"] = str(next_before)
        headers["Link"] = f'<{request.url.path}?{urlencode(query)}>; rel="next"'
        headers["Shanakht-Export-Truncated"] = (
            f"{len(items)} rows; older entries follow with before={next_before}"
        )
    return Response(_csv(items), media_type=CSV_MEDIA_TYPE, headers=headers)


@router.get(
    "",
    response_model=AccessLogPage,
    responses={200: {"content": {"text/csv": {}}, "description": "the page, or the CSV export"}},
)
def list_access(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    before: Annotated[
        int | None, Query(ge=0, le=BIGINT_MAX, description="entries older than this seq")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="items per page (JSON)")] = 50,
    organisation: Annotated[str | None, Query(max_length=100)] = None,
    action: Annotated[str | None, Query(max_length=100, description="a prefix")] = None,
    since: Annotated[date | None, Query(description="from this day (UTC)")] = None,
    until: Annotated[date | None, Query(description="to this day (UTC), included")] = None,
    basis: Annotated[
        Literal["owner", "nominee", "issuer", "consent", "legal", "share"] | None, Query()
    ] = None,
    output_format: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> AccessLogPage | Response:
    """Who read, issued or fetched the citizen's documents, newest first. `format=csv` exports
    every match (up to 10,000 rows a file) instead of one page."""
    caller = citizen(request, runtime, session, scope=SCOPE)
    try:
        filters = AccessFilter(
            organisation=organisation, action=action, since=since, until=until, basis=basis
        )
    except AccessLogError as exc:
        return problem(400, "The request is malformed", str(exc))
    if output_format == "csv":
        return export_csv(request, runtime, session, caller.pseudonym, filters, before)
    page = access_log.read(
        runtime.audit_log(session), caller.pseudonym, now=runtime.clock(), filters=filters,
        before=before, limit=limit,
    )  # fmt: skip
    body = AccessLogPage(items=[_body(i) for i in page.items], next_before=page.next_before)
    return JSONResponse(body.model_dump(), headers=PRIVATE)


@router.get("/{seq}/proof", response_model=ProofBundle, responses=problem_responses(404))
def prove(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    seq: Annotated[int, Path(ge=0, le=BIGINT_MAX, description="the entry's sequence number")],
) -> ProofBundle | Response:
    """Entry `seq` of the citizen's access log with its inclusion proof against a signed
    checkpoint (one is signed now if none covers the entry yet)."""
    caller = citizen(request, runtime, session, scope=SCOPE)
    bundle = proof_bundle(runtime, session, caller.pseudonym, seq)
    if bundle is None:
        return problem(404, "No such entry in your access log")
    return JSONResponse(bundle.model_dump(), headers=PRIVATE)


# Shared with the citizen's "who accessed my data" page (api/routes/access_pages.py).


def export_csv(
    request: Request,
    runtime: Runtime,
    session: Session,
    owner: str,
    filters: AccessFilter,
    before: int | None,
) -> Response:
    """`owner`'s entries matching `filters` (older than `before`) as the CSV attachment."""
    export = access_log.read(
        runtime.audit_log(session), owner, now=runtime.clock(), filters=filters, before=before,
        limit=access_log.EXPORT_CAP, scan_budget=access_log.EXPORT_SCAN,
    )  # fmt: skip
    return _export(request, export.items, export.next_before)


def proof_bundle(runtime: Runtime, session: Session, owner: str, seq: int) -> ProofBundle | None:
    """Entry `seq` of `owner`'s access log with its inclusion proof; None if it is not theirs
    to see (or does not exist)."""
    log = runtime.audit_log(session)
    entry = access_log.find(log, owner, seq, now=runtime.clock())
    if entry is None:
        return None
    signed = log.checkpoint_covering(seq)
    proof = log.inclusion_proof(seq, signed.checkpoint.size)
    data = entry.to_bytes()
    return ProofBundle(
        seq=seq,
        entry=data.decode(),
        entry_base64=_b64(data),
        index=proof.index,
        size=proof.size,
        leaf_hash=_b64(proof.leaf_hash),
        proof=[_b64(h) for h in proof.proof],
        checkpoint=signed.note,
        verifier_key=runtime.checkpoint_key_of(signed.note),
    )
