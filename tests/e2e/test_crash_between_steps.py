"""A crash between the decision and the result (issue 9, point 3), with a real
API process and nothing simulated but the moment of death.

The stack's API is armed with the test-only fault ``kill-after-decision``
(arx.config: refused without ``ARX_TEST_FAULTS_ALLOWED``): it SIGKILLs itself
right after a PERMIT decision commits, before its tool is called. The agent
sees its connection drop. Nothing is restarted: a fresh API process on the
same database (without the fault) then lists the decision with ``outcome:
"outcome_unknown"`` once its result is overdue, never as nothing, and the
decision row itself is as it was written.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from arx.config import KILL_AFTER_DECISION, TEST_FAULTS_ACK
from arx.devstack.demo import Stack, local_stack
from arx.devstack.ports import LOOPBACK, free_port, is_port_open
from arx.devstack.postgres import psql_url_with
from arx.devstack.process import ManagedProcess

DB = "arx_e2e_crash"
REPO = Path(__file__).resolve().parents[2]
SEARCH = {"connector": "crowdstrike", "operation": "hosts:search", "params": {}}
FAULT = {"ARX_TEST_FAULT": KILL_AFTER_DECISION, "ARX_TEST_FAULTS_ALLOWED": TEST_FAULTS_ACK}
# A short deadline: a result is overdue 2 + 1 + 1 = 4 s after its decision
# (the deadline, the result write's own second, the statement timeout).
SHORT = {"ARX_EXECUTE_DEADLINE_SECONDS": "2", "ARX_DB_STATEMENT_TIMEOUT_SECONDS": "1"}
OVERDUE_SECONDS = 4.0


@pytest.fixture
def stack(pg_admin_url: str, tmp_path: Path) -> Iterator[Stack]:
    with local_stack(
        home=tmp_path,
        port=free_port(),
        admin_url=pg_admin_url,
        db_name=DB,
        api_env_extra={**FAULT, **SHORT},
    ) as running:
        yield running


@pytest.fixture
def fresh_api(stack: Stack, tmp_path: Path) -> Iterator[str]:
    """Another ``arx serve`` on the same database, without the fault: its base URL."""
    port = free_port()
    env = {k: v for k, v in stack.api_env.items() if k not in FAULT}
    proc = ManagedProcess(
        [sys.executable, "-m", "arx.cli.main", "serve", "--port", str(port)],
        name="fresh ARX API",
        log_path=tmp_path / "fresh-api.log",
        ready=lambda: is_port_open(port),
        env={**os.environ, **env},
        cwd=REPO,
    )
    proc.start(timeout=60)
    try:
        yield f"http://{LOOPBACK}:{port}"
    finally:
        proc.stop()


def _killed(pid: int, port: int) -> int:
    """Wait for the API (this test's child, via the stack) to die; its signal."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        reaped, status = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            assert not is_port_open(port)
            return os.WTERMSIG(status) if os.WIFSIGNALED(status) else -os.WEXITSTATUS(status)
        time.sleep(0.05)
    raise AssertionError("the API process is still alive")


def _rows(stack: Stack) -> list[dict[str, Any]]:
    with psycopg.connect(psql_url_with(stack.admin_url, dbname=DB)) as conn:
        cur = conn.execute(
            "SELECT id, kind, verdict, outcome, decision_id, request_id, client_request_id"
            " FROM arx.audit_events WHERE kind IN ('decision', 'result') ORDER BY seq"
        )
        names = [d.name for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def test_a_decision_whose_process_died_reads_outcome_unknown(stack: Stack, fresh_api: str) -> None:
    # The armed API said so when it started.
    assert "TEST FAULT ARMED" in (stack.logs / "api.log").read_text()
    api_pid, api_port = stack.pids["api"], int(stack.base_url.rsplit(":", 1)[1])
    headers = {
        "authorization": f"Bearer {stack.api_keys['triage-bot']}",
        "x-request-id": "agent-crash-1",
    }
    with pytest.raises(httpx.TransportError):
        httpx.post(f"{stack.base_url}/v1/sdk/execute", json=SEARCH, headers=headers, timeout=10)
    assert _killed(api_pid, api_port) == signal.SIGKILL
    died_at = time.monotonic()

    # Committed before the process died: the decision, and nothing after it.
    (decision,) = _rows(stack)
    assert (decision["kind"], decision["verdict"], decision["outcome"]) == (
        "decision",
        "PERMIT",
        None,
    )
    assert decision["client_request_id"] == "agent-crash-1"
    assert decision["request_id"] != "agent-crash-1"

    owner = {"authorization": f"Bearer {stack.owner_token}"}
    url = f"{fresh_api}/v1/admin/orgs/{stack.org_id}/audit"
    listed: dict[str, Any] = {}
    while time.monotonic() < died_at + OVERDUE_SECONDS + 15:
        resp = httpx.get(url, params={"limit": 1000}, headers=owner, timeout=10)
        assert resp.status_code == 200, resp.text
        listed = next(e for e in resp.json()["events"] if e["id"] == str(decision["id"]))
        if "outcome" in listed:
            break
        time.sleep(0.25)
    assert listed.get("outcome") == "outcome_unknown", listed
    assert listed["verdict"] == "PERMIT"
    assert listed["client_request_id"] == "agent-crash-1"
    # Read, never written: the stored row is unchanged and has no result.
    assert _rows(stack) == [decision]
