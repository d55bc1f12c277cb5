"""The once-only exchange: a department asks for a citizen's documents, the citizen decides,
and the department fetches under the consent, as often as it allows and no more.

Model: India's Account Aggregator. A request carries the terms (document types, purpose,
how long the data may be kept, the window, how many fetches); approving it signs those terms
into an immutable consent artifact (see `consents`). Status and usage live beside the
artifact: the citizen pauses, resumes or revokes, and each fetch is checked against status,
window, count and document types at that moment.

A consent's row is sealed (`audit.row_seal`), its status and use count included, and a row
whose seal does not verify is no consent: a revoked consent set active by SQL, or a count set
back to 0, fetches nothing. So a consent's change reads the row under a lock, checks it, and
writes it back whole with a new seal, only if its old seal still stands: a compare-and-set,
so two requests racing can never both win: two approvals, an approval and a denial, a fetch
and a revocation, or two fetches at the last use. (Fetches under one consent wait for each
other's commit, as the row lock of the old `uses = uses + 1` made them do; fetches under
different consents do not.) Refusals a department meets are
recorded too (outcome "denied"), and stand even though the request fails. Times past a
window are read as expiry when they are read; nothing has to run to expire a consent.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from audit import AuditLog, holds_cnic
from audit.row_seal import MAC_COLUMN, RowSeal
from locker.access import Accessor, record
from locker.consents import ARTIFACT_VERSION, CONSENT_TYPE, ConsentSigner, iso, whole_seconds
from locker.doctypes import document_type
from locker.documents import Document, Locker, UnknownDocument
from locker.errors import LockerError
from locker.ids import new_id
from locker.inbox import REQUEST, Inbox
from locker.models import consents, requests
from locker.release import checked_doctypes, releasable

PENDING, APPROVED, DENIED, EXPIRED = "pending", "approved", "denied", "expired"
ACTIVE, PAUSED, REVOKED = "active", "paused", "revoked"
# A use of a consent, as the log records it: the entry names the consent (`consent`; entries
# from before that detail name it only in their `basis`), which `locker.reconciled` counts.
FETCHED = "locker.exchange.fetched"
REQUEST_STATES = frozenset({PENDING, APPROVED, DENIED, EXPIRED})

MAX_FETCH_LIMIT = 100
MAX_DATA_LIFE_DAYS = 3650
MAX_WINDOW = timedelta(days=365)
MAX_PURPOSE_TEXT = 500
# The SMS says only that something waits: the purpose and the documents stay in the locker,
# where only the citizen reads them.
SMS_REQUEST = "A department asked for documents from your locker; open Shanakht to decide."
_PURPOSE_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")


class ExchangeError(LockerError):
    """Base of the exchange's refusals."""


class RequestRefused(ExchangeError):
    """A request (or a legal-basis access) whose terms cannot be accepted; nothing was kept."""


class UnknownCitizen(ExchangeError):
    """No active account holds that CNIC."""


class UnknownRequest(ExchangeError):
    """No such request, or not one the caller may see."""


class UnknownConsent(ExchangeError):
    """No such consent, or not one the caller may see."""

    code = "consent.unknown"


class RequestClosed(ExchangeError):
    """The request was decided already, or its window has passed. `facts["state"]` says
    which: "approved", "denied", "expired", or "decided" when it was decided between the
    check and the write (a second tab, a double submit)."""


class ConsentStateError(ExchangeError):
    """The consent cannot change that way from where it stands (say, resuming a revoked one)."""


class NeedsSecondFactor(ExchangeError):
    """The action needs the substantial assurance level: a sign-in with a second factor."""

    code = "second_factor.needed"


class ConsentRefused(ExchangeError):
    """The consent does not allow this fetch now: paused, revoked, expired, or before its
    window. The refusal's audit entry must stand, so the transaction is kept."""

    keep_transaction = True
    code = "consent.refused"


