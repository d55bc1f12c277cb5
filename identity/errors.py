"""The identity package's exceptions.

Several of them deliberately say less than the code knows: an outsider must not learn from an
error whether a CNIC or a mobile number has an account.
"""

from typing import Any

from audit.refusal import RefusalError


class IdentityError(RefusalError):
    """Base of every identity error: a `RefusalError`, so a page can say it in either language."""


class InvalidCnic(IdentityError):
    """A CNIC that is not 13 digits of the right shape; refused before any registry call."""


class InvalidMobile(IdentityError):
    """Not a Pakistani mobile number (+92 3xx xxxxxxx); refused before any registry call."""


class RegistryUnavailable(IdentityError):
    """NADRA did not answer in time or is down: the citizen should try again later."""


class BreachCorpusUnavailable(IdentityError):
    """The breached-password mirror cannot answer: no new password is accepted meanwhile."""


class WeakPassword(IdentityError):
    """A new password breaks the policy; `failures` says what to change, one item per rule."""

    def __init__(self, failures: list[str]) -> None:
        super().__init__("; ".join(failures))
        self.failures = failures


class DetailsNotVerified(IdentityError):
    """NADRA did not confirm the card details (not found or mismatched: the same answer for
    both), or the mobile number is not registered to the CNIC."""


class CardNotValid(IdentityError):
    """NADRA knows the card but it is expired, cancelled or its holder deceased."""


class ChallengeFailed(IdentityError):
    """A one-time-code ticket is unknown, expired, used up or out of attempts: start again.

    For the audit log (`identity.failures`), a ticket that exists says whose it is
    (`ticket_of`, a pseudonym) and why it could not be used (`why`, a fixed phrase); an unknown
    one leaves both None, as it names nobody. Neither is ever shown or logged."""

    def __init__(
        self,
        *args: object,
        ticket_of: str | None = None,
        why: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.ticket_of = ticket_of
        self.why = why


class WrongCode(IdentityError):
    """The one-time code does not match; the attempt is counted, so the caller must commit."""

    keep_transaction = True

    def __init__(self, attempts_left: int) -> None:
        super().__init__(f"the code is not right; {attempts_left} attempts left")
        self.attempts_left = attempts_left


class ReusedCode(WrongCode):
    """An authenticator-app code that was accepted once already (ASVS 2.8.5): refused, and
    recorded as a replay; the citizen waits for the app's next code."""

    def __init__(self) -> None:
        super().__init__(attempts_left=0)
        self.args = ("this code was used already; wait for the app to show the next one",)


class AccountExists(IdentityError):
    """Registration found an account for this CNIC. Only said after the one-time code proved the
    caller holds the mobile registered to that CNIC."""


class InvalidCredentials(IdentityError):
    """The CNIC and password do not open an account: wrong password, unknown CNIC and locked
    account all give this one answer. The failure's record (its count, its audit entry) must
    stand: `PasswordLogin.login` has committed it; raised inside a caller's transaction
    (`PasswordLogin.record`), it says so, as a counted wrong code does.

    `locked_citizen` is for the caller alone, never for the response: the account whose
    lockout this very failure caused, for the account (unknown browsers) or for the browser's
    device cookie. It ends no session by itself: strangers' failures must not sign the holder
    out; a caller whose signed-in browser caused it may sign that browser out.
    """

    keep_transaction = True

    def __init__(self, message: str, *, locked_citizen: str | None = None) -> None:
        super().__init__(message)
        self.locked_citizen = locked_citizen


class TooManyAttempts(IdentityError):
    """Throttled: too many attempts for this account or from this address; retry later."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many attempts; try again in {retry_after} seconds")
        self.retry_after = retry_after
