"""Share links, nominees and guardians, and legal-access requests reconciled with the log
(`locker.reconciled`: `shares_kind`, `nominees_kind`, `legal_requests_kind`, what `shanakht
audit integrity` runs; docs/threat-model.md section 7, item 9). Each row's seal holds in these
tests: an earlier sealed row put back verifies, and only the log's last word on it tells it
from the latest; a row deleted leaves nothing to check but the log."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import ColumnElement, Table, delete, insert, select

from api.administration import check_integrity
from api.routes.locker import _redeem
from api.routes.locker_views import sharing
from audit.models import entries
from locker import sharing as sharing_module
from locker.access import Accessor
from locker.documents import Locker
from locker.legal import LegalAccess
from locker.models import legal_requests, nominees, shares
from locker.sharing import ShareUnusable
from tests.unit.locker.test_exchange import MOBILE, OWNER, Kit, _issue
from tests.unit.locker.test_legal import FIA, SECOND, _approve, _file, _open, _refuse

CITIZEN = Accessor(OWNER, "citizen", "owner")
NOMINEE = "p:" + "N" * 43
GUARDIAN = "p:" + "G" * 43
REFERENCE, REASON = "Crl. Misc. 4471-B/2026", "Forgery investigation"  # `_file`'s


def _listed(kit: Kit, *personal: str) -> list[str]:
    """What `shanakht audit integrity` lists: every row's seal holds here, so only the
    reconciliation with the log can see a row put back, removed or never recorded. No line
    names a phone number, a legal reference or reason, or anything in `personal`."""
    found = check_integrity(kit.runtime)
    assert found.bad == []
    listed = [f"{m.table} {m.key}: {m.problem}" for m in found.mismatches]
    for secret in (MOBILE, REFERENCE, REASON, *personal):
        assert not [line for line in listed if secret in line]
    return listed


def _kept(kit: Kit, table: Table, where: ColumnElement[bool]) -> dict[str, Any]:
    """A DBA's copy of a row, MAC and all."""
    with kit.runtime.sessions() as session:
        return dict(session.execute(select(table).where(where)).one()._mapping)


def _put_back(kit: Kit, table: Table, where: ColumnElement[bool], kept: dict[str, Any]) -> None:
    """What a DBA can do without the service's keys: put an earlier sealed row back (deleting
    what stands there, if anything)."""
    with kit.runtime.transaction() as session:
        session.execute(delete(table).where(where))
        session.execute(insert(table).values(**kept))


def _remove(kit: Kit, table: Table, where: ColumnElement[bool]) -> None:
    with kit.runtime.transaction() as session:
        session.execute(delete(table).where(where))


# -- share links ----------------------------------------------------------------------------------


def _share(kit: Kit, document_id: str, max_uses: int | None = None) -> tuple[str, str]:
    with kit.runtime.transaction() as session:
        found = kit.runtime.locker(session).find(document_id)
        assert found is not None
        link, token = sharing(kit.runtime, session).share(
            found, who=CITIZEN, life=timedelta(hours=1), max_uses=max_uses
        )
    return link.id, token


def _use(kit: Kit, token: str) -> bytes:
    """The link used as `GET /shared/{token}` uses it: counted, read and recorded."""
    _found, content = _redeem(kit.runtime, token)
    return b"".join(content)


def _revoke_share(kit: Kit, share_id: str) -> None:
    with kit.runtime.transaction() as session:
        sharing(kit.runtime, session).revoke(share_id, owner=OWNER, who=CITIZEN)


def test_an_honest_share_link_history_reconciles(kit: Kit) -> None:
    document_id = _issue(kit)
    used_up, a = _share(kit, document_id, max_uses=2)
    _use(kit, a)
    _use(kit, a)
    with pytest.raises(ShareUnusable):
        _use(kit, a)  # refused: nothing counted, nothing recorded
    revoked, b = _share(kit, document_id)
    _use(kit, b)
    _revoke_share(kit, revoked)
    _revoke_share(kit, revoked)  # again: no change, no entry
    unused, c = _share(kit, document_id)
    assert _listed(kit, a, b, c) == []
    _remove(kit, shares, shares.c.id == unused)  # the check is live: this alone is listed
    assert _listed(kit, a, b, c) == [
        f"locker_shares {unused}: the log recorded this share link, but its row is gone"
    ]
    with kit.runtime.sessions() as session:
        found = [json.loads(e) for e in session.execute(select(entries.c.entry)).scalars()]
    used = [e["details"] for e in found if e["action"] == "locker.share.used"]
    assert [u["share"] for u in used] == [used_up, used_up, revoked], "each use names its link"


