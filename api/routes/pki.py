"""What relying parties fetch from the PKI, without signing in: CA certificates, the CRL, OCSP.

The URLs are the ones every certificate names in its AIA and CRL distribution point
(`signing.pki.ca.Endpoints`). OCSP takes RFC 6960's two forms: POST with the DER request as
the body, and GET with it base64-encoded in the path (appendix A.1), which caches.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote

from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.deps import RuntimeDep, capped_body, media_type
from api.problems import problem, problem_responses
from api.runtime import Runtime

# 503 until `shanakht pki init` has set the PKI up.
router = APIRouter(prefix="/pki", tags=["pki"], responses=problem_responses(503))

MAX_OCSP_REQUEST = 4096  # a request for one certificate, with a nonce, is about 100 bytes
OCSP_RESPONSE = "application/ocsp-response"


def _read(runtime: Runtime, what: str) -> bytes:
    """One read-only look at the CA: no write, so no write lock and no commit to wait for."""
    with runtime.sessions() as session:
        authority = runtime.authority(session)
        if what == "crl":
            return authority.crl()
        if what == "root":
            return authority.root().public_bytes(Encoding.DER)
        return authority.issuing()[0].public_bytes(Encoding.DER)


@router.get("/crl", response_class=Response, summary="The issuing CA's CRL (DER)")
def crl(runtime: RuntimeDep) -> Response:
    return Response(
        _read(runtime, "crl"),
        media_type="application/pkix-crl",
        headers={"Cache-Control": "public, max-age=300"},
    )


@router.get("/issuing-ca.crt", response_class=Response, summary="The issuing CA (DER)")
def issuing_ca(runtime: RuntimeDep) -> Response:
    return Response(_read(runtime, "issuing"), media_type="application/pkix-cert")


@router.get("/root-ca.crt", response_class=Response, summary="The root CA (DER)")
def root_ca(runtime: RuntimeDep) -> Response:
    return Response(_read(runtime, "root"), media_type="application/pkix-cert")


def _answer(runtime: Runtime, request_der: bytes) -> Response:
    with runtime.sessions() as session:
        body = runtime.authority(session).ocsp(request_der)
    return Response(body, media_type=OCSP_RESPONSE, headers={"Cache-Control": "no-cache"})


@router.post(
    "/ocsp",
    response_class=Response,
    summary="OCSP (RFC 6960), request in the body",
    responses=problem_responses(413, 415),
)
async def ocsp_post(request: Request, runtime: RuntimeDep) -> Response:
    body = await _query(request, "application/ocsp-request", MAX_OCSP_REQUEST)
    if isinstance(body, Response):
        return body
    return await _in_thread(runtime, body)


async def _query(request: Request, kind: str, limit: int) -> bytes | Response:
    """The DER query in the body of a POST, or the problem to answer instead."""
    if media_type(request) != kind:
        return problem(415, "Send the query as the body", f"Content-Type: {kind}")
    body = await capped_body(request, limit)
    if body is None:
        return problem(413, "The query is too large", f"at most {limit} bytes")
    return body


@router.get(
    "/ocsp/{encoded:path}",
    response_class=Response,
    summary="OCSP (RFC 6960 A.1), in the URL",
    # 404 when the path cannot be one (a newline in it, say): no route matches it.
    responses=problem_responses(404, 413),
)
async def ocsp_get(encoded: str, runtime: RuntimeDep) -> Response:
    try:
        request_der = base64.b64decode(unquote(encoded), validate=True)
    except (binascii.Error, ValueError):
        request_der = b""  # answered as malformedRequest, as a POST of garbage is
    if len(request_der) > MAX_OCSP_REQUEST:
        return problem(413, "The OCSP request is too large")
    return await _in_thread(runtime, request_der)


MAX_TSA_REQUEST = 16 * 1024


@router.post(
    "/tsa",
    response_class=Response,
    summary="RFC 3161 time-stamps by the service's own authority",
    responses=problem_responses(413, 415),
)
async def time_stamp(request: Request, runtime: RuntimeDep) -> Response:
    body = await _query(request, "application/timestamp-query", MAX_TSA_REQUEST)
    if isinstance(body, Response):
        return body
    return await run_in_threadpool(_stamp, runtime, body)


def _stamp(runtime: Runtime, query: bytes) -> Response:
    with runtime.sessions() as session:
        reply = runtime.authority(session).tsa().respond(query)
    return Response(reply, media_type="application/timestamp-reply")


async def _in_thread(runtime: Runtime, request_der: bytes) -> Response:
    """The body is read on the event loop; the database and the signature, off it."""
    return await run_in_threadpool(_answer, runtime, request_der)
