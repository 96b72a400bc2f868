"""Writing and reading audit events.

Guarantee: a decision event is committed before its connector runs; the
result is a second row referencing it. A crash between the two leaves a
decision without a result, never a result without a decision.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from arx.audit import repo
from arx.audit.types import AuditEvent, SessionAction
from arx.db.pool import Conn, org_transaction
from arx.identity.orgs import require_org
from arx.logs import request_id_var

SESSION_CONTEXT_SIZE = 100


async def record_admin_event(
    conn: Conn, org_id: UUID, *, action: str, actor: str, details: dict[str, Any]
) -> UUID:
    event_id = uuid.uuid4()
    await conn.execute(
        repo.INSERT_ADMIN,
        (event_id, org_id, action, Jsonb(details), actor, request_id_var.get()),
    )
    return event_id


async def recent_actions(conn: Conn, org_id: UUID, agent_id: UUID) -> list[SessionAction]:
    cur = await conn.execute(repo.RECENT_DECISIONS, (org_id, agent_id, SESSION_CONTEXT_SIZE))
    return [
        SessionAction(
            connector=r[0], operation=r[1], kind=r[2], verdict=r[3], at=r[4], at_ns=epoch_ns(r[4])
        )
        for r in await cur.fetchall()
    ]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def epoch_ns(moment: datetime) -> int:
    """Nanoseconds since the Unix epoch, exact for PostgreSQL's microseconds."""
    return (moment - _EPOCH) // _MICROSECOND * 1000


def _event(row: tuple[Any, ...]) -> AuditEvent:
    return msgspec.convert(dict(zip(repo.COLUMN_NAMES, row, strict=True)), AuditEvent)


async def list_events(
    pool: AsyncConnectionPool[Conn], org_id: UUID, *, after_seq: int = 0, limit: int = 100
) -> list[AuditEvent]:
    async with org_transaction(pool, org_id) as conn:
        await require_org(conn, org_id)
        cur = await conn.execute(repo.LIST_EVENTS, (org_id, after_seq, limit))
        rows = await cur.fetchall()
    return [_event(r) for r in rows]
