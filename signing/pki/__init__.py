"""The government PKI: CA hierarchy, certificate profiles, CRLs (OCSP and storage to follow)."""
