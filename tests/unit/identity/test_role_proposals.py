"""Grants of the powerful roles without HTTP, under the two-person rule: an administrator's
grant of locker.legal or identity.admin is a proposal; another administrator, neither its
proposer nor its grantee, with a second factor, approves it (the role exists only then, once,
however two approvers race) or refuses it; an undecided one expires after 7 days; revoking
and the operator's own grant stay direct; every step names both administrators."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from api.administration import check_integrity
from api.runtime import Runtime
from audit import two_person
from audit.models import entries
from audit.row_seal import bad_rows
from identity.models import citizens, role_proposals, roles
from identity.role_proposals import ProposalRefused, RoleProposal, RoleProposals
from identity.roles import RoleError, Roles
from tests.http.test_row_seals import by_sql
from tests.unit.identity.conftest import Clock

PROPOSER, SECOND, THIRD, OFFICER = (
    "p:" + "A" * 43,
    "p:" + "B" * 43,
    "p:" + "C" * 43,
    "p:" + "O" * 43,
)
DEPARTMENT = "pitb"


@pytest.fixture
def clock(runtime: Runtime) -> Clock:
    moving = Clock()
    runtime.clock = moving
    with runtime.transaction() as session:
        roles = _roles(runtime, session)
        roles.add_department(DEPARTMENT, "Punjab IT Board")
        for who in (PROPOSER, SECOND, THIRD, OFFICER):
            row = {
                "id": _id(who), "pseudonym": who, "profile": b"-", "mobile": b"-",
                "password_hash": "-", "password_changed_at": moving(), "failed_logins": 0,
                "locked_until": None, "status": "active", "created_at": moving(),
            }  # fmt: skip
            session.execute(insert(citizens).values(runtime.row_seal.sealed(citizens, row)))
        for admin in (PROPOSER, SECOND, THIRD):  # the operator's bootstrap, as the CLI does
            roles.grant(_id(admin), admin, DEPARTMENT, "identity.admin", by="admin:cli")
    return moving


def _id(pseudonym: str) -> str:
    return pseudonym[2:34]


def _roles(runtime: Runtime, session: Session) -> Roles:
    return Roles(
        session, audit=runtime.audit_log(session), clock=runtime.clock, seal=runtime.row_seal
    )


def _proposals(runtime: Runtime, session: Session) -> RoleProposals:
    return RoleProposals(
        session, roles=_roles(runtime, session), audit=runtime.audit_log(session),
        clock=runtime.clock, seal=runtime.row_seal,
    )  # fmt: skip


def _propose(runtime: Runtime, role: str = "locker.legal", **changes: Any) -> RoleProposal:
    terms: dict[str, Any] = {"grantee": OFFICER, "department": DEPARTMENT, "role": role,
                             "proposer": PROPOSER, **changes}  # fmt: skip
    with runtime.transaction() as session:
        proposer = terms.pop("proposer")
        return _proposals(runtime, session).propose(**terms, proposer=proposer)


def _shown(runtime: Runtime, proposal_id: str) -> dict[str, str]:
    """What the approver's page would show of the proposal: its row as stored, sealed or not."""
    with runtime.sessions() as session:
        row = session.execute(
            select(role_proposals).where(role_proposals.c.id == proposal_id)
        ).first()
    if row is None:
        return {"grantee": "", "department": "", "role": ""}
    return {"grantee": row.grantee, "department": row.department_id, "role": row.role}


def _approve(runtime: Runtime, proposal_id: str, admin: str = SECOND, **kw: Any) -> RoleProposal:
    shown = {**_shown(runtime, proposal_id), **kw.get("shown", {})}
    with runtime.transaction() as session:
        return _proposals(runtime, session).approve(
            proposal_id, admin=admin, substantial=kw.get("substantial", True), **shown
        )


def _refuse(runtime: Runtime, proposal_id: str, admin: str = SECOND, **kw: Any) -> RoleProposal:
    with runtime.transaction() as session:
        return _proposals(runtime, session).refuse(
            proposal_id, admin=admin, substantial=True, reason=kw.get("reason", "Not on the list")
        )


def _holds(runtime: Runtime, who: str, role: str = "locker.legal") -> bool:
    with runtime.sessions() as session:
        return _roles(runtime, session).has(_id(who), role)


def _refused(call: Callable[[], object]) -> str | None:
    with pytest.raises(RoleError) as caught:
        call()
    return caught.value.code


