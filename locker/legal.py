"""Access without consent, on a recorded legal basis (a court order, a statute's notice), under
a two-person rule: one officer files, a second officer approves, and only then may the first
open anything.

Filing. An officer who holds `locker.legal` in a department and signed in with a second factor
files a request: whose documents (kept as the citizen's pseudonym), which types, under what
(the legal reference), why, and how long the citizen's notice may be held back (at most
`MAX_DELAY_DAYS`). It is kept as `pending`; nothing is released and nobody is told.

Deciding. Another officer of the same department, holding `locker.legal` there and signed in
with a second factor, approves it or refuses it with a reason. The filer can never decide
their own request, nor can an officer of another department (to them it does not exist). A
request nobody decides within `DECISION_WINDOW` (7 days) expires.

Opening. Once approved, the filer alone, within `OPENING_WINDOW` (24 hours) of the approval,
opens it: the answer is the list of documents the basis reaches and a grant, a JWS by the
exchange's key naming the officer, the approver, the department and those documents, good for
15 minutes. Downloads present it; so no table of grants is needed. The filer may open again
while the approval lasts (a fresh grant each time, each recorded).

The citizen is told at the first opening (inbox and SMS), unless a disclosure delay was
recorded: then the inbox message is dated to the delay's end, every audit entry of the access
carries `disclose_after` (ISO 8601, UTC) for the citizen's view to hold it back until then, and
no SMS goes (it cannot be held back: the inbox, which the citizen reads later anyway, tells).
Filing, approval and refusal are audited too, naming both officers by pseudonym; those entries
have no subject, so nothing the citizen reads shows an investigation before its first opening
(the request's id, in every entry, joins them to the access).

Every decision and the first opening are a compare-and-set on the row, so two officers
racing cannot both win, and an expired request cannot be decided however the race goes.

A request's row is sealed (`audit.row_seal`), and re-sealed by its decision and its first
opening, each a compare-and-set on the old MAC too: what was checked is what is decided. A
row whose seal does not verify (filed or approved by SQL, its citizen, types or department
changed, its MAC set NULL) is no request: it is not listed, not decided, not opened, and
`shanakht audit integrity` lists it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from audit import AuditEvent, AuditLog, holds_cnic, two_person
from audit.row_seal import MAC_COLUMN, RowSeal
from audit.two_person import APPROVED, EXPIRED, PENDING, REFUSED
from audit.two_person import DECISION_WINDOW as DECISION_WINDOW  # the rule's, said on pages
from audit.two_person import MAX_REASON as MAX_REASON
from locker.access import SYSTEM, Accessor, record
from locker.consents import GRANT_TYPE, ConsentSigner, SignatureInvalid, iso, whole_seconds
from locker.doctypes import document_type
from locker.documents import Document, Locker, UnknownDocument
from locker.exchange import (
    Citizens,
    ExchangeError,
    NeedsSecondFactor,
    RequestClosed,
    RequestRefused,
    Texts,
    UnknownCitizen,
    UnknownRequest,
    primed,
)
from locker.ids import new_id
from locker.inbox import LEGAL_ACCESS, Inbox
from locker.models import legal_requests
from locker.release import checked_doctypes, releasable

ROLE = "locker.legal"
GRANT_LIFETIME = timedelta(minutes=15)
OPENING_WINDOW = timedelta(hours=24)  # the filer opens an approved request within this
MAX_DELAY_DAYS = 90
MAX_DOCUMENTS = 50
MAX_REFERENCE = 100
SMS_LEGAL = (
    "A government office was given access to documents in your locker on a legal basis; "
    "open Shanakht to see which and why."
)


class LegalAccessRefused(ExchangeError):
    """The officer may not use a legal basis here: no `locker.legal` in that department."""

    code = "legal.no_role"


class FourEyesRefused(LegalAccessRefused):
    """The two-person rule: the filer may not decide their own request, and only the filer
    opens it."""

    code = "legal.own_request"


class UnknownLegalRequest(UnknownRequest):
    """No such legal-access request in a department where the officer holds the role."""

    code = "legal.unknown"


class LegalRequestClosed(RequestClosed):
    """The request is not in the state the action needs: decided already, refused, expired,
    or (for opening) not approved yet."""

    code = "legal.closed"


class GrantInvalid(ExchangeError):
    """A legal-access grant that does not verify, has expired, or is not the caller's."""

    code = "legal.grant_invalid"


