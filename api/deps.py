"""FastAPI dependencies: the runtime, a database session per request, the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.orm import Session

from api.runtime import Runtime
from audit import AuditLog
from identity.oidc.params import Params


async def get_runtime(request: Request) -> Runtime:
    """Async, so that FastAPI does not hop to a worker thread just to read an attribute."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]

# The largest id or sequence number a column holds (BIGINT; SQLite's INTEGER is as wide). A
# larger one names nothing, and the database driver would not even send it (OverflowError, a
# 500), so routes bound their integer ids by it and a larger one is a malformed request (400).
BIGINT_MAX = 2**63 - 1


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    """One transaction per request (see `Runtime.transaction` for what an error keeps)."""
    with runtime.transaction() as session:
        yield session


# scope="function": the transaction commits when the handler returns, before the response is
# sent. With the default ("request") it would commit only after the response and its background
# tasks, so a logout would not have taken effect while back-channel notices were being sent,
# and the next request could still use the ended session.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


async def form_params(request: Request) -> Params:
    """The request's parameters: the form for POST, the query otherwise, with the names sent
    more than once (`identity.oidc.params`: the OAuth endpoints refuse them). An async
    dependency, so the handlers that use it can be plain functions, run off the event loop,
    since their database calls block."""
    if request.method == "POST":
        form = await request.form()
        return Params((k, v) for k, v in form.multi_items() if isinstance(v, str))
    return Params(request.query_params.multi_items())


FormParams = Annotated[Params, Depends(form_params)]

URLENCODED = "application/x-www-form-urlencoded"
MAX_FIELDS = 1000  # as Starlette's form parser


# Far more than a login form holds (a CNIC, a password of at most 128 characters, each up to
# 12 bytes percent-encoded, the CSRF token and the authorization request to go back to).
MAX_FORM_BYTES = 64 * 1024


async def form_fields(request: Request) -> Params:
    """A POSTed form's text fields, for a hot route (the login). A urlencoded body is parsed
    in one call, decoded as Starlette's parser does (escapes as UTF-8, the last of repeated
    names wins); FastAPI's `Form()` parameters cost 0.1 ms more on the login form
    (python-multipart's streaming parser, then a validation per field). Other encodings
    (multipart) go through Starlette's parser. `required` then names what is missing. The
    body is read up to MAX_FORM_BYTES and refused past it, never held whole."""
    if media_type(request) != URLENCODED:
        form = await request.form()
        return Params((k, v) for k, v in form.multi_items() if isinstance(v, str))
    raw = await capped_body(request, MAX_FORM_BYTES)
    if raw is None:
        raise HTTPException(413, f"A form is at most {MAX_FORM_BYTES} bytes.")
    body = raw.decode("latin-1")
    try:
        return Params(parse_qsl(body, keep_blank_values=True, max_num_fields=MAX_FIELDS))
    except ValueError:
        message = f"Too many fields. Maximum number of fields is {MAX_FIELDS}."
        raise HTTPException(400, message) from None


FormFields = Annotated[Params, Depends(form_fields)]


def required(form: dict[str, str], *names: str) -> list[str]:
    """The values of `names` in `form`; a missing one is refused as a missing `Form()`
    parameter is (RequestValidationError: the "form was incomplete" page, or a 400)."""
    missing = [name for name in names if name not in form]
    if missing:
        raise RequestValidationError(
            [
                {"type": "missing", "loc": ("body", name), "msg": "Field required"}
                for name in missing
            ]
        )
    return [form[name] for name in names]


def get_audit_log(runtime: RuntimeDep, session: SessionDep) -> AuditLog:
    return runtime.audit_log(session)


AuditLogDep = Annotated[AuditLog, Depends(get_audit_log)]


def settle(session: Session, exc: Exception) -> None:
    """For a route that answers an error itself: undo the request's writes, unless the error
    says they must stand (see `Runtime.transaction`)."""
    if not getattr(exc, "keep_transaction", False):
        session.rollback()


async def capped_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None once it passes `limit` bytes: read as it arrives, so an
    oversized body is refused without being held (a declared length is refused at once)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()
