"""Administrative audit events and reading the trail."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import msgspec
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from arx.audit import repo
from arx.audit.types import AuditEvent
from arx.db.pool import Conn, org_transaction
from arx.identity.orgs import require_org
from arx.logs import request_id_var


async def record_admin_event(
    conn: Conn, org_id: UUID, *, action: str, actor: str, details: dict[str, Any]
) -> UUID:
    event_id = uuid.uuid4()
    await conn.execute(
        repo.INSERT_ADMIN,
        (event_id, org_id, action, Jsonb(details), actor, request_id_var.get()),
    )
    return event_id


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
