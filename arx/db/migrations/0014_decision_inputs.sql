-- Replay before activation (issue 8): every decision event keeps the policy
-- input it was decided on, so that a candidate bundle can be evaluated
-- against what really happened before it is activated.
--
--   arx.audit_events.policy_input  the "input" member of the request ARX sent
--                                  to OPA for this decision, as those bytes.
--   arx.record_decision            takes that request (p_query) and stores its
--                                  input with the event; still one statement.
--
-- Guarantees:
-- * Exact: the column is json, not jsonb. json keeps the text it was given
--   (key order, number spelling, escapes), and `->` on json returns the
--   member's original text, so the stored input is byte for byte what OPA
--   evaluated; jsonb would re-serialise it (and parse it a second time into
--   its binary form on the hot path, for no reader that needs it).
-- * Nothing secret: the input holds what the decision already records or
--   what the agent's own identity says (its id, name and declared intent; the
--   org's id and slug; the connector, the operation and its params; the
--   session summary PostgreSQL computed from earlier decisions; the time).
--   arx.policy.input builds it before any credential is opened, and no API
--   key, token or credential is part of it.
-- * Append-only like the rest of the row (the table's triggers), and read
--   like params: by arx_control, in the org of its transaction (RLS).
-- * Decision events recorded before this migration have no input (NULL):
--   a replay reports them as not replayable. Other kinds never have one.
-- * Rolling upgrade: p_query defaults to NULL, so an API process still
--   calling the four-argument form keeps recording (without an input).
SET ROLE arx_owner;

-- No default: adding the column rewrites nothing. NOT VALID: every existing
-- row is NULL there, so there is nothing to check, and validating would scan
-- the whole trail under this migration's lock; new rows are checked.
ALTER TABLE arx.audit_events
    ADD COLUMN policy_input json,
    ADD CONSTRAINT audit_events_policy_input
        CHECK (policy_input IS NULL OR kind = 'decision') NOT VALID;

-- A new signature cannot replace the old function: the old one goes (with
-- its grants), so that a four-argument call is not ambiguous.
DROP FUNCTION arx.record_decision(jsonb, bigint, bigint[], jsonb);

-- As in 0008, with p_query (the OPA request body, {"input": …}) and its input
-- stored in policy_input (the only change).
CREATE FUNCTION arx.record_decision(p_event jsonb, p_expected_seq bigint,
    p_prior bigint[], p_approval jsonb, p_query json DEFAULT NULL, OUT agent_seq bigint,
    OUT approval_expires_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    e arx.audit_events := jsonb_populate_record(NULL::arx.audit_events, p_event);
    ttl double precision;
BEGIN
    PERFORM arx.enter_org(e.org_id);
    INSERT INTO arx.audit_events AS a (id, org_id, kind, agent_id, connector, operation,
        operation_kind, params, targets, verdict, risk_score, policy_id, reasons,
        bundle_revisions, request_id, idempotency_key, approval_id, policy_input, agent_seq,
        tally_read, tally_write, tally_containment, tally_destructive, tally_denied)
    VALUES (e.id, e.org_id, 'decision', e.agent_id, e.connector, e.operation,
        e.operation_kind, e.params, e.targets, e.verdict, e.risk_score, e.policy_id, e.reasons,
        e.bundle_revisions, e.request_id, e.idempotency_key, e.approval_id, p_query -> 'input',
        p_expected_seq + 1,
        p_prior[1] + (e.operation_kind = 'read')::int,
        p_prior[2] + (e.operation_kind = 'write')::int,
        p_prior[3] + (e.operation_kind = 'containment')::int,
        p_prior[4] + (e.operation_kind = 'destructive')::int,
        p_prior[5] + (e.verdict = 'DENY')::int)
    ON CONFLICT (org_id, agent_id, agent_seq) WHERE kind = 'decision' DO NOTHING
    RETURNING a.agent_seq INTO agent_seq;

    IF agent_seq IS NOT NULL AND p_approval IS NOT NULL THEN
        ttl := coalesce(
            (p_approval ->> 'ttl_seconds')::double precision,
            (SELECT o.approval_ttl_seconds FROM arx.orgs o WHERE o.id = e.org_id),
            (p_approval ->> 'default_ttl_seconds')::double precision);
        INSERT INTO arx.approval_requests (id, org_id, event_id, agent_id, connector, operation,
            params, request_hash, approvals_required, expires_at)
        VALUES ((p_approval ->> 'id')::uuid, e.org_id, e.id, e.agent_id, e.connector,
            e.operation, e.params, decode(p_approval ->> 'request_hash', 'hex'),
            coalesce((p_approval ->> 'approvals_required')::integer, 1),
            now() + make_interval(secs => ttl))
        RETURNING expires_at INTO approval_expires_at;
    END IF;
END
$$;

RESET ROLE;

REVOKE ALL ON FUNCTION arx.record_decision(jsonb, bigint, bigint[], jsonb, json) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION arx.record_decision(jsonb, bigint, bigint[], jsonb, json) TO arx_app;
