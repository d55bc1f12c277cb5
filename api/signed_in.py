"""Who is at the browser: the citizen of the session cookie, how strongly they signed in, and
the roles they hold. The pages' counterpart of `api.bearer`.

A page that needs more than the browser has (no session, no second factor, a role it lacks)
says so by raising; the app sends the browser to sign in, or to the second factor, and back to
the page it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from api.deps import RuntimeDep, SessionDep
from api.i18n import Text
from api.runtime import Runtime
from api.web import SESSION_COOKIE, NotSignedIn, cookie_name, here
from identity.accounts import Account
from identity.login import ACR_SUBSTANTIAL
from identity.oidc.provider import Provider
from identity.oidc.sessions import SsoSession

# The menus of the pages, by who is reading them.
Menu = tuple[tuple[str, Text], ...]
CITIZEN_MENU: Menu = (
    ("/documents", Text("Documents")),
    ("/requests", Text("Requests")),
    ("/access", Text("Who saw my data")),
    ("/account", Text("Account")),
)
OFFICER_MENU: Menu = (("/officer", Text("Officer desk")),)
ADMIN_MENU: Menu = (("/admin", Text("Administration")),)


class RoleMissing(Exception):
    """A signed-in citizen asked for a page of a role they do not hold (403, said plainly, and
    audited as an access denied to `pseudonym`). `str()` is the role, as the page names it."""

    def __init__(self, role: str, *, pseudonym: str) -> None:
        super().__init__(role)
        self.role = role
        self.pseudonym = pseudonym


@dataclass(frozen=True, slots=True)
class SignedIn:
    provider: Provider
    sso: SsoSession
    account: Account

    @property
    def substantial(self) -> bool:
        """Signed in with a second factor: what approving, signing and administering need."""
        return self.sso.acr == ACR_SUBSTANTIAL


def signed_in(request: Request, runtime: RuntimeDep, session: SessionDep) -> SignedIn:
    """The citizen whose session cookie this is; NotSignedIn (sent to /login) otherwise."""
    provider = runtime.provider(session)
    sso = provider.sessions.current(request.cookies.get(cookie_name(runtime, SESSION_COOKIE)))
    account = provider.accounts.by_id(sso.citizen_id) if sso else None
    if sso is None or account is None:
        raise NotSignedIn("sign in first", next_page=here(request))
    return SignedIn(provider, sso, account)


SignedInDep = Annotated[SignedIn, Depends(signed_in)]


def substantial(request: Request, me: SignedInDep) -> SignedIn:
    """The citizen, once they have given a second factor in this session."""
    if not me.substantial:
        raise NotSignedIn("a second factor first", next_page=here(request), step_up=True)
    return me


SubstantialDep = Annotated[SignedIn, Depends(substantial)]


def departments_with(runtime: Runtime, session: Session, me: SignedIn, role: str) -> list[str]:
    """The departments in which `me` holds `role` (empty: none)."""
    grants = runtime.provider(session).roles.of(me.account.id)
    return sorted({g.department for g in grants if g.role == role})


def menu(runtime: Runtime, session: Session, me: SignedIn) -> Menu:
    """The citizen's menu, with the officer's and administrator's desks for those who have one."""
    held = {g.role for g in runtime.provider(session).roles.of(me.account.id)}
    extra: Menu = ()
    if held & {"locker.issuer", "locker.legal", "signing.officer"}:
        extra += OFFICER_MENU
    if "identity.admin" in held or "audit.reader" in held:
        extra += ADMIN_MENU
    return CITIZEN_MENU + extra
