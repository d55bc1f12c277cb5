"""The locker package's exceptions: one family, so callers can catch `LockerError` at a boundary.

The kinds are the ones a caller answers differently: a ciphertext that fails authentication is
an integrity incident (never retried, never served), a missing key is a configuration or
crypto-shredding matter, a store that does not answer is a 503 worth retrying, a missing object
is a 404 or an orphaned row. Messages never carry key material or document content.
"""

from audit.refusal import RefusalError


class LockerError(RefusalError):
    """Base of every locker error: a `RefusalError`, so a page can say it in either language."""


class CiphertextInvalid(LockerError):
    """A locker ciphertext is malformed or fails authentication: altered, truncated, extended,
    reordered, spliced from another document or version, or opened with the wrong key or
    context. Nothing of the failing chunk has been released."""


class DigestMismatch(CiphertextInvalid):
    """The ciphertext authenticated, but the plaintext's SHA-256 is not the one recorded for the
    document: the object and its database row do not belong together."""


class KeyUnavailable(LockerError):
    """A key-encryption key version is unknown to the provider, or cannot be opened."""


class MasterSecretMismatch(KeyUnavailable):
    """A sealed key-encryption key does not open under the master secret given: the secret is
    wrong, or the sealed file was altered or renamed."""


class WrappedKeyInvalid(LockerError):
    """A wrapped data key is malformed, does not open under its key-encryption key, or is bound
    to another document, version or owner than the one asked for."""


class StoreError(LockerError):
    """Base of the object stores' errors."""


class ObjectMissing(StoreError):
    """The object store holds no object under this key."""


class StoreUnavailable(StoreError):
    """The object store did not do what was asked: unreachable, timed out, failed (5xx), out of
    space, or refused the request. Nothing half-written is left behind."""