def test_a_revoked_share_link_put_back_unrevoked_is_listed(kit: Kit) -> None:
    """Listed as put back; and once used, still listed after the owner revokes it again: the
    log shows a use after its revocation, which the service never serves."""
    link, token = _share(kit, _issue(kit))
    where = shares.c.id == link
    kept = _kept(kit, shares, where)
    _revoke_share(kit, link)
    _put_back(kit, shares, where, kept)
    assert _listed(kit, token) == [
        f"locker_shares {link}: active, but the log last recorded it revoked"
    ]
    assert _use(kit, token), "its seal holds: the service honours it"
    _revoke_share(kit, link)
    assert _listed(kit, token) == [
        f"locker_shares {link}: revoked, but the log recorded it used or revoked after its "
        "revocation"
    ]


def test_a_used_up_share_links_use_count_put_back_is_listed(kit: Kit) -> None:
    link, token = _share(kit, _issue(kit), max_uses=1)
    where = shares.c.id == link
    kept = _kept(kit, shares, where)
    _use(kit, token)
    _put_back(kit, shares, where, kept)
    assert _use(kit, token), "its seal holds: the used-up link serves again"
    assert _listed(kit, token) == [
        f"locker_shares {link}: its use count is 1, but the log recorded 2"
    ]


def test_a_share_links_row_deleted_is_listed(kit: Kit) -> None:
    link, token = _share(kit, _issue(kit))
    _revoke_share(kit, link)
    _remove(kit, shares, shares.c.id == link)
    assert _listed(kit, token) == [
        f"locker_shares {link}: the log recorded this share link, but its row is gone"
    ]


