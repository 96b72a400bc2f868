-- Who may approve, how many, and for how long.
--
-- * Policy decides how many distinct reviewers an escalation needs and may
--   shorten or lengthen its expiry per rule (the decision's
--   approvals_required and approval_ttl_seconds, passed in p_approval).
-- * Without a rule's expiry, the org's default applies (orgs.
--   approval_ttl_seconds), and without that the deployment's
--   (ARX_APPROVAL_TTL_SECONDS, passed as default_ttl_seconds).
-- * An agent may have an owner (a person accountable for it). Unless the
--   org allows it (owners_may_approve), its owner cannot approve what it
--   asks: separation of duties, the default a security team expects.
SET ROLE arx_owner;

ALTER TABLE arx.orgs
    ADD COLUMN approval_ttl_seconds  integer CHECK (approval_ttl_seconds BETWEEN 60 AND 604800),
    ADD COLUMN owners_may_approve    boolean NOT NULL DEFAULT false;

ALTER TABLE arx.agents
    ADD COLUMN owner_user_id  uuid REFERENCES arx.users (id);

-- As in 0007, with approvals_required and the expiry's three sources (the only change).
CREATE OR REPLACE FUNCTION arx.record_decision(p_event jsonb, p_expected_seq bigint,
    p_prior bigint[], p_approval jsonb, OUT agent_seq bigint,
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

GRANT UPDATE (approval_ttl_seconds, owners_may_approve) ON arx.orgs TO arx_control;
GRANT UPDATE (owner_user_id) ON arx.agents TO arx_control;
