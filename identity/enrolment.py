"""Registration and password reset: proving who you are against NADRA and your mobile.

Both start the same way: the card details are checked with NADRA, the mobile number with the
telco SIM check, and a one-time code goes to that number. What the caller sees from `start_*`
never depends on whether the CNIC already has an account; only the holder of the registered
mobile learns that, from the text message itself.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from audit import AuditEvent, AuditLog, pseudonym
from audit.row_seal import RowSeal
from identity.accounts import Accounts, Profile
from identity.breached import BreachedPasswords
from identity.challenges import Challenges, new_code
from identity.cnic import normalise_cnic
from identity.errors import (
    AccountExists,
    CardNotValid,
    ChallengeFailed,
    DetailsNotVerified,
    WeakPassword,
)
from identity.nadra import CardDetails, CitizenRecord, NadraRegistry, Outcome
from identity.notices import PASSWORD_CHANGED, CredentialNotices
from identity.passwords import PasswordHasher, check_password, normalise, personal_words
from identity.phone import normalise_mobile
from identity.policy import IdentityPolicy
from identity.reconciled import PASSWORD_RESET, PASSWORD_SET, REGISTERED
from identity.sealing import Sealer
from identity.sms import SmsGateway
from identity.throttle import Throttle

REGISTER = "register"
RESET = "reset"
SERVICE = "Shanakht"
BREACHED = "this password has appeared in a data breach elsewhere; choose another"


class Enrolment:
    def __init__(
        self,
        session: Session,
        *,
        nadra: NadraRegistry,
        sms: SmsGateway,
        hasher: PasswordHasher,
        sealer: Sealer,
        row_seal: RowSeal,
        pseudonym_key: bytes,
        code_key: bytes,
        audit: AuditLog,
        policy: IdentityPolicy,
        clock: Callable[[], datetime],
        breached: BreachedPasswords | None = None,
    ) -> None:
        self._nadra = nadra
        self._breached = breached
        self._sms = sms
        self._hasher = hasher
        self._pseudonym_key = pseudonym_key
        self._audit = audit
        self._policy = policy
        self._clock = clock
        self._accounts = Accounts(session, sealer, row_seal)
        self._challenges = Challenges(
            session, code_key=code_key, sealer=sealer, policy=policy, clock=clock
        )
        self._throttle = Throttle(session, clock)
        self._notices = CredentialNotices(sms=sms, audit=audit, policy=policy, clock=clock)

    def _verified_record(
        self, details: CardDetails, mobile_text: str, client: str
    ) -> tuple[CitizenRecord, str, str]:
        """NADRA's record for these card details and this mobile, or a refusal."""
        cnic = normalise_cnic(details.cnic)
        mobile = normalise_mobile(mobile_text)
        subject = pseudonym(cnic, key=self._pseudonym_key)
        self._throttle.hit(f"enrol:cnic:{subject}", self._policy.per_cnic_enrolment)
        self._throttle.hit(f"enrol:address:{client}", self._policy.per_address_enrolment)
        verification = self._nadra.verify(
            CardDetails(
                cnic=cnic,
                full_name=details.full_name,
                father_or_husband_name=details.father_or_husband_name,
                date_of_birth=details.date_of_birth,
                card_issue_date=details.card_issue_date,
            )
        )
        if verification.outcome is Outcome.CARD_NOT_VALID:
            raise CardNotValid(f"NADRA reports this card as {verification.card_status}")
        if verification.outcome is not Outcome.MATCH or verification.record is None:
            # Not found and mismatch get one answer: which field differs is NADRA's to tell
            # the card holder, not ours to tell whoever is typing.
            raise DetailsNotVerified("the details do not match the card")
        if not self._nadra.mobile_registered(cnic, mobile):
            raise DetailsNotVerified("this mobile number is not registered to the CNIC")
        return verification.record, mobile, subject

    def _record(
        self, action: str, subject: str, *, proven: bool, password_set: datetime | None = None
    ) -> None:
        """Audit a step; before the one-time code is proven, the actor is not yet known.

        A step that sets a password records the time the account's row keeps for it: an older
        row put back (its old password with it) keeps its seal, and only this tells it from the
        row the service last wrote (`identity.reconciled.accounts`)."""
        actor = f"citizen:{subject}" if proven else "anonymous"
        details = {}
        if password_set is not None:
            details[PASSWORD_SET] = password_set.astimezone(UTC).isoformat()
        self._audit.append(AuditEvent(actor=actor, action=action, subject=subject, details=details))

    def start_registration(self, details: CardDetails, mobile: str, *, client: str) -> str:
        """Check the details and text a code; return the challenge id the browser keeps."""
        record, mobile, subject = self._verified_record(details, mobile, client)
        existing = self._accounts.exists(subject)
        code = new_code()
        profile = Profile.from_record(record)
        challenge_id = self._challenges.create(
            REGISTER,
            subject,
            {"profile": profile.to_json(), "mobile": mobile, "existing": existing},
            code,
        )
        if existing:
            text = (
                f"{SERVICE}: someone started a new registration with your CNIC. You already "
                "have an account; to get back in, use 'Forgot password'."
            )
        else:
            text = f"{SERVICE} code {code}. It expires in 5 minutes. Never share it."
        self._sms.send(mobile, text)
        self._record("identity.registration.started", subject, proven=False)
        return challenge_id

    def verify_code(self, challenge_id: str, purpose: str, code: str) -> None:
        self._challenges.verify(challenge_id, purpose, code)

    def complete_registration(self, challenge_id: str, password: str) -> str:
        """Set the password and create the account; return the new citizen id."""
        pending = self._challenges.peek(challenge_id, REGISTER)
        if pending.payload["existing"]:
            raise AccountExists("you already have an account; use 'Forgot password'")
        profile = Profile.from_json(pending.payload["profile"])
        mobile = pending.payload["mobile"]
        self._check_new_password(password, self._personal_words(profile, mobile))
        password_hash = self._hasher.hash(password)  # before the first write: no lock held
        challenge = self._challenges.consume(challenge_id, REGISTER)
        now = self._clock()
        citizen_id = self._accounts.create(
            pseudonym=challenge.pseudonym,
            profile=profile,
            mobile=mobile,
            password_hash=password_hash,
            now=now,
        )
        self._record(REGISTERED, challenge.pseudonym, proven=True, password_set=now)
        return citizen_id

    def start_reset(self, details: CardDetails, mobile: str, *, client: str) -> str:
        _record, mobile, subject = self._verified_record(details, mobile, client)
        account = self._accounts.by_pseudonym(subject)
        code = new_code()
        challenge_id = self._challenges.create(
            RESET, subject, {"citizen_id": account.id if account else None}, code
        )
        if account is None:
            text = f"{SERVICE}: there is no account for your CNIC yet; you can register one."
        else:
            text = f"{SERVICE} password reset code {code}. It expires in 5 minutes."
        self._sms.send(mobile, text)
        self._record("identity.password_reset.started", subject, proven=False)
        return challenge_id

    def expired_password_ticket(self, citizen_id: str, pseudonym: str) -> str:
        """A reset ticket for a citizen who just proved their (expired) password: the change
        page uses it instead of a code, since the password itself was the proof."""
        challenge_id = self._challenges.create(RESET, pseudonym, {"citizen_id": citizen_id}, "")
        self._challenges.verify(challenge_id, RESET, "")
        return challenge_id

    def complete_reset(self, challenge_id: str, password: str) -> str:
        pending = self._challenges.peek(challenge_id, RESET)
        citizen_id = pending.payload["citizen_id"]
        account = self._accounts.by_id(citizen_id) if citizen_id else None
        if account is None:
            raise ChallengeFailed("there is no account to reset; register instead")
        self._check_new_password(password, self._personal_words(account.profile, account.mobile))
        password_hash = self._hasher.hash(password)  # before the first write: no lock held
        self._challenges.consume(challenge_id, RESET)
        now = self._clock()
        if not self._accounts.set_password(account.id, password_hash, now=now):
            raise ChallengeFailed("there is no account to reset; register instead")
        self._record(PASSWORD_RESET, account.pseudonym, proven=True, password_set=now)
        # Reset, expired or changed on the account page: the holder hears of it every time.
        self._notices.send(account.mobile, account.pseudonym, PASSWORD_CHANGED)
        return account.id

    def _check_new_password(self, password: str, personal: list[str]) -> None:
        """The policy first (cheap, and its answer says what to change), then the breach
        corpus: a password that passes the rules may still be one an attacker tries first."""
        check_password(password, personal)
        if self._breached is None:
            return
        if any(self._breached.seen(form) for form in {password, normalise(password)}):
            raise WeakPassword([BREACHED])

    @staticmethod
    def _personal_words(profile: Profile, mobile: str) -> list[str]:
        return personal_words(
            profile.full_name, profile.father_or_husband_name, profile.cnic, mobile
        )
