"""Idempotency-Key on execute: a retry replays the first answer, never re-runs it."""

from __future__ import annotations

import hashlib

import httpx
import psycopg
import pytest

from arx.api.app import create_app
from arx.config import Settings
from arx.devstack.ports import free_port
from arx.runtime import open_runtime
from arx.sandbox.falcon import FalconState
from tests.fixtures.arx import Example
from tests.fixtures.database import Database

pytestmark = pytest.mark.anyio

EXECUTE = "/v1/sdk/execute"
SEARCH = {"connector": "crowdstrike", "operation": "hosts:search", "params": {"limit": 2}}
CONTAIN = {"connector": "crowdstrike", "operation": "hosts:contain", "params": {"ids": ["a" * 32]}}


def _count(db: Database, sql: str) -> int:
    with psycopg.connect(db.admin_url) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def _decisions(db: Database) -> int:
    return _count(db, "SELECT count(*) FROM arx.audit_events WHERE kind = 'decision'")


async def test_retry_with_same_key_replays_response_and_runs_once(
    client: httpx.AsyncClient, example: Example, falcon: FalconState, test_db: Database
) -> None:
    headers = {**example.auth("triage-bot"), "idempotency-key": "retry-1"}
    first = await client.post(EXECUTE, json=SEARCH, headers=headers)
    second = await client.post(EXECUTE, json=SEARCH, headers=headers)
    assert first.status_code == second.status_code == 200
    assert second.content == first.content
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert len(falcon.calls("/devices/queries/devices/v1")) == 1
    assert _decisions(test_db) == 1


async def test_denial_is_replayed_without_a_second_decision(
    client: httpx.AsyncClient, example: Example, falcon: FalconState, test_db: Database
) -> None:
    headers = {**example.auth("triage-bot"), "idempotency-key": "deny-1"}
    first = await client.post(EXECUTE, json=CONTAIN, headers=headers)
    second = await client.post(EXECUTE, json=CONTAIN, headers=headers)
    assert first.status_code == second.status_code == 403
    assert first.json()["event_id"] == second.json()["event_id"]
    assert second.headers["content-type"].startswith("application/problem+json")
    assert _decisions(test_db) == 1
    assert falcon.requests == []


async def test_same_key_for_a_different_request_is_422(
    client: httpx.AsyncClient, example: Example, test_db: Database
) -> None:
    headers = {**example.auth("triage-bot"), "idempotency-key": "reuse-1"}
    assert (await client.post(EXECUTE, json=SEARCH, headers=headers)).status_code == 200
    other = {**SEARCH, "params": {"limit": 3}}
    resp = await client.post(EXECUTE, json=other, headers=headers)
    assert resp.status_code == 422, resp.text
    assert resp.json()["code"] == "idempotency_key_reused"
    assert resp.json()["field"] == "Idempotency-Key"
    assert _decisions(test_db) == 1


async def test_keys_belong_to_one_agent(
    client: httpx.AsyncClient, example: Example, falcon: FalconState
) -> None:
    for agent in ("triage-bot", "responder-bot"):
        headers = {**example.auth(agent), "idempotency-key": "shared-name"}
        resp = await client.post(EXECUTE, json=SEARCH, headers=headers)
        assert resp.status_code == 200
        assert "idempotent-replayed" not in resp.headers
    assert len(falcon.calls("/devices/queries/devices/v1")) == 2


async def test_unfinished_first_request_answers_409(
    client: httpx.AsyncClient, example: Example, test_db: Database
) -> None:
    digest = hashlib.sha256(b"whatever").digest()
    with psycopg.connect(test_db.admin_url) as conn:
        conn.execute(
            "INSERT INTO arx.idempotency_keys (org_id, agent_id, key, request_hash)"
            " VALUES (%s, %s, 'busy-1', %s)",
            (example.seeded.org_id, example.seeded.agent_ids["triage-bot"], digest),
        )
    headers = {**example.auth("triage-bot"), "idempotency-key": "busy-1"}
    resp = await client.post(EXECUTE, json=SEARCH, headers=headers)
    # The stored hash differs, so the reuse check speaks first; same hash → 409.
    assert resp.status_code == 422
    with psycopg.connect(test_db.admin_url) as conn:
        conn.execute(
            "INSERT INTO arx.idempotency_keys (org_id, agent_id, key, request_hash)"
            " VALUES (%s, %s, 'busy-2', %s)",
            (
                example.seeded.org_id,
                example.seeded.agent_ids["triage-bot"],
                _hash_of(SEARCH),
            ),
        )
    headers["idempotency-key"] = "busy-2"
    resp = await client.post(EXECUTE, json=SEARCH, headers=headers)
    assert resp.status_code == 409, resp.text
    assert resp.json()["code"] == "idempotency_key_in_flight"


