"""Access without consent, on a recorded legal basis (a court order, a statute's notice).

Only an officer who holds `locker.legal` in a department and signed in with a second factor
may ask, and must say under what (the legal reference) and why. The answer is the list of
documents the basis reaches and a grant: a JWS by the exchange's key, naming the officer, the
department and those documents, good for 15 minutes. Downloads present it; so no table of
grants is needed, and nothing outlives the quarter of an hour but the audit entries.

The citizen is told at once (inbox and SMS), unless a disclosure delay was recorded: then the
inbox message is dated to the delay's end, every audit entry of the access carries
`disclose_after` (ISO 8601, UTC) for the citizen's view to hold it back until then, and no
SMS goes (it cannot be held back: the inbox, which the citizen reads later anyway, tells).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from audit import AuditLog, holds_cnic
from locker.access import Accessor, record
from locker.consents import GRANT_TYPE, ConsentSigner, SignatureInvalid, iso, whole_seconds
from locker.doctypes import document_type
from locker.documents import Document, Locker, UnknownDocument
from locker.exchange import (
    Citizens,
    ExchangeError,
    NeedsSecondFactor,
    RequestRefused,
    Texts,
    UnknownCitizen,
    primed,
)
from locker.ids import new_id
from locker.inbox import LEGAL_ACCESS, Inbox
from locker.release import checked_doctypes, releasable

ROLE = "locker.legal"
GRANT_LIFETIME = timedelta(minutes=15)
MAX_DELAY_DAYS = 365
MAX_DOCUMENTS = 50
MAX_REFERENCE = 100
MAX_REASON = 500
SMS_LEGAL = (
    "A government office was given access to documents in your locker on a legal basis; "
    "open Shanakht to see which and why."
)


class LegalAccessRefused(ExchangeError):
    """The officer may not use a legal basis here: no `locker.legal` in that department."""


class GrantInvalid(ExchangeError):
    """A legal-access grant that does not verify, has expired, or is not the caller's."""


@dataclass(frozen=True, slots=True)
class Grant:
    id: str
    token: str
    department: str
    expires_at: datetime
    disclose_after: datetime | None
    documents: list[Document]


