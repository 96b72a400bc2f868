"""SQL for approval requests."""

from __future__ import annotations

INSERT = (
    "INSERT INTO arx.approval_requests"
    " (id, org_id, event_id, agent_id, connector, operation, params, request_hash, expires_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now() + make_interval(secs => %s))"
    " RETURNING created_at, expires_at"
)

# An agent may only read its own approvals; an expired pending one reads as expired.
SELECT_FOR_AGENT = (
    "SELECT id, event_id,"
    " CASE WHEN status = 'pending' AND expires_at <= now() THEN 'expired' ELSE status END,"
    " connector, operation, created_at, expires_at"
    " FROM arx.approval_requests WHERE id = %s AND agent_id = %s"
)