class FetchLimitReached(ConsentRefused):
    """Every fetch the consent allows has been made."""

    code = "consent.fetch_limit_reached"


class Citizens(Protocol):
    def mobile(self, owner: str) -> str | None:
        """The registered mobile of the citizen with pseudonym `owner`; None if no active
        account has that pseudonym."""
        ...


class Texts(Protocol):
    def send(self, to: str, text: str) -> None:
        """Send an SMS; raise (the gateway's own error) if it cannot be sent."""
        ...


@dataclass(frozen=True, slots=True)
class Request:
    id: str
    requester: str
    owner: str
    doctypes: tuple[str, ...]
    purpose_code: str
    purpose_text: str
    data_life_days: int
    valid_from: datetime
    valid_until: datetime
    fetch_limit: int
    created_at: datetime
    status: str  # as recorded; see `state`
    decided_at: datetime | None
    consent_id: str | None

    def state(self, now: datetime) -> str:
        """pending, approved, denied or expired (pending past its window), as of `now`."""
        if self.status == PENDING and now >= self.valid_until:
            return EXPIRED
        return self.status


@dataclass(frozen=True, slots=True)
class Consent:
    id: str
    request_id: str
    requester: str
    owner: str
    doctypes: tuple[str, ...]
    purpose_code: str
    purpose_text: str
    data_life_days: int
    valid_from: datetime
    valid_until: datetime
    fetch_limit: int
    artifact: str
    status: str  # as recorded; see `state`
    uses: int
    created_at: datetime
    status_changed_at: datetime

    @property
    def standing(self) -> bool:
        """A consent for more than one fetch, which Sensitive documents never go under."""
        return self.fetch_limit > 1

    def state(self, now: datetime) -> str:
        """active, paused, revoked or expired (past its window unless revoked), as of `now`."""
        if self.status in (ACTIVE, PAUSED) and now >= self.valid_until:
            return EXPIRED
        return self.status

    def delete_by(self, fetched_at: datetime) -> datetime:
        """When the department must have deleted what a fetch at `fetched_at` gave it: the
        terms' `data_life_days` counted from the fetch (ASVS 8.3.8). The service says it with
        every fetch; deleting it is the department's to do, and nothing here can see that."""
        return whole_seconds(fetched_at) + timedelta(days=self.data_life_days)


@dataclass(frozen=True, slots=True)
class Fetched:
    """One fetch under a consent: the document, its content as it is decrypted, and when the
    department must have deleted it (`Consent.delete_by`)."""

    document: Document
    content: Iterator[bytes]
    delete_by: datetime


# Consent transitions the citizen makes: the states each may start from, and where it ends.
_TRANSITIONS = {
    "pause": ((ACTIVE,), PAUSED),
    "resume": ((PAUSED,), ACTIVE),
    "revoke": ((ACTIVE, PAUSED), REVOKED),
}


