"""Citizen accounts as the rest of the package reads them: sealed rows opened into objects.

A citizen's row is sealed twice over. Its personal details are encrypted (`identity.sealing`,
bound to the row's id), so a read of the table learns nothing; and since migration 0025 the
whole row carries a row seal (`audit.row_seal`), so a write of the table grants nothing.
Without the second, whoever can write the table (a DBA, the API's own database role) could put
a password hash of their own choosing on anyone's account and sign in as them, clear a
lockout, or bring a removed account back. Every read that lets someone act as the citizen, or
acts for them (`credentials` for a login, `by_id` and `by_pseudonym`, `standing` on every API
call), checks the seal and treats a row that fails it as no account, the answer a login gives
for a CNIC without one. Every write of the service re-seals the row it read under its lock.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Row, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from audit.prepared import Prepared
from audit.row_seal import RowSeal
from identity.errors import AccountExists
from identity.models import citizens
from identity.nadra import Address, CitizenRecord, Gender
from identity.sealing import Sealer


@dataclass(frozen=True, slots=True)
class Profile:
    """What NADRA verified about a citizen, as the service keeps it."""

    cnic: str
    full_name: str
    father_or_husband_name: str
    date_of_birth: date
    gender: Gender
    address: Address

    @classmethod
    def from_record(cls, record: CitizenRecord) -> Profile:
        return cls(
            cnic=record.cnic,
            full_name=record.full_name,
            father_or_husband_name=record.father_or_husband_name,
            date_of_birth=record.date_of_birth,
            gender=record.gender,
            address=record.address,
        )

    def to_json(self) -> dict[str, Any]:
        a = self.address
        return {
            "cnic": self.cnic,
            "full_name": self.full_name,
            "father_or_husband_name": self.father_or_husband_name,
            "date_of_birth": self.date_of_birth.isoformat(),
            "gender": self.gender.value,
            "address": {
                "line": a.line,
                "city": a.city,
                "district": a.district,
                "province": a.province,
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Profile:
        return cls(
            cnic=data["cnic"],
            full_name=data["full_name"],
            father_or_husband_name=data["father_or_husband_name"],
            date_of_birth=date.fromisoformat(data["date_of_birth"]),
            gender=Gender(data["gender"]),
            address=Address(**data["address"]),
        )


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    pseudonym: str
    profile: Profile
    mobile: str
    password_hash: str
    password_changed_at: datetime
    failed_logins: int
    locked_until: datetime | None
    status: str


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a sign-in judges an account by, read without opening its sealed details: a login
    decrypts no one's name or number (the lockout's SMS opens the number when it is sent)."""

    id: str
    password_hash: str
    password_changed_at: datetime
    failed_logins: int
    locked_until: datetime | None
    status: str


# Built once: a login reads credentials twice, and building the statement each time cost more
# than running it. The whole row, for its seal.
_BY_PSEUDONYM = select(citizens).where(citizens.c.pseudonym == bindparam("pseudonym"))
_CREDENTIALS = Prepared(_BY_PSEUDONYM)
_CREDENTIALS_FOR_UPDATE = Prepared(_BY_PSEUDONYM.with_for_update())
# Whether a locker is there for a pseudonym: asked on every document a department issues, and
# who calls, on every API request.
_STANDING = Prepared(select(citizens).where(citizens.c.id == bindparam("citizen_id")))
_EXISTS = select(citizens.c.id).where(citizens.c.pseudonym == bindparam("pseudonym"))


# What a removed account's sealed profile and number become once its retention is over
# (`identity.housekeeping.erase_removed`): nothing, in a NOT NULL column. Such an account is
# read as no account (`by_id`, `by_pseudonym`); its pseudonym and status stay for the log.
ERASED = b""


def profile_context(citizen_id: str) -> str:
    return f"citizen:{citizen_id}:profile"


def mobile_context(citizen_id: str) -> str:
    return f"citizen:{citizen_id}:mobile"


