"""The portal's front page, and the language switch every page carries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from api import i18n
from api.deps import RuntimeDep
from api.web import local_path, render, set_cookie

router = APIRouter(tags=["pages"], include_in_schema=False)

ONE_YEAR = 365 * 24 * 3600


@router.get("/", response_model=None)
def home(request: Request, runtime: RuntimeDep) -> Response:
    return render(request, runtime, "home.html")


@router.get("/lang/{code}", response_model=None)
def switch_language(
    code: str, runtime: RuntimeDep, next_page: Annotated[str, Query(alias="next")] = "/"
) -> Response:
    """Remember the reader's language and go back where they were (a path here, nowhere else).
    A GET, so it is a plain link that works without scripts; it changes nothing but how
    pages read, so there is nothing for a forged request to gain."""
    response = RedirectResponse(local_path(next_page), status_code=303)
    if code in i18n.LOCALES:
        set_cookie(response, runtime, i18n.LANG_COOKIE, code, samesite="lax", max_age=ONE_YEAR)
    return response
