"""Schemathesis against the running system: the OpenAPI document tells the truth.

The whole system runs as a user meets it (``local_stack``: the API under
uvicorn, OPA, the Falcon sandbox, the session's PostgreSQL), and ``st run``
loads the document the API serves and tests every operation with every
check: bodies and answers conform to their schemas, statuses, media types
and headers are documented, documented-valid requests are accepted and
documented-invalid ones refused, auth is enforced, unsupported methods are
405s with ``Allow``, created resources are reachable.

Bounded for CI: at most 300 examples per operation and phase, one worker;
about 30 s on the 2-core machine, stack included. Reproducible: generation
is derandomized and keeps no example database, so the same code generates
the same requests on every run (the stateful phase follows what the server
answers, so its scenario count varies with the ids it is given).

Phases, all four, each for what it finds:

- examples: runs the document's examples; it has none today (the operation
  tables carry none), so this costs nothing and picks up any that are added;
- coverage: deterministic boundary and schema-violating values for each
  keyword (what found the empty ``base_url`` the document did not allow);
- fuzzing: property-based requests, positive and negative, shrunk on failure
  (what found ``3800.0`` refused for an ``integer``);
- stateful: chains operations along links inferred from responses (org ->
  agent -> key -> credential, execute 202 -> the approval's Location).

Two check settings differ from the defaults, each for a stated reason below;
every check runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from agentvault import ApprovalPendingError, ARXClient

from arx.devstack.demo import Stack, local_stack
from arx.devstack.ports import free_port

REPO = Path(__file__).resolve().parents[2]
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
AGENT = "responder-bot"  # reads PERMIT, containment ESCALATEs, lifting may PERMIT: every answer
# Execute (the hot path, with every connector operation's params) gets many
# examples; each control-plane route a few dozen: about 45 operations in all.
EXECUTE_EXAMPLES = 300
MAX_EXAMPLES = 25

CONFIG = """\
base-url = "{base_url}"
workers = 1
continue-on-failure = true
hooks = "{hooks}"
# max_response_time needs a limit to run: nothing on loopback takes 10 s (the
# execute deadline is 30 s, for tools far away).
[checks]
max_response_time = 10.0

[generation]
max-examples = {max_examples}
# Reproducible: derandomized, and no example database carrying state between runs.
deterministic = true
database = "none"

# Real credentials, one per security scheme the document declares.
[auth.openapi.AgentKey]
bearer = "${{ARX_ST_AGENT_KEY}}"
[auth.openapi.AdminToken]
bearer = "${{ARX_ST_ADMIN_TOKEN}}"
[auth.openapi.BootstrapToken]
bearer = "${{ARX_ST_BOOTSTRAP_TOKEN}}"

# An approval of this agent exists (made before the run): half the generated
# approval ids are it, so GET /v1/sdk/approvals/{{id}} answers 200 as well as 404.
[dictionaries.approvals]
values = ["{approval_id}"]
[parameters]
"path.approval_id" = {{ dictionary = "approvals", probability = 0.5 }}

# not_a_server_error, on execute only, accepts 502: the documented answer when
# the tool refuses the call (the sandbox answers 404 for a well-formed device id
# it does not know, 400 for FQL it cannot parse), reported with upstream_status.
# No schema can say which device ids exist. Every other 5xx still fails it.
[[operations]]
include-path = "/v1/sdk/execute"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "502"]
generation.max-examples = {execute_examples}
"""
# The second setting is the hook module (schemathesis_hooks.py): a valid
# Idempotency-Key is made unique per generated request.


@pytest.fixture(scope="module")
def stack(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("schemathesis-stack")
    with local_stack(
        home=home, port=free_port(), admin_url=pg_admin_url, db_name="arx_schemathesis"
    ) as running:
        yield running


def _pending_approval(stack: Stack) -> str:
    """Ask to contain a real host: the policy escalates, leaving an approval to poll."""
    with ARXClient(stack.api_keys[AGENT], base_url=stack.base_url) as arx:
        host = arx.execute("crowdstrike", "hosts:search", {"limit": 1}).result["resources"][0]
        with pytest.raises(ApprovalPendingError) as pending:
            arx.execute("crowdstrike", "hosts:contain", {"ids": [host]})
    assert pending.value.approval_id
    return pending.value.approval_id


def test_schemathesis_finds_no_failure(stack: Stack, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        CONFIG.format(
            base_url=stack.base_url,
            hooks=HOOKS,
            max_examples=MAX_EXAMPLES,
            execute_examples=EXECUTE_EXAMPLES,
            approval_id=_pending_approval(stack),
        )
    )
    env = {
        **os.environ,
        "ARX_ST_AGENT_KEY": stack.api_keys[AGENT],
        "ARX_ST_ADMIN_TOKEN": stack.owner_token,
        "ARX_ST_BOOTSTRAP_TOKEN": stack.api_env["ARX_BOOTSTRAP_TOKEN"],
    }
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--no-color",
            "--config-file",
            str(config),
            "run",
            f"{stack.base_url}/schema/openapi.json",
            "--checks",
            "all",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path / "report"),
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    elapsed = time.monotonic() - started
    output = done.stdout + done.stderr
    # Shown with -s or -rA, and in the failure message: what ran and what it found.
    print(output)
    print(f"schemathesis ran in {elapsed:.1f} s")
    assert done.returncode == 0, output[-30000:]
    operations = re.search(r"Selected: (\d+)/(\d+)\s+Tested: (\d+)", output)
    assert operations, output[-5000:]
    selected, total, tested = operations.groups()
    assert selected == total == tested, "every operation of the document was tested"
    assert re.search(r"(\d+) generated, \1 passed", output), output[-5000:]
    for key in (*stack.api_keys.values(), stack.owner_token, stack.api_env["ARX_BOOTSTRAP_TOKEN"]):
        assert key not in output, "schemathesis output shows a credential"
