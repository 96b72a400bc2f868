"""Revocation, the kill switches and approval waits across API processes.

Two ``arx serve`` processes share one database. Each has remembered the
agent's key (a warm cache). A change made through one must hold on the
other at once: its cache is emptied by the NOTIFY the change fires at
commit, not by a timer.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from agentvault import ApprovalPendingError, ARXClient

from arx.devstack.demo import Stack, local_stack
from arx.devstack.ports import LOOPBACK, free_port
from arx.devstack.postgres import psql_url_with
from arx.devstack.process import ManagedProcess

DB = "arx_revocation"
SEARCH = {"connector": "crowdstrike", "operation": "hosts:search", "params": {}}
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("revocation-stack")
    with local_stack(home=home, port=free_port(), admin_url=pg_admin_url, db_name=DB) as running:
        yield running


@pytest.fixture(scope="module")
def second_api(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("second-api") / "api.log"

    def ready() -> bool:
        try:
            return httpx.get(f"http://{LOOPBACK}:{port}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    proc = ManagedProcess(
        [sys.executable, "-m", "arx.cli.main", "serve", "--port", str(port)],
        name="second ARX API",
        log_path=log,
        ready=ready,
        env={**os.environ, **stack.api_env},
        cwd=REPO,
    )
    proc.start(timeout=30)
    try:
        yield f"http://{LOOPBACK}:{port}"
    finally:
        proc.stop()


def _execute(base: str, key: str) -> httpx.Response:
    return httpx.post(
        f"{base}/v1/sdk/execute",
        json=SEARCH,
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    )


def _new_key(stack: Stack, agent: str) -> str:
    agent_id = _agent_id(stack, agent)
    resp = httpx.post(
        f"{stack.base_url}/v1/admin/orgs/{stack.org_id}/agents/{agent_id}/keys",
        json={"name": "revocation test"},
        headers={"authorization": f"Bearer {stack.owner_token}"},
        timeout=10,
    )
    assert resp.status_code == 201, resp.text
    key: str = resp.json()["api_key"]
    return key


def _agent_id(stack: Stack, name: str) -> str:
    resp = httpx.get(
        f"{stack.base_url}/v1/admin/orgs/{stack.org_id}/agents",
        headers={"authorization": f"Bearer {stack.owner_token}"},
        timeout=10,
    )
    return next(a["id"] for a in resp.json() if a["name"] == name)


def _owner(stack: Stack, method: str, path: str, json: object = None) -> httpx.Response:
    return httpx.request(
        method,
        f"{stack.base_url}/v1/admin/orgs/{stack.org_id}{path}",
        json=json,
        headers={"authorization": f"Bearer {stack.owner_token}"},
        timeout=10,
    )


def test_a_revoked_key_stops_at_once_on_every_process(stack: Stack, second_api: str) -> None:
    key = _new_key(stack, "triage-bot")
    key_id = key.split("_")[1]
    # Both processes have resolved and remembered the key.
    for base in (stack.base_url, second_api):
        for _ in range(3):
            assert _execute(base, key).status_code == 200
    agent_id = _agent_id(stack, "triage-bot")
    revoked = _owner(stack, "POST", f"/agents/{agent_id}/keys/{key_id}/revoke")
    assert revoked.status_code == 200, revoked.text
    done = time.monotonic()
    refused = _execute(second_api, key)
    latency = time.monotonic() - done
    assert refused.status_code == 401, refused.text
    assert refused.json()["code"] == "invalid_api_key"
    assert _execute(stack.base_url, key).status_code == 401
    print(f"revoke answered -> refused on the other process in {latency * 1000:.1f} ms")


def test_kill_switches_hold_on_every_process(stack: Stack, second_api: str) -> None:
    key = stack.api_keys["responder-bot"]
    agent_id = _agent_id(stack, "responder-bot")
    for base in (stack.base_url, second_api):
        assert _execute(base, key).status_code == 200
    off = _owner(stack, "PUT", f"/agents/{agent_id}/kill-switch", {"disabled": True})
    assert off.status_code == 200, off.text
    refused = _execute(second_api, key)
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "agent_disabled"
    on = _owner(stack, "PUT", f"/agents/{agent_id}/kill-switch", {"disabled": False})
    assert on.status_code == 200, on.text
    assert _execute(second_api, key).status_code == 200

    # The org-wide switch, thrown through the second process this time.
    org_off = httpx.put(
        f"{second_api}/v1/admin/orgs/{stack.org_id}/kill-switch",
        json={"disabled": True, "reason": "incident"},
        headers={"authorization": f"Bearer {stack.owner_token}"},
        timeout=10,
    )
    assert org_off.status_code == 200, org_off.text
    for agent in ("triage-bot", "responder-bot"):
        resp = _execute(stack.base_url, stack.api_keys[agent])
        assert resp.status_code == 403, resp.text
    org_on = _owner(stack, "PUT", "/kill-switch", {"disabled": False})
    assert org_on.status_code == 200, org_on.text
    assert _execute(stack.base_url, key).status_code == 200


def test_a_decision_wakes_an_agent_waiting_on_another_process(
    stack: Stack, second_api: str
) -> None:
    """The agent escalates through process A and waits (SDK long poll) on
    process B; the decision lands in the database (here straight in SQL, as
    any process's review would) and B answers at once, woken by NOTIFY."""
    with ARXClient(stack.api_keys["responder-bot"], base_url=stack.base_url) as on_a:
        host = on_a.execute("crowdstrike", "hosts:search", {"limit": 1}).result["resources"][0]
        with pytest.raises(ApprovalPendingError) as pending:
            on_a.execute("crowdstrike", "hosts:contain", {"ids": [host]})
    approval_id = pending.value.approval_id
    assert approval_id

    outcome: dict[str, object] = {}

    def wait_on_b() -> None:
        with ARXClient(stack.api_keys["responder-bot"], base_url=second_api) as on_b:
            started = time.monotonic()
            outcome["approval"] = on_b.wait_for_approval(approval_id, timeout=20)
            outcome["waited"] = time.monotonic() - started

    waiter = threading.Thread(target=wait_on_b)
    waiter.start()
    time.sleep(1.0)  # the poll is held on B by now
    decided_at = time.monotonic()
    db = psql_url_with(stack.admin_url, dbname=DB)
    with psycopg.connect(db) as conn:
        conn.execute(
            "UPDATE arx.approval_requests SET status = 'approved', resolved_at = now(),"
            " resolution_comment = 'decided elsewhere' WHERE id = %s",
            (approval_id,),
        )
    waiter.join(timeout=25)
    woke_after = time.monotonic() - decided_at
    approval = outcome["approval"]
    assert getattr(approval, "status", None) == "approved", outcome
    assert getattr(approval, "comment", None) == "decided elsewhere"
    assert woke_after < 3, f"process B answered {woke_after:.2f}s after the decision"
    print(f"decision committed -> the agent waiting on B answered in {woke_after * 1000:.0f} ms")


def test_an_agent_waits_for_approval_and_resumes_itself(stack: Stack, second_api: str) -> None:
    """The SDK's execute(..., wait_for_approval=...): the call escalates, waits
    (held on process B), and once a decision lands runs the approved call once."""
    key = stack.api_keys["responder-bot"]
    with ARXClient(key, base_url=second_api) as agent:
        host = agent.execute("crowdstrike", "hosts:search", {"limit": 1}).result["resources"][0]
    outcome: dict[str, object] = {}

    def contain() -> None:
        with ARXClient(key, base_url=second_api) as agent:
            outcome["result"] = agent.execute(
                "crowdstrike", "hosts:contain", {"ids": [host]}, wait_for_approval=20
            )

    waiter = threading.Thread(target=contain)
    waiter.start()
    db = psql_url_with(stack.admin_url, dbname=DB)
    approval_id = None
    for _ in range(50):  # the escalation lands within moments
        time.sleep(0.1)
        with psycopg.connect(db) as conn:
            row = conn.execute(
                "SELECT id FROM arx.approval_requests WHERE status = 'pending'"
                " AND params -> 'ids' ->> 0 = %s ORDER BY created_at DESC LIMIT 1",
                (host,),
            ).fetchone()
        if row:
            approval_id = row[0]
            break
    assert approval_id is not None
    with psycopg.connect(db) as conn:
        conn.execute(
            "UPDATE arx.approval_requests SET status = 'approved', resolved_at = now()"
            " WHERE id = %s",
            (approval_id,),
        )
    waiter.join(timeout=25)
    result = outcome.get("result")
    assert getattr(result, "verdict", None) == "PERMIT", outcome
    assert getattr(result, "reasons", [""])[0] == f"approved by reviewers (approval {approval_id})"
    # Resuming again (on the other process) answers the same, without running again.
    with ARXClient(key, base_url=stack.base_url) as agent:
        again = agent.resume(str(approval_id), "crowdstrike", "hosts:contain", {"ids": [host]})
    assert again.event_id == getattr(result, "event_id", None)