def _hash_of(request: dict[str, object]) -> bytes:
    from arx.idempotency.service import request_hash  # noqa: PLC0415

    params = request["params"]
    assert isinstance(params, dict)
    return request_hash(str(request["connector"]), str(request["operation"]), params)


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9".encode(), "tab\there"])
async def test_malformed_key_is_422(
    client: httpx.AsyncClient, example: Example, test_db: Database, key: str | bytes
) -> None:
    headers: dict[str, str | bytes] = {**example.auth("triage-bot"), "idempotency-key": key}
    resp = await client.post(EXECUTE, json=SEARCH, headers=headers)
    assert resp.status_code == 422, resp.text
    assert resp.json()["field"] == "Idempotency-Key"
    assert _decisions(test_db) == 0


async def test_503_releases_the_key_so_the_retry_runs(
    settings: Settings,
    client: httpx.AsyncClient,
    example: Example,
    falcon: FalconState,
    test_db: Database,
) -> None:
    dead_opa = Settings(
        database_url=settings.database_url,
        opa_url=f"http://127.0.0.1:{free_port()}",
        kek=settings.kek,
        allow_insecure_connector_urls=True,
        sandbox_orgs=("*",),
    )
    headers = {**example.auth("triage-bot"), "idempotency-key": "after-outage"}
    async with open_runtime(dead_opa) as rt:
        await rt.pool.wait(timeout=10)
        app = create_app(dead_opa, runtime=rt)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://arx.test"
        ) as down:
            resp = await down.post(EXECUTE, json=SEARCH, headers=headers)
    assert resp.status_code == 503
    assert _count(test_db, "SELECT count(*) FROM arx.idempotency_keys") == 0

    retry = await client.post(EXECUTE, json=SEARCH, headers=headers)
    assert retry.status_code == 200
    assert "idempotent-replayed" not in retry.headers
    assert len(falcon.calls("/devices/queries/devices/v1")) == 1


def _abandon(test_db: Database, key: str, *, minutes: int = 10) -> None:
    """Make the key's claim look like one whose request died ``minutes`` ago."""
    with psycopg.connect(test_db.admin_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE arx.idempotency_keys SET status_code = NULL, media_type = NULL,"
            " response = NULL, completed_at = NULL,"
            " created_at = created_at - make_interval(mins => %s) WHERE key = %s",
            (minutes, key),
        )


async def test_the_key_is_recorded_on_the_decision_event(
    client: httpx.AsyncClient, example: Example, test_db: Database
) -> None:
    headers = {**example.auth("triage-bot"), "idempotency-key": "on-the-event"}
    resp = await client.post(EXECUTE, json=SEARCH, headers=headers)
    assert resp.status_code == 200, resp.text
    with psycopg.connect(test_db.admin_url) as conn:
        row = conn.execute(
            "SELECT idempotency_key FROM arx.audit_events WHERE id = %s", (resp.json()["event_id"],)
        ).fetchone()
    assert row == ("on-the-event",)


async def test_an_abandoned_claim_that_reached_a_decision_is_not_run_again(
    client: httpx.AsyncClient, example: Example, falcon: FalconState, test_db: Database
) -> None:
    """The first request was decided (and maybe executed) and then its process
    died before storing the answer: the retry must not run the operation a
    second time. It answers 409 with the first decision and its outcome."""
    headers = {**example.auth("triage-bot"), "idempotency-key": "died-after-decision"}
    first = await client.post(EXECUTE, json=SEARCH, headers=headers)
    assert first.status_code == 200, first.text
    _abandon(test_db, "died-after-decision")

    retry = await client.post(EXECUTE, json=SEARCH, headers=headers)
    assert retry.status_code == 409, retry.text
    body = retry.json()
    assert body["code"] == "idempotency_outcome_unknown"
    assert body["event_id"] == first.json()["event_id"]
    assert body["outcome"] == "success"
    assert len(falcon.calls("/devices/queries/devices/v1")) == 1, "ran once, never twice"
    assert _decisions(test_db) == 1


async def test_an_abandoned_claim_without_a_decision_runs_on_retry(
    client: httpx.AsyncClient, example: Example, falcon: FalconState, test_db: Database
) -> None:
    """A claim whose request died before any decision ran nothing: the retry runs."""
    with psycopg.connect(test_db.admin_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO arx.idempotency_keys (org_id, agent_id, key, request_hash, created_at)"
            " VALUES (%s, %s, 'died-before-decision', %s, now() - interval '10 minutes')",
            (example.seeded.org_id, example.seeded.agent_ids["triage-bot"], _hash_of(SEARCH)),
        )
    headers = {**example.auth("triage-bot"), "idempotency-key": "died-before-decision"}
    retry = await client.post(EXECUTE, json=SEARCH, headers=headers)
    assert retry.status_code == 200, retry.text
    assert len(falcon.calls("/devices/queries/devices/v1")) == 1
    # A claim that is merely slow (not yet abandoned) is still in flight.
    with psycopg.connect(test_db.admin_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO arx.idempotency_keys (org_id, agent_id, key, request_hash)"
            " VALUES (%s, %s, 'still-running', %s)",
            (example.seeded.org_id, example.seeded.agent_ids["triage-bot"], _hash_of(SEARCH)),
        )
    headers["idempotency-key"] = "still-running"
    busy = await client.post(EXECUTE, json=SEARCH, headers=headers)
    assert busy.status_code == 409, busy.text
    assert busy.json()["code"] == "idempotency_key_in_flight"