def _entries(runtime: Runtime) -> list[dict[str, Any]]:
    with runtime.sessions() as session:
        found = [json.loads(e) for e in session.execute(select(entries.c.entry)).scalars()]
    return [e for e in found if e["action"].startswith("identity.role.")]


def test_an_administrators_grant_of_a_powerful_role_is_refused_and_proposed_instead(
    runtime: Runtime, clock: Clock
) -> None:
    with runtime.transaction() as session:
        roles = _roles(runtime, session)
        for role in ("locker.legal", "identity.admin"):
            code = _refused(
                lambda role=role: roles.grant(  # type: ignore[misc]
                    _id(OFFICER), OFFICER, DEPARTMENT, role, by="citizen:x", granter=_id(PROPOSER)
                )
            )
            assert code == "role.two_person"
        roles.grant(_id(OFFICER), OFFICER, DEPARTMENT, "signing.officer", by="citizen:x",
                    granter=_id(PROPOSER))  # fmt: skip
    assert _holds(runtime, OFFICER, "signing.officer")  # the others, at once as before
    proposed = _propose(runtime)
    assert proposed.state(clock()) == "pending"
    assert not _holds(runtime, OFFICER)
    with runtime.sessions() as session:
        assert [p.id for p in _proposals(runtime, session).pending_for(OFFICER)] == [proposed.id]


def test_a_proposal_names_nobody_by_cnic_and_cannot_be_for_its_proposer(
    runtime: Runtime, clock: Clock
) -> None:
    assert _refused(lambda: _propose(runtime, grantee=PROPOSER)) == "role.self_grant"
    assert _refused(lambda: _propose(runtime, role="audit.reader")) is None  # granted at once
    proposed = _propose(runtime)
    assert not any(c.isdigit() for c in proposed.id)  # never a CNIC-shaped run in the log
    assert _refused(lambda: _propose(runtime, proposer=THIRD)) == "role.proposed_already"
    with runtime.sessions() as session:
        row = session.execute(select(role_proposals)).one()
    assert (row.grantee, row.proposer) == (OFFICER, PROPOSER)  # pseudonyms, as the log's


def test_the_proposer_cannot_approve_or_refuse(runtime: Runtime, clock: Clock) -> None:
    proposed = _propose(runtime)
    assert _refused(lambda: _approve(runtime, proposed.id, PROPOSER)) == "role.own_proposal"
    assert _refused(lambda: _refuse(runtime, proposed.id, PROPOSER)) == "role.own_proposal"
    assert not _holds(runtime, OFFICER)


def test_the_grantee_cannot_approve_their_own_promotion(runtime: Runtime, clock: Clock) -> None:
    proposed = _propose(runtime, grantee=SECOND, role="locker.legal")
    assert _refused(lambda: _approve(runtime, proposed.id, SECOND)) == "role.proposed_for_you"
    with runtime.sessions() as session:
        assert _proposals(runtime, session).awaiting(admin=SECOND) == []
    assert not _holds(runtime, SECOND)
    assert _approve(runtime, proposed.id, THIRD).status == "approved"
    assert _holds(runtime, SECOND)


def test_proposing_and_deciding_need_an_administrator_deciding_a_second_factor(
    runtime: Runtime, clock: Clock
) -> None:
    proposed = _propose(runtime)
    assert _refused(lambda: _approve(runtime, proposed.id, substantial=False)) == (
        "role.second_factor"
    )
    assert _refused(lambda: _approve(runtime, proposed.id, OFFICER)) == "role.not_admin"
    assert _refused(lambda: _propose(runtime, grantee=THIRD, proposer=OFFICER)) == (
        "role.not_admin"
    )
    assert _refused(lambda: _approve(runtime, "no-such-proposal")) == "role.proposal_unknown"
    assert not _holds(runtime, OFFICER)


def test_an_approval_grants_the_role_and_names_both_administrators(
    runtime: Runtime, clock: Clock
) -> None:
    proposed = _propose(runtime, role="identity.admin")
    with runtime.sessions() as session:
        assert [p.id for p in _proposals(runtime, session).awaiting(admin=SECOND)] == [proposed.id]
        assert _proposals(runtime, session).awaiting(admin=PROPOSER) == []
    approved = _approve(runtime, proposed.id)
    assert (approved.status, approved.decider) == ("approved", SECOND)
    assert _holds(runtime, OFFICER, "identity.admin")
    assert _refused(lambda: _approve(runtime, proposed.id, THIRD)) == "role.proposal_decided"
    logged = _entries(runtime)[-2:]
    assert [e["action"] for e in logged] == ["identity.role.proposed", "identity.role.granted"]
    assert logged[0]["actor"] == f"citizen:{PROPOSER}"
    assert logged[1]["actor"] == f"citizen:{SECOND}"
    assert logged[1]["subject"] == OFFICER
    assert logged[1]["details"] == {"role": "identity.admin", "proposal": proposed.id,
                                    "proposer": PROPOSER, "approver": SECOND}  # fmt: skip


