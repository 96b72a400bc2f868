"""SQL for the audit trail. There is no UPDATE or DELETE here, by design."""

from __future__ import annotations

# The execute path: one statement, one round trip, per step (migration 0003).
EXECUTE_CONTEXT = "SELECT * FROM arx.keyed_execute_context(%s, %s, %s, %s, %s)"
RECORD_DECISION = "SELECT * FROM arx.record_decision(%s, %s, %s, %s)"
RECORD_RESULT = "SELECT arx.record_result(%s)"

INSERT_ADMIN = (
    "INSERT INTO arx.audit_events (id, org_id, kind, action, details, actor, request_id)"
    " VALUES (%s, %s, 'admin', %s, %s, %s, %s)"
)

_COLUMNS = (
    "id, seq, kind, created_at, agent_id, decision_id, connector, operation, operation_kind,"
    " params, targets, agent_seq, verdict, risk_score, policy_id, reasons, bundle_revisions,"
    " idempotency_key, approval_id, outcome, result, error, action, details, actor, request_id"
)
COLUMN_NAMES = tuple(c.strip() for c in _COLUMNS.split(","))

# Built once from the constant column list above; no input reaches the text.
LIST_EVENTS = (
    "SELECT " + _COLUMNS + " FROM arx.audit_events"
    " WHERE org_id = %s AND seq > %s ORDER BY seq LIMIT %s"
)
