"""A rule's approval terms, as the real OPA answers them, read by ARX.

JSON does not tell 2 from 2.0: an org may write its terms either way (or as
1.8e3), and the policy's check accepts any whole number. The decision must
still reach ARX as integers, since its Decision type reads them strictly and
anything else fails closed (503) on every call the rule matches.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import msgspec
import pytest

from arx.policy.types import Decision

WINDOW = {
    "actions": 0,
    "non_read": 0,
    "denied": 0,
    "targets": 0,
    "kinds": {"read": 0, "write": 0, "containment": 0, "destructive": 0},
}
CALL = {
    "agent": {
        "id": "a",
        "name": "responder-bot",
        "intent": {"scope": {"crowdstrike": ["hosts:*"]}},
    },
    "org": {"id": "o", "slug": "acme"},
    "connector": "crowdstrike",
    "operation": {
        "name": "hosts:contain",
        "kind": "containment",
        "base_risk": 60,
        "reversible": True,
        "target_type": "host",
    },
    "params": {"ids": ["4c1d7e2a9b3f4e5d8a6c0b1e2f3a4d5c"]},
    "target_count": 1,
    "session_context": {"recent": [], "windows": {"1m": WINDOW, "5m": WINDOW, "60m": WINDOW}},
    "now": "2026-11-25T17:05:00Z",
    "now_ns": 1795626300000000000,
}


@pytest.mark.parametrize(
    "terms", [{"required": 2, "ttl_seconds": 1800}, {"required": 2.0, "ttl_seconds": 1.8e3}]
)
def test_whole_number_terms_reach_arx_as_integers(
    terms: dict[str, float], opa_path: Path, repo_root: Path, tmp_path: Path
) -> None:
    rule = {"id": "TP-1", "priority": 1, "verdict": "ESCALATE", "approval": terms}
    data = tmp_path / "data.json"
    data.write_text(json.dumps({"orgs": {"acme": {"rules": [rule]}}}))
    given = tmp_path / "input.json"
    given.write_text(json.dumps(CALL))
    out = subprocess.run(
        [
            *(str(opa_path), "eval", "-b", str(repo_root / "rego"), "--ignore", "*_test.rego"),
            *("-d", str(data), "-i", str(given), "--format", "raw", "data.arx.decision"),
        ],
        capture_output=True,
        check=True,
    ).stdout
    decision = msgspec.json.decode(out, type=Decision)
    assert (decision.verdict, decision.policy_id) == ("ESCALATE", "TP-1")
    assert (decision.approvals_required, decision.approval_ttl_seconds) == (2, 1800)
