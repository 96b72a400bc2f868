"""Reviewers resolve escalations: the queue, one request in full, and votes.

Approvals are decided by people: a vote needs a signed-in person (an IdP
access token or, later, the review page's session) holding the reviewer
role; an admin token, however privileged, never votes, and an agent key
never reaches these routes. Each person votes once per request. One
rejection rejects; ``approvals_required`` distinct approvals approve. The
request row is locked while a vote is counted and settled by a conditional
update (pending and unexpired), so two reviewers racing cannot both decide
it. Every vote and every outcome (approved, rejected, expired) is an audit
event naming the reviewer and carrying their comment.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from psycopg.errors import UniqueViolation
from psycopg_pool import AsyncConnectionPool

from arx.approvals import repo
from arx.approvals.types import ApprovalDetail, ApprovalSummary, RecentAction, VoteView
from arx.audit.service import record_admin_event
from arx.db.pool import Conn, fetch_all, fetch_dict, org_transaction
from arx.errors import ConflictError, NotFoundError, RoleRequiredError, SelfApprovalError
from arx.identity.principal import Access, PrincipalKind
from arx.identity.roles import REVIEW

MAX_LISTED = 200
RECENT_SHOWN = 10


async def list_approvals(
    pool: AsyncConnectionPool[Conn], org_id: UUID, *, pending_only: bool
) -> list[ApprovalSummary]:
    async with org_transaction(pool, org_id) as conn:
        query = repo.LIST_PENDING if pending_only else repo.LIST
        return await fetch_all(conn, query, {"limit": MAX_LISTED}, ApprovalSummary)


async def recently_decided(
    pool: AsyncConnectionPool[Conn], org_id: UUID, *, limit: int = 20
) -> list[ApprovalSummary]:
    """The latest requests that are no longer pending, newest decision first."""
    async with org_transaction(pool, org_id) as conn:
        return await fetch_all(conn, repo.LIST_DECIDED, {"limit": limit}, ApprovalSummary)


async def detail(conn: Conn, approval_id: UUID) -> ApprovalDetail:
    """One approval in full, inside the caller's org transaction."""
    row = await fetch_dict(conn, repo.DETAIL, {"approval_id": approval_id})
    if row is None:
        raise NotFoundError("no such approval request in this org")
    votes = await fetch_all(conn, repo.VOTES, {"approval_id": approval_id}, VoteView)
    recent = await fetch_all(
        conn,
        repo.RECENT,
        {"agent_id": row["agent_id"], "before": row["created_at"], "limit": RECENT_SHOWN},
        RecentAction,
    )
    execution = await fetch_dict(conn, repo.EXECUTION, {"approval_id": approval_id})
    if execution is not None:
        execution["response"] = _answer(
            execution.pop("response_media_type"), execution.pop("response_body")
        )
    return msgspec.convert(
        {**row, "votes": votes, "recent_actions": recent, "execution": execution},
        ApprovalDetail,
    )


def _answer(media_type: str | None, body: bytes | None) -> Any:
    """The stored answer as JSON when it is JSON (it always is from ARX)."""
    if body is None:
        return None
    if media_type and "json" in media_type:
        try:
            return msgspec.json.decode(body)
        except msgspec.DecodeError:
            pass
    return body.decode("utf-8", "replace")


async def get_approval(
    pool: AsyncConnectionPool[Conn], org_id: UUID, approval_id: UUID
) -> ApprovalDetail:
    async with org_transaction(pool, org_id) as conn:
        return await detail(conn, approval_id)


async def _record(
    conn: Conn, access: Access, action: str, approval_id: UUID, details: dict[str, Any]
) -> None:
    await record_admin_event(
        conn,
        access.org_id,
        action=action,
        actor=access.actor,
        details={"approval_id": str(approval_id), **details},
    )


async def vote(
    pool: AsyncConnectionPool[Conn],
    access: Access,
    approval_id: UUID,
    *,
    approve: bool,
    comment: str,
) -> ApprovalDetail:
    who = access.principal
    if who.kind is not PrincipalKind.USER or who.person is None:
        raise RoleRequiredError(
            "approvals are decided by people: sign in (an IdP access token), not with an "
            "admin token"
        )
    # The API's guard checks this too; the review page and Slack reach here
    # without it, so the rule lives where the vote is counted.
    if not access.roles.intersection(REVIEW):
        raise RoleRequiredError("deciding an approval needs the reviewer role in this org")
    expired = False
    async with org_transaction(pool, access.org_id) as conn:
        state = await fetch_dict(conn, repo.LOCK, {"approval_id": approval_id})
        if state is None:
            raise NotFoundError("no such approval request in this org")
        if state["status"] == "pending" and state["expired"]:
            if await fetch_dict(conn, repo.EXPIRE, {"approval_id": approval_id}) is not None:
                # As the sweeper records it (arx.expire_approvals): nobody decided it.
                await record_admin_event(
                    conn,
                    access.org_id,
                    action="approval.expired",
                    actor="arx",
                    details={
                        "approval_id": str(approval_id),
                        "agent_id": str(state["agent_id"]),
                        "comment": "",
                    },
                )
            expired = True
        elif state["status"] != "pending":
            raise ConflictError(f"this request is already {state['status']}")
        elif approve and state["agent_owner"] == who.person and not state["owners_may_approve"]:
            raise SelfApprovalError(
                "you own the agent that asked: this org needs someone else to approve "
                "(you may still reject)"
            )
        else:
            choice = "approve" if approve else "reject"
            try:
                async with conn.transaction():
                    await conn.execute(
                        repo.INSERT_VOTE,
                        {
                            "org_id": access.org_id,
                            "approval_id": approval_id,
                            "user_id": who.person,
                            "vote": choice,
                            "comment": comment,
                        },
                    )
            except UniqueViolation:
                raise ConflictError("you have already voted on this request") from None
            await _record(
                conn, access, "approval.voted", approval_id, {"vote": choice, "comment": comment}
            )
            await _settle(conn, access, approval_id, state, approve=approve, comment=comment)
        settled = await detail(conn, approval_id)
    if expired:
        # Committed above: the request is recorded as expired, and nobody decided it.
        raise ConflictError("this request expired before it was decided")
    return settled


async def _settle(
    conn: Conn,
    access: Access,
    approval_id: UUID,
    state: dict[str, Any],
    *,
    approve: bool,
    comment: str,
) -> None:
    if approve:
        cur = await conn.execute(repo.APPROVALS, {"approval_id": approval_id})
        row = await cur.fetchone()
        if not row or row[0] < state["approvals_required"]:
            return  # more approvers needed
    outcome = "approved" if approve else "rejected"
    settled = await fetch_dict(
        conn, repo.SETTLE, {"approval_id": approval_id, "status": outcome, "comment": comment}
    )
    if settled is not None:
        await _record(
            conn,
            access,
            f"approval.{outcome}",
            approval_id,
            {"agent_id": str(state["agent_id"]), "comment": comment},
        )