@dataclass(frozen=True, slots=True)
class Grant:
    id: str
    token: str
    department: str
    expires_at: datetime
    disclose_after: datetime | None
    documents: list[Document]
    request_id: str = ""
    approver: str | None = None


@dataclass(frozen=True, slots=True)
class LegalAccessRequest:
    """A legal-access request, as filed and as decided."""

    id: str
    department: str
    filer: str
    owner: str
    doctypes: tuple[str, ...]
    legal_reference: str
    reason: str
    disclosure_delay_days: int
    created_at: datetime
    status: str  # pending, approved or refused, as recorded; see `state`
    decided_at: datetime | None
    decider: str | None
    refusal: str | None
    opened_at: datetime | None
    disclose_after: datetime | None

    @property
    def decide_by(self) -> datetime:
        return self.created_at + DECISION_WINDOW

    @property
    def open_until(self) -> datetime | None:
        """Until when the filer may open it: a day after the approval; None unless approved."""
        if self.status != APPROVED or self.decided_at is None:
            return None
        return self.decided_at + OPENING_WINDOW

    def state(self, now: datetime) -> str:
        """pending, approved, refused or expired, as of `now`: expired is a request nobody
        decided within 7 days, or an approved one whose 24 hours to open it have passed."""
        if two_person.pending_state(self.status, self.created_at, now) == EXPIRED:
            return EXPIRED
        until = self.open_until
        if until is not None and now >= until:
            return EXPIRED
        return self.status


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
        seal: RowSeal,
    ) -> None:
        self._db = session
        self._locker = locker
        self._audit = audit
        self._signer = signer
        self._citizens = citizens
        self._texts = texts
        self._clock = clock
        self._seal = seal

    # -- the first officer files ----------------------------------------------------------------

    def file(
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
    ) -> LegalAccessRequest:
        """File a request for `owner`'s documents of `doctypes`, pending a second officer's
        approval. `departments` are those where the officer holds `locker.legal`; the officer
        names one when they hold it in several. Nothing is released and nobody is told."""
        if not substantial:
            raise NeedsSecondFactor("legal-basis access needs a sign-in with a second factor")
        acting = _acting_for(departments, department)
        _check_text(legal_reference, MAX_REFERENCE, "a legal reference", "legal_reference")
        _check_text(reason, MAX_REASON, "a reason", "reason")
        if not 0 <= disclosure_delay_days <= MAX_DELAY_DAYS:
            raise RequestRefused(
                f"a disclosure delay is 0 to {MAX_DELAY_DAYS} days",
                code="legal.delay", field="disclosure_delay_days", most=MAX_DELAY_DAYS,
            )  # fmt: skip
        wanted = checked_doctypes(doctypes, standing=False)
        if self._citizens.mobile(owner) is None:
            raise UnknownCitizen("no citizen has an account with that CNIC")
        request_id = new_id()
        row = {
            "id": request_id, "department": acting, "filer": officer, "owner": owner,
            "doctypes": " ".join(wanted), "legal_reference": legal_reference, "reason": reason,
            "disclosure_delay_days": disclosure_delay_days,
            "created_at": whole_seconds(self._clock()), "status": PENDING, "decided_at": None,
            "decider": None, "refusal": None, "opened_at": None, "disclose_after": None,
        }  # fmt: skip
        self._db.execute(insert(legal_requests).values(self._seal.sealed(legal_requests, row)))
        filed = self._request(request_id)
        assert filed is not None  # noqa: S101 (inserted just now, in this transaction)
        self._decision_entry("locker.legal.requested", filed, actor=officer)
        return filed

    # -- a second officer decides ---------------------------------------------------------------

    def awaiting(self, *, officer: str, departments: frozenset[str]) -> list[LegalAccessRequest]:
        """The pending requests `officer` may decide: in `departments`, filed by someone else,
        not expired; oldest first (the nearest to expiring)."""
        if not departments:
            return []
        now = self._clock()
        rows = self._db.execute(
            select(legal_requests)
            .where(
                legal_requests.c.department.in_(sorted(departments)),
                legal_requests.c.status == PENDING,
                legal_requests.c.filer != officer,
                legal_requests.c.created_at > now - DECISION_WINDOW,
            )
            .order_by(legal_requests.c.created_at, legal_requests.c.id)
            .limit(200)
        )
        return self._sealed(rows)

    def filed_by(
        self, *, officer: str, departments: frozenset[str], limit: int = 50
    ) -> list[LegalAccessRequest]:
        """The requests `officer` filed in `departments`, newest first."""
        if not departments:
            return []
        rows = self._db.execute(
            select(legal_requests)
            .where(
                legal_requests.c.department.in_(sorted(departments)),
                legal_requests.c.filer == officer,
            )
            .order_by(legal_requests.c.created_at.desc(), legal_requests.c.id)
            .limit(limit)
        )
        return self._sealed(rows)

    def get(self, request_id: str, *, departments: frozenset[str]) -> LegalAccessRequest:
        """A request, to an officer holding `locker.legal` in its department; to anyone
        else it does not exist."""
        return _legal_access_request(self._get_row(request_id, departments))

    def _get_row(self, request_id: str, departments: frozenset[str]) -> Mapping[Any, Any]:
        """`get`'s request as its sealed row, every column: what a change re-seals."""
        if not departments:
            raise LegalAccessRefused(f"you hold {ROLE} in no department", role=ROLE)
        row = self._row(request_id)
        if row is None or row["department"] not in departments:
            raise UnknownLegalRequest(
                "there is no such legal-access request in your department", role=ROLE
            )
        return row

    def approve(
        self, request_id: str, *, officer: str, substantial: bool, departments: frozenset[str]
    ) -> LegalAccessRequest:
        """The second officer's approval: the filer may open it for the next 24 hours."""
        row = self._deciding(request_id, officer, substantial, departments)
        # The rules again: a type may have been re-classified since the request was filed.
        checked_doctypes(row["doctypes"].split(), standing=False)
        decided = self._decide(row, APPROVED, officer, None)
        self._decision_entry("locker.legal.approved", decided, actor=officer)
        return decided

    def refuse(
        self,
        request_id: str,
        *,
        officer: str,
        substantial: bool,
        departments: frozenset[str],
        reason: str,
    ) -> LegalAccessRequest:
        """The second officer's refusal, with why: the request can never be opened."""
        row = self._deciding(request_id, officer, substantial, departments)
        if not two_person.fit_reason(reason):
            raise RequestRefused(
                f"a refusal's reason is 1 to {MAX_REASON} characters, without a CNIC",
                code="legal.refusal_reason", field="refusal_reason", most=MAX_REASON,
            )  # fmt: skip
        decided = self._decide(row, REFUSED, officer, reason)
        self._decision_entry("locker.legal.refused", decided, actor=officer)
        return decided

    # -- the first officer opens ----------------------------------------------------------------

    def open(
        self,
        request_id: str,
        *,
        officer: str,
        substantial: bool,
        departments: frozenset[str],
        department_names: Mapping[str, str] | None = None,
    ) -> Grant:
        """Open an approved request: record the access and grant the download of the
        documents it reaches. Only its filer, only within 24 hours of the approval. The first
        opening tells the citizen (or dates the telling to the disclosure delay's end).
        `department_names` give the citizen a department's name rather than its id."""
        if not substantial:
            raise NeedsSecondFactor("legal-basis access needs a sign-in with a second factor")
        row = self._get_row(request_id, departments)
        found = _legal_access_request(row)
        if found.filer != officer:
            raise FourEyesRefused(
                "only the officer who filed a legal-access request opens it",
                code="legal.not_filer",
            )
        now = self._clock()
        state = found.state(now)
        if state != APPROVED:
            raise _closed(found, state, "opened")
        wanted = checked_doctypes(found.doctypes, standing=False)
        mobile = self._citizens.mobile(found.owner)
        if mobile is None:
            raise UnknownCitizen("no citizen has an account with that CNIC")
        first = found.opened_at is None
        if first:
            later = whole_seconds(now + timedelta(days=found.disclosure_delay_days))
            changes = {
                "opened_at": now,
                "disclose_after": later if found.disclosure_delay_days else None,
            }
            resealed = self._seal.mac(legal_requests, {**row, **changes})
            opened = self._db.execute(
                update(legal_requests)
                .where(
                    legal_requests.c.id == found.id,
                    legal_requests.c.status == APPROVED,
                    legal_requests.c.opened_at.is_(None),
                    legal_requests.c.mac == row[MAC_COLUMN],
                )
                .values(**changes, mac=resealed)
            )
            first = opened.rowcount == 1  # type: ignore[attr-defined]  # a CursorResult
            found = self._request(found.id) or found
        disclose_after = found.disclose_after
        acting, approver = found.department, found.decider
        assert approver is not None  # noqa: S101 (an approved request names its approver)
        released = [
            d
            for d in self._locker.list(found.owner)
            if releasable(d, wanted, now=now, standing=False)
        ][:MAX_DOCUMENTS]
        grant_id = new_id()
        expires = whole_seconds(now + GRANT_LIFETIME)
        claims: dict[str, Any] = {
            "jti": grant_id,
            "sub": officer,
            "approver": approver,
            "request": found.id,
            "department": acting,
            "doctypes": list(wanted),
            "documents": [d.id for d in released],
            "legal_reference": found.legal_reference,
            "reason": found.reason,
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            **({"disclose_after": iso(disclose_after)} if disclose_after else {}),
        }
        token = self._signer.sign(claims, GRANT_TYPE)
        if first:
            name = (department_names or {}).get(acting, acting)
            names = ", ".join(document_type(code).name for code in wanted)
            Inbox(self._db, clock=self._clock).post(
                found.owner,
                LEGAL_ACCESS,
                f"Officers of {name} were given access to your {names} without your consent, "
                f"on a legal basis: {found.legal_reference}.",
                reference=grant_id,
                visible_from=disclose_after,
                params={
                    "department": name,
                    "doctypes": list(wanted),
                    "reference": found.legal_reference,
                },
            )
            if disclose_after is None:
                self._texts.send(mobile, SMS_LEGAL)  # before the entry: an append holds the log
        record(
            self._audit, "locker.legal.accessed",
            _officer(officer, acting, found.legal_reference, found.reason), owner=found.owner,
            resource=f"grant:{grant_id}", fields="metadata", output="list",
            doctypes=" ".join(wanted), count=len(released),
            legal_reference=found.legal_reference,
            extra=_withheld(
                disclose_after, grant=grant_id, request=found.id, approver=approver,
                approver_department=acting,
            ),
        )  # fmt: skip
        return Grant(grant_id, token, acting, expires, disclose_after, released, found.id, approver)

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
        named = {k: str(claims[k]) for k in ("request", "approver") if claims.get(k)}
        withheld = _withheld(disclose_after, grant=grant_id, **named)
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

    # -- the record -----------------------------------------------------------------------------

    def _deciding(
        self, request_id: str, officer: str, substantial: bool, departments: frozenset[str]
    ) -> Mapping[Any, Any]:
        """The row of the request `officer` is about to decide, if they may decide it now."""
        if not substantial:
            raise NeedsSecondFactor("deciding a legal-access request needs a second factor")
        row = self._get_row(request_id, departments)
        found = _legal_access_request(row)
        if found.filer == officer:
            raise FourEyesRefused(
                "you filed this request: a second officer of the department must decide it"
            )
        state = found.state(self._clock())
        if state != PENDING:
            raise _closed(found, state, "decided")
        return row

    def _decide(
        self, row: Mapping[Any, Any], status: str, officer: str, refusal: str | None
    ) -> LegalAccessRequest:
        """Record the decision on `row` (as read and checked) with a new seal, only if the row
        still holds the seal it was read with: what was checked is what is decided."""
        now = whole_seconds(self._clock())
        decision = {"status": status, "decided_at": now, "decider": officer, "refusal": refusal}
        resealed = self._seal.mac(legal_requests, {**row, **decision})
        if not two_person.decide(
            self._db, legal_requests, row["id"], status=status, decider=officer,
            refusal=refusal, now=now, not_theirs=legal_requests.c.filer != officer,
            unchanged=legal_requests.c.mac == row[MAC_COLUMN], also={MAC_COLUMN: resealed},
        ):  # fmt: skip
            raise LegalRequestClosed(
                "the request was decided meanwhile, or has expired", state="decided"
            )
        return _legal_access_request({**row, **decision, MAC_COLUMN: resealed})

    def _decision_entry(self, action: str, found: LegalAccessRequest, *, actor: str) -> None:
        """Filing, approval or refusal: an entry naming both officers by pseudonym, and no
        subject, so the citizen's views cannot show it before the first opening."""
        details: dict[str, Any] = {
            "system": SYSTEM,
            "organisation": found.department,
            "official": actor,
            "basis": f"legal:{found.legal_reference}",
            "fields": "terms",
            "output": "none",
            "request": found.id,
            "citizen": found.owner,
            "filer": found.filer,
            "doctypes": " ".join(found.doctypes),
            "legal_reference": found.legal_reference,
            "disclosure_delay_days": found.disclosure_delay_days,
        }
        details.update(two_person.decision_details(found.status, found.decider, found.refusal))
        self._audit.append(
            AuditEvent(
                actor=actor,
                action=action,
                resource=f"legal-request:{found.id}",
                purpose=found.reason,
                details=details,
            )
        )

    def _request(self, request_id: str) -> LegalAccessRequest | None:
        row = self._row(request_id)
        return _legal_access_request(row) if row is not None else None

    def _row(self, request_id: str) -> Mapping[Any, Any] | None:
        """The request's row, every column, if its seal verifies (see the module's docstring);
        one whose seal does not is no request."""
        found = self._db.execute(
            select(legal_requests).where(legal_requests.c.id == request_id)
        ).first()
        if found is None or not self._seal.check(legal_requests, found._mapping):
            return None
        return found._mapping

    def _sealed(self, rows: Iterable[Any]) -> list[LegalAccessRequest]:
        """The requests among `rows` whose seals verify; the others are logged, not shown."""
        return [
            _legal_access_request(row._mapping)
            for row in rows
            if self._seal.check(legal_requests, row._mapping)
        ]


