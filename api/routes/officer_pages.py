"""The department officer's desk (/officer): what this officer may do, department by
department, and the pages that do it (issue and revoke documents, once-only requests, signing
transfer orders, the department's certificates), each in its own module.

    /officer                                  the desk
    /officer/{department}/issue               issue a document to a CNIC (locker.issuer)
    /officer/{department}/revoke              revoke a document it issued (locker.issuer)
    /officer/{department}/bulk                issue a ZIP of documents (locker.issuer)
    /officer/{department}/requests            once-only requests (locker.issuer or .legal)
    /officer/{department}/legal               open documents on a legal basis (.legal, 2FA)
    /officer/{department}/sign                sign a transfer order (signing.officer, 2FA)
    /officer/{department}/certificates        revoke a certificate (signing.officer, 2FA)
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import RuntimeDep, SessionDep
from api.routes import (
    officer_bulk,
    officer_legal,
    officer_locker,
    officer_requests,
    officer_signing,
)
from api.routes.locker import department_seal
from api.routes.officer_common import (
    ISSUER,
    LEGAL,
    OFFICER_ROLES,
    REQUESTERS,
    SIGNER,
    department_names,
    page,
    roles_by_department,
)
from api.signed_in import RoleMissing, SignedInDep
from signing.pki.profiles import OFFICER_SIGNING, QR_SIGNER

router = APIRouter(tags=["officer pages"], include_in_schema=False)


@router.get("/officer", response_model=None)
def desk(request: Request, runtime: RuntimeDep, session: SessionDep, me: SignedInDep) -> Response:
    held = roles_by_department(runtime, session, me)
    if not held:
        raise RoleMissing(" / ".join(OFFICER_ROLES), pseudonym=me.account.pseudonym)
    names = department_names(runtime, session)
    authority = runtime.authority(session)
    departments: list[dict[str, Any]] = []
    for department, roles in sorted(held.items()):
        entry: dict[str, Any] = {
            "id": department,
            "name": names.get(department, department),
            "roles": sorted(roles),
            "issuer": ISSUER in roles,
            "legal": LEGAL in roles,
            "requests": bool(roles & set(REQUESTERS)),
            "signer": SIGNER in roles,
        }
        if ISSUER in roles:
            entry["sealed"] = department_seal(runtime, session, department) is not None
        if SIGNER in roles:
            mine = authority.current(
                OFFICER_SIGNING, department=department, holder=me.account.pseudonym
            )
            entry["certified"] = mine is not None
            entry["qr"] = authority.current(QR_SIGNER, department=department) is not None
        departments.append(entry)
    return page(
        request,
        runtime,
        session,
        me,
        "officer.html",
        departments=departments,
        substantial=me.substantial,
    )


router.include_router(officer_locker.router)
router.include_router(officer_bulk.router)
router.include_router(officer_requests.router)
router.include_router(officer_legal.router)
router.include_router(officer_signing.router)
