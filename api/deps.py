"""FastAPI dependencies: the runtime, a database session per request, the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from api.runtime import Runtime
from audit import AuditLog


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    """One transaction per request (see `Runtime.transaction` for what an error keeps)."""
    with runtime.transaction() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_audit_log(runtime: RuntimeDep, session: SessionDep) -> AuditLog:
    return runtime.audit_log(session)


AuditLogDep = Annotated[AuditLog, Depends(get_audit_log)]


def settle(session: Session, exc: Exception) -> None:
    """For a route that answers an error itself: undo the request's writes, unless the error
    says they must stand (see `Runtime.transaction`)."""
    if not getattr(exc, "keep_transaction", False):
        session.rollback()
