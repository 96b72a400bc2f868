"""SQL for approval requests (they are inserted by arx.record_decision)."""

from __future__ import annotations

# An agent may only read its own approvals; an expired pending one reads as expired.
SELECT_FOR_AGENT = (
    "SELECT id, event_id,"
    " CASE WHEN status = 'pending' AND expires_at <= now() THEN 'expired' ELSE status END,"
    " connector, operation, created_at, expires_at"
    " FROM arx.approval_requests WHERE id = %s AND agent_id = %s"
)
