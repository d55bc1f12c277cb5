"""Audit endpoints: checkpoints, the verifier key and proofs, public; entries, by identity.

Checkpoints and proofs reveal only hashes and signed sizes, so they need no login; anyone can
hold the log to what it signed. Entries name people (by pseudonym) and what was done with their
data: a citizen reads those about themself; an officer with the `audit.reader` role reads all.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel

from api import denials
from api.challenges import refusing, unauthenticated
from api.denials import Principal
from api.deps import BIGINT_MAX, AuditLogDep, RuntimeDep, SessionDep
from api.problems import problem, problem_responses
from api.runtime import Runtime
from api.web import SESSION_COOKIE, cookie_name
from audit import AuditEntry, AuditEvent, AuditLog
from identity.oidc.errors import InvalidToken
from identity.oidc.provider import Provider
from locker.access_log import disclosed

router = APIRouter(prefix="/audit", tags=["audit"])

# A proof between fixed sizes never changes, so caches may keep it for good.
IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
NOTE_MEDIA_TYPE = "text/plain; charset=utf-8"


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


class InclusionProofBody(BaseModel):
    index: int
    size: int
    leaf_hash: str
    root: str
    proof: list[str]


class ConsistencyProofBody(BaseModel):
    from_size: int
    to_size: int
    old_root: str
    new_root: str
    proof: list[str]


@router.get("/checkpoint", response_class=PlainTextResponse)
def checkpoint(log: AuditLogDep) -> PlainTextResponse:
    """The latest signed checkpoint, as a C2SP signed note (one is issued if there is none)."""
    signed = log.latest_checkpoint() or log.checkpoint()
    return PlainTextResponse(
        signed.note, media_type=NOTE_MEDIA_TYPE, headers={"Cache-Control": "no-cache"}
    )


@router.get("/key", response_class=PlainTextResponse)
def key(runtime: RuntimeDep) -> PlainTextResponse:
    """The checkpoint verifier key: `<name>+<hex key hash>+<base64(0x01 || Ed25519 key)>`; the
    version that signs now (`/audit/keys` lists every version)."""
    return PlainTextResponse(runtime.audit_signer.verifier_key + "\n", media_type=NOTE_MEDIA_TYPE)


@router.get("/keys", response_class=PlainTextResponse)
def keys(runtime: RuntimeDep) -> PlainTextResponse:
    """Every version of the checkpoint verifier key, one a line, the one that signs now first:
    a checkpoint signed before a rotation of the key checks under an older line."""
    body = "".join(f"{vkey}\n" for vkey in runtime.audit_verifier_keys)
    return PlainTextResponse(body, media_type=NOTE_MEDIA_TYPE)


@router.get("/proofs/inclusion", response_model=InclusionProofBody)
def inclusion_proof(
    log: AuditLogDep,
    response: Response,
    index: Annotated[int, Query(ge=0, description="the entry's sequence number")],
    size: Annotated[int, Query(ge=1, description="the tree size to prove against")],
) -> InclusionProofBody:
    """Proof that entry `index` is in the tree of `size` entries (RFC 9162 2.1.3)."""
    proof = log.inclusion_proof(index, size)
    response.headers.update(IMMUTABLE)
    return InclusionProofBody(
        index=proof.index,
        size=proof.size,
        leaf_hash=_b64(proof.leaf_hash),
        root=_b64(proof.root),
        proof=[_b64(h) for h in proof.proof],
    )


@router.get("/proofs/consistency", response_model=ConsistencyProofBody)
def consistency_proof(
    log: AuditLogDep,
    response: Response,
    from_size: Annotated[int, Query(alias="from", ge=1, description="the older tree size")],
    to_size: Annotated[int, Query(alias="to", ge=1, description="the newer tree size")],
) -> ConsistencyProofBody:
    """Proof that the tree of `to` entries extends the tree of `from` (RFC 9162 2.1.4)."""
    proof = log.consistency_proof(from_size, to_size)
    response.headers.update(IMMUTABLE)
    return ConsistencyProofBody(
        from_size=proof.old_size,
        to_size=proof.new_size,
        old_root=_b64(proof.old_root),
        new_root=_b64(proof.new_root),
        proof=[_b64(h) for h in proof.proof],
    )


def _readable_page(
    log: AuditLog, subject: str | None, after: int, limit: int, now: datetime | None
) -> list[AuditEntry]:
    """Up to `limit` entries after `after`. With `now` (a citizen reading their own), entries
    still held back (a legal access whose disclosure is delayed, `disclose_after`) are left
    out, and more are read in their place, so neither a short page nor a cursor past the
    last entry shown tells that one is there."""
    shown: list[AuditEntry] = []
    while len(shown) < limit:
        page = log.page(subject=subject, after=after, limit=limit)
        shown += [e for e in page if now is None or disclosed(e.event.details, now)]
        if len(page) < limit:
            break
        after = page[-1].seq
    return shown[:limit]


class EntriesPage(BaseModel):
    entries: list[dict[str, Any]]
    next_after: int | None


def _reader(request: Request, runtime: Runtime, provider: Provider) -> tuple[str, bool]:
    """(the reader's pseudonym, whether they may read everyone's entries); 401 otherwise."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    citizen_id = None
    if scheme.lower() == "bearer" and value:
        access = provider.tokens.verify_access_token(value.strip())
        if access.dpop_jkt:
            raise InvalidToken("DPoP-bound tokens are not accepted here yet")
        citizen_id = access.citizen_id
    else:
        sso = provider.sessions.current(request.cookies.get(cookie_name(runtime, SESSION_COOKIE)))
        citizen_id = sso.citizen_id if sso else None
    account = provider.accounts.by_id(citizen_id) if citizen_id else None
    if account is None:
        raise InvalidToken("sign in, or send a citizen's access token")
    return account.pseudonym, provider.roles.has(account.id, "audit.reader")


@router.get("/entries", response_model=EntriesPage, responses=problem_responses(401, 403))
def entries(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    after: Annotated[
        int, Query(ge=-1, le=BIGINT_MAX, description="return entries after this seq")
    ] = -1,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    subject: Annotated[str | None, Query(description="auditors: one person's entries")] = None,
) -> EntriesPage | JSONResponse:
    """Entries about the signed-in citizen, or any entries for an `audit.reader`."""
    provider = runtime.provider(session)
    try:
        me, auditor = _reader(request, runtime, provider)
    except InvalidToken as exc:
        if not unauthenticated(request):  # a token that did not verify: counted only
            denials.invalid_token()
        refused = problem(401, "Sign in to read audit entries", exc.description)
        refused.headers["WWW-Authenticate"] = refusing(request, exc.description)
        return refused
    if not auditor:
        if subject not in (None, me):
            denials.record_in(session, request, runtime, Principal.citizen(me), "role:audit.reader")
            return problem(403, "You may read only the entries about yourself")
        subject = me
    log = runtime.audit_log(session)
    page = _readable_page(log, subject, after, limit, runtime.clock() if not auditor else None)
    if auditor:
        log.append(
            AuditEvent(
                actor=f"citizen:{me}",
                action="audit.entries.read",
                subject=subject,
                purpose="audit",
                details={"after": after, "count": len(page)},
            )
        )
    return EntriesPage(
        entries=[e.to_json() for e in page],
        next_after=page[-1].seq if len(page) == limit else None,
    )
