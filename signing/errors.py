"""The signing package's exceptions: one family, so callers can catch `SigningError` at a boundary.

A verifier that refuses a QR code says which step refused it, and no more: the kinds below are
what a person at a counter needs to tell apart (a damaged print, an old app, a forgery, an
order that has run out), not a parser's diagnostics.
"""

from audit.refusal import RefusalError


class SigningError(RefusalError):
    """Base of every signing error: a `RefusalError`, so a page can say it in either language."""


class MalformedPayload(SigningError):
    """Not an SHK1 QR text, or its base45, zlib, CBOR or COSE structure or a field is wrong."""


class UnsupportedVersion(SigningError):
    """A well-formed QR payload of a version this code does not know (newer than it)."""


class UnknownSigner(SigningError):
    """The key id names no signer on the trust list given to the verifier."""


class SignatureInvalid(SigningError):
    """The signature does not verify under the named signer's key: the QR was altered."""


class PayloadExpired(SigningError):
    """The signature is good but the payload's expiry is at or before the verifier's `now`."""


class OrderInvalid(SigningError, ValueError):
    """A document's field that cannot be printed or signed as given; `field` names it. A
    ValueError too, as callers that build documents have always caught."""
