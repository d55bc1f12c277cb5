"""Sealed client registrations, the one-time sealing of older rows, and the check an
administrator runs (docs/threat-model.md section 7, item 9). Roles are in
test_roles_and_entries.py, consents in tests/unit/locker/test_exchange.py, role proposals in
tests/unit/identity/test_role_proposals.py."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.runtime.migration import MigrationContext
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import ColumnElement, Table, delete, insert, select, update

from api.migrate import FIRST_SEALING, alembic_config, prepare, sealing_record, upgrade
from api.routes.exchange import legal_service
from api.routes.locker_views import sharing
from api.runtime import Runtime, open_runtime
from api.settings import Settings
from audit import AuditEvent
from audit.models import entries
from identity.models import (
    citizens,
    clients,
    codes,
    departments,
    grants,
    role_proposals,
    roles,
    sessions,
    tokens,
)
from identity.nadra import SCENARIOS, read_registry
from identity.roles import RoleError
from locker.access import Accessor
from locker.legal import UnknownLegalRequest
from locker.models import documents, legal_requests, nominees, shares
from tests.cli.test_cli import run
from tests.http.oidc_kit import Browser, register_citizen, register_client, token
from tests.unit.locker.test_exchange import OWNER, Clock, Kit, Phones, _issue
from tests.unit.locker.test_legal import _file, _refuse

EVIL = "https://evil.example/callback"
NOMINEE = "p:" + "N" * 43


def by_sql(runtime: Runtime, statement: object) -> None:
    """What a DBA can do, without the service's keys."""
    with runtime.transaction() as session:
        session.execute(statement)  # type: ignore[call-overload]


def _actions(runtime: Runtime) -> list[str]:
    with runtime.sessions() as session:
        return [json.loads(e)["action"] for e in session.execute(select(entries.c.entry)).scalars()]


def test_a_redirect_uri_added_by_sql_is_refused(web: TestClient, oidc_runtime: Runtime) -> None:
    rp = register_client(oidc_runtime, "etransfer")
    browser = Browser(web)
    sealed, _ = browser.authorize(rp)
    assert sealed.status_code == 303, "the registration as the service wrote it works"
    by_sql(
        oidc_runtime,
        update(clients)
        .where(clients.c.id == rp.client_id)
        .values(redirect_uris=json.dumps([rp.redirect_uri, EVIL])),
    )
    for redirect_uri in (EVIL, rp.redirect_uri):
        response, _ = browser.authorize(rp, redirect_uri=redirect_uri)
        assert response.status_code == 400, redirect_uri
        assert "location" not in response.headers
    refused = token(
        web, rp, grant_type="authorization_code", code=secrets.token_urlsafe(16),
        redirect_uri=rp.redirect_uri, code_verifier=secrets.token_urlsafe(43),
    )  # fmt: skip
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"


def test_a_client_whose_mac_is_nulled_is_no_client(web: TestClient, oidc_runtime: Runtime) -> None:
    rp = register_client(oidc_runtime, "etransfer")
    by_sql(oidc_runtime, update(clients).values(mac=None))
    response, _ = Browser(web).authorize(rp)
    assert response.status_code == 400
    with oidc_runtime.transaction() as session:
        registry = oidc_runtime.provider(session).clients
        assert registry.get(rp.client_id) is None
        assert registry.all() == []


def set_back(runtime: Runtime, revision: str) -> None:
    """The schema as it was at `revision`, every row kept: before 0014, rows had no seals (what
    a deployment upgrading from there has; or a DBA with the owner's rights rewinding)."""
    config = alembic_config()
    with runtime.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def _marker(runtime: Runtime) -> Path:
    return runtime.settings.data_dir / "keys" / f"{FIRST_SEALING}.done"


