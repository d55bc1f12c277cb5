"""The shared tamper-evident audit log: canonical entries, hash chain, Merkle tree, checkpoints.

Every service writes here; nobody, not even the service, can change what was written without
`audit verify` or an outside holder of a signed checkpoint noticing. This package imports no
other Shanakht package.
"""

from audit.checkpoint import Checkpoint
from audit.entry import AuditEntry, AuditEvent, holds_cnic
from audit.errors import (
    AuditError,
    EntryError,
    NoteError,
    ProofError,
    ProofRequestError,
    TamperError,
)
from audit.note import NoteKeyRing, NoteSigner, NoteVerifier, OpensNotes
from audit.pseudonym import address_pseudonym, pseudonym
from audit.services import AuditLog, ConsistencyProof, InclusionProof, SignedCheckpoint
from audit.verify import VerifyReport, verify_log

__all__ = [
    "AuditEntry",
    "AuditError",
    "AuditEvent",
    "AuditLog",
    "Checkpoint",
    "ConsistencyProof",
    "EntryError",
    "InclusionProof",
    "NoteError",
    "NoteKeyRing",
    "NoteSigner",
    "NoteVerifier",
    "OpensNotes",
    "ProofError",
    "ProofRequestError",
    "SignedCheckpoint",
    "TamperError",
    "VerifyReport",
    "address_pseudonym",
    "holds_cnic",
    "pseudonym",
    "verify_log",
]
