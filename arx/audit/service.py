"""Administrative audit events and reading the trail.

Reads never show a PERMIT decision as if nothing were missing: once any
result of it would have been written (``result_overdue_seconds``) and none
was, it reads ``outcome: "outcome_unknown"`` (``arx.audit.repo.OUTCOME_AS_READ``).
"""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import msgspec
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from arx.audit import repo
from arx.audit.trail import RESULT_WRITE_SECONDS
from arx.audit.types import AuditEvent
from arx.config import Settings
from arx.db.pool import Conn, org_transaction
from arx.identity.orgs import require_org
from arx.logs import client_request_id_var, request_id_var


def result_overdue_seconds(settings: Settings) -> float:
    """How long after its decision a result can still be written: the execute
    deadline (the decision is made inside it), the result write's own
    ``RESULT_WRITE_SECONDS`` past it, and the statement timeout for a write
    the client cut off at that point but the server still commits. A PERMIT
    decision older than this without a result never gets one from the request
    that made it (only, perhaps, from the spool)."""
    return (
        settings.execute_deadline_seconds
        + RESULT_WRITE_SECONDS
        + settings.db_statement_timeout_seconds
    )


async def record_admin_event(
    conn: Conn, org_id: UUID, *, action: str, actor: str, details: dict[str, Any]
) -> UUID:
    event_id = uuid.uuid4()
    await conn.execute(
        repo.INSERT_ADMIN,
        (
            event_id,
            org_id,
            action,
            Jsonb(details),
            actor,
            request_id_var.get(),
            client_request_id_var.get(),
        ),
    )
    return event_id


def _event(row: tuple[Any, ...]) -> AuditEvent:
    return msgspec.convert(dict(zip(repo.COLUMN_NAMES, row, strict=True)), AuditEvent)


async def list_events(
    pool: AsyncConnectionPool[Conn],
    org_id: UUID,
    *,
    overdue_seconds: float,
    after_seq: int = 0,
    limit: int = 100,
) -> list[AuditEvent]:
    """The org's events after ``after_seq``, oldest first; a PERMIT decision
    older than ``overdue_seconds`` (``result_overdue_seconds``) without a
    result reads ``outcome_unknown``."""
    async with org_transaction(pool, org_id) as conn:
        await require_org(conn, org_id)
        cur = await conn.execute(
            repo.LIST_EVENTS,
            {
                "org_id": org_id,
                "after_seq": after_seq,
                "limit": limit,
                "overdue_seconds": overdue_seconds,
            },
        )
        rows = await cur.fetchall()
    return [_event(r) for r in rows]
