"""The citizen's "who accessed my data" view: the locker's audit entries about one person.

It reads the audit log itself, never a copy, so every item is an entry of the log and the
citizen can ask for its inclusion proof and check it against a signed checkpoint without
trusting the service. Items are the entries `locker.access.record` wrote (system
`shanakht-locker`) with the citizen's pseudonym as subject; an entry whose `disclose_after`
lies ahead (an investigation under a legal basis) does not exist for the citizen until then:
it is not listed, exported, counted or proved.

Pages walk back from the newest through the log's subject index a batch at a time, and one
request reads at most a fixed number of entries (`scan_budget`): a citizen with a long history,
or a filter that matches little, costs a bounded amount per request, and the answer's
`next_before` says where to go on. Filters on what only the entry's JSON holds (organisation,
basis, action) are applied here, after decoding; the time filter also stops the walk early.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from audit import AuditEntry, AuditLog, ProofRequestError
from audit.entry import format_time
from locker.access import SYSTEM

BASIS_KINDS = ("owner", "nominee", "issuer", "request", "consent", "legal", "share")
"""What `Accessor.basis` starts with: the kind of footing an access stood on."""

COLUMNS = (
    "seq",
    "time",
    "action",
    "organisation",
    "official",
    "basis",
    "purpose",
    "document",
    "doctype",
    "fields",
    "output",
    "outcome",
)
"""The fields of an item, in the order an export lists them."""

PAGE_SCAN = 2_000  # entries one page of the view may read
EXPORT_SCAN = 100_000  # entries one export may read (decoded one batch at a time)
EXPORT_CAP = 10_000  # rows one export may hold; the rest is reached with `before`
_BATCH_MAX = 500

# Entry times come from each appender's clock under the log's head lock, so they rise with seq
# up to the skew between servers' clocks. The walk stops once it is this far before `since`.
CLOCK_SKEW = timedelta(minutes=10)


class AccessLogError(ValueError):
    """A filter that cannot be applied (an unknown basis kind, a window that ends before it
    starts)."""


@dataclass(frozen=True, slots=True)
class AccessItem:
    """One access to the citizen's data, in the province's Schedule II terms."""

    seq: int
    time: str
    action: str
    organisation: str | None
    official: str | None
    basis: str | None
    purpose: str | None
    document: str | None  # the document URI, `issuer-doctype-docid`
    doctype: str | None
    fields: str | None
    output: str | None
    outcome: str

    @property
    def basis_kind(self) -> str | None:
        return self.basis.partition(":")[0] if self.basis else None

    def row(self) -> tuple[str | int | None, ...]:
        """The item's values in `COLUMNS` order."""
        return tuple(getattr(self, name) for name in COLUMNS)


@dataclass(frozen=True, slots=True)
class AccessFilter:
    """What the citizen narrows the view to; every given condition must hold.

    `action` is a prefix ("locker.document" matches every document action); `since` and
    `until` are whole days in UTC, both included.
    """

    organisation: str | None = None
    action: str | None = None
    since: date | None = None
    until: date | None = None
    basis: str | None = None

    def __post_init__(self) -> None:
        if self.basis is not None and self.basis not in BASIS_KINDS:
            raise AccessLogError(f"basis is one of {', '.join(BASIS_KINDS)}")
        if self.since is not None and self.until is not None and self.since > self.until:
            raise AccessLogError("`since` is after `until`")

    def _start(self) -> str | None:
        return _day_start(self.since) if self.since is not None else None

    def _end(self) -> str | None:
        """The first instant after the window, so `until` counts its whole day; none when
        `until` is the calendar's last day (there is no day after it to start)."""
        if self.until is None or self.until == date.max:
            return None
        return _day_start(self.until + timedelta(days=1))

    def floor(self) -> str | None:
        """The entry time below which no later entry in a backward walk can match; none when
        `since` is within the clock skew of the calendar's first day (nothing is older)."""
        if self.since is None:
            return None
        start = datetime.combine(self.since, time.min, tzinfo=UTC)
        if start - datetime.min.replace(tzinfo=UTC) < CLOCK_SKEW:
            return None
        return format_time(start - CLOCK_SKEW)

    def matches(self, item: AccessItem) -> bool:
        start, end = self._start(), self._end()
        return (
            (self.organisation is None or item.organisation == self.organisation)
            and (self.action is None or item.action.startswith(self.action))
            and (self.basis is None or item.basis_kind == self.basis)
            and (start is None or item.time >= start)
            and (end is None or item.time < end)
        )