class LegalAccess:
    def __init__(
        self,
        session: Session,
        *,
        locker: Locker,
        audit: AuditLog,
        signer: ConsentSigner,
        citizens: Citizens,
        texts: Texts,
        clock: Callable[[], datetime],
    ) -> None:
        self._db = session
        self._locker = locker
        self._audit = audit
        self._signer = signer
        self._citizens = citizens
        self._texts = texts
        self._clock = clock

    def open(
        self,
        *,
        officer: str,
        substantial: bool,
        departments: frozenset[str],
        department: str | None,
        owner: str,
        doctypes: Iterable[str],
        legal_reference: str,
        reason: str,
        disclosure_delay_days: int = 0,
        department_names: Mapping[str, str] | None = None,
    ) -> Grant:
        """Record a legal-basis access to `owner`'s documents of `doctypes`, and grant their
        download. `departments` are those where the officer holds `locker.legal`; the
        officer names one when they hold it in several. `department_names` give the citizen
        a department's name rather than its id."""
        if not substantial:
            raise NeedsSecondFactor("legal-basis access needs a sign-in with a second factor")
        acting = _acting_for(departments, department)
        _check_text(legal_reference, MAX_REFERENCE, "a legal reference")
        _check_text(reason, MAX_REASON, "a reason")
        if not 0 <= disclosure_delay_days <= MAX_DELAY_DAYS:
            raise RequestRefused(f"a disclosure delay is 0 to {MAX_DELAY_DAYS} days")
        wanted = checked_doctypes(doctypes, standing=False)
        mobile = self._citizens.mobile(owner)
        if mobile is None:
            raise UnknownCitizen("no citizen has an account with that CNIC")
        now = self._clock()
        released = [
            d for d in self._locker.list(owner) if releasable(d, wanted, now=now, standing=False)
        ][:MAX_DOCUMENTS]
        grant_id = new_id()
        expires = whole_seconds(now + GRANT_LIFETIME)
        later = whole_seconds(now + timedelta(days=disclosure_delay_days))
        disclose_after = later if disclosure_delay_days else None
        claims = {
            "jti": grant_id,
            "sub": officer,
            "department": acting,
            "doctypes": list(wanted),
            "documents": [d.id for d in released],
            "legal_reference": legal_reference,
            "reason": reason,
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            **({"disclose_after": iso(disclose_after)} if disclose_after else {}),
        }
        token = self._signer.sign(claims, GRANT_TYPE)
        names = ", ".join(document_type(code).name for code in wanted)
        Inbox(self._db, clock=self._clock).post(
            owner,
            LEGAL_ACCESS,
            f"Officers of {(department_names or {}).get(acting, acting)} were given access to "
            f"your {names} without your consent, "
            f"on a legal basis: {legal_reference}.",
            reference=grant_id,
            visible_from=disclose_after,
            params={
                "department": (department_names or {}).get(acting, acting),
                "doctypes": list(wanted),
                "reference": legal_reference,
            },
        )
        if disclose_after is None:
            self._texts.send(mobile, SMS_LEGAL)  # before the entry: an append holds the log
        record(
            self._audit, "locker.legal.accessed",
            _officer(officer, acting, legal_reference, reason), owner=owner,
            resource=f"grant:{grant_id}", fields="metadata", output="list",
            doctypes=" ".join(wanted), count=len(released), legal_reference=legal_reference,
            extra=_withheld(disclose_after, grant=grant_id),
        )  # fmt: skip
        return Grant(grant_id, token, acting, expires, disclose_after, released)

    def download(
        self,
        grant_id: str,
        token: str,
        document_id: str,
        *,
        officer: str,
        substantial: bool,
        departments: frozenset[str],
    ) -> tuple[Document, Iterator[bytes]]:
        """One document under a grant, by the officer it names, while they still hold the
        role, while the grant lasts and the document is still one the basis reaches."""
        if not substantial:
            raise NeedsSecondFactor("legal-basis access needs a sign-in with a second factor")
        now = self._clock()
        try:
            claims = self._signer.open(token, GRANT_TYPE, now=now)
        except SignatureInvalid as exc:
            raise GrantInvalid(f"the grant is not valid: {exc}") from None
        if claims.get("jti") != grant_id or claims.get("sub") != officer:
            raise GrantInvalid("that grant was given to someone else, or is another grant")
        department = str(claims.get("department"))
        if department not in departments:
            raise GrantInvalid(f"you no longer hold {ROLE} in {department}")
        disclose_after = claims.get("disclose_after")
        withheld = _withheld(disclose_after, grant=grant_id)
        found = self._locker.find(document_id)
        if (
            found is None
            or document_id not in claims.get("documents", [])
            or not releasable(found, claims.get("doctypes", []), now=now, standing=False)
        ):
            raise UnknownDocument("this grant releases no document with that id")
        reference, reason = str(claims["legal_reference"]), str(claims["reason"])
        who = _officer(officer, department, reference, reason)
        fetched = self._locker.content(
            found, who=who, action="locker.legal.fetched", details=withheld
        )
        return found, primed(fetched)


def _withheld(disclose_after: datetime | str | None, **details: str) -> dict[str, str]:
    """Details that hold an entry back from the citizen's view until `disclose_after`."""
    if isinstance(disclose_after, datetime):
        disclose_after = iso(disclose_after)
    return {**details, **({"disclose_after": disclose_after} if disclose_after else {})}


def _acting_for(departments: frozenset[str], department: str | None) -> str:
    if department is None:
        if len(departments) != 1:
            raise LegalAccessRefused(
                f"you hold {ROLE} in no department" if not departments
                else f"you hold {ROLE} in several departments; say for which you act"
            )  # fmt: skip
        return next(iter(departments))
    if department not in departments:
        raise LegalAccessRefused(f"you do not hold {ROLE} in that department")
    return department


def _check_text(text: str, limit: int, what: str) -> None:
    if not text.strip() or len(text) > limit:
        raise RequestRefused(f"{what} is 1 to {limit} characters")
    if holds_cnic(text):
        raise RequestRefused(f"{what} must not hold a CNIC")


def _officer(officer: str, department: str, reference: str, reason: str) -> Accessor:
    return Accessor(officer, department, f"legal:{reference}", reason=reason, official=officer)