def test_rows_from_before_seals_are_sealed_once_and_never_again(runtime: Runtime) -> None:
    """The upgrade that applies 0014 seals the rows made before it, records that beside the
    keys, and nothing seals again: a row unsealed afterwards stays refused however often the
    schema is upgraded, with the record deleted, or with the schema set back before 0014."""
    old = register_client(runtime, "older-service")
    set_back(runtime, "0013")
    assert not runtime.keys.done(FIRST_SEALING)
    prepare(runtime)
    assert runtime.keys.done(FIRST_SEALING)
    assert "integrity.sealed" in _actions(runtime)
    with runtime.transaction() as session:
        assert session.execute(select(clients.c.mac)).scalar_one() is not None
        assert runtime.provider(session).clients.get(old.client_id) is not None
    by_sql(runtime, update(clients).values(mac=None))
    prepare(runtime)
    set_back(runtime, "0013")  # the record beside the keys says the sealing was done
    prepare(runtime)
    _marker(runtime).unlink()  # the schema says so: it is past 0014
    prepare(runtime)
    with runtime.transaction() as session:
        assert session.execute(select(clients.c.mac)).scalar_one() is None
        assert runtime.provider(session).clients.get(old.client_id) is None
    assert _actions(runtime).count("integrity.sealed") == 1


def test_a_role_unsealed_after_0014_stays_refused_with_the_record_of_sealing_gone(
    oidc_runtime: Runtime, cli_env: dict[str, str]
) -> None:
    """Only the run that applies 0014 seals: with the key directory's record of the first
    sealing missing (the keys' files restored alone), neither `db upgrade` nor `audit
    integrity` blesses a role whose MAC a DBA set NULL, and the check reports it."""
    record = read_registry(oidc_runtime.identity.nadra_file)[SCENARIOS["active_male"]]
    citizen_id = register_citizen(oidc_runtime, record)
    with oidc_runtime.transaction() as session:
        provider = oidc_runtime.provider(session)
        provider.roles.add_department("sed", "School Education")
        provider.roles.grant(citizen_id, "p:x", "sed", "signing.officer", by="admin:test")
    by_sql(oidc_runtime, update(roles).values(mac=None))
    assert not _marker(oidc_runtime).exists()
    for command_line in (("db", "upgrade"), ("audit", "integrity"), ("audit", "integrity")):
        code, out = run(cli_env, *command_line)
        if command_line[0] == "audit":
            assert code == 1, out
            assert f"identity_roles {citizen_id}/sed/signing.officer: missing MAC" in out
        else:
            assert code == 0, out
        with oidc_runtime.transaction() as session:
            assert not oidc_runtime.provider(session).roles.has(citizen_id, "signing.officer")
    assert "integrity.sealed" not in _actions(oidc_runtime)


def test_audit_integrity_neither_migrates_nor_seals(
    settings: Settings, cli_env: dict[str, str]
) -> None:
    runtime = open_runtime(settings)
    try:
        upgrade(runtime.engine, "0013")
        code, out = run(cli_env, "audit", "integrity")
        assert code != 0
        assert "run `shanakht db upgrade`" in out
        with runtime.engine.connect() as connection:
            assert MigrationContext.configure(connection).get_current_heads() == ("0013",)
        assert not runtime.keys.done(FIRST_SEALING)
        code, out = run(cli_env, "db", "upgrade")
        assert code == 0, out
        assert runtime.keys.done(FIRST_SEALING), "the upgrade past 0014 did the first sealing"
        code, out = run(cli_env, "audit", "integrity")
        assert code == 0, out
    finally:
        runtime.close()


