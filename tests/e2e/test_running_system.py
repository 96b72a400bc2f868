"""The running system as a user meets it: real API process (uvicorn), real
OPA sidecar, real PostgreSQL, the Falcon sandbox on a port, and the agentvault
SDK in this process or the demo agent in its own."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from agentvault import (
    ApprovalPendingError,
    ARXClient,
    AsyncARXClient,
    AuthenticationError,
    InvalidRequestError,
    PermissionDeniedError,
)

from arx.devstack import reviewer
from arx.devstack.demo import Stack, local_stack
from arx.devstack.ports import free_port

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("stack")
    with local_stack(
        home=home, port=free_port(), admin_url=pg_admin_url, db_name="arx_e2e"
    ) as running:
        yield running


def test_sdk_sees_permit_deny_and_escalate(stack: Stack) -> None:
    with (
        ARXClient(stack.api_keys["triage-bot"], base_url=stack.base_url) as triage,
        ARXClient(stack.api_keys["responder-bot"], base_url=stack.base_url) as responder,
    ):
        found = triage.execute("crowdstrike", "hosts:search", {"filter": "hostname:'WS-FIN-0142'"})
        assert found.verdict == "PERMIT"
        assert len(found.result["resources"]) == 1
        host = found.result["resources"][0]

        with pytest.raises(PermissionDeniedError) as denied:
            triage.execute("crowdstrike", "hosts:contain", {"ids": [host]})
        assert denied.value.policy_id == "EX-001"
        assert denied.value.event_id

        with pytest.raises(ApprovalPendingError) as pending:
            responder.execute("crowdstrike", "hosts:contain", {"ids": [host]})
        approval = responder.get_approval(pending.value.approval_id or "")
        assert approval.status == "pending"

        # The host was never contained: neither the DENY nor the ESCALATE ran.
        detail = triage.execute("crowdstrike", "hosts:get", {"ids": [host]})
        assert detail.result["resources"][0]["status"] == "normal"


def test_sdk_errors_for_bad_key_and_bad_request(stack: Stack) -> None:
    bad_key = "arx_0000000000000000_notavalidsecret"
    with (
        ARXClient(bad_key, base_url=stack.base_url) as bad,
        pytest.raises(AuthenticationError),
    ):
        bad.execute("crowdstrike", "hosts:search", {})
    with ARXClient(stack.api_keys["triage-bot"], base_url=stack.base_url) as arx:
        with pytest.raises(InvalidRequestError) as exc:
            arx.execute("crowdstrike", "hosts:search", {"limit": "many"})
        assert exc.value.status == 422
        assert exc.value.field == "params.limit"
        operations = {o.name for c in arx.connectors() for o in c.operations}
        assert {
            "hosts:search",
            "hosts:get",
            "hosts:contain",
            "hosts:lift_containment",
        } <= operations


@pytest.mark.anyio
async def test_async_client_executes(stack: Stack, anyio_backend: str) -> None:
    async with AsyncARXClient(stack.api_keys["triage-bot"], base_url=stack.base_url) as arx:
        result = await arx.execute("crowdstrike", "hosts:search", {"limit": 2})
    assert result.verdict == "PERMIT"
    assert len(result.result["resources"]) == 2


def test_openapi_and_health_are_served(stack: Stack) -> None:
    health = httpx.get(f"{stack.base_url}/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "database": "ok", "policy_engine": "ok"}
    spec = httpx.get(f"{stack.base_url}/schema/openapi.json").json()
    execute = spec["paths"]["/v1/sdk/execute"]["post"]
    alternatives = execute["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert {a["title"] for a in alternatives} >= {"crowdstrike hosts:search"}


def test_demo_agent_script_runs_against_the_stack(stack: Stack) -> None:
    env = {
        **os.environ,
        "ARX_BASE_URL": stack.base_url,
        "DEMO_TRIAGE_KEY": stack.api_keys["triage-bot"],
        "DEMO_RESPONDER_KEY": stack.api_keys["responder-bot"],
    }
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "demo_agent.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "-> PERMIT" in done.stdout
    assert "-> DENY" in done.stdout
    assert "-> ESCALATE" in done.stdout
    # One governed call on each other connector, through its sandbox.
    for line in (
        "okta users:search -> PERMIT (default:read): 3 active user(s)",
        "jira issues:search -> PERMIT (default:read): 2 SEC issue(s)",
        "splunk search:query -> PERMIT (default:read): search job",
        "sentinel incidents:list -> PERMIT (default:read): 2 new incident(s)",
    ):
        assert line in done.stdout, done.stdout


@pytest.fixture
def fresh_stack(pg_admin_url: str, tmp_path: Path) -> Iterator[Stack]:
    """A stack of its own: the shared one's earlier containments would make this
    one the third in five minutes, which the example policy gives two reviewers."""
    with local_stack(
        home=tmp_path, port=free_port(), admin_url=pg_admin_url, db_name="arx_demo_review"
    ) as running:
        yield running


def test_the_demo_agent_waits_for_a_reviewer_and_its_call_runs_once_approved(
    fresh_stack: Stack,
) -> None:
    stack = fresh_stack
    env = {
        **os.environ,
        "ARX_BASE_URL": stack.base_url,
        "DEMO_TRIAGE_KEY": stack.api_keys["triage-bot"],
        "DEMO_RESPONDER_KEY": stack.api_keys["responder-bot"],
        "DEMO_APPROVAL_WAIT": "60",
        "PYTHONUNBUFFERED": "1",  # each line as it is printed
    }
    agent = subprocess.Popen(
        [sys.executable, str(REPO / "examples" / "demo_agent.py")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert agent.stdout is not None
    lines: list[str] = []
    try:
        # The agent names its request; the local reviewer approves it on the
        # review page, as `arx demo --no-wait` does.
        for line in agent.stdout:
            lines.append(line)
            if "review it: " in line:
                break
        approval = lines[-1].rsplit("/", 1)[-1].strip()
        reviewer.approve(
            stack.base_url,
            "example",
            approval,
            email=stack.owner_email,
            password=stack.owner_password,
            comment="go ahead",
        )
        rest, err = agent.communicate(timeout=30)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.communicate()
    out = "".join(lines) + rest
    assert agent.returncode == 0, err
    assert f"review it: {stack.base_url}/review/example/approvals/{approval}" in out
    assert "-> approved (go ahead); it ran: PERMIT" in out
    assert "CrowdStrike answered for 1 host(s)" in out


def test_api_logs_are_json_without_secrets(stack: Stack) -> None:
    import msgspec  # noqa: PLC0415

    lines = (stack.logs / "api.log").read_text().splitlines()
    records = [msgspec.json.decode(line) for line in lines if line.startswith("{")]
    requests = [r for r in records if r.get("msg") == "request"]
    assert requests, "the API logged no request lines"
    assert all("request_id" in r for r in requests)
    assert any("org_id" in r and "agent_id" in r for r in requests)
    text = "\n".join(lines)
    for key in stack.api_keys.values():
        assert key not in text
    assert stack.falcon_client_secret not in text


def test_an_integral_number_written_as_a_float_is_that_integer(stack: Stack) -> None:
    # JSON (and the OpenAPI document's "integer") do not tell 2 from 2.0.
    with ARXClient(stack.api_keys["triage-bot"], base_url=stack.base_url) as arx:
        result = arx.execute("crowdstrike", "hosts:search", {"limit": 2.0})
        assert len(result.result["resources"]) == 2
        with pytest.raises(InvalidRequestError) as exc:
            arx.execute("crowdstrike", "hosts:search", {"limit": 2.5})
        assert exc.value.field == "params.limit"


def test_a_replayed_202_still_says_where_to_poll(stack: Stack) -> None:
    headers = {
        "authorization": f"Bearer {stack.api_keys['responder-bot']}",
        "idempotency-key": "e2e-escalate-1",
    }
    with httpx.Client(base_url=stack.base_url) as http:
        search = {"connector": "crowdstrike", "operation": "hosts:search", "params": {"limit": 1}}
        found = http.post(
            "/v1/sdk/execute", json=search, headers={"authorization": headers["authorization"]}
        )
        host = found.json()["result"]["resources"][0]
        contain = {
            "connector": "crowdstrike",
            "operation": "hosts:contain",
            "params": {"ids": [host]},
        }
        first = http.post("/v1/sdk/execute", json=contain, headers=headers)
        again = http.post("/v1/sdk/execute", json=contain, headers=headers)
    assert first.status_code == again.status_code == 202, again.text
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"] == first.json()["poll_url"]
