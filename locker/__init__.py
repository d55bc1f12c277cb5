"""Encrypted document lockers, consent and the once-only exchange between departments.

Not built yet: see the locker issue.
"""