def test_audit_integrity_lists_every_row_not_honoured(
    oidc_runtime: Runtime, cli_env: dict[str, str]
) -> None:
    register_client(oidc_runtime, "etransfer")
    record = read_registry(oidc_runtime.identity.nadra_file)[SCENARIOS["active_male"]]
    citizen_id = register_citizen(oidc_runtime, record)
    with oidc_runtime.transaction() as session:
        provider = oidc_runtime.provider(session)
        provider.roles.add_department("sed", "School Education")
        who = provider.accounts.by_id(citizen_id).pseudonym  # type: ignore[union-attr]
        provider.roles.grant(citizen_id, who, "sed", "signing.officer", by="admin:test")
    code, out = run(cli_env, "audit", "integrity")
    assert code == 0, out
    assert "authorization state verified" in out
    by_sql(oidc_runtime, update(roles).values(role="locker.legal"))
    by_sql(oidc_runtime, update(clients).values(mac=None))
    code, out = run(cli_env, "audit", "integrity")
    assert code == 1, out
    assert f"identity_roles {citizen_id}/sed/locker.legal: wrong MAC" in out
    assert "identity_clients etransfer: missing MAC" in out
    assert "2 rows of authorization state FAILED their seal" in out
    # A row not honoured is read as absent, as the service reads it: the grant the log
    # recorded is gone, named by the grantee's pseudonym.
    assert f"identity_roles {who}/sed/signing.officer: the log last granted this role" in out
    assert record.cnic not in out


def test_audit_integrity_lists_a_forged_role_proposal(
    oidc_runtime: Runtime, cli_env: dict[str, str]
) -> None:
    """A proposal the service wrote, and decided, verifies; one written by SQL naming a real
    administrator as its proposer is listed, by its id only."""
    admins = [read_registry(oidc_runtime.identity.nadra_file)[SCENARIOS[s]]
              for s in ("active_male", "active_female", "two_mobiles")]  # fmt: skip
    ids = [register_citizen(oidc_runtime, record) for record in admins]
    with oidc_runtime.transaction() as session:
        provider = oidc_runtime.provider(session)
        provider.roles.add_department("sed", "School Education")
        named = [provider.accounts.by_id(i).pseudonym for i in ids]  # type: ignore[union-attr]
        for citizen_id, who in zip(ids[:2], named[:2], strict=True):
            provider.roles.grant(citizen_id, who, "sed", "identity.admin", by="admin:test")
        proposed = provider.role_proposals.propose(named[2], "sed", "locker.legal",
                                                   proposer=named[0])  # fmt: skip
        provider.role_proposals.refuse(proposed.id, admin=named[1], substantial=True,
                                       reason="Not staff")  # fmt: skip
    code, out = run(cli_env, "audit", "integrity")
    assert code == 0, out
    by_sql(
        oidc_runtime,
        insert(role_proposals).values(
            id="forgedbysql", grantee=named[2], department_id="sed", role="identity.admin",
            proposer=named[0], created_at=oidc_runtime.clock(), status="pending",
        ),
    )  # fmt: skip
    code, out = run(cli_env, "audit", "integrity")
    assert code == 1, out
    assert "identity_role_proposals forgedbysql: missing MAC, not honoured" in out
    assert "1 rows of authorization state FAILED their seal" in out
    assert proposed.id not in out
    for record in admins:
        assert record.cnic not in out


def _client_row(runtime: Runtime, client_id: str) -> dict[str, object]:
    """A DBA's copy of a client's row, MAC and all."""
    with runtime.sessions() as session:
        return dict(
            session.execute(select(clients).where(clients.c.id == client_id)).one()._mapping
        )


def _add_legacy(cli_env: dict[str, str], *redirect_uris: str) -> None:
    uris = [arg for uri in redirect_uris for arg in ("--redirect-uri", uri)]
    code, out = run(cli_env, "clients", "add", "legacy", "--name", "Legacy", "--auth",
                    "client_secret_basic", "--scope", "openid", *uris)  # fmt: skip
    assert code == 0, out


