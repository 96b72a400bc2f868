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