class Exchange:
    def __init__(
        self,
        session: Session,
        *,
        locker: Locker,
        audit: AuditLog,
        signer: ConsentSigner,
        seal: RowSeal,
        citizens: Citizens,
        texts: Texts,
        clock: Callable[[], datetime],
    ) -> None:
        self._db = session
        self._locker = locker
        self._audit = audit
        self._signer = signer
        self._seal = seal
        self._citizens = citizens
        self._texts = texts
        self._clock = clock
        self._inbox = Inbox(session, clock=clock)

    # -- the department asks ------------------------------------------------------------------

    def file_request(
        self,
        *,
        requester: str,
        requester_name: str,
        owner: str,
        doctypes: Iterable[str],
        purpose_code: str,
        purpose_text: str,
        data_life_days: int,
        valid_until: datetime,
        fetch_limit: int,
        valid_from: datetime | None = None,
        official: str | None = None,
    ) -> Request:
        """Record a request and tell the citizen, in the inbox and by SMS. `official` is the
        officer who filed it on a department's page (their pseudonym), None for a department
        system: the citizen's access view and the audit log name them. Every check comes
        first, so no SMS goes out for a request that is then refused; a gateway that fails
        undoes the request, so the department can send it again. The SMS goes before the
        audit entry, since an append holds the log's lock until the commit."""
        check_purpose(purpose_code, purpose_text)
        if not 1 <= fetch_limit <= MAX_FETCH_LIMIT:
            raise RequestRefused(
                f"the fetch limit is 1 to {MAX_FETCH_LIMIT}",
                code="request.fetch_limit", field="fetch_limit", most=MAX_FETCH_LIMIT,
            )  # fmt: skip
        if not 0 <= data_life_days <= MAX_DATA_LIFE_DAYS:
            raise RequestRefused(
                f"the data life is 0 to {MAX_DATA_LIFE_DAYS} days",
                code="request.data_life", field="data_life_days", most=MAX_DATA_LIFE_DAYS,
            )  # fmt: skip
        wanted = checked_doctypes(doctypes, standing=fetch_limit > 1)
        now = self._clock()
        start, end = _window(valid_from, valid_until, now)
        mobile = self._citizens.mobile(owner)
        if mobile is None:
            raise UnknownCitizen("no citizen has an account with that CNIC")
        request_id = new_id()
        self._db.execute(
            insert(requests).values(
                id=request_id, requester=requester, owner=owner, doctypes=" ".join(wanted),
                purpose_code=purpose_code, purpose_text=purpose_text,
                data_life_days=data_life_days, valid_from=start, valid_until=end,
                fetch_limit=fetch_limit, created_at=now, status=PENDING,
            )
        )  # fmt: skip
        names = ", ".join(document_type(code).name for code in wanted)
        self._inbox.post(
            owner,
            REQUEST,
            f"{requester_name} asks for your {names}. Open the request to see why, and to "
            "approve or deny it.",
            reference=request_id,
            params={"requester": requester_name, "doctypes": list(wanted)},
        )
        found = self._request(request_id)
        assert found is not None  # noqa: S101 (inserted just now, in this transaction)
        self._texts.send(mobile, SMS_REQUEST)
        record(
            self._audit, "locker.exchange.requested", _department(requester, purpose_text,
            f"request:{request_id}", official), owner=owner, resource=f"request:{request_id}",
            fields="terms", output="none", **_terms_details(found),
        )  # fmt: skip
        return found

    def request_for(self, request_id: str, *, requester: str) -> tuple[Request, Consent | None]:
        """A request as the department that filed it sees it, with its consent once given."""
        found = self._request(request_id)
        if found is None or found.requester != requester:
            raise UnknownRequest("this client filed no request with that id")
        return found, self._consent(found.consent_id) if found.consent_id else None

    def requests_by(self, requester: str, *, limit: int = 200) -> list[Request]:
        """The requests `requester` filed, newest first (at most `limit`)."""
        rows = self._db.execute(
            _select_requests()
            .where(requests.c.requester == requester)
            .order_by(requests.c.created_at.desc(), requests.c.id)
            .limit(limit)
        )
        return [_request(row) for row in rows]

    # -- the citizen decides ------------------------------------------------------------------

    def requests_of(self, owner: str, *, state: str | None = None) -> list[Request]:
        """`owner`'s requests, newest first; only those in `state` (as of now) if given."""
        now = self._clock()
        rows = self._db.execute(
            _select_requests()
            .where(requests.c.owner == owner)
            .order_by(requests.c.created_at.desc(), requests.c.id)
        )
        found = [_request(row) for row in rows]
        return [r for r in found if state is None or r.state(now) == state]

    def approve(self, request_id: str, *, owner: str, substantial: bool) -> Consent:
        """Turn a pending request into an active consent with its signed artifact. The
        citizen must have signed in with a second factor: approving releases documents."""
        if not substantial:
            raise NeedsSecondFactor("approving a request needs a sign-in with a second factor")
        found = self._owned_request(request_id, owner)
        now = self._clock()
        # The rules again: a type may have been re-classified since the request was filed.
        checked_doctypes(found.doctypes, standing=found.fetch_limit > 1)
        self._decide(found, APPROVED, now)
        consent_id = new_id()
        issued = whole_seconds(now)
        terms = {
            "ver": ARTIFACT_VERSION,
            "id": consent_id,
            "request_id": found.id,
            "requester": found.requester,
            "owner": found.owner,
            "doctypes": list(found.doctypes),
            "purpose": {"code": found.purpose_code, "text": found.purpose_text},
            "data_life_days": found.data_life_days,
            "valid_from": iso(found.valid_from),
            "valid_until": iso(found.valid_until),
            "fetch_limit": found.fetch_limit,
            "issued_at": iso(issued),
        }
        row = {
            "id": consent_id, "request_id": found.id, "requester": found.requester,
            "owner": owner, "doctypes": " ".join(found.doctypes),
            "purpose_code": found.purpose_code, "purpose_text": found.purpose_text,
            "data_life_days": found.data_life_days, "valid_from": found.valid_from,
            "valid_until": found.valid_until, "fetch_limit": found.fetch_limit,
            "artifact": self._signer.sign(terms, CONSENT_TYPE), "status": ACTIVE, "uses": 0,
            "created_at": issued, "status_changed_at": issued,
        }  # fmt: skip
        self._db.execute(insert(consents).values(self._seal.sealed(consents, row)))
        consent = self._consent(consent_id)
        assert consent is not None  # noqa: S101 (inserted just now, in this transaction)
        self._citizen_record("locker.exchange.approved", consent, request=found.id)
        return consent

    def deny(self, request_id: str, *, owner: str) -> Request:
        found = self._owned_request(request_id, owner)
        self._decide(found, DENIED, self._clock())
        record(
            self._audit, "locker.exchange.denied", _citizen(owner), owner=owner,
            resource=f"request:{found.id}", fields="terms", output="none",
            requester=found.requester, request=found.id,
        )  # fmt: skip
        denied = self._request(found.id)
        assert denied is not None  # noqa: S101 (requests are never removed)
        return denied

    def consents_of(self, owner: str) -> list[Consent]:
        rows = self._db.execute(
            select(consents)
            .where(consents.c.owner == owner)
            .order_by(consents.c.created_at.desc(), consents.c.id)
        )
        return [_consent(row) for row in rows if self._seal.check(consents, row._mapping)]

    def change(self, consent_id: str, action: str, *, owner: str) -> Consent:
        """Pause, resume or revoke a consent; the change holds for the very next fetch. An
        expired consent can still be revoked (it says more), but not paused or resumed."""
        starts, ends = _TRANSITIONS[action]
        row = self._consent_row(consent_id, lock=True)
        found = _consent(row) if row is not None else None
        if row is None or found is None or found.owner != owner:
            raise UnknownConsent("you gave no consent with that id")
        now = self._clock()
        state = found.state(now)
        if state == EXPIRED and action == "revoke":
            state = found.status  # active or paused as recorded: revoking still says more
        if state not in starts:
            raise ConsentStateError(f"the consent is {state}; it cannot be {action}d")
        if not self._rewrite(row, status=ends, status_changed_at=now):
            raise ConsentStateError("the consent changed meanwhile; look at it again")
        after = self._consent(found.id)
        assert after is not None  # noqa: S101 (consents are never removed)
        self._citizen_record(f"locker.exchange.{action}d", after, request=after.request_id)
        return after

    # -- the department fetches ---------------------------------------------------------------

    def consent_for(self, consent_id: str, *, requester: str) -> Consent:
        found = self._consent(consent_id)
        if found is None or found.requester != requester:
            raise UnknownConsent("no consent with that id was given to this client")
        return found

    def manifest(self, consent_id: str, *, requester: str) -> tuple[Consent, list[Document]]:
        """What the consent releases now, without content; reading it spends no fetch."""
        now = self._clock()
        consent = self._usable(consent_id, requester, now, tried="metadata")
        found = [
            d
            for d in self._locker.list(consent.owner)
            if releasable(d, consent.doctypes, now=now, standing=consent.standing)
        ]
        record(
            self._audit, "locker.exchange.listed", _fetcher(consent), owner=consent.owner,
            resource=f"consent:{consent.id}", fields="metadata", output="list",
            consent=consent.id, count=len(found),
        )  # fmt: skip
        return consent, found

    def signature(self, consent_id: str, document_id: str, *, requester: str) -> Document:
        """A released document's issuer signature (spends no fetch); the document carries it."""
        now = self._clock()
        consent = self._usable(consent_id, requester, now, tried="signature")
        found = self._covered(consent, document_id, now)
        if found.signature is None:
            raise UnknownDocument("that document carries no issuer signature")
        record(
            self._audit, "locker.exchange.signature_read", _fetcher(consent),
            owner=consent.owner, resource=found.uri, fields="signature", output="signature",
            consent=consent.id, doctype=found.doctype,
        )  # fmt: skip
        return found

    def fetch(
        self, consent_id: str, document_id: str, *, requester: str, official: str | None = None
    ) -> Fetched:
        """One use of the consent: the document and its content, decrypted as it is read, and
        the date by which the department must delete it; `official` as for `file_request`.

        The use is counted, and the fetch recorded, in the caller's transaction, which the
        caller commits before streaming. The content's first piece is read here, so a store
        that does not answer fails the fetch before the use counts; a failure later cuts the
        stream (it raises), never ending it as if it were complete.
        """
        now = self._clock()
        consent = self._usable(consent_id, requester, now, tried="content")
        found = self._covered(consent, document_id, now)
        if not self._count_use(consent.id, now):
            # Another fetch or a citizen's change got in first; say which, from the row now.
            self._usable(consent_id, requester, now, tried="content")
            raise ConsentRefused(
                "the consent changed while this fetch ran; try again", code="consent.changed"
            )
        who = _fetcher(consent, official)
        content = self._locker.content(
            found, who=who, action=FETCHED, details={"consent": consent.id}
        )
        return Fetched(found, primed(content), consent.delete_by(now))

    # -- inside -------------------------------------------------------------------------------

    def _usable(self, consent_id: str, requester: str, now: datetime, *, tried: str) -> Consent:
        """The consent, if `requester` may use it now (and, for content, has a use left);
        otherwise a refusal, recorded."""
        consent = self.consent_for(consent_id, requester=requester)
        state = consent.state(now)
        refusal: ConsentRefused | None = None
        if state == PAUSED:
            refusal = ConsentRefused("the citizen has paused this consent", code="consent.paused")
        elif state == REVOKED:
            refusal = ConsentRefused("the citizen has revoked this consent", code="consent.revoked")
        elif state == EXPIRED:
            refusal = ConsentRefused(
                f"the consent expired at {iso(consent.valid_until)}",
                code="consent.expired", at=consent.valid_until,
            )  # fmt: skip
        elif now < consent.valid_from:
            refusal = ConsentRefused(
                f"the consent's window opens at {iso(consent.valid_from)}",
                code="consent.not_yet", at=consent.valid_from,
            )  # fmt: skip
        elif tried == "content" and consent.uses >= consent.fetch_limit:
            refusal = FetchLimitReached(
                f"all {consent.fetch_limit} fetches this consent allows have been made",
                limit=consent.fetch_limit,
            )
        if refusal is not None:
            record(
                self._audit, "locker.exchange.refused", _fetcher(consent), owner=consent.owner,
                resource=f"consent:{consent.id}", fields=tried, output="none",
                outcome="denied", consent=consent.id, refusal=str(refusal),
            )  # fmt: skip
            raise refusal
        return consent

    def _covered(self, consent: Consent, document_id: str, now: datetime) -> Document:
        """The document, if this consent releases it now. One answer for every reason it
        does not (another's, another type, revoked, an upload), so nothing can be probed."""
        found = self._locker.find(document_id)
        if (
            found is None
            or found.owner != consent.owner
            or not releasable(found, consent.doctypes, now=now, standing=consent.standing)
        ):
            raise UnknownDocument("this consent releases no document with that id")
        return found

    def _owned_request(self, request_id: str, owner: str) -> Request:
        found = self._request(request_id)
        if found is None or found.owner != owner:
            raise UnknownRequest("there is no such request for you")
        return found

    def _decide(self, found: Request, status: str, now: datetime) -> None:
        """Move a pending request to `status`, if it is still pending and in its window."""
        state = found.state(now)
        if state != PENDING:
            raise RequestClosed(f"the request is {state}", code=f"request.{state}", state=state)
        decided = self._db.execute(
            update(requests)
            .where(
                requests.c.id == found.id,
                requests.c.status == PENDING,
                requests.c.valid_until > now,
            )
            .values(status=status, decided_at=now)
        )
        if decided.rowcount != 1:  # type: ignore[attr-defined]  # a CursorResult
            raise RequestClosed(
                "the request was decided meanwhile", code="request.decided", state="decided"
            )

    def _citizen_record(self, action: str, consent: Consent, **details: str) -> None:
        record(
            self._audit, action, _citizen(consent.owner), owner=consent.owner,
            resource=f"consent:{consent.id}", fields="terms", output="none",
            requester=consent.requester, consent=consent.id, extra=details,
        )  # fmt: skip

    def _count_use(self, consent_id: str, now: datetime) -> bool:
        """Spend one use, if the consent, read again under its row's lock, still allows it."""
        row = self._consent_row(consent_id, lock=True)
        if row is None:
            return False
        current = _consent(row)
        allowed = (
            current.status == ACTIVE
            and current.uses < current.fetch_limit
            and current.valid_from <= now < current.valid_until
        )
        return allowed and self._rewrite(row, uses=current.uses + 1)

    def _rewrite(self, row: Mapping[Any, Any], **changes: Any) -> bool:
        """Write `changes` to the consent `row` (one whose seal verified) with a new seal,
        unless the row is no longer what was read: its old MAC is the compare-and-set."""
        sealed = self._seal.sealed(consents, {**row, **changes})
        written = self._db.execute(
            update(consents)
            .where(consents.c.id == row["id"], consents.c.mac == row[MAC_COLUMN])
            .values(**changes, mac=sealed[MAC_COLUMN])
        )
        return bool(written.rowcount == 1)  # type: ignore[attr-defined]  # a CursorResult

    def _consent_row(self, consent_id: str, *, lock: bool = False) -> Mapping[Any, Any] | None:
        """The consent's row, every column, if its seal verifies; None if there is none or
        it does not (such a row is no consent: see the module's docstring). `lock` takes the
        row's lock until the commit (on SQLite the transaction holds the write lock anyway)."""
        query = select(consents).where(consents.c.id == consent_id)
        found = self._db.execute(query.with_for_update() if lock else query).first()
        if found is None or not self._seal.check(consents, found._mapping):
            return None
        return found._mapping

    def _request(self, request_id: str) -> Request | None:
        row = self._db.execute(_select_requests().where(requests.c.id == request_id)).first()
        return _request(row) if row is not None else None

    def _consent(self, consent_id: str) -> Consent | None:
        row = self._consent_row(consent_id)
        return _consent(row) if row is not None else None


