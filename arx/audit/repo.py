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
COLUMNS = (
    "id",
    "seq",
    "kind",
    "created_at",
    "agent_id",
    "decision_id",
    "connector",
    "operation",
    "operation_kind",
    "params",
    "targets",
    "agent_seq",
    "verdict",
    "risk_score",
    "policy_id",
    "reasons",
    "bundle_revisions",
    "idempotency_key",
    "approval_id",
    "result",
    "error",
    "action",
    "details",
    "actor",
    "request_id",
    "client_request_id",
)

# An event's outcome as a reader sees it (the table ``e``; parameter
# ``overdue_seconds``, arx.audit.service.result_overdue_seconds): a PERMIT
# decision with no result, older than any result of it could be, reads
# ``outcome_unknown``; every other row reads as stored. Computed at read time:
# the trail is append-only and the decision row is never changed. One probe
# of audit_events_result_of (migration 0015) per such decision listed. The
# OFFSET 0 keeps it a probe: without it, under row-level security, PostgreSQL
# chose a hashed subplan that read every result of the org (47 000 of them,
# 12 ms a page, at a million events; bench/audit_scale.py), growing with the
# org's history.
OUTCOME_AS_READ = (
    "CASE WHEN e.kind = 'decision' AND e.verdict = 'PERMIT'"
    " AND e.created_at < now() - make_interval(secs => %(overdue_seconds)s)"
    " AND NOT EXISTS (SELECT FROM arx.audit_events r"
    " WHERE r.org_id = e.org_id AND r.kind = 'result' AND r.decision_id = e.id OFFSET 0)"
    " THEN 'outcome_unknown' ELSE e.outcome END"
)

# Reading the trail (arx.audit.query says which order each read promises).
# A filter adds its clause only when it is set (arx.audit.query.where): each
# combination is its own statement with its own plan, so an unset filter
# never costs a plan that cannot use an index ("x IS NULL OR ..." can't).
FILTER_CLAUSES = {
    "kind": " AND e.kind = %(kind)s",
    "agent_id": " AND e.agent_id = %(agent_id)s",
    "connector": " AND e.connector = %(connector)s",
    "operation": " AND e.operation = %(operation)s",
    "verdict": " AND e.verdict = %(verdict)s",
    "outcome": " AND " + OUTCOME_AS_READ + " = %(outcome)s",
    "since": " AND e.created_at >= %(since)s",
    "until": " AND e.created_at < %(until)s",
}

# The event as read, with its chain position when the sealer has reached it.
_READ = (
    "SELECT "
    + ", ".join(f"e.{c}" for c in COLUMNS)
    + ", "
    + OUTCOME_AS_READ
    + " AS outcome, c.org_seq AS chain_org_seq,"
    " encode(c.hash, 'hex') AS chain_hash"
    " FROM arx.audit_events e"
    " LEFT JOIN arx.audit_chain c ON c.org_id = e.org_id AND c.event_id = e.id"
)

# Newest first, before a cursor: LIST_HEAD + the set filters' clauses + LIST_TAIL.
LIST_HEAD = _READ + " WHERE e.org_id = %(org_id)s AND e.seq < %(before)s"
LIST_TAIL = " ORDER BY e.seq DESC LIMIT %(limit)s"

# The export's fixed set: events whose transaction had ended when it began,
# by that moment's snapshot (xmin alone is the oldest transaction running in
# the whole cluster, and would leave out events committed long before).
EXPORT_HORIZON = "SELECT pg_current_snapshot()::text"
EXPORT_HEAD = (
    _READ + " WHERE e.org_id = %(org_id)s AND e.seq > %(after)s"
    " AND pg_visible_in_snapshot(e.txid, %(horizon)s::pg_snapshot)"
)
EXPORT_TAIL = " ORDER BY e.seq LIMIT %(limit)s"

# The chain's order: events the sealer has chained after ``after``.
FOLLOW = (
    "SELECT "
    + ", ".join(f"e.{col}" for col in COLUMNS)
    + ", "
    + OUTCOME_AS_READ
    + " AS outcome, c.org_seq AS chain_org_seq,"
    " encode(c.hash, 'hex') AS chain_hash"
    " FROM arx.audit_chain c JOIN arx.audit_events e ON e.org_id = c.org_id AND e.id = c.event_id"
    " WHERE c.org_id = %(org_id)s AND c.org_seq > %(after)s"
    " ORDER BY c.org_seq LIMIT %(limit)s"
)

ONE = _READ + " WHERE e.org_id = %(org_id)s AND e.id = %(event_id)s"
# A decision's results (normally one; a spooled duplicate is possible).
RESULTS_OF = (
    _READ + " WHERE e.org_id = %(org_id)s AND e.kind = 'result'"
    " AND e.decision_id = %(event_id)s ORDER BY e.seq"
)
# The approval this decision asked for, or the one it resumed.
APPROVAL_OF = (
    "SELECT id FROM arx.approval_requests WHERE org_id = %(org_id)s AND event_id = %(event_id)s"
)
# The first signed checkpoint that covers an org_seq.
CHECKPOINT_OVER = (
    "SELECT checkpoint_no, org_seq, signed_at FROM arx.audit_checkpoints"
    " WHERE org_id = %(org_id)s AND org_seq >= %(org_seq)s ORDER BY checkpoint_no LIMIT 1"
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