def test_a_client_put_back_from_before_a_redirect_uri_was_removed_is_listed(
    oidc_runtime: Runtime, cli_env: dict[str, str]
) -> None:
    """Registered with two redirect URIs, removed, registered again with one: the first row,
    put back with its MAC, verifies, but is not the registration the log last recorded; and
    a client the log last removed, put back, is listed too."""
    _add_legacy(cli_env, "https://legacy.example/cb", EVIL)
    kept = _client_row(oidc_runtime, "legacy")
    assert run(cli_env, "clients", "remove", "legacy")[0] == 0
    _add_legacy(cli_env, "https://legacy.example/cb")
    code, out = run(cli_env, "audit", "integrity")
    assert code == 0, out
    by_sql(oidc_runtime, update(clients).where(clients.c.id == "legacy").values(**kept))
    with oidc_runtime.transaction() as session:
        found = oidc_runtime.provider(session).clients.get("legacy")
        assert found is not None, "its seal holds"
        assert EVIL in found.redirect_uris
    code, out = run(cli_env, "audit", "integrity")
    assert code == 1, out
    assert "identity_clients legacy: its registration is not the one the log last recorded" in out
    assert "1 rows of authorization state differ from the audit log" in out
    assert run(cli_env, "clients", "remove", "legacy")[0] == 0
    by_sql(oidc_runtime, insert(clients).values(**kept))
    code, out = run(cli_env, "audit", "integrity")
    assert code == 1, out
    assert "identity_clients legacy: registered, but the log last removed it" in out


def test_clients_recorded_before_their_fingerprint_are_no_false_alarms(
    oidc_runtime: Runtime, cli_env: dict[str, str]
) -> None:
    """The command line recorded no client before; the admin pages recorded one without the
    registration's fingerprint. Neither tells which registration is the latest: not listed."""
    register_client(oidc_runtime, "etransfer")  # no entry, as the command line did
    register_client(oidc_runtime, "legacy")
    register_client(oidc_runtime, "gone")
    with oidc_runtime.transaction() as session:
        log = oidc_runtime.audit_log(session)
        for client in ("legacy", "gone"):
            older = {"kind": "eservice"}  # no fingerprint
            log.append(
                AuditEvent(
                    actor="admin:cli",
                    action="identity.client.registered",
                    resource=f"client:{client}",
                    details=older,
                )
            )
        oidc_runtime.provider(session).clients.remove("gone")  # as the command line did
    code, out = run(cli_env, "audit", "integrity")
    assert code == 0, out
    assert "authorization state verified" in out


def _locker_rows(runtime: Runtime) -> dict[str, str]:
    """One row of each sealed locker table, written by the service: a document, a share link
    to it, a nominee, and a legal-access request for it. Their keys, by table."""
    clock = Clock()
    runtime.clock = clock
    kit = Kit(runtime, Ed25519PrivateKey.generate(), Phones(), clock)
    document_id = _issue(kit)
    filed = _file(kit)
    owner = Accessor(OWNER, "citizen", "owner")
    with runtime.transaction() as session:
        shared = sharing(runtime, session)
        found = runtime.locker(session).find(document_id)
        assert found is not None
        link, _ = shared.share(found, who=owner, life=timedelta(hours=1), max_uses=None)
        shared.nominate(OWNER, NOMINEE, "guardian", who=owner)
    return {
        "locker_documents": document_id,
        "locker_shares": link.id,
        "locker_nominees": f"{OWNER}/{NOMINEE}",
        "locker_legal_requests": filed.id,
    }


def _honoured(runtime: Runtime, keys: dict[str, str]) -> dict[str, bool]:
    """Whether each of the rows `_locker_rows` wrote is honoured where it grants access."""
    with runtime.transaction() as session:
        shared = sharing(runtime, session)
        legal = legal_service(runtime, session)
        try:
            legal.get(keys["locker_legal_requests"], departments=frozenset({"fia"}))
        except UnknownLegalRequest:
            request = False
        else:
            request = True
        return {
            "locker_documents": runtime.locker(session).find(keys["locker_documents"]) is not None,
            "locker_shares": [s.id for s in shared.shares(OWNER)] == [keys["locker_shares"]],
            "locker_nominees": shared.relation(OWNER, NOMINEE) == "guardian",
            "locker_legal_requests": request,
        }


