-- Resuming an approved request, exactly once. The agent sends the same call
-- again, naming the approval; ARX claims the approval (approved ->
-- executing, one conditional update, so two resumes cannot both run it),
-- decides afresh with the approval in the policy input, records a decision
-- event that references the approval, runs the call and keeps its answer on
-- the approval (executed): a second resume gets that answer, and nothing
-- runs twice. If nothing ran (a 503, the tool unreachable or rate limiting),
-- the claim is released and the approval can be resumed again.
SET ROLE arx_owner;

ALTER TABLE arx.approval_requests DROP CONSTRAINT approval_requests_status_check;
ALTER TABLE arx.approval_requests ADD CONSTRAINT approval_requests_status_check
    CHECK (status IN ('pending', 'approved', 'rejected', 'expired', 'executing', 'executed'));
ALTER TABLE arx.approval_requests
    ADD COLUMN claimed_at           timestamptz,
    ADD COLUMN executed_event_id    uuid,
    ADD COLUMN response_status      integer CHECK (response_status BETWEEN 200 AND 599),
    ADD COLUMN response_media_type  text,
    ADD COLUMN response_body        bytea;

-- The decision made when an approved request is resumed names the approval.
ALTER TABLE arx.audit_events
    ADD COLUMN approval_id uuid,
    ADD CONSTRAINT audit_events_approval
        FOREIGN KEY (org_id, approval_id) REFERENCES arx.approval_requests (org_id, id);

-- As in 0003, with the decision's approval_id (the only change).
CREATE OR REPLACE FUNCTION arx.record_decision(p_event jsonb, p_expected_seq bigint,
    p_prior bigint[], p_approval jsonb, OUT agent_seq bigint,
    OUT approval_expires_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    e arx.audit_events := jsonb_populate_record(NULL::arx.audit_events, p_event);
BEGIN
    PERFORM arx.enter_org(e.org_id);
    INSERT INTO arx.audit_events AS a (id, org_id, kind, agent_id, connector, operation,
        operation_kind, params, targets, verdict, risk_score, policy_id, reasons,
        bundle_revisions, request_id, idempotency_key, approval_id, agent_seq, tally_read,
        tally_write, tally_containment, tally_destructive, tally_denied)
    VALUES (e.id, e.org_id, 'decision', e.agent_id, e.connector, e.operation,
        e.operation_kind, e.params, e.targets, e.verdict, e.risk_score, e.policy_id, e.reasons,
        e.bundle_revisions, e.request_id, e.idempotency_key, e.approval_id,
        p_expected_seq + 1,
        p_prior[1] + (e.operation_kind = 'read')::int,
        p_prior[2] + (e.operation_kind = 'write')::int,
        p_prior[3] + (e.operation_kind = 'containment')::int,
        p_prior[4] + (e.operation_kind = 'destructive')::int,
        p_prior[5] + (e.verdict = 'DENY')::int)
    ON CONFLICT (org_id, agent_id, agent_seq) WHERE kind = 'decision' DO NOTHING
    RETURNING a.agent_seq INTO agent_seq;

    IF agent_seq IS NOT NULL AND p_approval IS NOT NULL THEN
        INSERT INTO arx.approval_requests (id, org_id, event_id, agent_id, connector, operation,
            params, request_hash, expires_at)
        VALUES ((p_approval ->> 'id')::uuid, e.org_id, e.id, e.agent_id, e.connector,
            e.operation, e.params, decode(p_approval ->> 'request_hash', 'hex'),
            now() + make_interval(secs => (p_approval ->> 'ttl_seconds')::double precision))
        RETURNING expires_at INTO approval_expires_at;
    END IF;
END
$$;

RESET ROLE;

GRANT UPDATE (status, claimed_at, executed_event_id, response_status, response_media_type,
    response_body) ON arx.approval_requests TO arx_app;