def check_purpose(code: str, text: str) -> None:
    """A purpose the citizen can read and the audit log can hold: a short code, and a text
    of 1 to 500 characters, neither holding a CNIC (the log refuses them; refusing here
    says so clearly, before anything is written)."""
    if not _PURPOSE_CODE.fullmatch(code):
        raise RequestRefused(
            "a purpose code is 1 to 32 letters, digits, '.', '_' and '-'",
            code="purpose.code", field="purpose_code",
        )  # fmt: skip
    if not text.strip() or len(text) > MAX_PURPOSE_TEXT:
        raise RequestRefused(
            f"a purpose text is 1 to {MAX_PURPOSE_TEXT} characters",
            code="purpose.text", field="purpose_text", most=MAX_PURPOSE_TEXT,
        )  # fmt: skip
    if holds_cnic(code) or holds_cnic(text):
        raise RequestRefused(
            "a purpose must not hold a CNIC", code="purpose.cnic", field="purpose_text"
        )


def primed(content: Iterator[bytes]) -> Iterator[bytes]:
    """`content` with its first piece read already: the object store has answered and the
    first chunk has authenticated before anyone commits to sending it."""
    first = next(content, b"")
    return itertools.chain((first,) if first else (), content)


def _window(
    valid_from: datetime | None, valid_until: datetime, now: datetime
) -> tuple[datetime, datetime]:
    if valid_until.tzinfo is None or (valid_from is not None and valid_from.tzinfo is None):
        raise RequestRefused(
            "give the window's times with their UTC offset",
            code="window.offset", field="valid_until",
        )  # fmt: skip
    start = whole_seconds(max(valid_from or now, now))
    end = whole_seconds(valid_until)
    if end <= start:
        raise RequestRefused(
            "the window must end after it starts, and in the future",
            code="window.order", field="valid_until",
        )  # fmt: skip
    if end - start > MAX_WINDOW:
        raise RequestRefused(
            f"a window is at most {MAX_WINDOW.days} days",
            code="window.too_long", field="valid_until", days=MAX_WINDOW.days,
        )  # fmt: skip
    return start, end


