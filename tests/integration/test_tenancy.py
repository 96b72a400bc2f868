"""Tenant isolation (DESIGN section 7): FORCE'd row-level security under
roles that own nothing and cannot bypass it.

Two orgs with real rows in every table: ``example`` (seeded, with a policy
bundle) and ``other-org`` (created here, no bundle). Both login roles (the
agent path's ``arx_app`` and the control plane's ``arx_control``), scoped to
one org, must see exactly that org's rows, must not write rows of another
org, and must see nothing at all when no org is set. The agent path cannot
even read API keys, nor create orgs, agents, keys or credentials.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from arx.admin.credentials import store_credential
from arx.identity.types import IntentManifest
from arx.runtime import Runtime
from arx.sandbox.falcon import FalconState
from tests.fixtures.arx import (
    FALCON_CLIENT_ID,
    FALCON_CLIENT_SECRET,
    FALCON_URL,
    Example,
    make_agent,
    make_org,
)
from tests.fixtures.database import Database

pytestmark = pytest.mark.anyio

EXECUTE = "/v1/sdk/execute"
SET_ORG = "SELECT set_config('arx.org_id', %s, false)"
# Table -> the column naming its org.
TABLES = {
    "orgs": "id",
    "agents": "org_id",
    "api_keys": "org_id",
    "credentials": "org_id",
    "audit_events": "org_id",
    "approval_requests": "org_id",
}
# What the agent path may not touch at all (migration 0004).
APP_UNREADABLE = {"api_keys"}
APP_NO_INSERT = {"orgs", "agents", "api_keys", "credentials"}
ROLES = ["arx_app", "arx_control"]
SEARCH = {"connector": "crowdstrike", "operation": "hosts:search", "params": {}}
CONTAIN = {"connector": "crowdstrike", "operation": "hosts:contain", "params": {"ids": ["a" * 32]}}


@dataclass(frozen=True)
class Tenants:
    a: UUID
    b: UUID
    a_agent: UUID
    b_agent: UUID
    a_key: str
    b_key: str
    a_approval: UUID
    b_approval: UUID
    b_deny: dict[str, Any]

    def auth(self, key: str) -> dict[str, str]:
        return {"authorization": f"Bearer {key}"}


@pytest.fixture
async def tenants(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, test_db: Database
) -> Tenants:
    """Org A (``example``) and org B (``other-org``), each with rows in every table."""
    a = example.seeded.org_id
    org_b = await make_org(runtime, "other-org")
    # The same name as A's agent: names are per org.
    b_agent, b_key = await make_agent(
        runtime, org_b, "triage-bot", IntentManifest(scope={"crowdstrike": ["hosts:*"]})
    )
    await store_credential(
        runtime.control_pool,
        runtime.vault,
        runtime.settings,
        org_id=org_b.org_id,
        connector="crowdstrike",
        secret={"client_id": FALCON_CLIENT_ID, "client_secret": FALCON_CLIENT_SECRET},
        base_url=FALCON_URL,
        actor="pytest",
    )

    # Audit rows for A: a PERMIT (decision + result) and an ESCALATE (+ approval).
    ok = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
    assert ok.status_code == 200, ok.text
    pending = await client.post(EXECUTE, json=CONTAIN, headers=example.auth("responder-bot"))
    assert pending.status_code == 202, pending.text
    # Audit rows for B: its slug has no policy bundle, so every call is denied.
    denied = await client.post(EXECUTE, json=SEARCH, headers={"authorization": f"Bearer {b_key}"})
    assert denied.status_code == 403, denied.text

    # B cannot reach ESCALATE without a bundle; give it an approval row directly.
    b_approval = uuid.uuid4()
    with psycopg.connect(test_db.admin_url) as conn:
        conn.execute(
            "INSERT INTO arx.approval_requests (id, org_id, event_id, agent_id, connector,"
            " operation, params, request_hash, expires_at)"
            " VALUES (%s, %s, %s, %s, 'crowdstrike', 'hosts:contain', %s, %s,"
            " now() + interval '1 hour')",
            (
                b_approval,
                org_b.org_id,
                UUID(denied.json()["event_id"]),
                b_agent,
                Jsonb(CONTAIN["params"]),
                hashlib.sha256(b"b").digest(),
            ),
        )
    return Tenants(
        a=a,
        b=org_b.org_id,
        a_agent=example.seeded.agent_ids["responder-bot"],
        b_agent=b_agent,
        a_key=example.seeded.api_keys["responder-bot"],
        b_key=b_key,
        a_approval=UUID(pending.json()["approval_id"]),
        b_approval=b_approval,
        b_deny=denied.json(),
    )


def _rows_by_org(test_db: Database) -> dict[str, dict[UUID, set[str]]]:
    """The superuser's view: for each table, the ids of each org's rows."""
    out: dict[str, dict[UUID, set[str]]] = {}
    with psycopg.connect(test_db.admin_url) as conn:
        for table, col in TABLES.items():
            by_org: dict[UUID, set[str]] = {}
            query = sql.SQL("SELECT {}, id::text FROM arx.{}").format(
                sql.Identifier(col), sql.Identifier(table)
            )
            for org, row_id in conn.execute(query):
                by_org.setdefault(org, set()).add(row_id)
            out[table] = by_org
    return out


def _url(test_db: Database, role: str) -> str:
    return test_db.app_url if role == "arx_app" else test_db.control_url


def _readable(role: str) -> list[str]:
    return [t for t in TABLES if role != "arx_app" or t not in APP_UNREADABLE]


def _visible(conn: psycopg.Connection[Any], role: str) -> dict[str, set[str]]:
    return {
        table: {
            r[0]
            for r in conn.execute(
                sql.SQL("SELECT id::text FROM arx.{}").format(sql.Identifier(table))
            )
        }
        for table in _readable(role)
    }


async def test_org_without_policy_bundle_is_denied(
    tenants: Tenants, falcon: FalconState, test_db: Database
) -> None:
    body = tenants.b_deny
    assert body["code"] == "policy_denied"
    assert body["verdict"] == "DENY"
    assert body["policy_id"] == "arx.no_org_policy"
    # Only org A's PERMIT reached the fake Falcon; B's call never did.
    assert len(falcon.calls("/devices/queries/devices/v1")) == 1
    with psycopg.connect(test_db.admin_url) as conn:
        rows = conn.execute(
            "SELECT kind, verdict, policy_id FROM arx.audit_events"
            " WHERE org_id = %s AND kind <> 'admin' ORDER BY seq",
            (tenants.b,),
        ).fetchall()
    assert rows == [("decision", "DENY", "arx.no_org_policy")]


@pytest.mark.parametrize("role", ROLES)
async def test_each_role_sees_only_its_own_org(
    tenants: Tenants, test_db: Database, role: str
) -> None:
    truth = _rows_by_org(test_db)
    for table in TABLES:
        assert truth[table].get(tenants.a), f"org A must have rows in {table}"
        assert truth[table].get(tenants.b), f"org B must have rows in {table}"
    for org in (tenants.a, tenants.b):
        with psycopg.connect(_url(test_db, role), autocommit=True) as conn:
            conn.execute(SET_ORG, (str(org),))
            seen = _visible(conn, role)
            # Filtering on the other org's id explicitly changes nothing.
            other = tenants.b if org == tenants.a else tenants.a
            for table in _readable(role):
                query = sql.SQL("SELECT count(*) FROM arx.{} WHERE {} = %s").format(
                    sql.Identifier(table), sql.Identifier(TABLES[table])
                )
                cur = conn.execute(query, (other,))
                assert cur.fetchone() == (0,), table
        assert seen == {table: truth[table][org] for table in _readable(role)}


async def test_agent_path_cannot_read_keys_at_all(tenants: Tenants, test_db: Database) -> None:
    with psycopg.connect(test_db.app_url, autocommit=True) as conn:
        conn.execute(SET_ORG, (str(tenants.a),))
        for table in APP_UNREADABLE:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql.SQL("SELECT 1 FROM arx.{}").format(sql.Identifier(table)))


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("org_setting", [None, ""], ids=["unset", "empty"])
async def test_no_org_set_sees_nothing_and_writes_nothing(
    tenants: Tenants, test_db: Database, org_setting: str | None, role: str
) -> None:
    with psycopg.connect(_url(test_db, role), autocommit=True) as conn:
        if org_setting is not None:
            conn.execute(SET_ORG, (org_setting,))
        assert _visible(conn, role) == {table: set() for table in _readable(role)}
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO arx.orgs (id, slug, name) VALUES (%s, 'sneaky', 'Sneaky')",
                (uuid.uuid4(),),
            )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO arx.audit_events (id, org_id, kind, action, actor)"
                " VALUES (%s, %s, 'admin', 'forged', 'pytest')",
                (uuid.uuid4(), tenants.a),
            )


@pytest.mark.parametrize("role", ROLES)
async def test_no_role_can_write_rows_of_another_org(
    tenants: Tenants, test_db: Database, role: str
) -> None:
    b_row = {
        "orgs": (
            "INSERT INTO arx.orgs (id, slug, name) VALUES (%s, 'planted', 'Planted')",
            (tenants.b,),
        ),
        "agents": (
            "INSERT INTO arx.agents (id, org_id, name, intent) VALUES (%s, %s, 'planted', '{}')",
            (uuid.uuid4(), tenants.b),
        ),
        "api_keys": (
            "INSERT INTO arx.api_keys (id, org_id, agent_id, secret_hash)"
            " VALUES ('0123456789abcdef', %s, %s, %s)",
            (tenants.b, tenants.b_agent, bytes(32)),
        ),
        "credentials": (
            "INSERT INTO arx.credentials (id, org_id, connector, version, base_url, kek_id,"
            " wrapped_dek, nonce, ciphertext)"
            " VALUES (%s, %s, 'crowdstrike', 99, 'https://x', 'k', '\\x00', %s, '\\x00')",
            (uuid.uuid4(), tenants.b, bytes(12)),
        ),
        "audit_events": (
            "INSERT INTO arx.audit_events (id, org_id, kind, action, actor)"
            " VALUES (%s, %s, 'admin', 'forged', 'pytest')",
            (uuid.uuid4(), tenants.b),
        ),
        "approval_requests": (
            "INSERT INTO arx.approval_requests (id, org_id, event_id, agent_id, connector,"
            " operation, params, request_hash, expires_at)"
            " SELECT %s, %s, id, %s, 'crowdstrike', 'hosts:contain', '{}', %s, now()"
            " FROM arx.audit_events WHERE kind = 'decision' LIMIT 1",
            (uuid.uuid4(), tenants.b, tenants.b_agent, bytes(32)),
        ),
    }
    assert set(b_row) == set(TABLES)
    before = _rows_by_org(test_db)
    with psycopg.connect(_url(test_db, role), autocommit=True) as conn:
        conn.execute(SET_ORG, (str(tenants.a),))
        for table, (statement, params) in b_row.items():
            with pytest.raises(psycopg.errors.InsufficientPrivilege) as info:
                conn.execute(statement, params)
            # The agent path has no INSERT there at all; elsewhere RLS refuses.
            expected = (
                "permission denied"
                if role == "arx_app" and table in APP_NO_INSERT
                else "row-level security"
            )
            assert expected in str(info.value), (table, str(info.value))
    assert _rows_by_org(test_db) == before


async def test_agent_cannot_read_another_orgs_approval(
    client: httpx.AsyncClient, tenants: Tenants
) -> None:
    own_a = await client.get(
        f"/v1/sdk/approvals/{tenants.a_approval}", headers=tenants.auth(tenants.a_key)
    )
    assert own_a.status_code == 200, own_a.text
    own_b = await client.get(
        f"/v1/sdk/approvals/{tenants.b_approval}", headers=tenants.auth(tenants.b_key)
    )
    assert own_b.status_code == 200, own_b.text

    for approval, key in ((tenants.b_approval, tenants.a_key), (tenants.a_approval, tenants.b_key)):
        resp = await client.get(f"/v1/sdk/approvals/{approval}", headers=tenants.auth(key))
        assert resp.status_code == 404, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")
        body = resp.json()
        assert body["code"] == "not_found"
        # Nothing about the other org's request leaks into the problem.
        assert "hosts:contain" not in resp.text
        assert str(tenants.a) not in resp.text
        assert str(tenants.b) not in resp.text


@pytest.mark.parametrize("login_role", ROLES)
async def test_catalog_every_table_forced_and_login_roles_powerless(
    test_db: Database, login_role: str
) -> None:
    with psycopg.connect(test_db.admin_url) as conn:
        tables = conn.execute(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,"
            " pg_get_userbyid(c.relowner)"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'arx' AND c.relkind IN ('r', 'p')"
        ).fetchall()
        role = conn.execute(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb,"
            " pg_has_role(%(r)s, 'arx_owner', 'MEMBER'),"
            " pg_has_role(%(r)s, 'arx_auth', 'MEMBER'),"
            " pg_has_role(%(r)s, 'arx_identity', 'MEMBER')"
            " FROM pg_roles WHERE rolname = %(r)s",
            {"r": login_role},
        ).fetchone()
        owned = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'arx' AND c.relowner = %s::regrole",
            (login_role,),
        ).fetchall()
        schema_owner = conn.execute(
            "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'arx'"
        ).fetchone()
    assert set(TABLES) <= {t[0] for t in tables}
    unforced = [t[0] for t in tables if not (t[1] and t[2])]
    assert unforced == [], f"tables without ENABLE + FORCE row-level security: {unforced}"
    assert {t[3] for t in tables} == {"arx_owner"}
    assert role == (False, False, False, False, False, False, False)
    assert owned == []
    assert schema_owner == ("arx_owner",)
