-- Whose agent asked is fixed when it asks. An approval request keeps the
-- agent's owner of that moment (agent_owner_id), and the owner rule
-- (orgs.owners_may_approve, 0008) reads that, not the agent's owner at vote
-- time: otherwise an admin who also reviews could hand the agent to a
-- colleague, approve its request, and take it back.
SET ROLE arx_owner;

ALTER TABLE arx.approval_requests ADD COLUMN agent_owner_id uuid REFERENCES arx.users (id);

-- Runs as the inserting role (arx_app, inside arx.record_decision, in the
-- request's org): one primary-key read, for escalations only.
CREATE FUNCTION arx.approval_agent_owner() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    SELECT a.owner_user_id INTO NEW.agent_owner_id
    FROM arx.agents a WHERE a.org_id = NEW.org_id AND a.id = NEW.agent_id;
    RETURN NEW;
END
$$;
CREATE TRIGGER approval_requests_agent_owner
    BEFORE INSERT ON arx.approval_requests
    FOR EACH ROW EXECUTE FUNCTION arx.approval_agent_owner();
ALTER TABLE arx.approval_requests ENABLE ALWAYS TRIGGER approval_requests_agent_owner;

RESET ROLE;

-- As in 0010 (and still owned by arx_expiry), with the batch size bounded whatever the caller passes.
CREATE OR REPLACE FUNCTION arx.expire_approvals(p_limit integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    WITH due AS (
        SELECT id FROM arx.approval_requests
        WHERE status = 'pending' AND expires_at <= now()
        ORDER BY expires_at
        LIMIT least(greatest(coalesce(p_limit, 1), 1), 1000)
        FOR UPDATE SKIP LOCKED
    ), expired AS (
        UPDATE arx.approval_requests r SET status = 'expired', resolved_at = now()
        FROM due WHERE r.id = due.id AND r.status = 'pending'
        RETURNING r.id, r.org_id, r.agent_id
    ), recorded AS (
        INSERT INTO arx.audit_events (id, org_id, kind, action, actor, details)
        SELECT gen_random_uuid(), e.org_id, 'admin', 'approval.expired', 'arx',
            jsonb_build_object('approval_id', e.id::text, 'agent_id', e.agent_id::text,
                'comment', '')
        FROM expired e
    )
    SELECT count(*) INTO n FROM expired;
    RETURN n;
END
$$;