def _citizen(owner: str) -> Accessor:
    return Accessor(owner, "citizen", "owner")


def _department(
    requester: str, purpose_text: str, basis: str, official: str | None = None
) -> Accessor:
    return Accessor(f"client:{requester}", requester, basis, reason=purpose_text, official=official)


def _fetcher(consent: Consent, official: str | None = None) -> Accessor:
    return _department(consent.requester, consent.purpose_text, f"consent:{consent.id}", official)


def _terms_details(found: Request) -> dict[str, Any]:
    return {
        "request": found.id,
        "requester": found.requester,
        "doctypes": " ".join(found.doctypes),
        "purpose_code": found.purpose_code,
        "data_life_days": found.data_life_days,
        "fetch_limit": found.fetch_limit,
        "valid_from": iso(found.valid_from),
        "valid_until": iso(found.valid_until),
    }


def _select_requests() -> Any:
    return select(requests, consents.c.id.label("consent_id")).outerjoin(
        consents, consents.c.request_id == requests.c.id
    )


def _request(row: Any) -> Request:
    return Request(
        row.id, row.requester, row.owner, tuple(row.doctypes.split()), row.purpose_code,
        row.purpose_text, row.data_life_days, row.valid_from, row.valid_until, row.fetch_limit,
        row.created_at, row.status, row.decided_at, row.consent_id,
    )  # fmt: skip


def _consent(row: Any) -> Consent:
    """A consent from its row: a Row, or a Row's mapping."""
    row = getattr(row, "_mapping", row)
    return Consent(
        row["id"], row["request_id"], row["requester"], row["owner"],
        tuple(row["doctypes"].split()), row["purpose_code"], row["purpose_text"],
        row["data_life_days"], row["valid_from"], row["valid_until"], row["fetch_limit"],
        row["artifact"], row["status"], row["uses"], row["created_at"],
        row["status_changed_at"],
    )  # fmt: skip
