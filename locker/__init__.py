"""Encrypted document lockers, consent and the once-only exchange between departments.

The document-type registry (`doctypes`); documents issued once however often retried, versioned,
revoked, read back only as stored and shredded on delete (`documents`); envelope encryption in
authenticated chunks (`crypto`) under versioned key-encryption keys (`kek`, re-wrapped by
`rewrap`); the object stores, a local folder and S3 (`stores`); share links and nominees
(`sharing`); requests, consents and fetches between departments (`exchange`, `consents`,
`release`, `inbox`), access on a legal basis (`legal`); and every access in one audit shape
(`access`), read back by the citizen (`access_log`).
"""
