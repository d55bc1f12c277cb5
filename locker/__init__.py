"""Encrypted document lockers, consent and the once-only exchange between departments.

Built so far: envelope encryption in authenticated chunks (`crypto`), versioned key-encryption
keys (`kek`), and the object stores, a local folder and S3 (`stores`). Documents, consent and
the exchange come next (the locker issue).
"""