def _legal_access_request(row: Mapping[Any, Any]) -> LegalAccessRequest:
    return LegalAccessRequest(
        id=row["id"],
        department=row["department"],
        filer=row["filer"],
        owner=row["owner"],
        doctypes=tuple(row["doctypes"].split()),
        legal_reference=row["legal_reference"],
        reason=row["reason"],
        disclosure_delay_days=row["disclosure_delay_days"],
        created_at=row["created_at"],
        status=row["status"],
        decided_at=row["decided_at"],
        decider=row["decider"],
        refusal=row["refusal"],
        opened_at=row["opened_at"],
        disclose_after=row["disclose_after"],
    )


def _closed(found: LegalAccessRequest, state: str, tried: str) -> LegalRequestClosed:
    """Why `found` cannot be `tried` ("decided" or "opened") as it stands in `state`."""
    if state == PENDING:
        return LegalRequestClosed(
            "the request awaits a second officer's approval", code="legal.pending", state=state
        )
    if state == EXPIRED and found.status == APPROVED:
        return LegalRequestClosed(
            "the approval has lapsed: an approved request is opened within 24 hours",
            code="legal.lapsed", state=state,
        )  # fmt: skip
    if state == EXPIRED:
        return LegalRequestClosed(
            "the request expired: nobody decided it within 7 days",
            code="legal.expired", state=state,
        )  # fmt: skip
    if state == REFUSED:
        return LegalRequestClosed(
            "a second officer refused the request", code="legal.refused", state=state
        )
    return LegalRequestClosed(f"the request is {state}; it cannot be {tried}", state=state)


