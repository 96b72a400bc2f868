"""Running an approved request, exactly once.

``claim`` moves the approval from approved to executing in one conditional
update, only for the agent that asked and only for the very call approved
(its hash): two resumes cannot both run it, and a changed call is refused.
The runner then ``complete``s it with the answer it gave (kept, so a second
resume gets the same answer), or ``release``s it when nothing ran (a 503,
the tool unreachable or rate limiting) so that it can be resumed again. A
claim left executing by a process that died stays so: its outcome is
unknown, and it is never run a second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from psycopg_pool import AsyncConnectionPool

from arx.db.pool import Conn, fetch_dict, org_transaction
from arx.deadline import Deadline
from arx.errors import (
    ApprovalExpiredError,
    ApprovalInProgressError,
    ApprovalMismatchError,
    ApprovalPendingError,
    ApprovalRejectedError,
    NotFoundError,
)
from arx.identity.types import AgentIdentity

_CLAIM = (
    "UPDATE arx.approval_requests SET status = 'executing', claimed_at = now()"
    " WHERE id = %(id)s AND agent_id = %(agent_id)s AND status = 'approved'"
    " AND request_hash = %(hash)s RETURNING id"
)
_STATE = (
    "SELECT status, request_hash, resolution_comment, expires_at <= now() AS expired,"
    " response_status, response_media_type, response_body"
    " FROM arx.approval_requests WHERE id = %(id)s AND agent_id = %(agent_id)s"
)
_COMPLETE = (
    "UPDATE arx.approval_requests SET status = 'executed', executed_event_id = %(event_id)s,"
    " response_status = %(status)s, response_media_type = %(media_type)s,"
    " response_body = %(body)s WHERE id = %(id)s AND status = 'executing'"
)
_RELEASE = (
    "UPDATE arx.approval_requests SET status = 'approved', claimed_at = NULL"
    " WHERE id = %(id)s AND status = 'executing'"
)


@dataclass(frozen=True, slots=True)
class Stored:
    """The answer the first resume gave."""

    status_code: int
    media_type: str
    body: bytes


async def claim(
    pool: AsyncConnectionPool[Conn],
    who: AgentIdentity,
    approval_id: UUID,
    request_hash: bytes,
    deadline: Deadline,
) -> Stored | None:
    """``None``: claimed, run it now. ``Stored``: it ran before; answer the same."""
    keys = {"id": approval_id, "agent_id": who.agent_id, "hash": request_hash}
    async with org_transaction(pool, who.org_id, deadline=deadline) as conn:
        if await fetch_dict(conn, _CLAIM, keys) is not None:
            return None
        state = await fetch_dict(conn, _STATE, keys)
    if state is None:
        raise NotFoundError(f"no approval request {approval_id}")
    if bytes(state["request_hash"]) != request_hash:
        raise ApprovalMismatchError(
            "the connector, operation and params must be exactly those approved"
        )
    status = state["status"]
    comment = {"comment": state["resolution_comment"]}
    if status == "executed":
        return Stored(
            status_code=state["response_status"],
            media_type=state["response_media_type"],
            body=bytes(state["response_body"]),
        )
    if status == "executing":
        raise ApprovalInProgressError(
            "another call is running this approved request (or one died while running it: "
            "its outcome is unknown, and it is not run again)"
        )
    if status == "rejected":
        raise ApprovalRejectedError("reviewers rejected this request", extra=comment)
    if status == "expired" or (status == "pending" and state["expired"]):
        raise ApprovalExpiredError("nobody decided this request before it expired")
    raise ApprovalPendingError(
        "reviewers have not decided yet; wait (GET /v1/sdk/approvals/{id}?wait=) and resume",
        headers={"retry-after": "5"},
    )


async def _update(
    pool: AsyncConnectionPool[Conn], who: AgentIdentity, query: str, params: dict[str, object]
) -> None:
    # Its own short deadline: the call's may be spent, and this record matters.
    async with org_transaction(pool, who.org_id, deadline=Deadline(5.0)) as conn:
        await conn.execute(query, params)


async def complete(
    pool: AsyncConnectionPool[Conn],
    who: AgentIdentity,
    approval_id: UUID,
    *,
    event_id: UUID | None,
    answer: Stored,
) -> None:
    await _update(
        pool,
        who,
        _COMPLETE,
        {
            "id": approval_id,
            "event_id": event_id,
            "status": answer.status_code,
            "media_type": answer.media_type,
            "body": answer.body,
        },
    )


async def release(pool: AsyncConnectionPool[Conn], who: AgentIdentity, approval_id: UUID) -> None:
    await _update(pool, who, _RELEASE, {"id": approval_id})
