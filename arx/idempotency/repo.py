"""SQL for idempotency keys."""

from __future__ import annotations

# Claims the key, or re-claims it when the previous claim has expired or was
# abandoned unfinished.
# Returns a row only when this caller now owns the key.
CLAIM = (
    "INSERT INTO arx.idempotency_keys (org_id, agent_id, key, request_hash)"
    " VALUES (%s, %s, %s, %s)"
    " ON CONFLICT (org_id, agent_id, key) DO UPDATE"
    " SET request_hash = EXCLUDED.request_hash, status_code = NULL, media_type = NULL,"
    " response = NULL, created_at = now(), completed_at = NULL"
    " WHERE arx.idempotency_keys.created_at < now() - make_interval(secs => %s)"
    "    OR (arx.idempotency_keys.status_code IS NULL"
    "        AND arx.idempotency_keys.created_at < now() - make_interval(secs => %s))"
    " RETURNING 1"
)

EXISTING = (
    "SELECT request_hash, status_code, media_type, response FROM arx.idempotency_keys"
    " WHERE org_id = %s AND agent_id = %s AND key = %s"
)

COMPLETE = (
    "UPDATE arx.idempotency_keys"
    " SET status_code = %s, media_type = %s, response = %s, completed_at = now()"
    " WHERE org_id = %s AND agent_id = %s AND key = %s"
)

RELEASE = "DELETE FROM arx.idempotency_keys WHERE org_id = %s AND agent_id = %s AND key = %s"
