"""SQL for the audit trail. There is no UPDATE or DELETE here, by design."""

from __future__ import annotations

# The execute path: one statement, one round trip, per step (migration 0003).
EXECUTE_CONTEXT = "SELECT * FROM arx.keyed_execute_context(%s, %s, %s, %s, %s)"
RECORD_DECISION = "SELECT * FROM arx.record_decision(%s, %s, %s, %s, %s)"
RECORD_RESULT = "SELECT arx.record_result(%s)"

INSERT_ADMIN = (
    "INSERT INTO arx.audit_events"
    " (id, org_id, kind, action, details, actor, request_id, client_request_id)"
    " VALUES (%s, %s, 'admin', %s, %s, %s, %s, %s)"
)

# Every column a reader sees, as stored, but outcome (OUTCOME_AS_READ).
_COLUMNS = (
    "id, seq, kind, created_at, agent_id, decision_id, connector, operation, operation_kind,"
    " params, targets, agent_seq, verdict, risk_score, policy_id, reasons, bundle_revisions,"
    " idempotency_key, approval_id, result, error, action, details, actor, request_id,"
    " client_request_id"
)

# An event's outcome as a reader sees it (the table ``e``; parameter
# ``overdue_seconds``, arx.audit.service.result_overdue_seconds): a PERMIT
# decision with no result, older than any result of it could be, reads
# ``outcome_unknown``; every other row reads as stored. Computed at read time:
# the trail is append-only and the decision row is never changed. One probe
# of audit_events_result_of (migration 0015) per such decision listed.
OUTCOME_AS_READ = (
    "CASE WHEN e.kind = 'decision' AND e.verdict = 'PERMIT'"
    " AND e.created_at < now() - make_interval(secs => %(overdue_seconds)s)"
    " AND NOT EXISTS (SELECT FROM arx.audit_events r"
    " WHERE r.org_id = e.org_id AND r.kind = 'result' AND r.decision_id = e.id)"
    " THEN 'outcome_unknown' ELSE e.outcome END"
)
COLUMN_NAMES = (*(c.strip() for c in _COLUMNS.split(",")), "outcome")

# Built once from the constants above; no input reaches the text.
LIST_EVENTS = (
    "SELECT " + _COLUMNS + ", " + OUTCOME_AS_READ + " AS outcome FROM arx.audit_events e"
    " WHERE e.org_id = %(org_id)s AND e.seq > %(after_seq)s ORDER BY e.seq LIMIT %(limit)s"
)

# Replay (arx.policy.lifecycle.replay): the org's decision events before
# ``until``, newest first, each with the input it was decided on (NULL when it
# was recorded before migration 0014). Read through a server-side cursor and
# stopped at the first event older than the window: an index on seq is walked
# back from the newest event and never far past the window's start, however
# long the org's history (created_at has no index; the hot path pays for none).
RECORDED_DECISIONS = (
    "SELECT e.id, e.created_at, e.agent_id, a.name AS agent_name, e.connector, e.operation,"
    " e.verdict, e.policy_id, e.risk_score, e.policy_input::text AS policy_input"
    " FROM arx.audit_events e"
    " LEFT JOIN arx.agents a ON a.org_id = e.org_id AND a.id = e.agent_id"
    " WHERE e.org_id = %(org_id)s AND e.kind = 'decision' AND e.created_at < %(until)s"
    " ORDER BY e.seq DESC"
)
