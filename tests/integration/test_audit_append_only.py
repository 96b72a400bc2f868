"""INV-001: the audit trail is append-only, enforced by PostgreSQL itself.

The app role may only INSERT and SELECT (privileges); UPDATE, DELETE and
TRUNCATE are rejected by ``ENABLE ALWAYS`` triggers; the app role cannot
disable or drop those triggers. A superuser can, so the triggers prove
nothing against one: the hash chain and its signed checkpoints do
(tests/integration/test_audit_chain.py tampers as the superuser). The rows
under test are real decision and result events written by one PERMIT
execute through the API.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from tests.fixtures.arx import Example
from tests.fixtures.database import Database

pytestmark = pytest.mark.anyio

EXECUTE = "/v1/sdk/execute"
SET_ORG = "SELECT set_config('arx.org_id', %s, false)"


@dataclass(frozen=True)
class Trail:
    org_id: UUID
    decision_id: UUID
    result_id: UUID


@pytest.fixture
async def trail(client: httpx.AsyncClient, example: Example, test_db: Database) -> Trail:
    """One PERMIT execute through the API: a committed decision and its result."""
    resp = await client.post(
        EXECUTE,
        json={"connector": "crowdstrike", "operation": "hosts:search", "params": {}},
        headers=example.auth("triage-bot"),
    )
    assert resp.status_code == 200, resp.text
    decision_id = UUID(resp.json()["event_id"])
    with psycopg.connect(test_db.admin_url) as conn:
        row = conn.execute(
            "SELECT id FROM arx.audit_events WHERE kind = 'result' AND decision_id = %s",
            (decision_id,),
        ).fetchone()
    assert row is not None, "the execute must have appended a result event"
    return Trail(org_id=example.seeded.org_id, decision_id=decision_id, result_id=row[0])


def _snapshot(test_db: Database) -> list[Any]:
    """Every audit row, in full, as the superuser sees it."""
    with psycopg.connect(test_db.admin_url) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT to_jsonb(e) FROM arx.audit_events e ORDER BY seq"
            ).fetchall()
        ]


def _app_conn(test_db: Database, org_id: UUID) -> psycopg.Connection[Any]:
    """The API's role, scoped to ``org_id``. Autocommit, so a failed statement
    cannot roll the session-level org setting back."""
    conn = psycopg.connect(test_db.app_url, autocommit=True)
    conn.execute(SET_ORG, (str(org_id),))
    return conn


def _mutations(trail: Trail) -> list[tuple[str, tuple[Any, ...]]]:
    return [
        (
            "UPDATE arx.audit_events SET verdict = 'DENY', policy_id = 'forged' WHERE id = %s",
            (trail.decision_id,),
        ),
        (
            "UPDATE arx.audit_events SET outcome = 'error', result = NULL WHERE id = %s",
            (trail.result_id,),
        ),
        ("DELETE FROM arx.audit_events WHERE id = %s", (trail.result_id,)),
        ("DELETE FROM arx.audit_events", ()),
        # CASCADE, so the foreign key from approval_requests cannot be what
        # stops it: only the trigger (or a missing privilege) can.
        ("TRUNCATE arx.audit_events CASCADE", ()),
        ("TRUNCATE arx.audit_events", ()),
    ]


async def test_app_role_can_insert_and_select_its_org_events(
    trail: Trail, test_db: Database
) -> None:
    with _app_conn(test_db, trail.org_id) as conn:
        kinds = [
            r[0] for r in conn.execute("SELECT kind FROM arx.audit_events ORDER BY seq").fetchall()
        ]
        assert kinds[-2:] == ["decision", "result"]
        assert set(kinds[:-2]) == {"admin"}, "the seed's admin events come first"

        event_id = uuid.uuid4()
        conn.execute(
            "INSERT INTO arx.audit_events (id, org_id, kind, action, details, actor)"
            " VALUES (%s, %s, 'admin', 'test.appended', '{}', 'pytest')",
            (event_id, trail.org_id),
        )
        row = conn.execute(
            "SELECT kind, action, actor, seq > (SELECT seq FROM arx.audit_events WHERE id = %s)"
            " FROM arx.audit_events WHERE id = %s",
            (trail.result_id, event_id),
        ).fetchone()
    assert row == ("admin", "test.appended", "pytest", True)


async def test_app_role_cannot_update_delete_or_truncate(trail: Trail, test_db: Database) -> None:
    before = _snapshot(test_db)
    with _app_conn(test_db, trail.org_id) as conn:
        for statement, params in _mutations(trail):
            with pytest.raises(psycopg.errors.InsufficientPrivilege) as info:
                conn.execute(statement, params)
            # The privilege system stops the app role before any trigger runs.
            assert "permission denied" in str(info.value), statement
    assert _snapshot(test_db) == before


async def test_app_role_cannot_disable_or_drop_the_guards(trail: Trail, test_db: Database) -> None:
    attacks = [
        "ALTER TABLE arx.audit_events DISABLE TRIGGER audit_events_no_update_delete",
        "ALTER TABLE arx.audit_events DISABLE TRIGGER ALL",
        "ALTER TABLE arx.audit_events ENABLE TRIGGER audit_events_no_truncate",
        "DROP TRIGGER audit_events_no_update_delete ON arx.audit_events",
        "DROP TRIGGER audit_events_no_truncate ON arx.audit_events",
        "DROP FUNCTION arx.reject_audit_change() CASCADE",
        "CREATE OR REPLACE FUNCTION arx.reject_audit_change() RETURNS trigger"
        " LANGUAGE plpgsql AS $$BEGIN RETURN OLD; END$$",
        "ALTER TABLE arx.audit_events NO FORCE ROW LEVEL SECURITY",
        "ALTER TABLE arx.audit_events OWNER TO arx_app",
        "DROP POLICY tenant_isolation ON arx.audit_events",
        "DROP TABLE arx.audit_events CASCADE",
        "SET session_replication_role = replica",
        "SET ROLE arx_owner",
    ]
    with _app_conn(test_db, trail.org_id) as conn:
        for statement in attacks:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        # Still append-only afterwards, as far as the app role can tell.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM arx.audit_events WHERE id = %s", (trail.result_id,))

    with psycopg.connect(test_db.admin_url) as conn:
        triggers: dict[str, str] = dict(
            conn.execute(
                "SELECT tgname, tgenabled FROM pg_trigger"
                " WHERE tgrelid = 'arx.audit_events'::regclass AND NOT tgisinternal"
            ).fetchall()
        )
        privileges = conn.execute(
            "SELECT has_table_privilege('arx_app', 'arx.audit_events', p)"
            " FROM unnest(ARRAY['UPDATE', 'DELETE', 'TRUNCATE', 'TRIGGER', 'REFERENCES']) p"
        ).fetchall()
    # 'A': ENABLE ALWAYS, so session_replication_role cannot silence them.
    assert triggers == {
        "audit_events_stamp": "A",
        "audit_events_no_update_delete": "A",
        "audit_events_no_truncate": "A",
    }
    assert privileges == [(False,)] * 5
