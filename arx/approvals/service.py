"""Approval requests: what binds them to a request, and reading their state.

An approval is bound to the exact request (agent, connector, operation,
params) through ``request_hash``, so approving it can never authorise a
different call. It is created with its ESCALATE decision, in the same
statement (``arx.record_decision``).
"""

from __future__ import annotations

import hashlib
from typing import Any
from uuid import UUID

import msgspec
from psycopg_pool import AsyncConnectionPool

from arx.approvals import repo
from arx.approvals.types import ApprovalView
from arx.db.pool import Conn, org_transaction
from arx.deadline import Deadline
from arx.errors import NotFoundError

_canonical = msgspec.json.Encoder(order="sorted")


def request_hash(agent_id: UUID, connector: str, operation: str, params: dict[str, Any]) -> bytes:
    doc = {
        "agent_id": str(agent_id),
        "connector": connector,
        "operation": operation,
        "params": params,
    }
    return hashlib.sha256(_canonical.encode(doc)).digest()


async def get_for_agent(
    pool: AsyncConnectionPool[Conn],
    org_id: UUID,
    agent_id: UUID,
    approval_id: UUID,
    *,
    deadline: Deadline,
) -> ApprovalView:
    async with org_transaction(pool, org_id, deadline=deadline) as conn:
        cur = await conn.execute(repo.SELECT_FOR_AGENT, (approval_id, agent_id))
        row = await cur.fetchone()
    if row is None:
        raise NotFoundError(f"no approval request {approval_id}")
    return ApprovalView(
        approval_id=row[0],
        event_id=row[1],
        status=row[2],
        connector=row[3],
        operation=row[4],
        created_at=row[5],
        expires_at=row[6],
        resolved_at=row[7],
        comment=row[8],
    )