def _sealings(runtime: Runtime) -> list[dict[str, int]]:
    with runtime.sessions() as session:
        found = [json.loads(e) for e in session.execute(select(entries.c.entry)).scalars()]
    return [e["details"] for e in found if e["action"] == "integrity.sealed"]


def test_rows_from_before_0021_are_sealed_once_by_the_upgrade_that_applies_it(
    runtime: Runtime,
) -> None:
    """The upgrade that applies 0021 seals the locker rows made before it, and only those: an
    earlier revision's table (a client registration, 0014) whose MAC is missing stays
    unsealed. Afterwards nothing seals them again, with the schema set back before 0021 (the
    key directory's record stands) or with that record deleted (the schema is past 0021)."""
    keys = _locker_rows(runtime)
    old = register_client(runtime, "older-service")
    by_sql(runtime, update(clients).values(mac=None))
    set_back(runtime, "0019")
    assert not runtime.keys.done(sealing_record("0021"))
    prepare(runtime)
    assert runtime.keys.done(sealing_record("0021"))
    # Set back to 0019, the schema is set back before 0024 to 0028 too, whose tables had no
    # rows (the locker's owners here are pseudonyms, no accounts).
    later = dict.fromkeys(
        (sessions.name, citizens.name, grants.name, tokens.name, codes.name, departments.name), 0
    )
    assert _sealings(runtime) == [{**dict.fromkeys(keys, 1), **later}]
    assert _honoured(runtime, keys) == dict.fromkeys(keys, True)
    with runtime.transaction() as session:
        assert runtime.provider(session).clients.get(old.client_id) is None
    by_sql(runtime, update(documents).values(mac=None))
    set_back(runtime, "0019")
    by_sql(runtime, update(clients).values(mac=None))
    prepare(runtime)  # the record beside the keys says 0021's sealing was done
    marker = runtime.settings.data_dir / "keys" / f"{sealing_record('0021')}.done"
    marker.unlink()
    prepare(runtime)  # the schema says so: it is past 0021
    assert _honoured(runtime, keys) == dict.fromkeys(keys, False), "no MAC: none honoured"
    assert len(_sealings(runtime)) == 1


def test_audit_integrity_lists_locker_rows_changedby_sql(
    oidc_runtime: Runtime, cli_env: dict[str, str]
) -> None:
    keys = _locker_rows(oidc_runtime)
    code, out = run(cli_env, "audit", "integrity")
    assert code == 0, out
    by_sql(oidc_runtime, update(documents).values(owner=NOMINEE))
    by_sql(oidc_runtime, update(shares).values(revoked_at=None, expires_at=oidc_runtime.clock()))
    by_sql(oidc_runtime, update(nominees).values(mac=None))
    by_sql(oidc_runtime, update(legal_requests).values(status="approved"))
    code, out = run(cli_env, "audit", "integrity")
    assert code == 1, out
    assert f"locker_documents {keys['locker_documents']}: wrong MAC" in out
    assert f"locker_shares {keys['locker_shares']}: wrong MAC" in out
    assert f"locker_nominees {keys['locker_nominees']}: missing MAC" in out
    assert f"locker_legal_requests {keys['locker_legal_requests']}: wrong MAC" in out
    assert "4 rows of authorization state FAILED their seal" in out


def _kept_row(runtime: Runtime, table: Table, where: ColumnElement[bool]) -> dict[str, object]:
    with runtime.sessions() as session:
        return dict(session.execute(select(table).where(where)).one()._mapping)


