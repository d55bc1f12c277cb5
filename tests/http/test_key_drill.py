"""The key-compromise drill: every key that vouches for something leaks at once, and each is
replaced the way its runbook says. Afterwards what the leaked keys signed verifies or fails
exactly as it should, what they protected is still readable, and the audit log still checks."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from joserfc.jws import extract_compact
from sqlalchemy import select

from api.administration import kek_states, rotate_kek, rotate_signing_keys, verify_audit
from api.routes.locker_views import upload_own
from api.runtime import Runtime
from audit.models import entries
from locker.access import Accessor
from locker.rewrap import rewrap_all
from signing.pki.authority import Subject
from signing.pki.profiles import QR_SIGNER
from signing.trustlist import load_trust_list
from tests.http.oidc_kit import register_client
from tests.http.test_roles_and_entries import _access_token
from tests.http.test_signing import Desk, _sign, _verify_file, desk, officer

__all__ = ["desk", "officer"]  # fixtures, used by name

DRILL = "admin:drill"
CONTENT = b'{"drill": "a document stored before the keys leaked"}'


def _kid(token: str) -> str:
    return str(extract_compact(token.encode()).headers()["kid"])


def _kids(web: TestClient) -> set[str]:
    return {str(k["kid"]) for k in web.get("/oauth/jwks").json()["keys"]}


def _userinfo(web: TestClient, access_token: str) -> int:
    return web.get(
        "/oauth/userinfo", headers={"Authorization": f"Bearer {access_token}"}
    ).status_code


def test_every_key_leaks_and_each_replacement_does_exactly_its_job(
    web: TestClient, oidc_runtime: Runtime, desk: Desk, officer: tuple[str, str]
) -> None:
    cnic, citizen_id = officer
    # Before: an order signed under the QR signer, a token in use, a document in the locker.
    order = _sign(web, desk)
    assert _verify_file(web, order, "order.pdf")["outcome"] == "authentic"
    rp = register_client(oidc_runtime, "drill", scopes=("openid", "profile"))
    web.cookies.clear()
    before = _access_token(web, rp, cnic, "openid profile")
    assert _userinfo(web, before) == 200
    leaked_kids = _kids(web)
    assert _kid(before) in leaked_kids
    with oidc_runtime.transaction() as session:
        holder = oidc_runtime.provider(session).accounts.by_id(citizen_id)
        assert holder is not None
        stored = upload_own(
            oidc_runtime, session, holder.pseudonym, doctype="other", title="Drill",
            content=[CONTENT], content_type="application/json",
        )  # fmt: skip
        root = oidc_runtime.authority(session).root()
    trust_before = load_trust_list(web.get("/signing/trust-list").content, root=root,
                                   now=oidc_runtime.clock())  # fmt: skip

    # 1. The QR signer's key leaked: revoke it for key compromise, issue a new signer.
    with oidc_runtime.transaction() as session:
        authority = oidc_runtime.authority(session)
        authority.revoke(desk.qr_serial, "key_compromise", actor=DRILL)
        authority.issue(QR_SIGNER, Subject("SED QR signer 2", "sed"), actor=DRILL)
    assert _verify_file(web, order, "order.pdf")["outcome"] == "revoked"
    trust_after = load_trust_list(web.get("/signing/trust-list").content, root=root,
                                  now=oidc_runtime.clock())  # fmt: skip
    assert trust_after.sequence > trust_before.sequence
    assert sorted(s.status for s in trust_after.signers) == ["good", "revoked"]
    assert _verify_file(web, _sign(web, desk), "order.pdf")["outcome"] == "authentic"

    # 2. The token-signing keys leaked: withdrawn from the JWKS at once, not after a day.
    with oidc_runtime.transaction() as session:
        new_kids = rotate_signing_keys(oidc_runtime, session, actor=DRILL, compromised=True)
    assert _kids(web) == set(new_kids)
    assert not leaked_kids & set(new_kids)
    assert _userinfo(web, before) == 401
    web.cookies.clear()
    after = _access_token(web, rp, cnic, "openid profile")
    assert _kid(after) in new_kids
    assert _userinfo(web, after) == 200

    # 3. The locker's KEK leaked: a new version, every data key re-wrapped under it; the
    # document reads back as stored and the old version wraps nothing any more.
    old_kek = rotate_kek(oidc_runtime, actor=DRILL)
    newest = rotate_kek(oidc_runtime, actor=DRILL)
    report = rewrap_all(oidc_runtime.transaction, oidc_runtime.keks, oidc_runtime.audit_log,
                        actor=DRILL)  # fmt: skip
    assert report.kek_version == newest
    assert report.rewrapped >= 1
    again = rewrap_all(oidc_runtime.transaction, oidc_runtime.keks, oidc_runtime.audit_log,
                       actor=DRILL)  # fmt: skip
    assert again.rewrapped == 0
    assert again.already_current == report.total
    with oidc_runtime.transaction() as session:
        owner = Accessor(holder.pseudonym, "citizen", "owner")
        _found, stream = oidc_runtime.locker(session).open(stored.id, owner=holder.pseudonym,
                                                           who=owner)  # fmt: skip
        assert b"".join(stream) == CONTENT
    states = {s.version_id: s.state for s in kek_states(oidc_runtime.keks)}
    assert states[newest] == "current"
    assert states[old_kek] == "unwrap only"

    # The whole drill is in the audit log, and the log still verifies (it raises if not).
    assert verify_audit(oidc_runtime).size > 0
    with oidc_runtime.transaction() as session:
        recorded = [json.loads(e) for e in session.execute(select(entries.c.entry)).scalars()]
    actions = [e["action"] for e in recorded if e["actor"] == DRILL]
    assert actions.count("locker.keys.rotated") == 2
    assert actions.count("locker.keys.rewrapped") == 2
    assert [e["details"]["compromised"] for e in recorded
            if e["action"] == "identity.keys.rotated"] == [True]  # fmt: skip
