"""Encrypted document lockers, consent and the once-only exchange between departments.

Built so far: the document-type registry (`doctypes`), documents issued once however often
retried, read back only as stored and shredded on delete (`documents`), envelope encryption in
authenticated chunks (`crypto`), versioned key-encryption keys (`kek`), and the object stores,
a local folder and S3 (`stores`). The HTTP API, consent and the exchange come next.
"""