def test_a_refused_proposal_grants_nothing_and_is_never_approved(
    runtime: Runtime, clock: Clock
) -> None:
    proposed = _propose(runtime)
    assert _refused(lambda: _refuse(runtime, proposed.id, reason=" ")) == "role.refusal_reason"
    assert _refused(lambda: _refuse(runtime, proposed.id, reason="35202-1234567-1")) == (
        "role.refusal_reason"
    )
    refused = _refuse(runtime, proposed.id, reason="Not an officer of the board")
    assert (refused.status, refused.decider, refused.refusal) == (
        "refused",
        SECOND,
        "Not an officer of the board",
    )
    assert _refused(lambda: _approve(runtime, proposed.id, THIRD)) == "role.proposal_decided"
    assert not _holds(runtime, OFFICER)
    last = _entries(runtime)[-1]
    assert last["action"] == "identity.role.refused"
    assert (last["details"]["proposer"], last["details"]["refuser"]) == (PROPOSER, SECOND)
    assert _propose(runtime, proposer=THIRD).status == "pending"  # it may be proposed again


def test_an_undecided_proposal_expires_after_seven_days_and_grants_nothing(
    runtime: Runtime, clock: Clock
) -> None:
    proposed = _propose(runtime)
    clock.advance(days=7)
    assert proposed.state(clock()) == "expired"
    assert _refused(lambda: _approve(runtime, proposed.id)) == "role.proposal_expired"
    assert _refused(lambda: _refuse(runtime, proposed.id)) == "role.proposal_expired"
    with runtime.sessions() as session:
        assert _proposals(runtime, session).awaiting(admin=SECOND) == []
        assert _proposals(runtime, session).pending_for(OFFICER) == []
    assert not _holds(runtime, OFFICER)
    clock.advance(seconds=-1)
    assert proposed.state(clock()) == "pending"


def test_the_compare_and_set_refuses_a_stale_decider(runtime: Runtime, clock: Clock) -> None:
    """Two administrators who both read the proposal pending: the one who writes second finds
    it decided, whatever their reading said."""
    proposed, other = _propose(runtime), _propose(runtime, role="identity.admin")
    with runtime.transaction() as session:
        assert two_person.decide(
            session, role_proposals, proposed.id, status="approved", decider=SECOND,
            refusal=None, now=clock(), not_theirs=role_proposals.c.proposer != SECOND,
        )  # fmt: skip
    with runtime.transaction() as session:
        assert not two_person.decide(
            session, role_proposals, proposed.id, status="refused", decider=THIRD,
            refusal="late", now=clock(), not_theirs=role_proposals.c.proposer != THIRD,
        )  # fmt: skip
        assert not two_person.decide(  # nor may the proposer decide, even if it were pending
            session, role_proposals, other.id,
            status="approved", decider=PROPOSER, refusal=None, now=clock(),
            not_theirs=role_proposals.c.proposer != PROPOSER,
        )  # fmt: skip


