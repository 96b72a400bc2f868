-- An approval request that nobody decides expires on time, and the trail says
-- so: every API process sweeps now and then (arx.approvals.expiry), and
-- arx.expire_approvals moves each pending request past its expiry to
-- 'expired' and appends an 'approval.expired' event for it, in one
-- transaction. The status change fires NOTIFY arx_approvals (0006), so an
-- agent waiting on it learns at once. Before this, a request only became
-- 'expired' when someone tried to decide it, and an untouched one never left
-- a trace of expiring.
--
-- The sweep crosses orgs, so it is a SECURITY DEFINER function owned by a
-- NOLOGIN role that may do exactly this and nothing else: read and expire
-- approval requests, and append 'approval.expired' events.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'arx_expiry') THEN
        CREATE ROLE arx_expiry NOLOGIN;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA arx TO arx_expiry;
GRANT SELECT, UPDATE (status, resolved_at) ON arx.approval_requests TO arx_expiry;
GRANT INSERT ON arx.audit_events TO arx_expiry;
CREATE POLICY expiry_sweep ON arx.approval_requests TO arx_expiry USING (true) WITH CHECK (true);
CREATE POLICY expiry_record ON arx.audit_events FOR INSERT TO arx_expiry
    WITH CHECK (kind = 'admin' AND action = 'approval.expired');

SET ROLE arx_owner;

CREATE FUNCTION arx.expire_approvals(p_limit integer) RETURNS integer
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

RESET ROLE;

ALTER FUNCTION arx.expire_approvals(integer) OWNER TO arx_expiry;
REVOKE ALL ON FUNCTION arx.expire_approvals(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION arx.expire_approvals(integer) TO arx_control;
