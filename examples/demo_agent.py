"""A scripted agent for the ARX demo: one PERMIT, one DENY, one ESCALATE.

It holds only ARX API keys (never a CrowdStrike credential) and talks to ARX
through the agentvault SDK, exactly as a real agent would.

    ARX_BASE_URL=http://127.0.0.1:8080 DEMO_TRIAGE_KEY=arx_... \
    DEMO_RESPONDER_KEY=arx_... python examples/demo_agent.py
"""

from __future__ import annotations

import os
import sys

from agentvault import ApprovalPendingError, ARXClient, PermissionDeniedError


def main() -> int:
    base = os.environ["ARX_BASE_URL"]
    triage = ARXClient(os.environ["DEMO_TRIAGE_KEY"], base_url=base)
    responder = ARXClient(os.environ["DEMO_RESPONDER_KEY"], base_url=base)
    seen: list[str] = []

    print("1. triage-bot searches CrowdStrike for Windows hosts (a read inside its intent)")
    found = triage.execute("crowdstrike", "hosts:search", {"filter": "platform_name:'Windows'"})
    hosts = found.result.get("resources", [])
    print(
        f"   -> {found.verdict} (risk {found.risk_score}, policy {found.policy_id}); "
        f"{len(hosts)} host(s): {', '.join(hosts)}"
    )
    print(f"      audit event {found.event_id}, bundle {found.bundle_revision}")
    seen.append(found.verdict)
    target = hosts[0]

    print(f"2. triage-bot tries to contain host {target} (outside its declared intent)")
    try:
        triage.execute("crowdstrike", "hosts:contain", {"ids": [target]})
    except PermissionDeniedError as exc:
        print(
            f"   -> DENY (risk {exc.risk_score}, policy {exc.policy_id}): {'; '.join(exc.reasons)}"
        )
        print(f"      audit event {exc.event_id}; CrowdStrike was never called")
        seen.append("DENY")

    print(
        f"3. responder-bot asks to contain host {target} (in scope, but containment is high impact)"
    )
    try:
        responder.execute("crowdstrike", "hosts:contain", {"ids": [target]})
    except ApprovalPendingError as exc:
        print(
            f"   -> ESCALATE (risk {exc.risk_score}, policy {exc.policy_id}): "
            f"{'; '.join(exc.reasons)}"
        )
        print(f"      approval {exc.approval_id} is pending; poll {exc.poll_url}")
        seen.append("ESCALATE")

    triage.close()
    responder.close()
    if seen != ["PERMIT", "DENY", "ESCALATE"]:
        print(f"unexpected outcomes: {seen}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
