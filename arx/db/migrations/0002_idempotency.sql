-- Idempotency keys for POST /v1/sdk/execute (the Idempotency-Key header).
-- A key is claimed before anything runs and completed with the exact
-- response; a retry with the same key and request replays that response, a
-- different request under the same key is refused. Keys live 24 hours.
SET ROLE arx_owner;

CREATE TABLE arx.idempotency_keys (
    org_id        uuid NOT NULL REFERENCES arx.orgs (id),
    agent_id      uuid NOT NULL,
    key           text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash  bytea NOT NULL CHECK (length(request_hash) = 32),
    status_code   integer,          -- NULL while the first request is in flight
    media_type    text,
    response      bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz,
    PRIMARY KEY (org_id, agent_id, key),
    FOREIGN KEY (org_id, agent_id) REFERENCES arx.agents (org_id, id)
);

RESET ROLE;

GRANT SELECT, INSERT, UPDATE, DELETE ON arx.idempotency_keys TO arx_app;
ALTER TABLE arx.idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE arx.idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON arx.idempotency_keys TO arx_app
    USING (org_id = (SELECT NULLIF(current_setting('arx.org_id', true), '')::uuid))
    WITH CHECK (org_id = (SELECT NULLIF(current_setting('arx.org_id', true), '')::uuid));