def test_audit_integrity_lists_locker_rows_put_back(
    oidc_runtime: Runtime, cli_env: dict[str, str]
) -> None:
    """Share links, nominees and legal-access requests are reconciled with the log: an
    earlier sealed row put back (a revoked link, a removed guardian, a refused request) keeps
    its seal, and only the log's last word on it tells; it fails the check, named by table and
    row id (people by pseudonym), with nothing of the request's terms."""
    keys = _locker_rows(oidc_runtime)
    code, out = run(cli_env, "audit", "integrity")
    assert code == 0, out
    assert (
        "document, share link, nominee and legal-access request is sealed and as the audit log "
        "last recorded it" in out
    )
    link, request = keys["locker_shares"], keys["locker_legal_requests"]
    where = {
        shares: shares.c.id == link,
        nominees: nominees.c.nominee == NOMINEE,
        legal_requests: legal_requests.c.id == request,
    }
    kept = {table: _kept_row(oidc_runtime, table, found) for table, found in where.items()}
    owner = Accessor(OWNER, "citizen", "owner")
    with oidc_runtime.transaction() as session:
        sharing(oidc_runtime, session).revoke(link, owner=OWNER, who=owner)
        sharing(oidc_runtime, session).remove_nominee(OWNER, NOMINEE, who=owner)
    clock = oidc_runtime.clock
    assert isinstance(clock, Clock)
    _refuse(Kit(oidc_runtime, Ed25519PrivateKey.generate(), Phones(), clock), request)
    for table, found in where.items():
        by_sql(oidc_runtime, delete(table).where(found))
        by_sql(oidc_runtime, insert(table).values(**kept[table]))
    code, out = run(cli_env, "audit", "integrity")
    assert code == 1, out
    assert f"locker_shares {link}: active, but the log last recorded it revoked" in out
    assert (
        f"locker_nominees {OWNER}/{NOMINEE}: guardian, but the log last recorded it removed" in out
    )
    assert f"locker_legal_requests {request}: pending, but the log last recorded it refused" in out
    assert "3 rows of authorization state differ from the audit log" in out
    assert "FAILED their seal" not in out
    assert "Crl. Misc." not in out, "the request's legal reference"
    assert "Forgery" not in out, "the request's reason"


def test_a_department_renamed_or_added_by_sql_speaks_for_nobody(
    oidc_runtime: Runtime, cli_env: dict[str, str]
) -> None:
    """A department's name is what citizens read where it asks for their documents: renamed by
    SQL, its row fails its seal and it is no department (pages show its id alone); one added by
    SQL is none either. Neither can be given a role or a department system, and the check
    lists both. The upgrade that applies 0028 seals the departments it finds, once."""
    record = read_registry(oidc_runtime.identity.nadra_file)[SCENARIOS["active_male"]]
    citizen_id = register_citizen(oidc_runtime, record)
    with oidc_runtime.transaction() as session:
        oidc_runtime.provider(session).roles.add_department("sed", "School Education")
    set_back(oidc_runtime, "0027")
    assert not oidc_runtime.keys.done(sealing_record("0028"))
    prepare(oidc_runtime)
    with oidc_runtime.transaction() as session:
        assert oidc_runtime.provider(session).roles.departments() == [("sed", "School Education")]
    code, out = run(cli_env, "audit", "integrity")
    assert code == 0, out

    renamed = departments.c.id == "sed"
    by_sql(oidc_runtime, update(departments).where(renamed).values(name="Anti-Corruption"))
    by_sql(
        oidc_runtime,
        insert(departments).values(id="ace", name="Forged", created_at=oidc_runtime.clock()),
    )
    with oidc_runtime.transaction() as session:
        provider = oidc_runtime.provider(session)
        assert provider.roles.departments() == []
        who = provider.accounts.by_id(citizen_id).pseudonym  # type: ignore[union-attr]
        for department in ("sed", "ace"):
            with pytest.raises(RoleError, match="no such department"):
                provider.roles.grant(citizen_id, who, department, "audit.reader", by="admin:test")
    code, out = run(cli_env, "clients", "add", "ace-system", "--name", "ACE", "--kind",
                    "service", "--auth", "client_secret_basic", "--department", "ace")  # fmt: skip
    assert code == 2, out
    assert "no department 'ace'" in out
    code, out = run(cli_env, "audit", "integrity")
    assert code == 1, out
    assert "identity_departments sed: wrong MAC, not honoured" in out
    assert "identity_departments ace: missing MAC, not honoured" in out
