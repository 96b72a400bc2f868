"""A scripted agent for the ARX demo: one PERMIT, one DENY, one ESCALATE, then
one governed call on each of the other connectors (Okta, Jira, Splunk, Sentinel).

It holds only ARX API keys (never a CrowdStrike credential) and talks to ARX
through the agentvault SDK, exactly as a real agent would.

    ARX_BASE_URL=http://127.0.0.1:8080 DEMO_TRIAGE_KEY=arx_... \
    DEMO_RESPONDER_KEY=arx_... python examples/demo_agent.py

With DEMO_APPROVAL_WAIT=<seconds>, the escalated containment waits for a
reviewer (it prints the review page's link) and, once approved, runs.
"""

from __future__ import annotations

import os
import sys

from agentvault import (
    AgentVaultError,
    ApprovalPendingError,
    ApprovalTimeoutError,
    ARXClient,
    PermissionDeniedError,
)


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
        wait = float(os.environ.get("DEMO_APPROVAL_WAIT", "0"))
        if wait and exc.approval_id:
            seen.append(_wait_and_resume(responder, base, exc.approval_id, target, wait))

    print("4. triage-bot looks across the other tools (reads inside its intent)")
    for connector, operation, params, say in (
        (
            "okta",
            "users:search",
            {"search": 'status eq "ACTIVE"'},
            lambda r: f"{len(r['items'])} active user(s)",
        ),
        (
            "jira",
            "issues:search",
            {"jql": "project = SEC"},
            lambda r: f"{len(r['issues'])} SEC issue(s)",
        ),
        (
            "splunk",
            "search:query",
            {"search": "search index=main user=ana.ruiz"},
            lambda r: f"search job {r['sid']}",
        ),
        (
            "sentinel",
            "incidents:list",
            {"filter": "properties/status eq 'New'"},
            lambda r: f"{len(r['value'])} new incident(s)",
        ),
    ):
        try:
            done = triage.execute(connector, operation, params)
        except AgentVaultError as exc:
            if exc.code != "credential_not_configured":
                raise
            # compose seeds the Falcon sandbox only.
            print(f"   {connector} {operation} -> skipped: the org has no {connector} credential")
            continue
        print(
            f"   {connector} {operation} -> {done.verdict} ({done.policy_id}): {say(done.result)}"
        )
        seen.append(done.verdict)

    triage.close()
    responder.close()
    # (Step 4's calls either run, PERMIT, or raise.)
    if seen[:3] != ["PERMIT", "DENY", "ESCALATE"] or "failed" in seen:
        print(f"unexpected outcomes: {seen}", file=sys.stderr)
        return 1
    return 0


def _wait_and_resume(
    responder: ARXClient, base: str, approval_id: str, target: str, wait: float
) -> str:
    """Wait for the reviewers; once approved, run the call (exactly once)."""
    print(f"      review it: {base}/review/example/approvals/{approval_id}")
    print(f"      responder-bot waits for a reviewer (up to {wait:.0f} s) ...")
    try:
        decided = responder.wait_for_approval(approval_id, timeout=wait)
    except ApprovalTimeoutError:
        print("   -> nobody decided in time; the request stays pending until it expires")
        return "undecided"
    if decided.status != "approved":
        print(f"   -> {decided.status} by a reviewer: {decided.comment or 'no comment'}")
        return decided.status
    done = responder.resume(approval_id, "crowdstrike", "hosts:contain", {"ids": [target]})
    print(f"   -> approved ({decided.comment or 'no comment'}); it ran: {done.verdict}")
    print(f"      {done.reasons[0]}; audit event {done.event_id}")
    contained = done.result.get("resources", [])
    print(f"      CrowdStrike answered for {len(contained)} host(s)")
    return "executed" if contained else "failed"


if __name__ == "__main__":
    raise SystemExit(main())
