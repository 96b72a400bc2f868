"""The execute path end to end in-process: real OPA, real PostgreSQL, fake Falcon."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import psycopg
import pytest

from arx.sandbox.falcon import FalconState
from tests.fixtures.arx import FALCON_CLIENT_SECRET, Example
from tests.fixtures.database import Database

pytestmark = pytest.mark.anyio

EXECUTE = "/v1/sdk/execute"


def _audit_rows(test_db: Database) -> list[dict[str, Any]]:
    with psycopg.connect(test_db.admin_url) as conn:
        cur = conn.execute(
            "SELECT kind, verdict, policy_id, decision_id, outcome, connector, operation, result,"
            " error, bundle_revisions, id FROM arx.audit_events WHERE kind <> 'admin' ORDER BY seq"
        )
        names = [d.name for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


async def test_permit_executes_and_records_decision_then_result(
    client: httpx.AsyncClient, example: Example, falcon: FalconState, test_db: Database
) -> None:
    resp = await client.post(
        EXECUTE,
        json={
            "connector": "crowdstrike",
            "operation": "hosts:search",
            "params": {"filter": "platform_name:'Windows'"},
        },
        headers=example.auth("triage-bot"),
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["verdict"] == "PERMIT"
    assert body["policy_id"] == "default:read"
    assert body["risk_score"] == 10
    assert "arx-base-" in body["bundle_revision"]
    assert "example-" in body["bundle_revision"]
    assert body["result"]["resources"], "the fake fleet has Windows hosts"
    assert len(falcon.calls("/devices/queries/devices/v1")) == 1

    rows = _audit_rows(test_db)
    assert [r["kind"] for r in rows] == ["decision", "result"]
    decision, result = rows
    assert str(decision["id"]) == body["event_id"]
    assert decision["verdict"] == "PERMIT"
    assert set(decision["bundle_revisions"]) == {"arx-base", "example"}
    assert result["decision_id"] == decision["id"]
    assert result["outcome"] == "success"
    assert result["result"] == body["result"]


async def test_deny_is_403_with_policy_and_never_calls_connector(
    client: httpx.AsyncClient, example: Example, falcon: FalconState, test_db: Database
) -> None:
    resp = await client.post(
        EXECUTE,
        json={
            "connector": "crowdstrike",
            "operation": "hosts:contain",
            "params": {"ids": ["a" * 32]},
        },
        headers=example.auth("triage-bot"),
    )
    assert resp.status_code == 403, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["code"] == "policy_denied"
    assert body["verdict"] == "DENY"
    assert body["policy_id"]
    assert any("outside declared intent" in r for r in body["reasons"])
    assert falcon.requests == []
    rows = _audit_rows(test_db)
    assert [(r["kind"], r["verdict"]) for r in rows] == [("decision", "DENY")]
    assert str(rows[0]["id"]) == body["event_id"]


async def test_escalate_creates_approval_and_returns_202_pending(
    client: httpx.AsyncClient, example: Example, falcon: FalconState, test_db: Database
) -> None:
    resp = await client.post(
        EXECUTE,
        json={
            "connector": "crowdstrike",
            "operation": "hosts:contain",
            "params": {"ids": ["a" * 32]},
        },
        headers=example.auth("responder-bot"),
    )
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["status"] == "pending"
    assert body["verdict"] == "ESCALATE"
    assert resp.headers["location"] == body["poll_url"]
    assert falcon.requests == []

    poll = await client.get(body["poll_url"], headers=example.auth("responder-bot"))
    assert poll.status_code == 200
    assert poll.json()["status"] == "pending"
    assert poll.json()["event_id"] == body["event_id"]
    # Another agent of the same org cannot read it.
    other = await client.get(body["poll_url"], headers=example.auth("triage-bot"))
    assert other.status_code == 404

    with psycopg.connect(test_db.admin_url) as conn:
        row = conn.execute(
            "SELECT event_id, status, operation FROM arx.approval_requests"
        ).fetchone()
    assert row is not None
    assert str(row[0]) == body["event_id"]
    assert row[1:] == ("pending", "hosts:contain")


async def test_no_secret_in_responses_or_audit(
    client: httpx.AsyncClient, example: Example, test_db: Database
) -> None:
    resp = await client.post(
        EXECUTE,
        json={"connector": "crowdstrike", "operation": "hosts:search", "params": {}},
        headers=example.auth("triage-bot"),
    )
    assert resp.status_code == 200
    assert FALCON_CLIENT_SECRET not in resp.text
    with psycopg.connect(test_db.admin_url) as conn:
        dump = conn.execute("SELECT jsonb_agg(to_jsonb(e))::text FROM arx.audit_events e")
        text = dump.fetchone()[0]  # type: ignore[index]
    assert FALCON_CLIENT_SECRET not in text
    for key in example.seeded.api_keys.values():
        assert key not in text


# --- what the tool answered --------------------------------------------------------

SEARCH = {"connector": "crowdstrike", "operation": "hosts:search", "params": {}}


async def test_a_nul_in_the_tools_answer_does_not_drop_the_result_event(
    client: httpx.AsyncClient, example: Example, falcon: FalconState, test_db: Database
) -> None:
    """jsonb refuses U+0000: the trail keeps the answer with U+FFFD in its place."""
    (device,) = [d for d in falcon.devices.values()][:1]
    falcon.add_devices([dataclasses.replace(device, device_id="f" * 32, hostname="ws\x00evil")])
    resp = await client.post(
        EXECUTE,
        json={"connector": "crowdstrike", "operation": "hosts:get", "params": {"ids": ["f" * 32]}},
        headers=example.auth("triage-bot"),
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["result"]["resources"][0]["hostname"] == "ws\x00evil"
    rows = _audit_rows(test_db)
    assert [r["kind"] for r in rows] == ["decision", "result"]
    assert rows[1]["outcome"] == "success"
    assert rows[1]["result"]["resources"][0]["hostname"] == "ws\ufffdevil"


async def test_a_vendor_429_reaches_the_agent_as_429_with_retry_after(
    client: httpx.AsyncClient, example: Example, falcon: FalconState, test_db: Database
) -> None:
    falcon.rate_limit = 1
    first = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
    assert first.status_code == 200, first.text
    limited = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
    assert limited.status_code == 429, limited.text
    assert limited.headers["content-type"].startswith("application/problem+json")
    body = limited.json()
    assert body["code"] == "connector_rate_limited"
    assert body["upstream_status"] == 429
    assert 0 < int(limited.headers["retry-after"]) <= 62
    rows = _audit_rows(test_db)
    assert [(r["kind"], r["outcome"]) for r in rows] == [
        ("decision", None),
        ("result", "success"),
        ("decision", None),
        ("result", "error"),
    ]
    assert rows[3]["error"]["code"] == "connector_rate_limited"
    assert str(rows[2]["id"]) == body["event_id"]
