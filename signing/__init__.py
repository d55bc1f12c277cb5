"""The government PKI, document signatures, QR payloads and their verification.

Not built yet: see the signing issue.
"""