@dataclass(frozen=True, slots=True)
class AccessPage:
    items: list[AccessItem]
    next_before: int | None  # pass as `before` for older items; None when the walk is done


def _day_start(day: date) -> str:
    # Entry times are RFC 3339 UTC text of one fixed shape, so they compare as text.
    return format_time(datetime.combine(day, time.min, tzinfo=UTC))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def disclosed(details: dict[str, object], now: datetime) -> bool:
    """Whether an entry may be shown at `now`. A `disclose_after` that cannot be read keeps
    the entry hidden: a withheld investigation must not leak through a malformed date."""
    after = details.get("disclose_after")
    if after is None:
        return True
    if not isinstance(after, str):
        return False
    try:
        moment = datetime.fromisoformat(after)
    except ValueError:
        return False
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return now >= moment


def item_of(entry: AuditEntry, now: datetime) -> AccessItem | None:
    """The entry as an access-log item, or None when it is not a locker entry or is not
    disclosed yet."""
    details = entry.event.details
    if details.get("system") != SYSTEM or not disclosed(details, now):
        return None
    return AccessItem(
        seq=entry.seq,
        time=entry.time,
        action=entry.event.action,
        organisation=_text(details.get("organisation")),
        official=_text(details.get("official")),
        basis=_text(details.get("basis")),
        purpose=entry.event.purpose,
        document=entry.event.resource,
        doctype=_text(details.get("doctype")),
        fields=_text(details.get("fields")),
        output=_text(details.get("output")),
        outcome=entry.event.outcome,
    )


def _newest_first(
    audit: AuditLog, owner: str, before: int | None, batch: int
) -> Iterator[AuditEntry]:
    while True:
        page = audit.page_back(subject=owner, before=before, limit=batch)
        yield from page
        if len(page) < batch:
            return
        before = page[-1].seq


def read(
    audit: AuditLog,
    owner: str,
    *,
    now: datetime,
    filters: AccessFilter | None = None,
    before: int | None = None,
    limit: int = 50,
    scan_budget: int = PAGE_SCAN,
) -> AccessPage:
    """Up to `limit` items about `owner` older than `before`, newest first.

    Fewer than `limit` items with a `next_before` means the request read its `scan_budget` of
    entries first; the caller goes on from there.
    """
    filters = filters or AccessFilter()
    floor = filters.floor()
    items: list[AccessItem] = []
    batch = min(max(limit, 50), _BATCH_MAX)
    for scanned, entry in enumerate(_newest_first(audit, owner, before, batch), start=1):
        if floor is not None and entry.time < floor:
            return AccessPage(items, None)
        # The subject column is a copy kept for the index; the entry itself must agree.
        item = item_of(entry, now) if entry.event.subject == owner else None
        if item is not None and filters.matches(item):
            items.append(item)
            if len(items) >= limit:
                return AccessPage(items, entry.seq)
        if scanned >= scan_budget:
            return AccessPage(items, entry.seq)
    return AccessPage(items, None)


def find(audit: AuditLog, owner: str, seq: int, *, now: datetime) -> AuditEntry | None:
    """Entry `seq` if it is in `owner`'s access log as they may see it now; None otherwise,
    whether it does not exist, is about someone else, is not a locker entry or is withheld,
    so the answer tells nothing about other people's entries."""
    try:
        entry = audit.entry(seq)
    except ProofRequestError:
        return None
    if entry.event.subject != owner or item_of(entry, now) is None:
        return None
    return entry
