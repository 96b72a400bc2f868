"""SQL for the audit trail. There is no UPDATE or DELETE here, by design."""

from __future__ import annotations

INSERT_DECISION = (
    "INSERT INTO arx.audit_events (id, org_id, kind, agent_id, connector, operation,"
    " operation_kind, params, verdict, risk_score, policy_id, reasons, bundle_revisions,"
    " request_id)"
    " VALUES (%s, %s, 'decision', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)

INSERT_RESULT = (
    "INSERT INTO arx.audit_events (id, org_id, kind, agent_id, decision_id, connector,"
    " operation, outcome, result, error, request_id)"
    " VALUES (%s, %s, 'result', %s, %s, %s, %s, %s, %s, %s, %s)"
)

INSERT_ADMIN = (
    "INSERT INTO arx.audit_events (id, org_id, kind, action, details, actor, request_id)"
    " VALUES (%s, %s, 'admin', %s, %s, %s, %s)"
)

RECENT_DECISIONS = (
    "SELECT connector, operation, operation_kind, verdict, created_at"
    " FROM arx.audit_events"
    " WHERE org_id = %s AND agent_id = %s AND kind = 'decision'"
    " ORDER BY seq DESC LIMIT %s"
)

_COLUMNS = (
    "id, seq, kind, created_at, agent_id, decision_id, connector, operation, operation_kind,"
    " params, verdict, risk_score, policy_id, reasons, bundle_revisions, outcome, result,"
    " error, action, details, actor, request_id"
)
COLUMN_NAMES = tuple(c.strip() for c in _COLUMNS.split(","))

# Built once from the constant column list above; no input reaches the text.
LIST_EVENTS = (
    "SELECT " + _COLUMNS + " FROM arx.audit_events"  # noqa: S608
    " WHERE org_id = %s AND seq > %s ORDER BY seq LIMIT %s"
)