def _withheld(disclose_after: datetime | str | None, **details: str) -> dict[str, str]:
    """Details that hold an entry back from the citizen's view until `disclose_after`."""
    if isinstance(disclose_after, datetime):
        disclose_after = iso(disclose_after)
    return {**details, **({"disclose_after": disclose_after} if disclose_after else {})}


def _acting_for(departments: frozenset[str], department: str | None) -> str:
    if department is None:
        if len(departments) != 1:
            raise LegalAccessRefused(
                f"you hold {ROLE} in no department", role=ROLE
            ) if not departments else LegalAccessRefused(
                f"you hold {ROLE} in several departments; say for which you act",
                code="legal.which_department", role=ROLE,
            )  # fmt: skip
        return next(iter(departments))
    if department not in departments:
        raise LegalAccessRefused(f"you do not hold {ROLE} in that department", role=ROLE)
    return department


def _check_text(text: str, limit: int, what: str, field: str) -> None:
    if not text.strip() or len(text) > limit:
        raise RequestRefused(
            f"{what} is 1 to {limit} characters", code=f"legal.{field}", field=field, most=limit
        )
    if holds_cnic(text):
        raise RequestRefused(f"{what} must not hold a CNIC", code="text.cnic", field=field)


def _officer(officer: str, department: str, reference: str, reason: str) -> Accessor:
    return Accessor(officer, department, f"legal:{reference}", reason=reason, official=officer)
