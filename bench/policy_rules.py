"""Benchmark: one decision with a 50-rule org bundle and a full session, in `opa bench`.

Generates an org bundle of ``--rules`` rules (default 50) shaped like a real
org's: kinds, connectors, operation globs, agents, risk bounds, min_counts
over the session windows, and params conditions (count, list membership,
an org list, globs), none of which matches the call below until the last
one, so the decision walks every rule. The call is a containment of three
hosts by an agent whose scope is a glob, with a full session (10 recent
entries and the three windows). Then runs the pinned ``opa bench`` with the
base library and that bundle, as the sidecar runs (``--optimize-store-for-
read-speed``), and prints ns/op, allocations and OPA's own eval timer, next
to the same figures for the example bundle.

It asserts nothing: it is a benchmark, not a test.

    .venv/bin/python bench/policy_rules.py [--rules 50] [--count 5]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from arx.devstack.opa import opa_binary

REPO = Path(__file__).resolve().parents[1]
NOW_NS = 1795626300000000000


def full_session_input(slug: str) -> dict[str, Any]:
    ops = ["hosts:search", "hosts:get", "hosts:get", "hosts:update"]
    kinds = ["read", "read", "read", "write"]
    recent = [
        {
            "connector": "crowdstrike",
            "operation": ops[i % 4],
            "kind": kinds[i % 4],
            "verdict": "PERMIT",
            "at_ns": NOW_NS - (i + 1) * 7_000_000_000,
        }
        for i in range(10)
    ]

    def window(actions: int, non_read: int, denied: int, targets: int, k: list[int]) -> Any:
        names = ["read", "write", "containment", "destructive"]
        return {
            "actions": actions,
            "non_read": non_read,
            "denied": denied,
            "targets": targets,
            "kinds": dict(zip(names, k, strict=True)),
        }

    return {
        "agent": {
            "id": "0b6f3c2e-5d1a-4c0e-9a57-3f0e7d1c0002",
            "name": "responder-bot",
            "intent": {
                "purpose": "Contain compromised hosts and release them once cleaned",
                "scope": {"crowdstrike": ["hosts:*"]},
            },
        },
        "org": {"id": "0b6f3c2e-5d1a-4c0e-9a57-3f0e7d1c00aa", "slug": slug},
        "connector": "crowdstrike",
        "operation": {
            "name": "hosts:contain",
            "kind": "containment",
            "base_risk": 60,
            "reversible": True,
            "target_type": "host",
        },
        "params": {"ids": [f"a1b2c3d4e5f60718293a4b5c6d7e8f9{i}" for i in range(3)]},
        "target_count": 3,
        "session_context": {
            "recent": recent,
            "windows": {
                "1m": window(3, 1, 0, 1, [2, 1, 0, 0]),
                "5m": window(12, 3, 1, 3, [9, 2, 1, 0]),
                "60m": window(100, 25, 2, 14, [75, 22, 3, 0]),
            },
        },
        "now": "2026-11-25T17:05:00Z",
        "now_ns": NOW_NS,
    }


def rules(n: int) -> list[dict[str, Any]]:
    """``n`` rules that the call below does not match (the last one aside)."""
    shapes: list[dict[str, Any]] = [
        {"kinds": ["destructive"]},
        {"connectors": ["okta"], "operations": ["users:*"]},
        {"agents": ["triage-bot"], "operations": ["hosts:*"]},
        {"min_risk": 95},
        {"connectors": ["crowdstrike"], "operations": ["hosts:lift_containment"], "max_risk": 59},
        {"kinds": ["containment"], "min_counts": {"5m": {"containment": 4}}},
        {
            "connectors": ["crowdstrike"],
            "operations": ["hosts:contain"],
            "params": {"ids": {"count_gt": 10}},
        },
        {
            "connectors": ["crowdstrike"],
            "operations": ["hosts:contain"],
            "params": {"ids": {"any_in": {"data": "critical_hosts"}}},
        },
        {"operations": ["detects:*", "incidents:*"]},
        {"min_counts": {"60m": {"denied": 10}}},
    ]
    out = []
    for i in range(n - 1):
        out.append(
            {
                "id": f"R-{i:03d}",
                "priority": 10 + i,
                "description": f"generated rule {i}",
                "verdict": ["DENY", "ESCALATE", "PERMIT"][i % 3],
                "match": shapes[i % len(shapes)],
            }
        )
    out.append(
        {
            "id": f"R-{n - 1:03d}",
            "priority": 10 + n,
            "description": "containment escalates",
            "verdict": "ESCALATE",
            "match": {"kinds": ["containment"]},
        }
    )
    return out


def bench(opa: Path, bundle: Path, inp: Path, count: int) -> dict[str, str]:
    args = [
        opa, "bench", "-b", REPO / "rego", "-b", bundle, "--ignore", "*_test.rego",
        "--optimize-store-for-read-speed", "--count", str(count), "-i", inp,
        "--format", "gobench", "data.arx.decision",
    ]  # fmt: skip
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    figures: dict[str, list[float]] = {}
    for line in out.splitlines():
        for value, unit in re.findall(r"([0-9.]+) ([A-Za-z_/]+)", line):
            figures.setdefault(unit, []).append(float(value))

    def median(unit: str) -> str:
        values = sorted(figures.get(unit, []))
        return f"{values[len(values) // 2]:,.0f}" if values else "?"

    return {
        "ns/op": median("ns/op"),
        "allocs/op": median("allocs/op"),
        "B/op": median("B/op"),
        "eval median ns": median("histogram_timer_rego_query_eval_ns_median"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rules", type=int, default=50)
    parser.add_argument("--count", type=int, default=5, help="opa bench --count")
    args = parser.parse_args()
    opa = opa_binary(REPO)
    with tempfile.TemporaryDirectory(prefix="arx-bench-rules-") as tmp:
        work = Path(tmp)
        bundle = work / "bundle"
        (bundle / "orgs" / "bench").mkdir(parents=True)
        (bundle / ".manifest").write_text(json.dumps({"roots": ["orgs/bench"]}))
        policy = {
            "defaults": {"read": "PERMIT", "write": "ESCALATE"},
            "lists": {"critical_hosts": [f"{i:032x}" for i in range(200)]},
            "rules": rules(args.rules),
        }
        (bundle / "orgs" / "bench" / "data.json").write_text(json.dumps(policy))
        check = subprocess.run(
            [
                opa, "eval", "--fail", "-b", REPO / "rego", "-b", bundle, "--ignore", "*_test.rego",
                'data.arx.org.valid with input as {"org": {"slug": "bench"}}',
            ],
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        if check.returncode != 0:
            raise SystemExit(f"the generated bundle is not valid: {check.stdout}{check.stderr}")
        for slug, source in (("bench", bundle), ("example", REPO / "bundles" / "example")):
            inp = work / f"{slug}.json"
            inp.write_text(json.dumps(full_session_input(slug)))
            decision = subprocess.run(
                [opa, "eval", "-b", REPO / "rego", "-b", source, "--ignore", "*_test.rego",
                 "-i", inp, "--format", "raw", "data.arx.decision"],
                capture_output=True, text=True, check=True,
            ).stdout.strip()  # fmt: skip
            figures = bench(opa, source, inp, args.count)
            label = f"{args.rules}-rule bundle" if slug == "bench" else "example bundle"
            print(f"\n{label}: {json.loads(decision)['policy_id']} ({decision[:80]}…)")
            print("  " + "   ".join(f"{k} {v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
