"""People resolve escalations: votes, the two-person rule, races, expiry.

The agent escalates through the real policy (the example bundle escalates
host containment); reviewers are members of the org with the reviewer role.
The vote rules are exercised through the service with people's identities;
the routes' own refusals (admin tokens, other roles, agents) through HTTP.
A waiting agent is woken by the decision itself (NOTIFY), not a timer.
An approved call runs once, when the agent resumes it.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from arx.approvals import expiry, review
from arx.errors import ConflictError, RoleRequiredError, SelfApprovalError
from arx.identity.principal import Access, Principal, PrincipalKind
from arx.runtime import Runtime
from arx.sandbox.falcon import FalconState
from tests.fixtures.arx import Example
from tests.fixtures.database import Database

pytestmark = pytest.mark.anyio

EXECUTE = "/v1/sdk/execute"
CONTAIN = {
    "connector": "crowdstrike",
    "operation": "hosts:contain",
    "params": {"ids": ["4c1d7e2a9b3f4e5d8a6c0b1e2f3a4d5c"]},
}


async def _escalate(client: httpx.AsyncClient, example: Example) -> UUID:
    pending = await client.post(EXECUTE, json=CONTAIN, headers=example.auth("responder-bot"))
    assert pending.status_code == 202, pending.text
    return UUID(pending.json()["approval_id"])


async def _two_person_escalation(client: httpx.AsyncClient, example: Example) -> UUID:
    """A third containment within five minutes: the example bundle's EX-012
    asks two reviewers, and gives them 30 minutes instead of the default hour."""
    for _ in range(2):
        await _escalate(client, example)
    before = time.time()
    pending = await client.post(EXECUTE, json=CONTAIN, headers=example.auth("responder-bot"))
    assert pending.status_code == 202, pending.text
    body = pending.json()
    assert (body["policy_id"], body["approvals_required"]) == ("EX-012", 2)
    expires = datetime.fromisoformat(body["expires_at"]).timestamp()
    assert before + 1790 < expires < time.time() + 1810
    return UUID(body["approval_id"])


async def _reviewer(client: httpx.AsyncClient, example: Example, email: str) -> Access:
    added = await client.post(
        f"/v1/admin/orgs/{example.seeded.org_id}/members",
        json={"email": email, "roles": ["reviewer"]},
        headers=example.owner,
    )
    assert added.status_code == 201, added.text
    user = UUID(added.json()["user_id"])
    person = Principal(kind=PrincipalKind.USER, id=str(user), name=email, person=user)
    return Access(principal=person, org_id=example.seeded.org_id, roles=frozenset({"reviewer"}))


async def _poll(client: httpx.AsyncClient, example: Example, approval: UUID) -> dict[str, Any]:
    resp = await client.get(f"/v1/sdk/approvals/{approval}", headers=example.auth("responder-bot"))
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _events(test_db: Database, approval: UUID) -> list[tuple[Any, ...]]:
    with psycopg.connect(test_db.admin_url) as conn:
        return conn.execute(
            "SELECT action, actor, details FROM arx.audit_events"
            " WHERE kind = 'admin' AND details ->> 'approval_id' = %s ORDER BY seq",
            (str(approval),),
        ).fetchall()


async def test_a_reviewer_approves_and_the_agent_sees_it(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, test_db: Database
) -> None:
    approval = await _escalate(client, example)
    assert (await _poll(client, example, approval))["status"] == "pending"
    rita = await _reviewer(client, example, "rita@example.test")
    org = f"/v1/admin/orgs/{example.seeded.org_id}/approvals"

    queue = await client.get(org, headers=example.owner)
    assert queue.status_code == 200, queue.text
    assert [a["approval_id"] for a in queue.json()] == [str(approval)]
    detail = (await client.get(f"{org}/{approval}", headers=example.owner)).json()
    # The whole context a reviewer decides on.
    assert detail["agent_name"] == "responder-bot"
    assert detail["agent_intent"]["scope"] == {"crowdstrike": ["hosts:*"]}
    assert detail["params"] == CONTAIN["params"]
    assert detail["risk_score"] > 0
    assert detail["reasons"]
    assert detail["policy_id"]
    assert detail["votes"] == []

    decided = await review.vote(
        runtime.control_pool, rita, approval, approve=True, comment="host is patient zero"
    )
    assert decided.status == "approved"
    assert [(v.email, v.vote, v.comment) for v in decided.votes] == [
        ("rita@example.test", "approve", "host is patient zero")
    ]
    seen = await _poll(client, example, approval)
    assert seen["status"] == "approved"
    assert seen["comment"] == "host is patient zero"
    assert seen["resolved_at"] is not None
    assert (await client.get(org, headers=example.owner)).json() == []
    events = _events(test_db, approval)
    assert [e[0] for e in events] == ["approval.voted", "approval.approved"]
    assert {e[1] for e in events} == {rita.actor}
    assert all(e[2]["comment"] == "host is patient zero" for e in events)


async def test_one_rejection_rejects(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, test_db: Database
) -> None:
    approval = await _two_person_escalation(client, example)
    rita = await _reviewer(client, example, "rita@example.test")
    rob = await _reviewer(client, example, "rob@example.test")
    await review.vote(runtime.control_pool, rita, approval, approve=True, comment="")
    rejected = await review.vote(
        runtime.control_pool, rob, approval, approve=False, comment="wrong host"
    )
    assert rejected.status == "rejected"
    assert rejected.resolution_comment == "wrong host"
    seen = await _poll(client, example, approval)
    assert (seen["status"], seen["comment"]) == ("rejected", "wrong host")
    with pytest.raises(ConflictError, match="already rejected"):
        await review.vote(runtime.control_pool, rita, approval, approve=True, comment="")


async def test_two_person_rule_needs_two_distinct_people(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, test_db: Database
) -> None:
    approval = await _two_person_escalation(client, example)
    rita = await _reviewer(client, example, "rita@example.test")
    rob = await _reviewer(client, example, "rob@example.test")
    first = await review.vote(runtime.control_pool, rita, approval, approve=True, comment="ok")
    assert first.status == "pending"
    with pytest.raises(ConflictError, match="already voted"):
        await review.vote(runtime.control_pool, rita, approval, approve=True, comment="again")
    assert (await _poll(client, example, approval))["status"] == "pending"
    second = await review.vote(runtime.control_pool, rob, approval, approve=True, comment="ok")
    assert second.status == "approved"
    assert sorted(v.email for v in second.votes) == ["rita@example.test", "rob@example.test"]


async def test_racing_reviewers_cannot_both_decide(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, test_db: Database
) -> None:
    approval = await _escalate(client, example)
    rita = await _reviewer(client, example, "rita@example.test")
    rob = await _reviewer(client, example, "rob@example.test")
    answers = await asyncio.gather(
        review.vote(runtime.control_pool, rita, approval, approve=True, comment="go"),
        review.vote(runtime.control_pool, rob, approval, approve=False, comment="stop"),
        return_exceptions=True,
    )
    won = [a for a in answers if not isinstance(a, BaseException)]
    lost = [a for a in answers if isinstance(a, BaseException)]
    assert len(won) == 1, answers
    assert len(lost) == 1, answers
    assert isinstance(lost[0], ConflictError)
    outcome = won[0].status
    assert outcome in {"approved", "rejected"}
    assert (await _poll(client, example, approval))["status"] == outcome
    outcomes = [e[0] for e in _events(test_db, approval) if e[0] != "approval.voted"]
    assert outcomes == [f"approval.{outcome}"]


async def test_an_expired_request_cannot_be_decided(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, test_db: Database
) -> None:
    approval = await _escalate(client, example)
    rita = await _reviewer(client, example, "rita@example.test")
    with psycopg.connect(test_db.admin_url) as conn:
        conn.execute(
            "UPDATE arx.approval_requests SET expires_at = now() - interval '1 second'"
            " WHERE id = %s",
            (approval,),
        )
    with pytest.raises(ConflictError, match="expired"):
        await review.vote(runtime.control_pool, rita, approval, approve=True, comment="late")
    assert (await _poll(client, example, approval))["status"] == "expired"
    with psycopg.connect(test_db.admin_url) as conn:
        stored = conn.execute(
            "SELECT status FROM arx.approval_requests WHERE id = %s", (approval,)
        ).fetchone()
        votes = conn.execute("SELECT count(*) FROM arx.approval_votes").fetchone()
    assert stored == ("expired",)
    assert votes == (0,)
    assert [e[0] for e in _events(test_db, approval)] == ["approval.expired"]


async def test_only_people_with_the_reviewer_role_vote(
    client: httpx.AsyncClient, example: Example
) -> None:
    approval = await _escalate(client, example)
    org = f"/v1/admin/orgs/{example.seeded.org_id}"
    url = f"{org}/approvals/{approval}/approve"
    # The owner's token holds no reviewer role.
    owner = await client.post(url, json={"comment": "x"}, headers=example.owner)
    assert owner.status_code == 403, owner.text
    assert owner.json()["code"] == "role_required"
    # A token with the reviewer role is still no person.
    token = await client.post(
        f"{org}/admin-tokens", json={"name": "bot", "roles": ["reviewer"]}, headers=example.owner
    )
    as_token = {"authorization": f"Bearer {token.json()['token']}"}
    refused = await client.post(url, json={"comment": "x"}, headers=as_token)
    assert refused.status_code == 403, refused.text
    assert "people" in refused.json()["detail"]
    # An agent key is not an admin credential at all.
    agent = await client.post(url, json={"comment": "x"}, headers=example.auth("responder-bot"))
    assert agent.status_code == 401, agent.text
    # A malformed comment is a 422 naming it, before anything is decided.
    bad = await client.post(url, json={"comment": 5}, headers=as_token)
    assert bad.status_code == 422, bad.text
    assert bad.json()["field"] == "comment"
    detail = (await client.get(f"{org}/approvals/{approval}", headers=as_token)).json()
    assert detail["status"] == "pending"
    assert detail["votes"] == []


async def test_a_waiting_agent_wakes_when_a_reviewer_decides(
    client: httpx.AsyncClient, example: Example, runtime: Runtime
) -> None:
    approval = await _escalate(client, example)
    rita = await _reviewer(client, example, "rita@example.test")
    url = f"/v1/sdk/approvals/{approval}"
    headers = example.auth("responder-bot")

    # Nobody decides: the poll is held as long as asked, then answers pending.
    started = time.monotonic()
    idle = await client.get(url, params={"wait": 1}, headers=headers)
    assert idle.json()["status"] == "pending"
    assert 0.9 <= time.monotonic() - started < 3

    async def decide_soon() -> None:
        await asyncio.sleep(0.3)
        await review.vote(runtime.control_pool, rita, approval, approve=True, comment="go")

    started = time.monotonic()
    held, _ = await asyncio.gather(
        client.get(url, params={"wait": 30}, headers=headers), decide_soon()
    )
    waited = time.monotonic() - started
    assert held.status_code == 200, held.text
    assert held.json()["status"] == "approved"
    assert waited < 3, f"woken after {waited:.2f}s, not at the decision"
    for bad in ("61", "-1", "soon"):
        refused = await client.get(url, params={"wait": bad}, headers=headers)
        assert refused.status_code == 400, refused.text


# --- resuming: the approved call runs once --------------------------------------------


async def _approved(client: httpx.AsyncClient, example: Example, runtime: Runtime) -> UUID:
    approval = await _escalate(client, example)
    rita = await _reviewer(client, example, "rita@example.test")
    await review.vote(runtime.control_pool, rita, approval, approve=True, comment="contain it")
    return approval


def _contained(falcon: FalconState) -> int:
    return len(falcon.calls("/devices/entities/devices-actions/v2", method="POST"))


async def test_an_approved_call_runs_once_and_a_second_resume_replays_it(
    client: httpx.AsyncClient,
    example: Example,
    runtime: Runtime,
    falcon: FalconState,
    test_db: Database,
) -> None:
    approval = await _approved(client, example, runtime)
    url = f"/v1/sdk/approvals/{approval}/execute"
    headers = example.auth("responder-bot")
    assert _contained(falcon) == 0

    first = await client.post(url, json=CONTAIN, headers=headers)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["verdict"] == "PERMIT"
    assert body["reasons"][0] == f"approved by reviewers (approval {approval})"
    assert _contained(falcon) == 1

    again = await client.post(url, json=CONTAIN, headers=headers)
    assert again.status_code == 200, again.text
    assert again.json() == body, "the second resume answers what the first did"
    assert _contained(falcon) == 1, "and nothing runs twice"

    # The fresh decision names the approval; the approval names its decision.
    with psycopg.connect(test_db.admin_url) as conn:
        decision = conn.execute(
            "SELECT verdict, approval_id FROM arx.audit_events WHERE id = %s",
            (UUID(body["event_id"]),),
        ).fetchone()
        stored = conn.execute(
            "SELECT status, executed_event_id FROM arx.approval_requests WHERE id = %s",
            (approval,),
        ).fetchone()
    assert decision == ("PERMIT", approval)
    assert stored == ("executed", UUID(body["event_id"]))
    assert (await _poll(client, example, approval))["status"] == "executed"


async def test_two_resumes_at_once_run_the_call_once(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, falcon: FalconState
) -> None:
    approval = await _approved(client, example, runtime)
    url = f"/v1/sdk/approvals/{approval}/execute"
    headers = example.auth("responder-bot")
    answers = await asyncio.gather(
        *(client.post(url, json=CONTAIN, headers=headers) for _ in range(3))
    )
    assert _contained(falcon) == 1
    codes = sorted(a.status_code for a in answers)
    assert codes.count(200) >= 1, [a.text for a in answers]
    for answer in answers:
        if answer.status_code != 200:
            assert answer.status_code == 409, answer.text
            assert answer.json()["code"] == "approval_in_progress"


async def test_a_resume_must_be_the_call_approved(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, falcon: FalconState
) -> None:
    approval = await _approved(client, example, runtime)
    url = f"/v1/sdk/approvals/{approval}/execute"
    other_host = {**CONTAIN, "params": {"ids": ["9e8f7a6b5c4d4e3f9a1b2c3d4e5f6a7b"]}}
    changed = await client.post(url, json=other_host, headers=example.auth("responder-bot"))
    assert changed.status_code == 409, changed.text
    assert changed.json()["code"] == "approval_mismatch"
    # Another agent of the org cannot run it either: it is not theirs.
    stranger = await client.post(url, json=CONTAIN, headers=example.auth("triage-bot"))
    assert stranger.status_code == 404, stranger.text
    assert _contained(falcon) == 0
    # The right call by the right agent still runs.
    ok = await client.post(url, json=CONTAIN, headers=example.auth("responder-bot"))
    assert ok.status_code == 200, ok.text


async def test_undecided_rejected_and_expired_requests_do_not_run(
    client: httpx.AsyncClient,
    example: Example,
    runtime: Runtime,
    falcon: FalconState,
    test_db: Database,
) -> None:
    headers = example.auth("responder-bot")
    pending = await _escalate(client, example)
    waiting = await client.post(
        f"/v1/sdk/approvals/{pending}/execute", json=CONTAIN, headers=headers
    )
    assert waiting.status_code == 409, waiting.text
    assert waiting.json()["code"] == "approval_pending"

    rob = await _reviewer(client, example, "rob@example.test")
    await review.vote(runtime.control_pool, rob, pending, approve=False, comment="wrong host")
    rejected = await client.post(
        f"/v1/sdk/approvals/{pending}/execute", json=CONTAIN, headers=headers
    )
    assert rejected.status_code == 403, rejected.text
    assert rejected.json()["code"] == "approval_rejected"
    assert rejected.json()["comment"] == "wrong host"

    stale = await _escalate(client, example)
    with psycopg.connect(test_db.admin_url) as conn:
        conn.execute(
            "UPDATE arx.approval_requests SET expires_at = now() - interval '1 second'"
            " WHERE id = %s",
            (stale,),
        )
    expired = await client.post(f"/v1/sdk/approvals/{stale}/execute", json=CONTAIN, headers=headers)
    assert expired.status_code == 403, expired.text
    assert expired.json()["code"] == "approval_expired"
    assert _contained(falcon) == 0


async def test_the_org_sets_the_default_expiry_and_a_rule_overrides_it(
    client: httpx.AsyncClient, example: Example
) -> None:
    settings = f"/v1/admin/orgs/{example.seeded.org_id}/approval-settings"
    resp = await client.put(settings, json={"approval_ttl_seconds": 600}, headers=example.owner)
    assert resp.status_code == 200, resp.text
    assert resp.json()["approval_ttl_seconds"] == 600
    before = time.time()
    pending = await client.post(EXECUTE, json=CONTAIN, headers=example.auth("responder-bot"))
    assert pending.json()["policy_id"] == "EX-010"  # a rule without its own expiry
    expires = datetime.fromisoformat(pending.json()["expires_at"]).timestamp()
    assert before + 590 < expires < time.time() + 610
    # EX-012 sets 30 minutes itself: the org's default does not shorten it.
    await _escalate(client, example)
    third = await client.post(EXECUTE, json=CONTAIN, headers=example.auth("responder-bot"))
    expires = datetime.fromisoformat(third.json()["expires_at"]).timestamp()
    assert expires > time.time() + 1700
    # Back to the deployment's default (an hour in tests).
    resp = await client.put(settings, json={"approval_ttl_seconds": None}, headers=example.owner)
    assert resp.json()["approval_ttl_seconds"] is None
    assert resp.json()["owners_may_approve"] is False  # absent: unchanged


async def test_an_agents_owner_cannot_approve_its_requests_unless_the_org_allows_it(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, test_db: Database
) -> None:
    rita = await _reviewer(client, example, "rita@example.test")
    agent = example.seeded.agent_ids["responder-bot"]
    owner_url = f"/v1/admin/orgs/{example.seeded.org_id}/agents/{agent}/owner"
    resp = await client.put(
        owner_url, json={"owner_user_id": rita.principal.id}, headers=example.owner
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["owner_user_id"] == rita.principal.id
    approval = await _escalate(client, example)
    # Handing the agent to someone else now does not change whose agent asked.
    await client.put(owner_url, json={"owner_user_id": None}, headers=example.owner)
    with pytest.raises(SelfApprovalError, match="you own the agent"):
        await review.vote(runtime.control_pool, rita, approval, approve=True, comment="mine")
    assert (await _poll(client, example, approval))["status"] == "pending"
    assert _events(test_db, approval) == []  # a refused vote leaves no vote behind

    allowed = await client.put(
        f"/v1/admin/orgs/{example.seeded.org_id}/approval-settings",
        json={"owners_may_approve": True},
        headers=example.owner,
    )
    assert allowed.json()["owners_may_approve"] is True
    decided = await review.vote(runtime.control_pool, rita, approval, approve=True, comment="ok")
    assert decided.status == "approved"


async def test_an_owner_may_still_reject_and_only_members_can_own(
    client: httpx.AsyncClient, example: Example, runtime: Runtime
) -> None:
    rita = await _reviewer(client, example, "rita@example.test")
    agent = example.seeded.agent_ids["responder-bot"]
    owner_url = f"/v1/admin/orgs/{example.seeded.org_id}/agents/{agent}/owner"
    stranger = await client.put(
        owner_url, json={"owner_user_id": str(UUID(int=7))}, headers=example.owner
    )
    assert stranger.status_code == 422, stranger.text
    assert stranger.json()["code"] == "invalid_field"
    await client.put(owner_url, json={"owner_user_id": rita.principal.id}, headers=example.owner)
    approval = await _escalate(client, example)
    rejected = await review.vote(runtime.control_pool, rita, approval, approve=False, comment="no")
    assert rejected.status == "rejected"


async def test_a_vote_needs_the_reviewer_role_whatever_calls_it(
    client: httpx.AsyncClient, example: Example, runtime: Runtime
) -> None:
    approval = await _escalate(client, example)
    rita = await _reviewer(client, example, "rita@example.test")
    auditor = Access(principal=rita.principal, org_id=rita.org_id, roles=frozenset({"auditor"}))
    with pytest.raises(RoleRequiredError, match="reviewer role"):
        await review.vote(runtime.control_pool, auditor, approval, approve=True, comment="")
    assert (await _poll(client, example, approval))["status"] == "pending"


# --- execute held for reviewers (Prefer: wait=N) ------------------------------------


async def _decide_when_asked(runtime: Runtime, reviewer: Access, *, approve: bool) -> UUID:
    """The reviewer, watching the queue: decides the first request that shows up."""
    for _ in range(200):
        queue = await review.list_approvals(
            runtime.control_pool, reviewer.org_id, pending_only=True
        )
        if queue:
            await asyncio.sleep(0.2)  # the agent is being held meanwhile
            await review.vote(
                runtime.control_pool,
                reviewer,
                queue[0].approval_id,
                approve=approve,
                comment="contain it" if approve else "not that host",
            )
            return queue[0].approval_id
        await asyncio.sleep(0.02)
    raise AssertionError("no request reached the queue")


async def test_a_held_execute_runs_once_approved_and_answers_200(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, falcon: FalconState
) -> None:
    rita = await _reviewer(client, example, "rita@example.test")
    headers = {**example.auth("responder-bot"), "prefer": "wait=20"}
    started = time.monotonic()
    held, approval = await asyncio.gather(
        client.post(EXECUTE, json=CONTAIN, headers=headers),
        _decide_when_asked(runtime, rita, approve=True),
    )
    assert held.status_code == 200, held.text
    assert time.monotonic() - started < 5  # woken by the decision, not the hold's end
    body = held.json()
    assert body["verdict"] == "PERMIT"
    assert body["reasons"][0] == f"approved by reviewers (approval {approval})"
    assert _contained(falcon) == 1
    assert (await _poll(client, example, approval))["status"] == "executed"
    # Resuming it as well replays that answer; nothing runs again.
    again = await client.post(
        f"/v1/sdk/approvals/{approval}/execute", json=CONTAIN, headers=example.auth("responder-bot")
    )
    assert again.json()["event_id"] == body["event_id"]
    assert _contained(falcon) == 1


async def test_a_held_execute_rejected_meanwhile_answers_403_with_the_comment(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, falcon: FalconState
) -> None:
    rita = await _reviewer(client, example, "rita@example.test")
    headers = {**example.auth("responder-bot"), "prefer": "wait=20"}
    held, _ = await asyncio.gather(
        client.post(EXECUTE, json=CONTAIN, headers=headers),
        _decide_when_asked(runtime, rita, approve=False),
    )
    assert held.status_code == 403, held.text
    assert held.json()["code"] == "approval_rejected"
    assert held.json()["comment"] == "not that host"
    assert _contained(falcon) == 0


async def test_an_undecided_held_execute_answers_202_when_the_hold_ends(
    client: httpx.AsyncClient, example: Example, falcon: FalconState
) -> None:
    started = time.monotonic()
    held = await client.post(
        EXECUTE, json=CONTAIN, headers={**example.auth("responder-bot"), "prefer": "wait=1"}
    )
    assert 0.9 <= time.monotonic() - started < 4
    assert held.status_code == 202, held.text
    assert held.headers["preference-applied"] == "wait=1"
    assert held.json()["status"] == "pending"
    quick = await client.post(
        EXECUTE, json=CONTAIN, headers={**example.auth("responder-bot"), "prefer": "respond-async"}
    )
    assert quick.status_code == 202
    assert "preference-applied" not in quick.headers
    assert _contained(falcon) == 0


# --- expiry ---------------------------------------------------------------------------


async def test_an_undecided_request_expires_on_time_and_the_trail_says_so(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, test_db: Database
) -> None:
    approval = await _escalate(client, example)
    other = await _escalate(client, example)
    url = f"/v1/sdk/approvals/{approval}"
    headers = example.auth("responder-bot")
    async with runtime.waiters.registered(str(approval)) as woken:
        with psycopg.connect(test_db.admin_url) as conn:
            conn.execute(
                "UPDATE arx.approval_requests SET expires_at = now() - interval '1 second'"
                " WHERE id = %s",
                (approval,),
            )
        # (This process's own sweep, every few seconds, may get there first.)
        await expiry.expire_due(runtime.control_pool)
        # The waiting agent hears it (NOTIFY at commit), not at its next poll.
        await asyncio.wait_for(woken.wait(), timeout=5)
    assert (await client.get(url, headers=headers)).json()["status"] == "expired"
    assert (await _poll(client, example, other))["status"] == "pending"
    events = _events(test_db, approval)
    assert [(e[0], e[1]) for e in events] == [("approval.expired", "arx")]
    assert await expiry.expire_due(runtime.control_pool) == 0  # once
    with psycopg.connect(test_db.admin_url) as conn:
        status = conn.execute(
            "SELECT status FROM arx.approval_requests WHERE id = %s", (approval,)
        ).fetchone()
    assert status == ("expired",)


async def test_a_held_keyed_execute_that_could_not_run_leaves_the_request_to_resume(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, falcon: FalconState
) -> None:
    rita = await _reviewer(client, example, "rita@example.test")
    falcon.rate_limit = 0  # the tool refuses every call: nothing runs
    headers = {**example.auth("responder-bot"), "prefer": "wait=20", "idempotency-key": "k-1"}
    held, approval = await asyncio.gather(
        client.post(EXECUTE, json=CONTAIN, headers=headers),
        _decide_when_asked(runtime, rita, approve=True),
    )
    assert held.status_code == 429, held.text
    assert held.json()["approval_id"] == str(approval)
    # A retry with the key learns of the request (the 202), not of the passing 429 ...
    again = await client.post(EXECUTE, json=CONTAIN, headers=headers)
    assert again.status_code == 202, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["approval_id"] == str(approval)
    # ... which is still approved, and runs when the tool takes calls again.
    assert (await _poll(client, example, approval))["status"] == "approved"
    falcon.rate_limit = None
    ran = await client.post(
        f"/v1/sdk/approvals/{approval}/execute", json=CONTAIN, headers=example.auth("responder-bot")
    )
    assert ran.status_code == 200, ran.text
    done = falcon.calls("/devices/entities/devices-actions/v2", method="POST")
    assert [c.status for c in done if c.status < 300] == [202]  # contained once
