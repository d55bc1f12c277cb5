"""Run every benchmark: `python -m bench` (what `make bench` does)."""

from bench import (
    audit_log,
    identity,
    locker_crypto,
    locker_http,
    locker_rewrap,
    pages,
    signing,
    soak,
    verifier_page,
)

if __name__ == "__main__":
    audit_log.main()
    identity.main()
    signing.main()
    locker_crypto.main()
    locker_rewrap.main()
    locker_http.main()
    pages.main()
    verifier_page.main()
    soak.main()
