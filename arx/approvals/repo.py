"""SQL for approval requests (they are inserted by arx.record_decision)."""

from __future__ import annotations

# An agent may only read its own approvals; an expired pending one reads as expired.
SELECT_FOR_AGENT = (
    "SELECT id, event_id,"
    " CASE WHEN status = 'pending' AND expires_at <= now() THEN 'expired' ELSE status END,"
    " connector, operation, created_at, expires_at, resolved_at, resolution_comment"
    " FROM arx.approval_requests WHERE id = %s AND agent_id = %s"
)

# --- reviewers (arx_control, org-scoped by RLS) ------------------------------------

_STATUS = (
    "CASE WHEN r.status = 'pending' AND r.expires_at <= now() THEN 'expired'"
    " ELSE r.status END AS status"
)
_SUMMARY = (
    f"r.id AS approval_id, {_STATUS}, r.agent_id, a.name AS agent_name, r.connector,"
    " r.operation, e.risk_score, r.approvals_required, r.created_at, r.expires_at,"
    " r.resolved_at"
)
_FROM = (
    " FROM arx.approval_requests r"
    " JOIN arx.agents a ON a.org_id = r.org_id AND a.id = r.agent_id"
    " JOIN arx.audit_events e ON e.org_id = r.org_id AND e.id = r.event_id"
)
LIST = f"SELECT {_SUMMARY}{_FROM} ORDER BY r.created_at DESC LIMIT %(limit)s"
LIST_PENDING = (
    f"SELECT {_SUMMARY}{_FROM}"
    " WHERE r.status = 'pending' AND r.expires_at > now() ORDER BY r.created_at"
    " LIMIT %(limit)s"
)
LIST_DECIDED = (
    f"SELECT {_SUMMARY}{_FROM}"
    " WHERE r.status <> 'pending' OR r.expires_at <= now()"
    " ORDER BY coalesce(r.resolved_at, r.expires_at) DESC LIMIT %(limit)s"
)
DETAIL = (
    f"SELECT {_SUMMARY}, r.event_id, a.intent AS agent_intent, r.params, e.reasons,"
    " e.policy_id, e.bundle_revisions, r.resolution_comment"
    f"{_FROM} WHERE r.id = %(approval_id)s"
)
# What the agent did just before it asked: its last decisions (the session a
# reviewer judges the request in).
RECENT = (
    "SELECT created_at AS at, connector, operation, operation_kind AS kind, verdict,"
    " risk_score, policy_id FROM arx.audit_events"
    " WHERE kind = 'decision' AND agent_id = %(agent_id)s AND created_at < %(before)s"
    " ORDER BY created_at DESC LIMIT %(limit)s"
)
# The call that ran once approved: its decision event, and the answer the
# agent got (kept on the request, so a second resume replays it).
EXECUTION = (
    "SELECT r.executed_event_id AS event_id, r.claimed_at, e.verdict, e.policy_id,"
    " e.created_at AS decided_at, r.response_status, r.response_media_type,"
    " r.response_body"
    " FROM arx.approval_requests r"
    " LEFT JOIN arx.audit_events e ON e.org_id = r.org_id AND e.id = r.executed_event_id"
    " WHERE r.id = %(approval_id)s AND r.status IN ('executing', 'executed')"
)
VOTES = (
    "SELECT v.user_id, u.email, v.vote, v.comment, v.created_at"
    " FROM arx.approval_votes v JOIN arx.users u ON u.id = v.user_id"
    " WHERE v.approval_id = %(approval_id)s ORDER BY v.created_at"
)
# The request, locked: votes on one request are counted one at a time.
LOCK = (
    "SELECT r.status, r.expires_at <= now() AS expired, r.approvals_required, r.agent_id,"
    " r.agent_owner_id AS agent_owner, o.owners_may_approve"
    " FROM arx.approval_requests r JOIN arx.orgs o ON o.id = r.org_id"
    " WHERE r.id = %(approval_id)s FOR UPDATE OF r"
)
INSERT_VOTE = (
    "INSERT INTO arx.approval_votes (org_id, approval_id, user_id, vote, comment)"
    " VALUES (%(org_id)s, %(approval_id)s, %(user_id)s, %(vote)s, %(comment)s)"
)
APPROVALS = (
    "SELECT count(*) FROM arx.approval_votes"
    " WHERE approval_id = %(approval_id)s AND vote = 'approve'"
)
# Settling is one conditional update: only a pending, unexpired request moves.
SETTLE = (
    "UPDATE arx.approval_requests SET status = %(status)s, resolved_at = now(),"
    " resolution_comment = %(comment)s"
    " WHERE id = %(approval_id)s AND status = 'pending' AND expires_at > now()"
    " RETURNING id"
)
EXPIRE = (
    "UPDATE arx.approval_requests SET status = 'expired', resolved_at = now()"
    " WHERE id = %(approval_id)s AND status = 'pending' AND expires_at <= now()"
    " RETURNING id"
)
