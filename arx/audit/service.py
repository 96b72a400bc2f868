"""Administrative audit events, and how long a result may still come."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from arx.audit import repo
from arx.audit.trail import RESULT_WRITE_SECONDS
from arx.config import Settings
from arx.db.pool import Conn
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
