-- A decided approval request wakes its waiting agent on any API process:
-- NOTIFY arx_approvals at commit, whoever decided it (arx.approvals.waiters).
SET ROLE arx_owner;

CREATE FUNCTION arx.notify_approval_decided() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('arx_approvals', NEW.id::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER approval_requests_notify
    AFTER UPDATE OF status ON arx.approval_requests
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION arx.notify_approval_decided();
ALTER TABLE arx.approval_requests ENABLE ALWAYS TRIGGER approval_requests_notify;

RESET ROLE;