def test_a_share_link_the_log_never_recorded_is_listed(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A link the service sealed without its entry (here: its entry dropped): the log never
    recorded it, so no citizen's view of who holds their documents shows it."""
    document_id = _issue(kit)
    monkeypatch.setattr(sharing_module, "record", lambda *args, **kwargs: None)
    link, token = _share(kit, document_id)
    monkeypatch.undo()
    assert _listed(kit, token) == [
        f"locker_shares {link}: active, but the log never recorded this share link"
    ]


def test_uses_recorded_before_they_named_their_link_still_count(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A use recorded before the `share` detail names its link only in its basis: it still
    counts, so neither an honest history nor a use count set back is misread."""
    link, token = _share(kit, _issue(kit), max_uses=3)
    where = shares.c.id == link
    kept = _kept(kit, shares, where)
    read = Locker.content

    def as_before(self: Locker, found: Any, *, details: Any = None, **kwargs: Any) -> Any:
        return read(self, found, **kwargs)  # the entry names the link in its basis alone

    monkeypatch.setattr(Locker, "content", as_before)
    _use(kit, token)
    _use(kit, token)
    monkeypatch.undo()
    assert _listed(kit, token) == []
    _put_back(kit, shares, where, kept)
    assert _listed(kit, token) == [
        f"locker_shares {link}: its use count is 0, but the log recorded 2"
    ]


# -- nominees and guardians -----------------------------------------------------------------------


def _nominate(kit: Kit, nominee: str, relation: str) -> None:
    with kit.runtime.transaction() as session:
        sharing(kit.runtime, session).nominate(OWNER, nominee, relation, who=CITIZEN)


def _unnominate(kit: Kit, nominee: str) -> None:
    with kit.runtime.transaction() as session:
        sharing(kit.runtime, session).remove_nominee(OWNER, nominee, who=CITIZEN)


def _nomination(nominee: str) -> ColumnElement[bool]:
    return (nominees.c.owner == OWNER) & (nominees.c.nominee == nominee)


def _relation(kit: Kit, nominee: str) -> str | None:
    with kit.runtime.sessions() as session:
        return sharing(kit.runtime, session).relation(OWNER, nominee)


def test_an_honest_history_of_nominees_reconciles(kit: Kit) -> None:
    _nominate(kit, NOMINEE, "nominee")
    _nominate(kit, NOMINEE, "guardian")
    _nominate(kit, GUARDIAN, "guardian")
    _unnominate(kit, GUARDIAN)
    _nominate(kit, GUARDIAN, "nominee")
    _unnominate(kit, GUARDIAN)
    assert _listed(kit) == []
    _remove(kit, nominees, _nomination(NOMINEE))  # the check is live: this alone is listed
    assert _listed(kit) == [
        f"locker_nominees {OWNER}/{NOMINEE}: the log last named this guardian, but its row is gone"
    ]


def test_a_removed_nominee_put_back_is_listed(kit: Kit) -> None:
    _nominate(kit, NOMINEE, "nominee")
    kept = _kept(kit, nominees, _nomination(NOMINEE))
    _unnominate(kit, NOMINEE)
    _put_back(kit, nominees, _nomination(NOMINEE), kept)
    assert _relation(kit, NOMINEE) == "nominee", "its seal holds: the service honours it"
    assert _listed(kit) == [
        f"locker_nominees {OWNER}/{NOMINEE}: nominee, but the log last recorded it removed"
    ]


def test_a_guardian_put_back_after_being_made_a_nominee_is_listed(kit: Kit) -> None:
    _nominate(kit, NOMINEE, "guardian")
    kept = _kept(kit, nominees, _nomination(NOMINEE))
    _nominate(kit, NOMINEE, "nominee")
    _put_back(kit, nominees, _nomination(NOMINEE), kept)
    assert _relation(kit, NOMINEE) == "guardian"
    assert _listed(kit) == [
        f"locker_nominees {OWNER}/{NOMINEE}: guardian, but the log last named this nominee"
    ]


def test_a_nominees_row_deleted_is_listed(kit: Kit) -> None:
    _nominate(kit, GUARDIAN, "guardian")
    _remove(kit, nominees, _nomination(GUARDIAN))
    assert _listed(kit) == [
        f"locker_nominees {OWNER}/{GUARDIAN}: the log last named this guardian, but its row is gone"
    ]


def test_a_nominee_the_log_never_recorded_is_listed(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sharing_module, "record", lambda *args, **kwargs: None)
    _nominate(kit, GUARDIAN, "guardian")
    monkeypatch.undo()
    assert _listed(kit) == [
        f"locker_nominees {OWNER}/{GUARDIAN}: guardian, but the log never named this guardian"
    ]


# -- legal-access requests ------------------------------------------------------------------------


def _request(request_id: str) -> ColumnElement[bool]:
    return legal_requests.c.id == request_id


def test_an_honest_history_of_legal_requests_reconciles(kit: Kit) -> None:
    _issue(kit)
    opened = _approve(kit, _file(kit).id)
    _open(kit, opened.id)
    _open(kit, opened.id)  # again: a fresh grant, the request stays opened
    _refuse(kit, _file(kit).id)
    _approve(kit, _file(kit).id)
    pending = _file(kit)
    assert _listed(kit) == []
    _remove(kit, legal_requests, _request(pending.id))  # the check is live: this alone is listed
    assert _listed(kit) == [
        f"locker_legal_requests {pending.id}: the log last recorded this request pending, "
        "but its row is gone"
    ]


def test_a_refused_legal_request_put_back_pending_is_listed(kit: Kit) -> None:
    """Listed as put back; and once approved, still listed: a decision is a compare-and-set on
    a pending row, so the log's second decision shows the row was put back in between."""
    filed = _file(kit)
    kept = _kept(kit, legal_requests, _request(filed.id))
    _refuse(kit, filed.id)
    _put_back(kit, legal_requests, _request(filed.id), kept)
    with kit.runtime.sessions() as session:
        awaiting = kit.legal(session).awaiting(officer=SECOND, departments=FIA)
    assert [r.id for r in awaiting] == [filed.id], "its seal holds: it awaits a decision again"
    assert _listed(kit) == [
        f"locker_legal_requests {filed.id}: pending, but the log last recorded it refused"
    ]
    _approve(kit, filed.id)  # its approval's entry is the log's last word on it now
    assert _listed(kit) == [
        f"locker_legal_requests {filed.id}: approved, but the log recorded a second decision on it"
    ]


def test_an_opened_legal_request_put_back_unopened_is_listed(kit: Kit) -> None:
    """Put back before its first opening, its next opening is the first again: the citizen is
    told anew, and a disclosure delay runs from then."""
    _issue(kit)
    approved = _approve(kit, _file(kit, disclosure_delay_days=30).id)
    kept = _kept(kit, legal_requests, _request(approved.id))
    _open(kit, approved.id)
    _put_back(kit, legal_requests, _request(approved.id), kept)
    assert _listed(kit) == [
        f"locker_legal_requests {approved.id}: approved, but the log last recorded it opened"
    ]


def test_a_legal_requests_row_deleted_is_listed(kit: Kit) -> None:
    refused = _refuse(kit, _file(kit).id)
    _remove(kit, legal_requests, _request(refused.id))
    assert _listed(kit) == [
        f"locker_legal_requests {refused.id}: the log last recorded this request refused, "
        "but its row is gone"
    ]


def test_a_legal_request_the_log_never_recorded_is_listed(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(LegalAccess, "_decision_entry", lambda *args, **kwargs: None)
    filed = _file(kit)
    monkeypatch.undo()
    assert _listed(kit) == [
        f"locker_legal_requests {filed.id}: pending, but the log never recorded this request"
    ]