def test_two_approvers_racing_grant_the_role_exactly_once(
    runtime: Runtime, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    proposed = _propose(runtime)
    both_read = threading.Barrier(2, timeout=20)
    deciding = two_person.decide

    def after_both_read(*args: Any, **kwargs: Any) -> bool:
        both_read.wait()  # each has passed every check on a pending proposal
        return deciding(*args, **kwargs)

    monkeypatch.setattr(two_person, "decide", after_both_read)
    outcomes: dict[str, str] = {}

    def decide(admin: str) -> None:
        try:
            outcomes[admin] = _approve(runtime, proposed.id, admin).status
        except ProposalRefused as exc:
            outcomes[admin] = str(exc.code)

    racers = [threading.Thread(target=decide, args=(a,)) for a in (SECOND, THIRD)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=60)
    assert sorted(outcomes.values()) == ["approved", "role.proposal_decided"]
    winner = next(a for a, o in outcomes.items() if o == "approved")
    with runtime.sessions() as session:
        held = session.execute(
            select(func.count())
            .select_from(role_proposals)
            .where(role_proposals.c.status == "approved", role_proposals.c.decider == winner)
        ).scalar_one()
    assert held == 1
    assert _holds(runtime, OFFICER)
    granted = [e for e in _entries(runtime) if e["action"] == "identity.role.granted"]
    assert [e["actor"] for e in granted if e["subject"] == OFFICER] == [f"citizen:{winner}"]


def test_revoking_stays_immediate_and_the_operator_grants_directly(
    runtime: Runtime, clock: Clock
) -> None:
    with runtime.transaction() as session:
        roles = _roles(runtime, session)
        roles.grant(_id(OFFICER), OFFICER, DEPARTMENT, "locker.legal", by="admin:cli")
    assert _holds(runtime, OFFICER)  # granter None: the command line's bootstrap
    with runtime.transaction() as session:
        assert _roles(runtime, session).revoke(
            _id(OFFICER), OFFICER, DEPARTMENT, "locker.legal", by=f"citizen:{PROPOSER}"
        )
    assert not _holds(runtime, OFFICER)
    with runtime.sessions() as session:
        assert session.execute(select(func.count()).select_from(role_proposals)).scalar_one() == 0


def test_an_approval_once_the_role_is_held_grants_nothing_twice(
    runtime: Runtime, clock: Clock
) -> None:
    proposed = _propose(runtime)
    with runtime.transaction() as session:  # the operator grants it meanwhile
        _roles(runtime, session).grant(_id(OFFICER), OFFICER, DEPARTMENT, "locker.legal",
                                       by="admin:cli")  # fmt: skip
    assert _refused(lambda: _approve(runtime, proposed.id)) == "role.held"
    with runtime.sessions() as session:
        assert _proposals(runtime, session).get(proposed.id).status == "pending"  # rolled back
    assert _refused(lambda: _propose(runtime, proposer=THIRD)) == "role.held"


# -- sealed proposals: what a database writer without the service's keys cannot do ---------------


def _unseen(runtime: Runtime, proposal_id: str) -> None:
    """The proposal is no proposal: not listed, not found, not approved, not refused."""
    with runtime.sessions() as session:
        proposals = _proposals(runtime, session)
        assert proposal_id not in [p.id for p in proposals.awaiting(admin=SECOND)]
        assert proposal_id not in [p.id for p in proposals.pending_for(OFFICER)]
        assert _refused(lambda: proposals.get(proposal_id)) == "role.proposal_unknown"
    assert _refused(lambda: _approve(runtime, proposal_id)) == "role.proposal_unknown"
    assert _refused(lambda: _refuse(runtime, proposal_id)) == "role.proposal_unknown"


def test_a_proposal_inserted_by_sql_is_not_shown_and_cannot_be_approved(
    runtime: Runtime, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """The officer writes a pending proposal naming a real administrator as its proposer and
    themself as the grantee of identity.admin: without the seal, a second administrator's
    approval would have written a correctly sealed role."""
    genuine = _propose(runtime, grantee=THIRD)
    with runtime.sessions() as session:
        stolen = session.execute(
            select(role_proposals.c.mac).where(role_proposals.c.id == genuine.id)
        ).scalar_one()
    forged = {"grantee": OFFICER, "department_id": DEPARTMENT, "role": "identity.admin",
              "proposer": PROPOSER, "created_at": clock(), "status": "pending"}  # fmt: skip
    by_sql(runtime, insert(role_proposals).values(id="forgedunsealed", **forged))
    by_sql(runtime, insert(role_proposals).values(id="forgedborrowed", mac=stolen, **forged))
    for proposal_id in ("forgedunsealed", "forgedborrowed"):
        _unseen(runtime, proposal_id)
    assert not _holds(runtime, OFFICER, "identity.admin")
    warned = [r.getMessage() for r in caplog.records if r.name == "shanakht.integrity"]
    assert (
        "integrity: identity_role_proposals row forgedunsealed has a missing MAC; it is not "
        "honoured" in warned
    )
    assert any("forgedborrowed has a wrong MAC" in w for w in warned)
    assert not any(OFFICER in w or PROPOSER in w for w in warned)  # keys only, nobody named
    # A forged pending row does not block the genuine proposal of the same grant.
    assert _propose(runtime, role="identity.admin").status == "pending"


@pytest.mark.parametrize(
    "change", [{"role": "identity.admin"}, {"grantee": THIRD}, {"proposer": THIRD}]
)
def test_a_proposal_changed_by_sql_is_refused(
    runtime: Runtime, clock: Clock, change: dict[str, str]
) -> None:
    proposed = _propose(runtime)
    by_sql(runtime, update(role_proposals).values(**change))
    _unseen(runtime, proposed.id)
    assert not _holds(runtime, OFFICER)
    assert not _holds(runtime, THIRD)
    assert not _holds(runtime, OFFICER, "identity.admin")


def test_an_approval_of_other_terms_than_the_proposals_is_refused(
    runtime: Runtime, clock: Clock
) -> None:
    """The approver's page sends what it showed; a proposal that says anything else (however
    it came to) is not approved, and stays pending."""
    proposed = _propose(runtime)
    for shown in ({"role": "identity.admin"}, {"grantee": THIRD}, {"department": "other"},
                  {"role": ""}):  # fmt: skip
        code = _refused(lambda shown=shown: _approve(runtime, proposed.id, shown=shown))  # type: ignore[misc]
        assert code == "role.proposal_changed", shown
    assert not _holds(runtime, OFFICER)
    with runtime.sessions() as session:
        assert _proposals(runtime, session).get(proposed.id).status == "pending"
    assert _approve(runtime, proposed.id).status == "approved"
    assert _holds(runtime, OFFICER)


def test_a_proposal_whose_proposer_lost_identity_admin_cannot_be_approved(
    runtime: Runtime, clock: Clock
) -> None:
    proposed = _propose(runtime)
    with runtime.transaction() as session:
        assert _roles(runtime, session).revoke(
            _id(PROPOSER), PROPOSER, DEPARTMENT, "identity.admin", by=f"citizen:{THIRD}"
        )
    assert _refused(lambda: _approve(runtime, proposed.id)) == "role.proposer_not_admin"
    # Nor does an identity.admin row put back by SQL, without its seal, count.
    by_sql(runtime, insert(roles).values(citizen_id=_id(PROPOSER), department_id=DEPARTMENT,
                                          role="identity.admin", granted_at=clock(),
                                          granted_by="admin:cli"))  # fmt: skip
    assert _refused(lambda: _approve(runtime, proposed.id)) == "role.proposer_not_admin"
    assert not _holds(runtime, OFFICER)
    assert _refuse(runtime, proposed.id).status == "refused"  # it may still be refused


def test_a_pseudonym_moved_to_another_account_by_sql_steers_no_approval(
    runtime: Runtime, clock: Clock
) -> None:
    """A DBA who puts the grantee's pseudonym on their own account's row (THIRD's) does not
    get the role the second administrator approves for the grantee: that row fails its seal,
    so the approval finds no account. Nor does a proposer's pseudonym so moved count as an
    administrator's."""
    proposed = _propose(runtime)
    by_sql(runtime, update(citizens).where(citizens.c.id == _id(OFFICER)).values(pseudonym="p:x"))
    by_sql(runtime, update(citizens).where(citizens.c.id == _id(THIRD)).values(pseudonym=OFFICER))
    assert _refused(lambda: _approve(runtime, proposed.id)) == "role.proposal_unknown"
    assert not _holds(runtime, THIRD)
    with runtime.sessions() as session:
        assert not _roles(runtime, session).has(_id(THIRD), "locker.legal")
    by_sql(runtime, update(citizens).where(citizens.c.id == _id(PROPOSER)).values(mac=None))
    assert _refused(lambda: _approve(runtime, proposed.id)) == "role.proposer_not_admin"


def test_a_decision_reseals_the_row_only_as_it_was_checked(
    runtime: Runtime, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decided proposal's row verifies; and a row whose seal changed between its check and
    the decision is not decided (the old MAC is the compare-and-set), so no new seal blesses
    what was changed meanwhile."""
    decided = _propose(runtime)
    assert _refuse(runtime, decided.id).status == "refused"
    with runtime.sessions() as session:
        assert bad_rows(session, runtime.row_seal, [role_proposals]) == []
    proposed = _propose(runtime)
    deciding = two_person.decide

    def after_a_change(*args: Any, **kwargs: Any) -> bool:
        by_sql(runtime, update(role_proposals).where(role_proposals.c.id == proposed.id)
                .values(mac=None))  # fmt: skip
        return deciding(*args, **kwargs)

    monkeypatch.setattr(two_person, "decide", after_a_change)
    assert _refused(lambda: _approve(runtime, proposed.id)) == "role.proposal_decided"
    assert not _holds(runtime, OFFICER)
    with runtime.sessions() as session:
        assert [b.key for b in bad_rows(session, runtime.row_seal, [role_proposals])] == [
            proposed.id
        ]


# -- reconciled with the log: an earlier sealed row put back, a live one deleted ----------------


def _listed(runtime: Runtime) -> list[str]:
    """What `shanakht audit integrity` lists of roles and proposals whose seals all hold."""
    found = check_integrity(runtime)
    assert found.bad == []
    return [f"{m.table} {m.key}: {m.problem}" for m in found.mismatches]


def _kept(runtime: Runtime, table: Any, *where: Any) -> dict[str, Any]:
    """A DBA's copy of a row, MAC and all."""
    with runtime.sessions() as session:
        return dict(session.execute(select(table).where(*where)).one()._mapping)


def _revoke(runtime: Runtime, who: str, role: str) -> None:
    with runtime.transaction() as session:
        assert _roles(runtime, session).revoke(_id(who), who, DEPARTMENT, role, by="admin:cli")


def test_an_honest_history_of_grants_and_proposals_reconciles(
    runtime: Runtime, clock: Clock
) -> None:
    for _ in range(2):  # granted, revoked, granted again
        with runtime.transaction() as session:
            granting = _roles(runtime, session)
            granting.grant(_id(OFFICER), OFFICER, DEPARTMENT, "signing.officer",
                        by=f"citizen:{PROPOSER}", granter=_id(PROPOSER))  # fmt: skip
        assert _listed(runtime) == []
        _revoke(runtime, OFFICER, "signing.officer")
    with runtime.transaction() as session:
        _roles(runtime, session).grant(_id(OFFICER), OFFICER, DEPARTMENT, "signing.officer",
                                       by="admin:cli")  # fmt: skip
    _refuse(runtime, _propose(runtime).id)
    _approve(runtime, _propose(runtime).id)
    _propose(runtime, "identity.admin")  # still pending
    assert _holds(runtime, OFFICER)
    assert _listed(runtime) == []


def test_a_revoked_role_put_back_is_listed(runtime: Runtime, clock: Clock) -> None:
    with runtime.transaction() as session:
        _roles(runtime, session).grant(_id(OFFICER), OFFICER, DEPARTMENT, "signing.officer",
                                       by="admin:cli")  # fmt: skip
    kept = _kept(runtime, roles, roles.c.citizen_id == _id(OFFICER))
    _revoke(runtime, OFFICER, "signing.officer")
    by_sql(runtime, insert(roles).values(**kept))
    assert _holds(runtime, OFFICER, "signing.officer"), "its seal holds: the service honours it"
    assert _listed(runtime) == [
        f"identity_roles {OFFICER}/{DEPARTMENT}/signing.officer: held, but the log last revoked it"
    ]


def test_a_live_role_deleted_is_listed(runtime: Runtime, clock: Clock) -> None:
    by_sql(runtime, delete(roles).where(roles.c.citizen_id == _id(THIRD)))
    assert _listed(runtime) == [
        f"identity_roles {THIRD}/{DEPARTMENT}/identity.admin: the log last granted this role,"
        " but its row is gone"
    ]


def test_a_role_the_log_never_granted_is_listed(runtime: Runtime, clock: Clock) -> None:
    """A sealed row copied from another grant cannot change its key (the seal covers it),
    but a grant made without its entry (here: the unaudited insert an approval uses) is one
    the log never recorded."""
    with runtime.transaction() as session:
        _roles(runtime, session).insert(_id(OFFICER), DEPARTMENT, "audit.reader", by="admin:cli")
    assert _listed(runtime) == [
        f"identity_roles {OFFICER}/{DEPARTMENT}/audit.reader: held, but the log never granted it"
    ]


def test_a_refused_proposal_put_back_pending_is_listed(runtime: Runtime, clock: Clock) -> None:
    proposed = _propose(runtime)
    kept = _kept(runtime, role_proposals, role_proposals.c.id == proposed.id)
    _refuse(runtime, proposed.id)
    by_sql(runtime, delete(role_proposals).where(role_proposals.c.id == proposed.id))
    by_sql(runtime, insert(role_proposals).values(**kept))
    assert _listed(runtime) == [
        f"identity_role_proposals {proposed.id}: pending, but the log last recorded it refused"
    ]
