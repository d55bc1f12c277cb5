"""What the citizen's locker pages (`locker_pages`, `locker_nominee_pages`) draw alike: a
document as a page shows it, with its seal and its issuer's name, and sizes as people read
them."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy.orm import Session

from api.routes.locker_views import document_view, seal_status
from api.runtime import Runtime
from locker.documents import Document


def size_text(size: int) -> str:
    """A byte count as people read it: 1 GB, 20 MB, 512 KB."""
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= scale:
            return f"{math.floor(size * 10 / scale) / 10:g} {unit}"
    return f"{size} B"


def departments(runtime: Runtime, session: Session) -> dict[str, str]:
    """Department id -> its name, for "issued by"."""
    return dict(runtime.provider(session).roles.departments())


def shown(
    runtime: Runtime, session: Session, found: Document, names: dict[str, str]
) -> dict[str, Any]:
    """One document as the pages draw it: the JSON API's view of it, whether its issuer's seal
    holds (as GET /locker/documents says), and its issuer's name."""
    view = document_view(found, runtime.clock())
    view["seal"] = seal_status(runtime, session, found)
    view["department"] = None if found.uploaded else names.get(found.issuer, found.issuer)
    view["sha256_hex"] = found.sha256.hex()
    view["size_text"] = size_text(found.size)
    return view