class Accounts:
    """Reads and creates citizen rows; sealing and unsealing happen only here."""

    def __init__(self, session: Session, sealer: Sealer, seal: RowSeal) -> None:
        self._session = session
        self._sealer = sealer
        self._seal = seal

    def _open(self, row: Row[Any]) -> Account:
        profile = Profile.from_json(self._sealer.open_json(row.profile, profile_context(row.id)))
        mobile = self._sealer.open(row.mobile, mobile_context(row.id)).decode()
        return Account(
            id=row.id,
            pseudonym=row.pseudonym,
            profile=profile,
            mobile=mobile,
            password_hash=row.password_hash,
            password_changed_at=row.password_changed_at,
            failed_logins=row.failed_logins,
            locked_until=row.locked_until,
            status=row.status,
        )

    def _honoured(self, row: Row[Any] | None) -> Row[Any] | None:
        """`row` if the service wrote it as it stands (its seal holds), else None."""
        return self._seal.honoured(citizens, row)  # type: ignore[no-any-return]

    def _opened(self, row: Row[Any] | None) -> Account | None:
        found = self._honoured(row)
        return self._open(found) if found is not None and found.profile != ERASED else None

    def by_pseudonym(self, pseudonym: str, *, for_update: bool = False) -> Account | None:
        query = select(citizens).where(citizens.c.pseudonym == pseudonym)
        if for_update:
            query = query.with_for_update()
        return self._opened(self._session.execute(query).one_or_none())

    def credentials(self, pseudonym: str, *, for_update: bool = False) -> Credentials | None:
        """The account's sign-in state by pseudonym, its sealed details left shut."""
        statement = _CREDENTIALS_FOR_UPDATE if for_update else _CREDENTIALS
        row = self._honoured(
            statement.one_or_none(self._session.connection(), {"pseudonym": pseudonym})
        )
        if row is None:
            return None
        return Credentials(
            row.id,
            row.password_hash,
            row.password_changed_at,
            row.failed_logins,
            row.locked_until,
            row.status,
        )

    def by_id(self, citizen_id: str) -> Account | None:
        row = self._session.execute(
            select(citizens).where(citizens.c.id == citizen_id)
        ).one_or_none()
        return self._opened(row)

    def standing(self, citizen_id: str) -> tuple[str, str] | None:
        """(pseudonym, status) of an account, without opening its sealed profile: what an API
        needs to know who calls, on every request."""
        row = self._honoured(
            _STANDING.one_or_none(self._session.connection(), {"citizen_id": citizen_id})
        )
        return (row.pseudonym, row.status) if row is not None else None

    def exists(self, pseudonym: str) -> bool:
        """Whether a row holds the pseudonym, sealed or not: a second account for a CNIC is
        refused either way (the column is unique)."""
        return self.holder(pseudonym) is not None

    def holder(self, pseudonym: str) -> str | None:
        """The id of the row holding the pseudonym, sealed or not: for what only takes away
        (closing an account), which must reach a row someone changed by SQL as well; what
        grants goes through the readers above, which honour sealed rows only."""
        found = self._session.execute(_EXISTS, {"pseudonym": pseudonym}).first()
        return None if found is None else str(found.id)

    def create(
        self, *, pseudonym: str, profile: Profile, mobile: str, password_hash: str, now: datetime
    ) -> str:
        citizen_id = uuid.uuid4().hex
        values = {
            "id": citizen_id,
            "pseudonym": pseudonym,
            "profile": self._sealer.seal_json(profile.to_json(), profile_context(citizen_id)),
            "mobile": self._sealer.seal(mobile.encode(), mobile_context(citizen_id)),
            "password_hash": password_hash,
            "password_changed_at": now,
            "failed_logins": 0,
            "locked_until": None,
            "status": "active",
            "created_at": now,
        }
        try:
            with self._session.begin_nested():
                self._session.execute(insert(citizens).values(self._seal.sealed(citizens, values)))
        except IntegrityError:
            # Two registrations for one CNIC raced; the unique pseudonym let one through.
            raise AccountExists("an account already exists for this CNIC") from None
        return citizen_id

    def _change(self, citizen_id: str, changes: dict[str, Any], *, always: bool = False) -> bool:
        """Write `changes` to the citizen's row, read under its lock, with a new seal; whether
        it was written. A row that fails its seal is not: a new password or a cleared lockout
        would bless what someone else wrote. With `always` (changes that take away, such as a
        removal) it is written all the same, and not re-sealed, so it stays refused and listed.
        """
        row = self._session.execute(
            select(citizens).where(citizens.c.id == citizen_id).with_for_update()
        ).one_or_none()
        if row is None:
            return False
        if self._honoured(row) is not None:
            changes = self._seal.resealed(citizens, row._mapping, changes)
        elif not always:
            return False
        self._session.execute(update(citizens).where(citizens.c.id == citizen_id).values(changes))
        return True

    def set_password(self, citizen_id: str, password_hash: str, *, now: datetime) -> bool:
        """A new password also lifts a lockout: the citizen has just proved who they are.
        Whether it was set (not on a row that fails its seal)."""
        return self._change(
            citizen_id,
            {
                "password_hash": password_hash,
                "password_changed_at": now,
                "failed_logins": 0,
                "locked_until": None,
            },
        )

    def record_failure(
        self, citizen_id: str, failed_logins: int, locked_until: datetime | None
    ) -> None:
        self._change(citizen_id, {"failed_logins": failed_logins, "locked_until": locked_until})

    def record_success(
        self, citizen_id: str, password_hash: str | None, *, clear_failures: bool = True
    ) -> None:
        """Clear the failure count (unless `clear_failures` is false: a known browser's success
        leaves unknown browsers' lockout standing); store a rehashed password when its
        parameters were old. Most logins have neither to do, and write nothing."""
        values: dict[str, object] = (
            {"failed_logins": 0, "locked_until": None} if clear_failures else {}
        )
        if password_hash is not None:
            values["password_hash"] = password_hash
        if values:
            self._change(citizen_id, values)

    def remove(self, citizen_id: str) -> None:
        """Close an account for good: it can no longer sign in or be asked for claims. The row
        stays (its pseudonym anchors the audit trail); what it holds is sealed anyway."""
        self._change(citizen_id, {"status": "removed"}, always=True)

    def erase(self, citizen_id: str) -> bool:
        """Erase a removed account's sealed profile and number (`ERASED`), once its retention
        is over; whether this call did."""
        row = self._session.execute(
            select(citizens.c.profile).where(citizens.c.id == citizen_id).with_for_update()
        ).one_or_none()  # locked first: two replicas sweeping at once count it once
        if row is None or row.profile == ERASED:
            return False
        return self._change(citizen_id, {"profile": ERASED, "mobile": ERASED}, always=True)
