"""The audit package's exceptions: one family, so callers can catch `AuditError` at a boundary."""

from audit.refusal import RefusalError


class AuditError(Exception):
    """Base of every audit error."""


class EntryError(AuditError):
    """An audit entry is malformed: a missing field, a raw CNIC, a value JSON cannot keep exact."""


class ProofError(AuditError):
    """A Merkle proof does not verify."""


class ProofRequestError(AuditError):
    """A proof was asked for sizes or indices the log cannot prove (size 0, index >= size...)."""


class NoteError(AuditError):
    """A signed note or verifier key is malformed, or its signature does not verify."""


class SignatureBroken(NoteError):
    """A note carries a line for the key checking it, and that signature does not verify."""


class TamperError(AuditError, RefusalError):
    """The stored log disagrees with itself or with a signed checkpoint.

    `seq` names the first entry found bad, or None when the damage is to a checkpoint; `code`
    and the facts say what was found, so the administrator's page words it in their language.
    """

    def __init__(
        self, message: str, seq: int | None = None, *, code: str | None = None, **facts: object
    ) -> None:
        super().__init__(message, code=code)
        self.facts.update(facts)
        self.seq = seq
        if seq is not None:
            self.facts.setdefault("seq", seq)
