"""The floor under Shanakht's login: FastAPI and uvicorn as Shanakht runs them, answering the
login form with the password hash and nothing else.

`python -m bench.identity` runs it beside Shanakht in the login phase (two processes, wrk, the
same connections), so one run shows three things apart: the hash limit (cores / one hash), what
the stack reaches doing only the hash (this app), and what Shanakht reaches doing a login's
whole work (two throttles, the account, the session, the audit entry, two transactions). The
first gap is the stack's and the machine's; the second is Shanakht's own.

The hash is Shanakht's own: `api.hashing.BackgroundHasher`, its parameters, its pool of
low-priority threads, called from a plain-function handler in anyio's thread pool, as
`api.routes.signin.login` calls it; the form is read by the same `form_fields`.
"""

from __future__ import annotations

from fastapi import FastAPI, Response
from fastapi.responses import RedirectResponse

from api.deps import FormFields, required
from api.hashing import BackgroundHasher

PASSWORD = "Kinnow#Orchard2026"  # noqa: S105 (bench.identity's, for every bench citizen)
COOKIE = "floor"  # bench.identity's login load wants a cookie from the login page

app = FastAPI()
_hasher = BackgroundHasher()
_stored = _hasher.hash(PASSWORD)


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/login")
def login_page() -> Response:
    response = Response("<form method=post></form>", media_type="text/html")
    response.set_cookie(COOKIE, "1", httponly=True)
    return response


@app.post("/login")
def login(form: FormFields) -> Response:
    (password,) = required(form, "password")
    if not _hasher.verify(_stored, password):
        return Response(status_code=401)
    return RedirectResponse("/account", status_code=303)
