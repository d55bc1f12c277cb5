"""Why a document signature was refused: the kinds a caller acts on differently.

A damaged or foreign file (MalformedSignature) is reported to whoever sent it; changed data
(DocumentAltered) means the copy in hand is not what was signed; an untrusted signer
(UntrustedSigner) means the bytes are as signed, but by nobody the trust roots vouch for at the
time of checking (unknown CA, expired or not yet valid certificate, wrong key usage).
"""

from __future__ import annotations

from signing.errors import SigningError


class DocumentSignatureError(SigningError):
    """Base of every refusal of a detached CMS or PAdES signature."""


class MalformedSignature(DocumentSignatureError):
    """Not a DER CMS SignedData of the expected shape (one signer, detached, CAdES attributes),
    or its parts contradict each other, as when signing-certificate-v2 names another
    certificate than the one presented: damage or forgery, either way not checkable."""


class DocumentAltered(DocumentSignatureError):
    """The data, or the signed attributes, do not match the signature."""


class UntrustedSigner(DocumentSignatureError):
    """The signature is intact, but its certificate does not chain to a trust root at `now`."""
