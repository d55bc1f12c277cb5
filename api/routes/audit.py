"""Public audit endpoints: checkpoints, the verifier key and proofs.

They reveal only hashes and signed sizes, so they need no login; anyone can hold the log to
what it signed. Reading the entries themselves needs an identity and comes with it.
"""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from api.deps import AuditLogDep, RuntimeDep

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
    """The checkpoint verifier key: `<name>+<hex key hash>+<base64(0x01 || Ed25519 key)>`."""
    return PlainTextResponse(runtime.audit_signer.verifier_key + "\n", media_type=NOTE_MEDIA_TYPE)


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
